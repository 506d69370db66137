/* pca.c — PCA with whitening as the original's src/utils.py PCA class and
 * SPEC §4.2: covariance (1/n)·Σ(x−μ)(x−μ)ᵀ accumulated block by block (a
 * float GEMM per block of rows, summed in double), symmetric
 * eigendecomposition by LAPACKE_dsyevr (the d_out largest pairs only), eigenvalues floored at 1e-5 × the
 * largest, the d_out largest kept, projection diag(λ^-1/2)Vᵀ. Each kept
 * eigenvector's sign is fixed (largest-magnitude entry positive) so that
 * results do not depend on the LAPACK build.
 * Includes: dc/cluster.h, dc/kernels.h, dc/io.h, LAPACKE. */
#include "dc/cluster.h"
#include "dc/io.h"
#include "dc/kernels.h"

#include <lapacke.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCA_BLOCK 4096
#define PCA_TILE 512

void dc_pca_free(dc_pca *p)
{
    if (!p) return;
    dc_free(p->mean);
    dc_free(p->proj);
    dc_free(p->eigvals);
    memset(p, 0, sizeof *p);
}

static dc_status pca_alloc(dc_pca *p, int d, int d_out)
{
    memset(p, 0, sizeof *p);
    p->d_in = d;
    p->d_out = d_out;
    p->mean = dc_malloc((size_t)d * sizeof(float), "PCA mean");
    p->proj = dc_malloc((size_t)d_out * d * sizeof(float), "PCA projection");
    p->eigvals = dc_malloc((size_t)d_out * sizeof(float), "PCA eigenvalues");
    if (!p->mean || !p->proj || !p->eigvals) {
        dc_pca_free(p);
        return DC_STATUS_NOMEM;
    }
    return DC_OK;
}

/* mean (d) of the n rows of x: per-thread partial sums over row ranges,
 * combined in thread order (deterministic for a given thread count). */
static dc_status column_mean(double *mean, const float *x, int64_t n, int d)
{
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    double *part = dc_calloc((size_t)nth * d, sizeof(double), "PCA partial means");
    if (!part) return DC_STATUS_NOMEM;
#pragma omp parallel num_threads(nth)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        double *acc = part + (size_t)t * d;
        int64_t lo = n * t / nth, hi = n * (t + 1) / nth;
        for (int64_t i = lo; i < hi; i++)
            for (int j = 0; j < d; j++) acc[j] += x[i * d + j];
    }
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int t = 0; t < nth; t++) s += part[(size_t)t * d + j];
        mean[j] = s / (double)n;
    }
    dc_free(part);
    return DC_OK;
}

/* Upper triangle of (1/n)·Σ(x−μ)(x−μ)ᵀ into cov (d, d), block by block of
 * rows; within a block, one GEMM per tile pair (I <= J) of PCA_TILE
 * columns: half the work of the full product. */
static void covariance(double *cov, float *blk, float *buf, const float *x, const float *mu,
                       int64_t n, int d)
{
    for (int64_t b0 = 0; b0 < n; b0 += PCA_BLOCK) {
        int64_t nb = n - b0 < PCA_BLOCK ? n - b0 : PCA_BLOCK;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nb; i++)
            for (int j = 0; j < d; j++) buf[i * d + j] = x[(b0 + i) * d + j] - mu[j];
        for (int i0 = 0; i0 < d; i0 += PCA_TILE) {
            int ni = d - i0 < PCA_TILE ? d - i0 : PCA_TILE;
            for (int j0 = i0; j0 < d; j0 += PCA_TILE) {
                int nj = d - j0 < PCA_TILE ? d - j0 : PCA_TILE;
                dc_sgemm(1, 0, ni, nj, nb, 1.0f, buf + i0, d, buf + j0, d, 0.0f,
                         blk + (size_t)i0 * d + j0, d);
            }
        }
#pragma omp parallel for schedule(dynamic, 16)
        for (int i = 0; i < d; i++)
            for (int j = i / PCA_TILE * PCA_TILE; j < d; j++) cov[(size_t)i * d + j] += blk[(size_t)i * d + j];
    }
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) cov[(size_t)i * d + j] /= (double)n;
}

/* The whitening projection from the d_out largest eigenpairs (w ascending,
 * eigenvector r = column r of z, d x d_out): each eigenvalue floored at
 * 1e-5 x the largest, each eigenvector's largest entry made positive, rows
 * scaled by lambda^-1/2; p->energy measured against the trace (the sum of
 * all eigenvalues) plus the floor's lift on the kept ones: exact unless
 * dropped eigenvalues lie under the floor. */
static void set_projection(dc_pca *p, const double *w, const double *z, int d, int d_out, double trace)
{
    double eps = w[d_out - 1] * 1e-5, total = trace, kept = 0;
    for (int r = 0; r < d_out; r++) {
        int j = d_out - 1 - r; /* descending */
        double lam = w[j];
        if (lam < eps) {
            total += eps - lam;
            lam = eps;
        }
        kept += lam;
        int imax = 0;
        for (int i = 1; i < d; i++)
            if (fabs(z[(size_t)i * d_out + j]) > fabs(z[(size_t)imax * d_out + j])) imax = i;
        double scale = (z[(size_t)imax * d_out + j] < 0 ? -1.0 : 1.0) / sqrt(lam);
        for (int i = 0; i < d; i++) p->proj[(size_t)r * d + i] = (float)(z[(size_t)i * d_out + j] * scale);
        p->eigvals[r] = (float)lam;
    }
    p->energy = total > 0 ? kept / total : 1.0;
    if (p->energy > 1.0) p->energy = 1.0;
}

dc_status dc_pca_fit(dc_pca *p, const float *x, int64_t n, int d, int d_out)
{
    memset(p, 0, sizeof *p);
    if (n < 2) return dc_set_error(DC_STATUS_ARG, "PCA: needs at least 2 points, got %lld", (long long)n);
    if (d < 1 || d_out < 1 || d_out > d)
        return dc_set_error(DC_STATUS_ARG, "PCA: output dimension %d must be between 1 and the input dimension %d",
                            d_out, d);
    int64_t bad = dc_find_nonfinite(x, n * d);
    if (bad >= 0)
        return dc_set_error(DC_STATUS_ARG, "PCA: input has a NaN or infinite value at row %lld, column %lld",
                            (long long)(bad / d), (long long)(bad % d));
    dc_status st = pca_alloc(p, d, d_out);
    if (st) return st;

    size_t dd = (size_t)d * d;
    double *mean = dc_calloc((size_t)d, sizeof(double), "PCA mean");
    double *cov = dc_calloc(dd, sizeof(double), "PCA covariance");
    float *blk = dc_malloc(dd * sizeof(float), "PCA covariance block");
    float *buf = dc_malloc((size_t)PCA_BLOCK * d * sizeof(float), "PCA centred block");
    double *w = dc_malloc((size_t)d * sizeof(double), "PCA eigenvalues");
    double *z = dc_malloc((size_t)d * d_out * sizeof(double), "PCA eigenvectors");
    lapack_int *isuppz = dc_malloc(2 * (size_t)d_out * sizeof(lapack_int), "PCA workspace");
    if (!mean || !cov || !blk || !buf || !w || !z || !isuppz) {
        st = DC_STATUS_NOMEM;
        goto done;
    }
    double t0 = dc_time_now();
    if ((st = column_mean(mean, x, n, d))) goto done;
    for (int j = 0; j < d; j++) p->mean[j] = (float)mean[j];
    covariance(cov, blk, buf, x, p->mean, n, d);
    double trace = 0;
    for (int i = 0; i < d; i++) trace += cov[(size_t)i * d + i];
    double t1 = dc_time_now();

    /* Only the d_out largest eigenpairs are needed: dsyevr with an index
     * range skips the others. Eigenvalues ascending in w[0..d_out);
     * eigenvector r is column r of z (d, d_out). */
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', d, cov, d, 0.0, 0.0, d - d_out + 1, d,
                                     0.0, &found, w, z, d_out, isuppz);
    if (info != 0 || found != d_out) {
        st = dc_set_error(DC_STATUS_INTERNAL, "PCA: eigendecomposition failed (LAPACK info %d)", (int)info);
        goto done;
    }
    dc_log_debug("PCA: covariance %.2f s, eigendecomposition %.2f s", t1 - t0, dc_time_now() - t1);
    set_projection(p, w, z, d, d_out, trace);
    dc_log_info("PCA %d -> %d: keeping %.2f%% of the energy", d, d_out, 100.0 * p->energy);
done:
    dc_free(mean);
    dc_free(cov);
    dc_free(blk);
    dc_free(buf);
    dc_free(w);
    dc_free(z);
    dc_free(isuppz);
    if (st) dc_pca_free(p);
    return st;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

dc_status dc_pca_fit_sample(dc_pca *p, const float *x, int64_t n, int d,
                            int d_out, int64_t max_rows, uint64_t seed)
{
    if (max_rows <= 0 || n <= max_rows) return dc_pca_fit(p, x, n, d, d_out);
    memset(p, 0, sizeof *p);
    int64_t *rows = dc_malloc((size_t)max_rows * sizeof *rows, "PCA sample indices");
    float *sub = dc_malloc((size_t)max_rows * d * sizeof(float), "PCA sample");
    if (!rows || !sub) {
        dc_free(rows);
        dc_free(sub);
        return DC_STATUS_NOMEM;
    }
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_PCA, 0, 0);
    dc_rng_sample_distinct(&r, (uint64_t)n, (size_t)max_rows, rows);
    qsort(rows, (size_t)max_rows, sizeof *rows, cmp_i64); /* read in file order */
    for (int64_t i = 0; i < max_rows; i++)
        memcpy(sub + i * d, x + rows[i] * d, (size_t)d * sizeof(float));
    dc_log_info("PCA: fitting on %lld of %lld rows", (long long)max_rows, (long long)n);
    dc_status s = dc_pca_fit(p, sub, max_rows, d, d_out);
    dc_free(rows);
    dc_free(sub);
    return s;
}

void dc_pca_apply(const dc_pca *p, float *out, const float *x, int64_t n, int l2)
{
    int d = p->d_in, k = p->d_out;
    /* (x − μ)·Pᵀ = x·Pᵀ − P·μ: one GEMM, then a per-column shift. */
    float *pm = dc_xmalloc((size_t)k * sizeof *pm);
    for (int r = 0; r < k; r++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)p->proj[(size_t)r * d + i] * p->mean[i];
        pm[r] = (float)s;
    }
    dc_sgemm(0, 1, n, k, d, 1.0f, x, d, p->proj, d, 0.0f, out, k);
#pragma omp parallel for schedule(static) if (n * k > 65536)
    for (int64_t i = 0; i < n; i++)
        for (int r = 0; r < k; r++) out[i * k + r] -= pm[r];
    dc_free(pm);
    if (l2) dc_l2_normalize_rows(out, n, k);
}

dc_status dc_pca_save(const dc_pca *p, const char *path)
{
    dc_st_writer *w = dc_st_writer_new();
    int64_t sm[1] = {p->d_in}, sp[2] = {p->d_out, p->d_in}, se[1] = {p->d_out};
    dc_st_writer_add(w, "mean", DC_DTYPE_F32, 1, sm, p->mean);
    dc_st_writer_add(w, "proj", DC_DTYPE_F32, 2, sp, p->proj);
    dc_st_writer_add(w, "eigvals", DC_DTYPE_F32, 1, se, p->eigvals);
    char energy[32];
    snprintf(energy, sizeof energy, "%.17g", p->energy);
    dc_st_writer_set_meta(w, "format", "deepercluster-pca");
    dc_st_writer_set_meta(w, "version", "1");
    dc_st_writer_set_meta(w, "energy", energy);
    dc_status s = dc_st_writer_write(w, path);
    dc_st_writer_free(w);
    return s;
}

dc_status dc_pca_load(dc_pca *p, const char *path)
{
    memset(p, 0, sizeof *p);
    dc_st_file *f;
    dc_status s = dc_st_open(path, &f);
    if (s) return s;
    const char *fmt = dc_st_meta(f, "format");
    const dc_st_tensor *proj = dc_st_find(f, "proj");
    if (!fmt || strcmp(fmt, "deepercluster-pca") != 0 || !proj || proj->ndim != 2) {
        dc_st_close(f);
        return dc_set_error(DC_STATUS_FORMAT, "%s: not a PCA file written by deepercluster", path);
    }
    int d_out = (int)proj->shape[0], d = (int)proj->shape[1];
    s = pca_alloc(p, d, d_out);
    if (s == DC_OK) s = dc_st_read(f, "mean", DC_DTYPE_F32, 1, (int64_t[]){d}, p->mean);
    if (s == DC_OK) s = dc_st_read(f, "proj", DC_DTYPE_F32, 2, (int64_t[]){d_out, d}, p->proj);
    if (s == DC_OK) s = dc_st_read(f, "eigvals", DC_DTYPE_F32, 1, (int64_t[]){d_out}, p->eigvals);
    const char *e = dc_st_meta(f, "energy");
    p->energy = e ? strtod(e, NULL) : 0;
    dc_st_close(f);
    if (s) dc_pca_free(p);
    return s;
}

dc_status dc_pca_whiten(float *out, const float *x, int64_t n, int d, int dim, int64_t sample, uint64_t seed,
                        const char *save_path)
{
    int64_t lim = sample >= 0 ? sample : (int64_t)d * (d - 1) / 2;
    if (lim < 2) lim = 2;
    dc_pca p = {0};
    dc_status s = dc_pca_fit_sample(&p, x, n, d, dim, lim, seed);
    if (s == DC_OK && save_path) s = dc_pca_save(&p, save_path);
    if (s == DC_OK) dc_pca_apply(&p, out, x, n, 1);
    dc_pca_free(&p);
    return s;
}
