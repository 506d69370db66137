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
    memset(r, 0, sizeof *r);
    const char *label = p->label ? p->label : "k-means";
    const char *why = dc_kmeans_params_check(p, n_total);
    if (why) return dc_set_error(DC_STATUS_ARG, "%s: %s", label, why);
    int64_t bad = dc_find_nonfinite(x, n_local * d);
    /* every rank must learn of a bad value anywhere */
    int64_t badflag = bad >= 0 ? offset + bad / d + 1 : 0;
    dc_status s = dc_comm_allreduce_i64(comm, &badflag, 1);
    if (s) return s;
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
            for (int j = 0; j < k; j++)
                if (rows[j] >= offset && rows[j] < offset + n_local)
                    memcpy(r->centroids + (size_t)j * d, x + (rows[j] - offset) * d, (size_t)d * sizeof(float));
            dc_free(rows);
            s = dc_comm_allreduce_f32(comm, r->centroids, (size_t)k * d); /* one owner per row: exact */
        }
        dc_row_sqnorms(xnorm, x, n_local, d);
    }
    for (int pass = 0; pass <= p->niter && s == DC_OK; pass++) {
        double t0 = dc_time_now();
        double obj = dc_kmeans_assign(r->assign, sums, r->counts, x, xnorm, n_local, d, r->centroids, k, &w);
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

/* ------------------------------------------------------------------------ */
/* Two-level k-means across processes                                       */
/* ------------------------------------------------------------------------ */

/* k-means across the ranks of comm, this rank holding rows [lo, hi) of n
 * (x: those rows; rank q holds n·q/W to n·(q+1)/W), every row's
 * assignment gathered into `all` (n). */
static dc_status kmeans_gather(dc_kmeans_result *k, const dc_comm *comm, const float *x, int64_t lo, int64_t hi,
                               int64_t n, int d, const dc_kmeans_params *p, const float *warm, int32_t *all)
{
    int W = dc_comm_size(comm);
    dc_status s = dc_kmeans_train_dist(k, comm, x, hi - lo, lo, n, d, p, warm);
    if (s) return s;
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    for (int q = 0; q < W; q++) cnt[q] = (size_t)(n * (q + 1) / W - n * q / W) * sizeof(int32_t);
    s = dc_comm_allgatherv(comm, k->assign, (size_t)(hi - lo) * sizeof(int32_t), all, cnt);
    dc_free(cnt);
    if (s) dc_kmeans_result_free(k);
    return s;
}

/* Level 2 of super-cluster c = rank mod m inside its clustering group; the
 * group's first rank keeps the result (the others' stay zero, for the
 * sums over all ranks that follow). */
static dc_status level2_group(dc_hkmeans_result *r, const dc_comm *comm, const float *x, const dc_kmeans_params *p,
                              const float *warm_sub, int64_t *idx, float *buf, double agg[2])
{
    int m = r->m, k_sub = r->k_sub, d = r->d, me = dc_comm_rank(comm), c = me % m;
    dc_comm *grp;
    dc_status s = dc_comm_split(comm, c, me, &grp);
    if (s) return s;
    int G = dc_comm_size(grp), g = dc_comm_rank(grp);
    int64_t nc = 0;
    for (int64_t i = 0; i < r->n; i++)
        if (r->super[i] == c) idx[nc++] = i;
    float *sub_c = r->sub_centroids + (size_t)c * k_sub * d;
    if (nc > 0 && k_sub == 1) {
        if (g == 0) {
            dc_mean_rows(sub_c, x, idx, nc, d);
            r->sub_counts[(size_t)c * k_sub] = nc;
        }
    } else if (nc > 0) {
        int64_t lo = nc * g / G, hi = nc * (g + 1) / G;
        for (int64_t i = lo; i < hi; i++) memcpy(buf + (i - lo) * d, x + idx[i] * d, (size_t)d * sizeof(float));
        char label[64];
        snprintf(label, sizeof label, "level-2 k-means %d/%d", c + 1, m);
        dc_kmeans_params p2 = *p;
        p2.k = k_sub;
        p2.group = 1u + (uint32_t)c; /* the seeds of the single-process run */
        p2.label = label;
        dc_kmeans_result k2;
        int32_t *all = dc_xmalloc((size_t)nc * sizeof *all);
        s = kmeans_gather(&k2, grp, buf, lo, hi, nc, d, &p2, warm_sub ? warm_sub + (size_t)c * k_sub * d : NULL, all);
        if (s == DC_OK) {
            if (g == 0) {
                for (int64_t i = 0; i < nc; i++) r->sub[idx[i]] = all[i];
                memcpy(sub_c, k2.centroids, (size_t)k_sub * d * sizeof(float));
                memcpy(r->sub_counts + (size_t)c * k_sub, k2.counts, (size_t)k_sub * sizeof(int64_t));
                agg[0] += k2.passes[k2.npasses - 1].obj;
                agg[1] += k2.total_splits;
            }
            dc_kmeans_result_free(&k2);
        }
        dc_free(all);
    }
    dc_comm_free(grp);
    return s;
}

dc_status dc_hkmeans_train_dist(dc_hkmeans_result *r, const dc_comm *comm, const float *x, int64_t n,
                                int64_t lo, int64_t hi, int d, int m, const dc_kmeans_params *p,
                                const float *warm_super, const float *warm_sub)
{
    int W = dc_comm_size(comm), me = dc_comm_rank(comm);
    if (W == 1) return dc_hkmeans_train(r, x, n, d, m, p, warm_super, warm_sub);
    dc_status s = dc_hkmeans_result_init(r, n, d, m, p);
    if (s) return s;
    int k_sub = r->k_sub;
    int64_t *sub64 = dc_calloc((size_t)n, sizeof(int64_t), "sub-cluster assignments");
    if (!sub64) {
        dc_hkmeans_result_free(r);
        return DC_STATUS_NOMEM;
    }
    /* Level 1 over every rank's rows [lo, hi), then the assignments gathered. */
    if (m > 1) {
        dc_kmeans_params p1 = dc_hkmeans_level1_params(p, m);
        dc_kmeans_result k1;
        s = kmeans_gather(&k1, comm, x + lo * d, lo, hi, n, d, &p1, warm_super, r->super);
        if (s == DC_OK) {
            dc_hkmeans_set_level1(r, &k1, x);
            dc_kmeans_result_free(&k1);
        }
    } else {
        dc_hkmeans_set_level1(r, NULL, x);
    }
    /* Level 2, on the members' rows every rank holds; the results are summed
     * over the ranks, each written by its owner only. (m = 1, DeepCluster:
     * one group of every rank, a flat k-means across all of them.) */
    int64_t maxcnt = 1;
    for (int c = 0; c < m; c++)
        if (r->super_counts[c] > maxcnt) maxcnt = r->super_counts[c];
    int64_t *idx = dc_malloc((size_t)maxcnt * sizeof *idx, "member indices");
    float *buf = dc_malloc((size_t)maxcnt * d * sizeof(float), "member features");
    if (s == DC_OK && (!idx || !buf)) s = DC_STATUS_NOMEM;
    double agg[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) r->sub[i] = 0;
    if (W >= m && s == DC_OK) {
        /* m clustering groups, ranks ≡ c (mod m) for super-cluster c: the
         * group's k-means runs across its ranks on slices of the members */
        s = level2_group(r, comm, x, p, warm_sub, idx, buf, agg);
    } else {
        for (int c = me; c < m && s == DC_OK; c += W) {
            double obj;
            int splits;
            s = dc_hkmeans_level2(r, x, c, p, warm_sub, idx, buf, &obj, &splits);
            agg[0] += obj;
            agg[1] += splits;
        }
    }
    for (int64_t i = 0; i < n; i++) sub64[i] = r->sub[i]; /* 0 where another rank owns the point */
    /* every rank reaches the reductions, so a failure stops none of them halfway */
    int64_t failed = s != DC_OK;
    dc_status cs = dc_comm_allreduce_i64(comm, &failed, 1);
    if (cs == DC_OK && failed && s == DC_OK) s = dc_set_error(DC_STATUS_INTERNAL, "level-2 k-means failed on another rank");
    if (s == DC_OK) s = cs;
    if (s == DC_OK) s = dc_comm_allreduce_i64(comm, sub64, (size_t)n);
    if (s == DC_OK) s = dc_comm_allreduce_f32(comm, r->sub_centroids, (size_t)p->k * d);
    if (s == DC_OK) s = dc_comm_allreduce_i64(comm, r->sub_counts, (size_t)p->k);
    if (s == DC_OK) s = dc_comm_allreduce_f64(comm, agg, 2);
    if (s == DC_OK) {
        for (int64_t i = 0; i < n; i++) r->sub[i] = (int32_t)sub64[i];
        r->obj2 = k_sub == 1 ? r->obj1 : agg[0];
        r->splits2 = (int)agg[1];
    }
    dc_free(idx);
    dc_free(buf);
    dc_free(sub64);
    if (s) dc_hkmeans_result_free(r);
    return s;
}
