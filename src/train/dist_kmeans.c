/* dist_kmeans.c — k-means across processes (SPEC §6; the original's
 * src/distributed_kmeans.py): every rank runs the E-step on its slice, the
 * sums and counts are all-reduced, every rank runs the same M-step and the
 * same empty-cluster splits (same counts, same RNG coordinates), and the
 * members a split moves are chosen by their global rank among the donor's
 * members, so the result is the single-process one. With the
 * single-process backend this is dc_kmeans_train.
 * Includes: dc/train.h, dc/cluster.h, dc/comm.h, dc/kernels.h. */
#include "dc/comm.h"
#include "dc/kernels.h"
#include "dc/train.h"

#include <stdio.h>
#include <string.h>

dc_status dc_kmeans_train_dist(dc_kmeans_result *r, const dc_comm *comm, const float *x, int64_t n_local,
                               int64_t offset, int64_t n_total, int d, const dc_kmeans_params *p,
                               const float *init)
{
    dc_rows src;
    dc_rows_memory(&src, x, n_local, d);
    return dc_kmeans_train_dist_rows(r, comm, &src, offset, n_total, p, init);
}

dc_status dc_kmeans_train_dist_rows(dc_kmeans_result *r, const dc_comm *comm, dc_rows *x, int64_t offset,
                                    int64_t n_total, const dc_kmeans_params *p, const float *init)
{
    memset(r, 0, sizeof *r);
    int64_t n_local = x->n;
    int d = x->d;
    const char *label = p->label ? p->label : "k-means";
    const char *why = dc_kmeans_params_check(p, n_total);
    if (why) return dc_set_error(DC_STATUS_ARG, "%s: %s", label, why);
    int col;
    dc_status s = DC_OK;
    int64_t bad = dc_rows_find_nonfinite(x, &col, &s);
    /* every rank must learn of a bad value (or a failed read) anywhere */
    int64_t badflag = s != DC_OK ? -1 : bad >= 0 ? offset + bad + 1 : 0;
    dc_status cs = dc_comm_allreduce_i64(comm, &badflag, 1);
    if (s) return s;
    if (cs) return cs;
    if (badflag < 0) return dc_set_error(DC_STATUS_IO, "%s: reading the features failed on another rank", label);
    if (badflag) return dc_set_error(DC_STATUS_ARG, "%s: input has a NaN or infinite value (row %lld or after)",
                                     label, (long long)(badflag - 1));
    int k = p->k, W = dc_comm_size(comm), me = dc_comm_rank(comm);
    if ((s = dc_kmeans_result_alloc(r, k, d, n_local, p->niter))) return s;
    double *sums = dc_malloc((size_t)k * d * sizeof(double), "k-means sums");
    int64_t *local = dc_malloc((size_t)k * sizeof(int64_t), "k-means local counts");
    int64_t *all = dc_malloc((size_t)k * W * sizeof(int64_t), "k-means counts per rank");
    int64_t *skip = dc_malloc((size_t)k * sizeof(int64_t), "k-means split offsets");
    float *xnorm = dc_malloc((size_t)(n_local ? n_local : 1) * sizeof(float), "k-means point norms");
    dc_kmeans_split *splits = dc_malloc((size_t)k * sizeof *splits, "k-means splits");
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    dc_kmeans_work w = {0};
    if (!sums || !local || !all || !skip || !xnorm || !splits) s = DC_STATUS_NOMEM;
    if (s == DC_OK) s = dc_kmeans_work_init(&w, k, d);
    if (s == DC_OK) {
        if (init) {
            memcpy(r->centroids, init, (size_t)k * d * sizeof(float));
        } else {
            /* the single-process choice of rows; each row from its owner */
            int64_t *rows = dc_xmalloc((size_t)k * sizeof *rows);
            dc_kmeans_init_rows(rows, n_total, k, p->seed, p->group);
            for (int j = 0; j < k && s == DC_OK; j++)
                if (rows[j] >= offset && rows[j] < offset + n_local) {
                    int64_t at = rows[j] - offset;
                    s = dc_rows_gather(x, &at, 1, r->centroids + (size_t)j * d);
                }
            dc_free(rows);
            /* one owner per row: exact (a failed read is caught below) */
            cs = dc_comm_allreduce_f32(comm, r->centroids, (size_t)k * d);
            if (s == DC_OK) s = cs;
        }
        if (s == DC_OK) s = dc_rows_sqnorms(xnorm, x);
    }
    for (int pass = 0; pass <= p->niter && s == DC_OK; pass++) {
        double t0 = dc_time_now(), obj;
        if ((s = dc_kmeans_assign_rows(&obj, r->assign, sums, r->counts, x, xnorm, r->centroids, k, &w))) break;
        memcpy(local, r->counts, (size_t)k * sizeof *local);
        if ((s = dc_comm_allreduce_f64(comm, sums, (size_t)k * d)) || (s = dc_comm_allreduce_i64(comm, r->counts, (size_t)k)) ||
            (s = dc_comm_allreduce_f64(comm, &obj, 1)))
            break;
        if (pass < p->niter) dc_kmeans_update(r->centroids, sums, r->counts, k, d);
        int ns = dc_kmeans_split_empty(r->centroids, r->counts, k, d, p->seed, p->group, pass, splits);
        if (ns) {
            /* skip[c]: members of c on lower ranks, before the splits */
            for (int q = 0; q < W; q++) cnt[q] = (size_t)k * sizeof(int64_t);
            if ((s = dc_comm_allgatherv(comm, local, (size_t)k * sizeof(int64_t), all, cnt))) break;
            for (int c = 0; c < k; c++) {
                skip[c] = 0;
                for (int q = 0; q < me; q++) skip[c] += all[(size_t)q * k + c];
            }
            dc_kmeans_apply_splits(r->assign, n_local, k, splits, ns, skip);
        }
        dc_kmeans_pass *ps = dc_kmeans_record_pass(r, pass, obj, ns, n_total, t0);
        if (p->verbose)
            dc_log_info("%s pass %d/%d: objective %.6g, imbalance %.3f, %d splits (%d ranks)", label, pass, p->niter,
                        obj, ps->imbalance, ns, W);
    }
    dc_kmeans_work_free(&w);
    dc_free(sums);
    dc_free(local);
    dc_free(all);
    dc_free(skip);
    dc_free(xnorm);
    dc_free(splits);
    dc_free(cnt);
    if (s) dc_kmeans_result_free(r);
    return s;
}

void dc_cluster_volume_compute(dc_cluster_volume *v, int64_t n, int W, int D, int dim_pca, int k, int m)
{
    int64_t mine = (n + W - 1) / W, f = (int64_t)sizeof(float), sample = (int64_t)D * (D - 1) / 2;
    v->features = mine * D * f;
    v->whitened = mine * dim_pca * f;
    v->level2 = (W >= m ? mine : (n + m - 1) / m) * dim_pca * f;
    v->labels = 3 * n * (int64_t)sizeof(int32_t);
    v->centroids = (int64_t)k * dim_pca * (f + (int64_t)sizeof(double));
    v->pca_in = (n < sample ? n : sample) * D * f;
    v->alltoall = v->whitened;
    v->pass1 = (int64_t)m * dim_pca * 8 + (int64_t)m * 8 + 8;
    v->pass2 = (int64_t)(k / m) * dim_pca * 8 + (int64_t)(k / m) * 8 + 8;
}

/* ------------------------------------------------------------------------ */
/* A sharded matrix                                                         */
/* ------------------------------------------------------------------------ */

/* Rank q's rows of n: [n·q/W, n·(q+1)/W). */
static int64_t share_lo(int64_t n, int q, int W) { return n * q / W; }

/* The requested rows (idx ascending, or [first, first + count)) each rank
 * owns are a run of the request; every rank sends its run, and the runs
 * arrive in rank order, which is index order. */
static dc_status shard_fetch(void *ctx, const int64_t *idx, int64_t first, int64_t count, float *dst)
{
    const dc_shard *sh = ctx;
    int W = dc_comm_size(sh->comm), me = dc_comm_rank(sh->comm), d = sh->d;
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    int64_t at = 0, mine_at = 0;
    for (int q = 0; q < W; q++) {
        int64_t lo = share_lo(sh->n, q, W), hi = share_lo(sh->n, q + 1, W), k = 0;
        if (idx) {
            while (at + k < count && idx[at + k] < hi) {
                DC_ASSERT(idx[at + k] >= lo && (at + k == 0 || idx[at + k] > idx[at + k - 1]));
                k++;
            }
        } else {
            int64_t a = first > lo ? first : lo, b = first + count < hi ? first + count : hi;
            k = b > a ? b - a : 0;
        }
        if (q == me) mine_at = at;
        cnt[q] = (size_t)k * d * sizeof(float);
        at += k;
    }
    DC_ASSERT(at == count);
    int64_t k = (int64_t)(cnt[me] / (d * sizeof(float))), lo = share_lo(sh->n, me, W);
    /* a block's worth at most; every rank takes part even after a failed
     * read (then the rows are garbage and the error is this rank's result) */
    float *mine = dc_xmalloc(cnt[me] ? cnt[me] : 1);
    int64_t *at_local = dc_xmalloc((size_t)(k ? k : 1) * sizeof *at_local);
    for (int64_t i = 0; i < k; i++) at_local[i] = (idx ? idx[mine_at + i] : first + mine_at + i) - lo;
    dc_status s = dc_rows_gather(sh->local, at_local, k, mine);
    dc_status cs = dc_comm_allgatherv(sh->comm, mine, cnt[me], dst, cnt);
    if (s == DC_OK) s = cs;
    dc_free(mine);
    dc_free(at_local);
    dc_free(cnt);
    return s;
}

dc_status dc_rows_shard(dc_rows *r, dc_shard *s, int64_t cap)
{
    return dc_rows_function(r, s->n, s->d, shard_fetch, s, cap);
}

/* c (d) = the mean of rows idx[0 … cnt) (all n when idx is NULL) of the
 * sharded matrix, summed in index order as dc_mean_rows does (the same
 * bits on every rank and at any W); a collective. */
#define SHARD_BLOCK 4096
static dc_status shard_mean(float *c, dc_shard *sh, const int64_t *idx, int64_t cnt)
{
    dc_rows src;
    dc_status s = dc_rows_shard(&src, sh, SHARD_BLOCK);
    float *blk = s == DC_OK ? dc_malloc((size_t)SHARD_BLOCK * sh->d * sizeof(float), "rows") : NULL;
    if (s == DC_OK) s = blk ? dc_rows_mean(c, &src, idx, cnt, blk, SHARD_BLOCK) : DC_STATUS_NOMEM;
    dc_free(blk);
    dc_rows_close(&src);
    return s;
}

/* Moves rows of the sharded matrix to the ranks that need them: dest[i]
 * (every row's, known to every rank) is the rank that receives row i, or
 * -1; this rank's rows arrive in recv in index order. In rounds of at most
 * R rows per pair of ranks (R·W·d floats sent per rank per round), so no
 * call exceeds MPI's 2^31-byte counts and the buffers stay bounded. */
static dc_status exchange_rows(const dc_comm *comm, dc_rows *x, int64_t n, int d, const int32_t *dest,
                               float *recv, int64_t R)
{
    int W = dc_comm_size(comm), me = dc_comm_rank(comm);
    int64_t *pair = dc_xcalloc((size_t)W * W, sizeof *pair); /* pair[s·W + q]: rows s sends q */
    for (int s = 0; s < W; s++) {
        for (int64_t i = share_lo(n, s, W); i < share_lo(n, s + 1, W); i++)
            if (dest[i] >= 0) pair[(size_t)s * W + dest[i]]++;
    }
    int64_t rounds = 0, lo = share_lo(n, me, W), hi = share_lo(n, me + 1, W);
    for (int64_t k = 0; k < (int64_t)W * W; k++)
        if ((pair[k] + R - 1) / R > rounds) rounds = (pair[k] + R - 1) / R;
    /* my rows for each destination, in index order */
    int64_t *start = dc_xcalloc((size_t)W + 1, sizeof *start), *list = dc_xmalloc((size_t)(hi - lo + 1) * sizeof *list);
    for (int q = 0; q < W; q++) start[q + 1] = start[q] + pair[(size_t)me * W + q];
    int64_t *fill = dc_xmalloc((size_t)W * sizeof *fill);
    memcpy(fill, start, (size_t)W * sizeof *fill);
    for (int64_t i = lo; i < hi; i++) /* this rank's row numbers */
        if (dest[i] >= 0) list[fill[dest[i]]++] = i - lo;
    /* where each source's rows go in recv */
    int64_t *base = dc_xcalloc((size_t)W + 1, sizeof *base);
    for (int s = 0; s < W; s++) base[s + 1] = base[s] + pair[(size_t)s * W + me];
    size_t *sc = dc_xmalloc((size_t)W * sizeof *sc), *rc = dc_xmalloc((size_t)W * sizeof *rc);
    /* bounded (R·W rows); every rank takes part in every round, even after a
     * failed read (its rows then garbage, its error returned) */
    float *sbuf = dc_xmalloc((size_t)(R * W > 0 ? R * W : 1) * d * sizeof(float));
    float *rbuf = dc_xmalloc((size_t)(R * W > 0 ? R * W : 1) * d * sizeof(float));
    dc_status st = DC_OK;
    for (int64_t t = 0; t < rounds; t++) {
        int64_t at = 0;
        for (int q = 0; q < W; q++) {
            int64_t have = pair[(size_t)me * W + q], a = t * R < have ? t * R : have, b = (t + 1) * R < have ? (t + 1) * R : have;
            if (st == DC_OK) st = dc_rows_gather(x, list + start[q] + a, b - a, sbuf + at * d);
            at += b - a;
            sc[q] = (size_t)(b - a) * d * sizeof(float);
            int64_t from = pair[(size_t)q * W + me], fa = t * R < from ? t * R : from,
                    fb = (t + 1) * R < from ? (t + 1) * R : from;
            rc[q] = (size_t)(fb - fa) * d * sizeof(float);
        }
        dc_status cs = dc_comm_alltoallv(comm, sbuf, sc, rbuf, rc);
        if (st == DC_OK) st = cs;
        if (st != DC_OK) continue;
        int64_t off = 0;
        for (int q = 0; q < W; q++) {
            int64_t rows = (int64_t)(rc[q] / (d * sizeof(float)));
            memcpy(recv + (base[q] + t * R) * d, rbuf + off * d, (size_t)rows * d * sizeof(float));
            off += rows;
        }
    }
    dc_free(pair);
    dc_free(start);
    dc_free(list);
    dc_free(fill);
    dc_free(base);
    dc_free(sc);
    dc_free(rc);
    dc_free(sbuf);
    dc_free(rbuf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Two-level k-means across processes                                       */
/* ------------------------------------------------------------------------ */

/* k-means across the ranks of comm, this rank holding rows [lo, hi) of n
 * (x: those rows; rank q holds n·q/W to n·(q+1)/W), every row's
 * assignment gathered into `all` (n). */
static dc_status kmeans_gather(dc_kmeans_result *k, const dc_comm *comm, dc_rows *x, int64_t lo, int64_t hi,
                               int64_t n, const dc_kmeans_params *p, const float *warm, int32_t *all)
{
    int W = dc_comm_size(comm);
    DC_ASSERT(x->n == hi - lo);
    dc_status s = dc_kmeans_train_dist_rows(k, comm, x, lo, n, p, warm);
    if (s) return s;
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    for (int q = 0; q < W; q++) cnt[q] = (size_t)(n * (q + 1) / W - n * q / W) * sizeof(int32_t);
    s = dc_comm_allgatherv(comm, k->assign, (size_t)(hi - lo) * sizeof(int32_t), all, cnt);
    dc_free(cnt);
    if (s) dc_kmeans_result_free(k);
    return s;
}

/* The level-2 parameters of super-cluster c (the single-process run's). */
static dc_kmeans_params level2_params(const dc_kmeans_params *p, int c, int m, int k_sub, char *label, size_t len)
{
    snprintf(label, len, "level-2 k-means %d/%d", c + 1, m);
    dc_kmeans_params p2 = *p;
    p2.k = k_sub;
    p2.group = 1u + (uint32_t)c;
    p2.label = label;
    return p2;
}

/* s on every rank: the first failure of any rank (an error on all of
 * them), so that they all take the same collective path after it. */
static dc_status agree(const dc_comm *comm, dc_status s)
{
    int64_t failed = s != DC_OK;
    dc_status cs = dc_comm_allreduce_i64(comm, &failed, 1);
    if (s == DC_OK && cs) return cs;
    if (s == DC_OK && failed) return dc_set_error(DC_STATUS_INTERNAL, "the clustering failed on another rank");
    return s;
}

/* Level 2 with W ≥ m: super-cluster c = rank mod m in its clustering group
 * (ranks ≡ c mod m, group rank g = rank / m), group rank g holding the
 * members at positions [nc·g/G, nc·(g+1)/G) of c's members in index order,
 * received from their owners by exchange_rows; the group's first rank keeps
 * the result (the others' stay zero, for the sums over all ranks that
 * follow). */
static dc_status level2_groups(dc_hkmeans_result *r, const dc_comm *comm, dc_rows *x, const dc_kmeans_params *p,
                               const float *warm_sub, int64_t R, double agg[2])
{
    int m = r->m, k_sub = r->k_sub, d = r->d, W = dc_comm_size(comm), me = dc_comm_rank(comm), c = me % m;
    int64_t n = r->n;
    /* every row's destination: its super-cluster's group rank whose slice holds its position */
    int32_t *dest = dc_xmalloc((size_t)(n ? n : 1) * sizeof *dest);
    int64_t *seen = dc_xcalloc((size_t)m, sizeof *seen);
    for (int64_t i = 0; i < n; i++) {
        int cc = r->super[i], G = W / m + (cc < W % m);
        int64_t nc = r->super_counts[cc], pos = seen[cc]++;
        int g = 0;
        while (nc * (g + 1) / G <= pos) g++;
        dest[i] = cc + g * m;
    }
    dc_free(seen);
    int G = W / m + (c < W % m), g = me / m;
    int64_t nc = r->super_counts[c], lo = nc * g / G, hi = nc * (g + 1) / G;
    /* m = 1 (DeepCluster): every rank's slice is its own rows; nothing moves */
    float *buf = m == 1 ? NULL : dc_malloc((size_t)(hi - lo > 0 ? hi - lo : 1) * d * sizeof(float), "member features");
    dc_status s = agree(comm, buf || m == 1 ? DC_OK : DC_STATUS_NOMEM);
    if (s == DC_OK && m > 1) s = agree(comm, exchange_rows(comm, x, n, d, dest, buf, R));
    dc_free(dest);
    dc_comm *grp = NULL;
    if (s == DC_OK) s = dc_comm_split(comm, c, me, &grp);
    if (s == DC_OK && nc > 0) {
        char label[64];
        dc_kmeans_params p2 = level2_params(p, c, m, k_sub, label, sizeof label);
        dc_kmeans_result k2;
        int32_t *all = dc_xmalloc((size_t)nc * sizeof *all);
        dc_rows slice;
        if (m > 1) dc_rows_memory(&slice, buf, hi - lo, d);
        s = kmeans_gather(&k2, grp, m > 1 ? &slice : x, lo, hi, nc, &p2, warm_sub ? warm_sub + (size_t)c * k_sub * d : NULL, all);
        if (s == DC_OK) {
            if (g == 0) {
                for (int64_t i = 0, j = 0; i < n; i++)
                    if (r->super[i] == c) r->sub[i] = all[j++];
                memcpy(r->sub_centroids + (size_t)c * k_sub * d, k2.centroids, (size_t)k_sub * d * sizeof(float));
                memcpy(r->sub_counts + (size_t)c * k_sub, k2.counts, (size_t)k_sub * sizeof(int64_t));
                agg[0] += k2.passes[k2.npasses - 1].obj;
                agg[1] += k2.total_splits;
            }
            dc_kmeans_result_free(&k2);
        }
        dc_free(all);
    }
    dc_comm_free(grp);
    dc_free(buf);
    return s;
}

/* Level 2 with W < m: in round t, rank q clusters super-cluster q + t·W
 * alone, its members sent to it by their owners. */
static dc_status level2_rounds(dc_hkmeans_result *r, const dc_comm *comm, dc_rows *x, const dc_kmeans_params *p,
                               const float *warm_sub, int64_t R, double agg[2])
{
    int m = r->m, d = r->d, W = dc_comm_size(comm), me = dc_comm_rank(comm);
    int64_t n = r->n, maxcnt = 1;
    for (int c = me; c < m; c += W)
        if (r->super_counts[c] > maxcnt) maxcnt = r->super_counts[c];
    int32_t *dest = dc_xmalloc((size_t)(n ? n : 1) * sizeof *dest);
    int64_t *idx = dc_xmalloc((size_t)maxcnt * sizeof *idx);
    float *buf = dc_malloc((size_t)maxcnt * d * sizeof(float), "member features");
    dc_status s = agree(comm, buf ? DC_OK : DC_STATUS_NOMEM), ls = DC_OK; /* ls: this rank's k-means */
    for (int t = 0; t * W < m && s == DC_OK; t++) {
        for (int64_t i = 0; i < n; i++) {
            int q = r->super[i] - t * W;
            dest[i] = q >= 0 && q < W ? q : -1;
        }
        if ((s = agree(comm, exchange_rows(comm, x, n, d, dest, buf, R))) != DC_OK) break;
        int c = me + t * W;
        if (c >= m || ls != DC_OK) continue;
        int64_t nc = 0;
        for (int64_t i = 0; i < n; i++)
            if (r->super[i] == c) idx[nc++] = i;
        if (nc == 0) continue;
        dc_rows members;
        dc_rows_memory(&members, buf, nc, d);
        double obj;
        int splits;
        ls = dc_hkmeans_level2_rows(r, c, &members, idx, p, warm_sub, &obj, &splits);
        agg[0] += obj;
        agg[1] += splits;
    }
    if (s == DC_OK) s = ls;
    dc_free(dest);
    dc_free(idx);
    dc_free(buf);
    return s;
}

dc_status dc_hkmeans_train_dist(dc_hkmeans_result *r, const dc_comm *comm, const float *x, int64_t n,
                                int64_t lo, int64_t hi, int d, int m, const dc_kmeans_params *p,
                                const float *warm_super, const float *warm_sub, int64_t chunk_bytes)
{
    if (dc_comm_size(comm) == 1) return dc_hkmeans_train(r, x, n, d, m, p, warm_super, warm_sub);
    dc_rows src;
    dc_rows_memory(&src, x, hi - lo, d);
    return dc_hkmeans_train_dist_rows(r, comm, &src, n, lo, m, p, warm_super, warm_sub, chunk_bytes);
}

dc_status dc_hkmeans_train_dist_rows(dc_hkmeans_result *r, const dc_comm *comm, dc_rows *x, int64_t n, int64_t lo,
                                     int m, const dc_kmeans_params *p, const float *warm_super, const float *warm_sub,
                                     int64_t chunk_bytes)
{
    int W = dc_comm_size(comm), d = x->d;
    int64_t hi = lo + x->n;
    if (W == 1) return dc_hkmeans_train_rows(r, x, m, p, warm_super, warm_sub, NULL);
    dc_status s = dc_hkmeans_result_init(r, n, d, m, p);
    if (s) return s;
    int k_sub = r->k_sub;
    dc_shard sh = {comm, x, n, d};
    /* Level 1 over every rank's rows [lo, hi), then the assignments gathered. */
    if (m > 1) {
        dc_kmeans_params p1 = dc_hkmeans_level1_params(p, m);
        dc_kmeans_result k1;
        s = kmeans_gather(&k1, comm, x, lo, hi, n, &p1, warm_super, r->super);
        if (s == DC_OK) {
            dc_hkmeans_set_level1(r, &k1, NULL);
            dc_kmeans_result_free(&k1);
        }
    } else { /* one super-cluster of every point, centred on their mean */
        for (int64_t i = 0; i < n; i++) r->super[i] = 0;
        r->super_counts[0] = n;
        s = agree(comm, shard_mean(r->super_centroids, &sh, NULL, n));
    }
    s = agree(comm, s);
    for (int64_t i = 0; i < n; i++) r->sub[i] = 0;
    double agg[2] = {0, 0};
    int64_t R = (chunk_bytes > 0 ? chunk_bytes : (int64_t)16 << 20) / ((int64_t)W * d * (int64_t)sizeof(float));
    if (R < 1) R = 1;
    if (s == DC_OK && k_sub == 1) {
        /* each super-cluster's one sub-cluster: its mean, in index order */
        int64_t *idx = dc_xmalloc((size_t)(n ? n : 1) * sizeof *idx);
        for (int c = 0; c < m && s == DC_OK; c++) {
            int64_t nc = 0;
            for (int64_t i = 0; i < n; i++)
                if (r->super[i] == c) idx[nc++] = i;
            r->sub_counts[c] = nc;
            if (nc > 0) s = agree(comm, shard_mean(r->sub_centroids + (size_t)c * d, &sh, idx, nc));
        }
        dc_free(idx);
        if (s == DC_OK) {
            r->obj2 = r->obj1;
            return DC_OK;
        }
    } else if (s == DC_OK) {
        s = W >= m ? level2_groups(r, comm, x, p, warm_sub, R, agg) : level2_rounds(r, comm, x, p, warm_sub, R, agg);
    }
    /* every rank reaches the reductions, so a failure stops none of them halfway */
    int64_t failed = s != DC_OK;
    dc_status cs = dc_comm_allreduce_i64(comm, &failed, 1);
    if (cs == DC_OK && failed && s == DC_OK) s = dc_set_error(DC_STATUS_INTERNAL, "level-2 k-means failed on another rank");
    if (s == DC_OK) s = cs;
    int64_t *sub64 = s == DC_OK ? dc_malloc((size_t)(n ? n : 1) * sizeof *sub64, "sub-cluster assignments") : NULL;
    if (s == DC_OK && !sub64) s = DC_STATUS_NOMEM;
    if (s == DC_OK) {
        for (int64_t i = 0; i < n; i++) sub64[i] = r->sub[i]; /* 0 where another rank owns the point */
        s = dc_comm_allreduce_i64(comm, sub64, (size_t)n);
    }
    if (s == DC_OK) s = dc_comm_allreduce_f32(comm, r->sub_centroids, (size_t)p->k * d);
    if (s == DC_OK) s = dc_comm_allreduce_i64(comm, r->sub_counts, (size_t)p->k);
    if (s == DC_OK) s = dc_comm_allreduce_f64(comm, agg, 2);
    if (s == DC_OK) {
        for (int64_t i = 0; i < n; i++) r->sub[i] = (int32_t)sub64[i];
        r->obj2 = agg[0];
        r->splits2 = (int)agg[1];
    }
    dc_free(sub64);
    if (s) dc_hkmeans_result_free(r);
    return s;
}
