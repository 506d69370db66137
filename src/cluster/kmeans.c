/* kmeans.c — Lloyd's k-means as DeeperCluster computes it (SPEC §4.3–4.5;
 * the original's src/distributed_kmeans.py): passes of E-step (nearest
 * centroid by ‖x‖² − 2x·c + ‖c‖², one GEMM per block of points) and M-step
 * (centroid = mean of members), a final assignment-only pass, and empty
 * clusters split from a random donor after every pass. The E-step returns
 * local sums and counts so a distributed caller can all-reduce them before
 * the M-step. Sums are accumulated in double without atomics: each thread
 * owns a range of centroids (as faiss's compute_centroids does).
 * Includes: dc/cluster.h, dc/kernels.h, core. */
#include "dc/cluster.h"
#include "dc/kernels.h"
#include "gpu/gpu_kmeans.h"

#include <float.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define SPLIT_EPS 1e-7f
#define WORK_BYTES (8u << 20) /* bound on the E-step's product block */

dc_kmeans_params dc_kmeans_params_default(void)
{
    dc_kmeans_params p = {0};
    p.k = 10;
    p.niter = 10;
    p.seed = 0;
    p.label = "k-means";
    p.gpu = -1;
    return p;
}

const char *dc_kmeans_params_check(const dc_kmeans_params *p, int64_t n)
{
    if (p->k < 1) return "k must be at least 1";
    if (p->niter < 0) return "niter must be at least 0";
    if (n < 1) return "k-means needs at least one point";
    if (n > INT32_MAX) return "more than 2^31 points per k-means call";
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Initialisation                                                           */
/* ------------------------------------------------------------------------ */

void dc_kmeans_init_rows(int64_t *rows, int64_t n, int k, uint64_t seed, uint32_t group)
{
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_KMEANS, group, 0);
    if (n >= k) {
        dc_rng_sample_distinct(&r, (uint64_t)n, (size_t)k, rows);
    } else {
        for (int j = 0; j < k; j++) rows[j] = (int64_t)dc_rng_below(&r, (uint64_t)n);
    }
}

void dc_kmeans_init_centroids(float *c, const float *x, int64_t n, int d, int k, uint64_t seed, uint32_t group)
{
    int64_t *rows = dc_xmalloc((size_t)k * sizeof *rows);
    dc_kmeans_init_rows(rows, n, k, seed, group);
    for (int j = 0; j < k; j++) memcpy(c + (size_t)j * d, x + rows[j] * d, (size_t)d * sizeof *c);
    dc_free(rows);
}

/* ------------------------------------------------------------------------ */
/* E-step and M-step                                                        */
/* ------------------------------------------------------------------------ */

dc_status dc_kmeans_work_init(dc_kmeans_work *w, int k, int d)
{
    (void)d;
    memset(w, 0, sizeof *w);
    int64_t block = (int64_t)(WORK_BYTES / sizeof(float)) / k;
    if (block > 4096) block = 4096;
    if (block < 16) block = 16;
    w->block = block;
    w->k = k;
    w->dots = dc_malloc((size_t)block * (size_t)k * sizeof(float), "k-means distances");
    w->cnorm = dc_malloc((size_t)k * sizeof(float), "k-means centroid norms");
    w->xnorm = dc_malloc((size_t)block * sizeof(float), "k-means point norms");
    if (!w->dots || !w->cnorm || !w->xnorm) {
        dc_kmeans_work_free(w);
        return DC_STATUS_NOMEM;
    }
    return DC_OK;
}

void dc_kmeans_work_free(dc_kmeans_work *w)
{
    dc_free(w->dots);
    dc_free(w->cnorm);
    dc_free(w->xnorm);
    memset(w, 0, sizeof *w);
}

/* Adds the points [0, n) to their clusters' sums/counts; thread t owns
 * clusters [k·t/T, k·(t+1)/T), so no two threads write the same row and
 * each cluster's sum runs over its points in index order (blocks of rows
 * added one after another give the sums of one call over all of them). */
static void accumulate_add(double *sums, int64_t *counts, const int32_t *assign,
                           const float *x, int64_t n, int d, int k)
{
#pragma omp parallel if (n * d > 100000)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int32_t lo = (int32_t)((int64_t)k * t / nt), hi = (int32_t)((int64_t)k * (t + 1) / nt);
        for (int64_t i = 0; i < n; i++) {
            int32_t c = assign[i];
            if (c < lo || c >= hi) continue;
            counts[c]++;
            double *s = sums + (size_t)c * d;
            const float *xi = x + i * d;
            for (int j = 0; j < d; j++) s[j] += xi[j];
        }
    }
}

/* Index of the smallest cn[j] − 2·row[j] (the first one on ties) and that
 * value. The AVX2 path keeps, per lane, the first minimum of its lane, then
 * picks the lane with the smallest value and, on ties, the smallest index:
 * the same answer as the scalar loop, bit for bit. */
static inline int32_t argmin_row(const float *row, const float *cn, int k, float *minval)
{
    int j = 0;
    float best = FLT_MAX;
    int32_t arg = 0;
#ifdef __AVX2__
    if (k >= 8) {
        __m256 vbest = _mm256_set1_ps(FLT_MAX), two = _mm256_set1_ps(2.0f);
        __m256i vidx = _mm256_setzero_si256(), cur = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i eight = _mm256_set1_epi32(8);
        for (; j + 8 <= k; j += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(cn + j), _mm256_mul_ps(two, _mm256_loadu_ps(row + j)));
            __m256 lt = _mm256_cmp_ps(v, vbest, _CMP_LT_OQ);
            vbest = _mm256_blendv_ps(vbest, v, lt);
            vidx = _mm256_castps_si256(
                _mm256_blendv_ps(_mm256_castsi256_ps(vidx), _mm256_castsi256_ps(cur), lt));
            cur = _mm256_add_epi32(cur, eight);
        }
        float bv[8];
        int32_t bi[8];
        _mm256_storeu_ps(bv, vbest);
        _mm256_storeu_si256((__m256i *)bi, vidx);
        for (int l = 0; l < 8; l++)
            if (bv[l] < best || (bv[l] == best && bi[l] < arg)) {
                best = bv[l];
                arg = bi[l];
            }
    }
#endif
    for (; j < k; j++) {
        float v = cn[j] - 2.0f * row[j];
        if (v < best) {
            best = v;
            arg = j;
        }
    }
    *minval = best;
    return arg;
}

/* The nearest centroid of each of the n points of x, by blocks of
 * w->block rows (one GEMM each; w->cnorm already set), each block's
 * objective added to *obj in turn. */
static void assign_blocks(int32_t *assign, const float *x, const float *xnorm, int64_t n, int d,
                          const float *centroids, int k, dc_kmeans_work *w, double *obj)
{
    for (int64_t b0 = 0; b0 < n; b0 += w->block) {
        int64_t nb = n - b0 < w->block ? n - b0 : w->block;
        const float *xb = x + b0 * d;
        /* dots (nb, k) = xb · centroidsᵀ */
        dc_sgemm(0, 1, nb, k, d, 1.0f, xb, d, centroids, d, 0.0f, w->dots, k);
        const float *xn = xnorm ? xnorm + b0 : w->xnorm;
        if (!xnorm) dc_row_sqnorms(w->xnorm, xb, nb, d);
        const float *cn = w->cnorm;
        const float *dots = w->dots;
        double bobj = 0;
#pragma omp parallel for reduction(+ : bobj) schedule(static) if (nb * k > 65536)
        for (int64_t i = 0; i < nb; i++) {
            float best;
            assign[b0 + i] = argmin_row(dots + i * k, cn, k, &best);
            float dist = xn[i] + best;
            bobj += dist > 0 ? dist : 0;
        }
        *obj += bobj;
    }
}

double dc_kmeans_assign(int32_t *assign, double *sums, int64_t *counts,
                        const float *x, const float *xnorm, int64_t n, int d,
                        const float *centroids, int k, dc_kmeans_work *w)
{
    DC_ASSERT(w->k == k);
    dc_row_sqnorms(w->cnorm, centroids, k, d);
    double obj = 0;
    assign_blocks(assign, x, xnorm, n, d, centroids, k, w, &obj);
    memset(sums, 0, (size_t)k * (size_t)d * sizeof *sums);
    memset(counts, 0, (size_t)k * sizeof *counts);
    accumulate_add(sums, counts, assign, x, n, d, k);
    return obj;
}

/* The E-step over a row source: in memory, dc_kmeans_assign; from a file,
 * chunk by chunk of a whole number of w->block rows, with the same blocks,
 * the same order of additions and so the same bits. */
dc_status dc_kmeans_assign_rows(double *obj, int32_t *assign, double *sums, int64_t *counts, dc_rows *x,
                                const float *xnorm, const float *centroids, int k, dc_kmeans_work *w)
{
    int64_t n = x->n;
    int d = x->d;
    if (!dc_rows_streamed(x)) {
        *obj = dc_kmeans_assign(assign, sums, counts, x->mem, xnorm, n, d, centroids, k, w);
        return DC_OK;
    }
    dc_row_sqnorms(w->cnorm, centroids, k, d);
    memset(sums, 0, (size_t)k * (size_t)d * sizeof *sums);
    memset(counts, 0, (size_t)k * sizeof *counts);
    *obj = 0;
    int64_t chunk = x->cap / w->block * w->block;
    if (chunk < w->block) chunk = w->block;
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        int64_t cn = n - c0 < chunk ? n - c0 : chunk;
        const float *xc;
        dc_status s = dc_rows_read(x, c0, cn, &xc);
        if (s) return s;
        assign_blocks(assign + c0, xc, xnorm + c0, cn, d, centroids, k, w, obj);
        accumulate_add(sums, counts, assign + c0, xc, cn, d, k);
    }
    return DC_OK;
}

void dc_kmeans_update(float *centroids, const double *sums,
                      const int64_t *counts, int k, int d)
{
#pragma omp parallel for schedule(static) if ((int64_t)k * d > 65536)
    for (int j = 0; j < k; j++) {
        if (counts[j] == 0) continue;
        double inv = 1.0 / (double)counts[j];
        for (int t = 0; t < d; t++)
            centroids[(size_t)j * d + t] = (float)(sums[(size_t)j * d + t] * inv);
    }
}

/* ------------------------------------------------------------------------ */
/* Empty clusters                                                           */
/* ------------------------------------------------------------------------ */

int dc_kmeans_split_empty(float *centroids, int64_t *counts, int k, int d,
                          uint64_t seed, uint32_t group, int pass,
                          dc_kmeans_split *splits)
{
    int nempty = 0;
    for (int j = 0; j < k; j++) nempty += counts[j] == 0;
    if (nempty == 0) return 0;
    /* Donor candidates: clusters non-empty before any split of this pass
     * (as the original's mask) that still have two members to share. */
    int32_t *cand = dc_xmalloc((size_t)k * sizeof *cand);
    int ncand = 0;
    for (int j = 0; j < k; j++)
        if (counts[j] >= 2) cand[ncand++] = j;
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_KMEANS, group, 1u + (uint32_t)pass);
    int nsplit = 0;
    for (int j = 0; j < k && ncand > 0; j++) {
        if (counts[j] != 0) continue;
        int32_t donor;
        for (;;) {
            int at = (int)dc_rng_below(&r, (uint64_t)ncand);
            donor = cand[at];
            if (counts[donor] >= 2) break;
            cand[at] = cand[--ncand]; /* halved down to 1: no longer a donor */
            if (ncand == 0) {
                donor = -1;
                break;
            }
        }
        if (donor < 0) break;
        float *cj = centroids + (size_t)j * d, *ci = centroids + (size_t)donor * d;
        memcpy(cj, ci, (size_t)d * sizeof *cj);
        for (int t = 0; t < d; t++) {
            float sign = (t % 2) ? 1.0f : -1.0f;
            cj[t] += sign * SPLIT_EPS;
            ci[t] -= sign * SPLIT_EPS;
        }
        int64_t moved = counts[donor] / 2;
        counts[j] = moved;
        counts[donor] -= moved;
        splits[nsplit].empty = j;
        splits[nsplit].donor = donor;
        splits[nsplit].moved = moved;
        nsplit++;
        dc_log_debug("k-means: cluster %d empty, split cluster %d (%lld members moved)", j,
                     donor, (long long)moved);
    }
    dc_free(cand);
    return nsplit;
}

void dc_kmeans_apply_splits(int32_t *assign, int64_t n, int k,
                            const dc_kmeans_split *splits, int nsplit,
                            const int64_t *skip)
{
    if (nsplit == 0) return;
    /* first[c]: first split whose donor is c; next[s]: the donor's next. */
    int32_t *first = dc_xmalloc((size_t)k * sizeof *first);
    int32_t *next = dc_xmalloc((size_t)nsplit * sizeof *next);
    int64_t *seen = dc_xcalloc((size_t)k, sizeof *seen);
    int32_t *last = dc_xmalloc((size_t)k * sizeof *last);
    for (int c = 0; c < k; c++) first[c] = last[c] = -1;
    for (int s = 0; s < nsplit; s++) {
        int32_t c = splits[s].donor;
        next[s] = -1;
        if (first[c] < 0) first[c] = s;
        else next[last[c]] = s;
        last[c] = s;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t c = assign[i];
        if (first[c] < 0) continue;
        int64_t rank = seen[c]++ + (skip ? skip[c] : 0);
        for (int32_t s = first[c]; s >= 0; s = next[s]) {
            if (rank < splits[s].moved) {
                assign[i] = splits[s].empty;
                break;
            }
            rank -= splits[s].moved;
        }
    }
    dc_free(first);
    dc_free(next);
    dc_free(seen);
    dc_free(last);
}

/* ------------------------------------------------------------------------ */
/* The single-process loop                                                  */
/* ------------------------------------------------------------------------ */

void dc_kmeans_result_free(dc_kmeans_result *r)
{
    if (!r) return;
    dc_free(r->centroids);
    dc_free(r->assign);
    dc_free(r->counts);
    dc_free(r->passes);
    memset(r, 0, sizeof *r);
}

dc_status dc_kmeans_result_alloc(dc_kmeans_result *r, int k, int d, int64_t n, int niter)
{
    memset(r, 0, sizeof *r);
    r->k = k;
    r->d = d;
    r->n = n;
    r->npasses = niter + 1;
    r->centroids = dc_calloc((size_t)k * d, sizeof(float), "k-means centroids");
    r->assign = dc_malloc((size_t)(n ? n : 1) * sizeof(int32_t), "k-means assignments");
    r->counts = dc_calloc((size_t)k, sizeof(int64_t), "k-means counts");
    r->passes = dc_calloc((size_t)r->npasses, sizeof(dc_kmeans_pass), "k-means stats");
    if (r->centroids && r->assign && r->counts && r->passes) return DC_OK;
    dc_kmeans_result_free(r);
    return DC_STATUS_NOMEM;
}

dc_kmeans_pass *dc_kmeans_record_pass(dc_kmeans_result *r, int pass, double obj, int nsplit, int64_t n_total,
                                      double t0)
{
    double sq = 0;
    for (int j = 0; j < r->k; j++) sq += (double)r->counts[j] * (double)r->counts[j];
    dc_kmeans_pass *ps = &r->passes[pass];
    ps->obj = obj;
    ps->nsplit = nsplit;
    ps->imbalance = sq * r->k / ((double)n_total * (double)n_total);
    ps->seconds = dc_time_now() - t0;
    r->total_splits += nsplit;
    return ps;
}

static void log_splits(const char *label, int pass, const dc_kmeans_split *s, int n)
{
    char buf[256];
    size_t off = 0;
    for (int i = 0; i < n && i < 8 && off < sizeof buf; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%d<-%d", i ? ", " : "",
                                s[i].empty, s[i].donor);
    dc_log_info("%s pass %d: split %d empty cluster%s (%s%s)", label, pass, n, n > 1 ? "s" : "",
                buf, n > 8 ? ", ..." : "");
}

/* The first row of x with a NaN or infinity, its column in *col; -1 if
 * none (or the read failed: *s). */
int64_t dc_rows_find_nonfinite(dc_rows *x, int *col, dc_status *s)
{
    int64_t chunk = dc_rows_streamed(x) ? (x->cap > 0 ? x->cap : 1) : x->n;
    *s = DC_OK;
    for (int64_t c0 = 0; c0 < x->n; c0 += chunk) {
        int64_t cn = x->n - c0 < chunk ? x->n - c0 : chunk;
        const float *xc;
        if ((*s = dc_rows_read(x, c0, cn, &xc))) return -1;
        int64_t bad = dc_find_nonfinite(xc, cn * x->d);
        if (bad >= 0) {
            *col = (int)(bad % x->d);
            return c0 + bad / x->d;
        }
    }
    return -1;
}

dc_status dc_rows_check_finite(dc_rows *x, const char *label)
{
    int col = 0;
    dc_status s;
    int64_t bad = dc_rows_find_nonfinite(x, &col, &s);
    if (s) return s;
    if (bad >= 0)
        return dc_set_error(DC_STATUS_ARG, "%s: input has a NaN or infinite value at row %lld, column %d", label,
                            (long long)bad, col);
    return DC_OK;
}

dc_status dc_rows_sqnorms(float *out, dc_rows *x)
{
    int64_t chunk = dc_rows_streamed(x) ? x->cap : x->n;
    for (int64_t c0 = 0; c0 < x->n; c0 += chunk) {
        int64_t cn = x->n - c0 < chunk ? x->n - c0 : chunk;
        const float *xc;
        dc_status s = dc_rows_read(x, c0, cn, &xc);
        if (s) return s;
        dc_row_sqnorms(out + c0, xc, cn, x->d);
    }
    return DC_OK;
}

dc_status dc_kmeans_train(dc_kmeans_result *r, const float *x, int64_t n,
                          int d, const dc_kmeans_params *p,
                          const float *init)
{
    dc_rows src;
    dc_rows_memory(&src, x, n, d);
    return dc_kmeans_train_rows(r, &src, p, init);
}

dc_status dc_kmeans_train_rows(dc_kmeans_result *r, dc_rows *x, const dc_kmeans_params *p, const float *init)
{
    memset(r, 0, sizeof *r);
    int64_t n = x->n;
    int d = x->d;
    const char *label = p->label ? p->label : "k-means";
    const char *why = dc_kmeans_params_check(p, n);
    if (why) return dc_set_error(DC_STATUS_ARG, "%s: %s", label, why);
    if (d < 1) return dc_set_error(DC_STATUS_ARG, "%s: dimension must be at least 1", label);
    dc_status st = dc_rows_check_finite(x, label);
    if (st) return st;
    int k = p->k;
    if (n < k)
        dc_log_warn("%s: %lld points for %d clusters: some clusters will stay empty", label,
                    (long long)n, k);
    st = dc_kmeans_result_alloc(r, k, d, n, p->niter);
    if (st) return st;
    double *sums = dc_malloc((size_t)k * d * sizeof(double), "k-means sums");
    dc_kmeans_split *splits = dc_malloc((size_t)k * sizeof *splits, "k-means splits");
    int64_t *rows = dc_malloc((size_t)k * sizeof *rows, "k-means initial rows");
    dc_kmeans_work w = {0};
    dc_gpu_kmeans *gk = NULL;
    float *xnorm = NULL;
    if (!sums || !splits || !rows) st = DC_STATUS_NOMEM;
    if (st == DC_OK && p->gpu >= 0) {
        st = dc_gpu_kmeans_create(&gk, p->gpu, x, k, p->device_rows);
    } else if (st == DC_OK) {
        xnorm = dc_malloc((size_t)n * sizeof(float), "k-means point norms");
        if (!xnorm) st = DC_STATUS_NOMEM;
        if (st == DC_OK) st = dc_kmeans_work_init(&w, k, d);
        if (st == DC_OK) st = dc_rows_sqnorms(xnorm, x); /* once: the points do not move */
    }
    if (st == DC_OK) {
        if (init) {
            memcpy(r->centroids, init, (size_t)k * d * sizeof(float));
        } else {
            dc_kmeans_init_rows(rows, n, k, p->seed, p->group);
            st = dc_rows_gather(x, rows, k, r->centroids);
        }
    }
    dc_progress *bar = NULL;
    if (st == DC_OK && p->progress) {
        dc_progress_opts o = dc_progress_opts_default();
        o.unit = "pass";
        bar = dc_progress_start(label, (uint64_t)r->npasses, &o);
    }
    for (int pass = 0; pass <= p->niter && st == DC_OK; pass++) {
        double t0 = dc_time_now(), obj;
        if (gk) st = dc_gpu_kmeans_assign(gk, &obj, r->assign, sums, r->counts, r->centroids);
        else st = dc_kmeans_assign_rows(&obj, r->assign, sums, r->counts, x, xnorm, r->centroids, k, &w);
        if (st) break;
        if (pass < p->niter) dc_kmeans_update(r->centroids, sums, r->counts, k, d);
        int ns = dc_kmeans_split_empty(r->centroids, r->counts, k, d, p->seed, p->group, pass, splits);
        dc_kmeans_apply_splits(r->assign, n, k, splits, ns, NULL);
        dc_kmeans_pass *ps = dc_kmeans_record_pass(r, pass, obj, ns, n, t0);
        if (ns) log_splits(label, pass, splits, ns);
        if (p->verbose || pass == p->niter)
            dc_log(p->verbose ? DC_LOG_INFO : DC_LOG_DEBUG,
                   "%s pass %d/%d: objective %.6g, imbalance %.3f, %d split%s, %.3f s%s", label, pass,
                   p->niter, obj, ps->imbalance, ns, ns == 1 ? "" : "s", ps->seconds, gk ? " (GPU)" : "");
        if (bar) {
            char note[64];
            snprintf(note, sizeof note, "obj %.5g", obj);
            dc_progress_set_note(bar, note);
            dc_progress_update(bar, (uint64_t)pass + 1);
        }
    }
    dc_progress_finish(bar);
    dc_gpu_kmeans_free(gk);
    dc_kmeans_work_free(&w);
    dc_free(sums);
    dc_free(splits);
    dc_free(rows);
    dc_free(xnorm);
    if (st) dc_kmeans_result_free(r);
    return st;
}
