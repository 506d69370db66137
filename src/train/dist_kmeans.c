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
    r->k = k;
    r->d = d;
    r->n = n_local;
    r->npasses = p->niter + 1;
    r->centroids = dc_calloc((size_t)k * d, sizeof(float), "k-means centroids");
    r->assign = dc_malloc((size_t)(n_local ? n_local : 1) * sizeof(int32_t), "k-means assignments");
    r->counts = dc_calloc((size_t)k, sizeof(int64_t), "k-means counts");
    r->passes = dc_calloc((size_t)r->npasses, sizeof(dc_kmeans_pass), "k-means stats");
    double *sums = dc_malloc((size_t)k * d * sizeof(double), "k-means sums");
    int64_t *local = dc_malloc((size_t)k * sizeof(int64_t), "k-means local counts");
    int64_t *all = dc_malloc((size_t)k * W * sizeof(int64_t), "k-means counts per rank");
    int64_t *skip = dc_malloc((size_t)k * sizeof(int64_t), "k-means split offsets");
    float *xnorm = dc_malloc((size_t)(n_local ? n_local : 1) * sizeof(float), "k-means point norms");
    dc_kmeans_split *splits = dc_malloc((size_t)k * sizeof *splits, "k-means splits");
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    dc_kmeans_work w = {0};
    if (!r->centroids || !r->assign || !r->counts || !r->passes || !sums || !local || !all || !skip || !xnorm ||
        !splits)
        s = DC_STATUS_NOMEM;
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
        double sq = 0;
        for (int j = 0; j < k; j++) sq += (double)r->counts[j] * (double)r->counts[j];
        dc_kmeans_pass *ps = &r->passes[pass];
        ps->obj = obj;
        ps->nsplit = ns;
        ps->imbalance = sq * k / ((double)n_total * (double)n_total);
        ps->seconds = dc_time_now() - t0;
        r->total_splits += ns;
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
