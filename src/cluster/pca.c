/* pca.c — PCA with whitening as the original's src/utils.py PCA class and
 * SPEC §4.2: covariance (1/n)·Σ(x−μ)(x−μ)ᵀ accumulated block by block (a
 * float GEMM per block of rows, summed in double), symmetric
 * eigendecomposition by LAPACKE_dsyevr (the d_out largest pairs only) or, for
 * a wide input and a narrow output, by subspace iteration (below; same pairs
 * to 1e-9, minutes become seconds), eigenvalues floored at 1e-5 × the
 * largest, the d_out largest kept, projection diag(λ^-1/2)Vᵀ. Each kept
 * eigenvector's sign is fixed (largest-magnitude entry positive) so that
 * results do not depend on the LAPACK build.
 * Includes: dc/cluster.h, dc/kernels.h, dc/io.h, LAPACKE. */
#include "dc/cluster.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "cluster/eig.h"

#include <cblas.h>
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

/* The rows a fit reads: rows idx[0 … n) of x (all of its first n when idx
 * is NULL), handed out a block at a time: a pointer into memory, or the
 * block read (gathered) into tmp (PCA_BLOCK rows). */
typedef struct pca_src {
    dc_rows *x;
    const int64_t *idx;
    int64_t n;
    float *tmp;
} pca_src;

static dc_status src_block(const pca_src *s, int64_t b0, int64_t nb, const float **out)
{
    if (s->idx) {
        *out = s->tmp;
        return dc_rows_gather(s->x, s->idx + b0, nb, s->tmp);
    }
    return dc_rows_read(s->x, b0, nb, out);
}

/* Rows per block handed out: all at once from memory, else PCA_BLOCK. */
static int64_t src_chunk(const pca_src *s)
{
    return s->idx || dc_rows_streamed(s->x) ? PCA_BLOCK : (s->n > 0 ? s->n : 1);
}

/* mean (d) of the n rows of src: per-thread partial sums over row ranges,
 * combined in thread order (deterministic for a given thread count; the
 * same whether the rows come at once or block by block). */
static dc_status column_mean(double *mean, const pca_src *src, int d)
{
    int64_t n = src->n;
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    double *part = dc_calloc((size_t)nth * d, sizeof(double), "PCA partial means");
    if (!part) return DC_STATUS_NOMEM;
    int64_t chunk = src_chunk(src);
    dc_status st = DC_OK;
    for (int64_t c0 = 0; c0 < n && st == DC_OK; c0 += chunk) {
        int64_t cn = n - c0 < chunk ? n - c0 : chunk;
        const float *x;
        if ((st = src_block(src, c0, cn, &x))) break;
#pragma omp parallel num_threads(nth)
        {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            double *acc = part + (size_t)t * d;
            int64_t lo = n * t / nth, hi = n * (t + 1) / nth;
            if (lo < c0) lo = c0;
            if (hi > c0 + cn) hi = c0 + cn;
            for (int64_t i = lo; i < hi; i++)
                for (int j = 0; j < d; j++) acc[j] += x[(i - c0) * d + j];
        }
    }
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int t = 0; t < nth; t++) s += part[(size_t)t * d + j];
        mean[j] = s / (double)n;
    }
    dc_free(part);
    return st;
}

/* Upper triangle of (1/n)·Σ(x−μ)(x−μ)ᵀ into cov (d, d), block by block of
 * rows; within a block, one GEMM per tile pair (I <= J) of PCA_TILE
 * columns: half the work of the full product. */
static dc_status covariance(double *cov, float *blk, float *buf, const pca_src *src, const float *mu, int d)
{
    int64_t n = src->n;
    for (int64_t b0 = 0; b0 < n; b0 += PCA_BLOCK) {
        int64_t nb = n - b0 < PCA_BLOCK ? n - b0 : PCA_BLOCK;
        const float *x;
        dc_status st = src_block(src, b0, nb, &x);
        if (st) return st;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nb; i++)
            for (int j = 0; j < d; j++) buf[i * d + j] = x[i * d + j] - mu[j];
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
    return DC_OK;
}

/* The k largest eigenpairs of the symmetric matrix a (d x d, upper triangle
 * used) by block subspace iteration with Rayleigh-Ritz: a block of
 * b = 2k + 16 vectors, seeded (a fixed Philox stream: deterministic),
 * multiplied by a and re-orthonormalised until every wanted Ritz pair's
 * residual |a v - theta v| is at most 1e-9 x max(theta, the whitening
 * floor); each pass costs 2·d²·b flops against dsyevr's tridiagonal
 * reduction's (4/3)·d³ in memory-bound BLAS2 (d = 9216: the dsyevr path
 * spent about 3 minutes in eval clusters --layer conv5 on 2 busy cores). Converges as (lambda_{b+1}/lambda_k)^pass;
 * returns 0 (the caller then uses dsyevr) if 300 passes do not suffice.
 * w: the k eigenvalues ascending; z: (d, k), eigenvector r in column r. */
#define PCA_ITER_MAX 300
#define PCA_ITER_TOL 1e-9

int dc_eig_top_iterative(const double *a, int d, int k, double *w, double *z)
{
    int b = 2 * k + 16, ok = 0;
    if (b > d) b = d;
    double *q = dc_malloc((size_t)d * b * sizeof(double), "PCA subspace");
    double *y = dc_malloc((size_t)d * b * sizeof(double), "PCA subspace product");
    double *t = dc_malloc((size_t)b * b * sizeof(double), "PCA Rayleigh quotient");
    double *th = dc_malloc((size_t)b * sizeof(double), "PCA Ritz values");
    double *tau = dc_malloc((size_t)b * sizeof(double), "PCA QR factors");
    double *v = dc_malloc((size_t)d * k * sizeof(double), "PCA Ritz vectors");
    double *av = dc_malloc((size_t)d * k * sizeof(double), "PCA Ritz products");
    if (!q || !y || !t || !th || !tau || !v || !av) goto done;
    dc_rng rng;
    dc_rng_init(&rng, 0, DC_RNG_STREAM_PCA, 1, 0);
    for (size_t i = 0; i < (size_t)d * b; i++) q[i] = dc_rng_normal(&rng);
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, d, b, q, b, tau) || LAPACKE_dorgqr(LAPACK_ROW_MAJOR, d, b, b, q, b, tau))
        goto done;
    for (int pass = 0; pass < PCA_ITER_MAX; pass++) {
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d, b, 1.0, a, d, q, b, 0.0, y, b);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, b, d, 1.0, q, b, y, b, 0.0, t, b);
        for (int i = 0; i < b; i++)
            for (int j = i + 1; j < b; j++) t[(size_t)i * b + j] = t[(size_t)j * b + i] =
                0.5 * (t[(size_t)i * b + j] + t[(size_t)j * b + i]);
        if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', b, t, b, th)) goto done;
        /* the k largest Ritz pairs: columns b-k .. b-1 of t */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, k, b, 1.0, q, b, t + (b - k), b, 0.0, v, k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, k, b, 1.0, y, b, t + (b - k), b, 0.0, av, k);
        double top = th[b - 1] > 0 ? th[b - 1] : 0, worst = 0;
        for (int j = 0; j < k; j++) {
            double lam = th[b - k + j], r2 = 0;
            for (int i = 0; i < d; i++) {
                double e = av[(size_t)i * k + j] - lam * v[(size_t)i * k + j];
                r2 += e * e;
            }
            double scale = lam > 1e-5 * top ? lam : 1e-5 * top;
            double rel = scale > 0 ? sqrt(r2) / scale : 0;
            if (rel > worst) worst = rel;
        }
        if (worst <= PCA_ITER_TOL) {
            for (int j = 0; j < k; j++) w[j] = th[b - k + j];
            memcpy(z, v, (size_t)d * k * sizeof(double));
            dc_log_debug("PCA: subspace iteration converged in %d passes", pass + 1);
            ok = 1;
            break;
        }
        memcpy(q, y, (size_t)d * b * sizeof(double));
        if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, d, b, q, b, tau) ||
            LAPACKE_dorgqr(LAPACK_ROW_MAJOR, d, b, b, q, b, tau))
            goto done;
    }
    if (!ok) dc_log_debug("PCA: subspace iteration did not converge; full eigendecomposition");
done:
    dc_free(q);
    dc_free(y);
    dc_free(t);
    dc_free(th);
    dc_free(tau);
    dc_free(v);
    dc_free(av);
    return ok;
}

/* Whether the iterative solver is used: a wide input (where dsyevr takes
 * minutes) and an output narrow enough for the block to be cheap. Inputs of
 * 4096 or fewer columns (VGG-16's final layer, every preset's) keep dsyevr:
 * their runs' bytes are unchanged. */
static int use_iterative(int d, int d_out) { return d > 4096 && (2 * d_out + 16) * 8 <= d; }

dc_status dc_eig_top(double *a, int d, int k, double *w, double *z, int iterative)
{
    if (iterative && dc_eig_top_iterative(a, d, k, w, z)) return DC_OK;
    lapack_int found = 0;
    lapack_int *isuppz = dc_malloc(2 * (size_t)k * sizeof(lapack_int), "PCA workspace");
    if (!isuppz) return DC_STATUS_NOMEM;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', d, a, d, 0.0, 0.0, d - k + 1, d, 0.0, &found,
                                     w, z, k, isuppz);
    dc_free(isuppz);
    if (info != 0 || found != k)
        return dc_set_error(DC_STATUS_INTERNAL, "PCA: eigendecomposition failed (LAPACK info %d)", (int)info);
    return DC_OK;
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

/* Fewer rows than columns on a wide input: the d_out largest eigenpairs of
 * the covariance from those of the n x n Gram matrix (1/n)·XcXcᵀ — the same
 * non-zero eigenvalues, eigenvectors Xcᵀu normalised — so no d x d matrix
 * is formed (d = 9216, n = 100: 1 GB and seconds saved). */
static int use_gram(int64_t n, int d, int d_out) { return d > 4096 && n < d && d_out <= n - 1; }

static dc_status fit_gram(dc_pca *p, const float *x, int64_t n, int d, int d_out)
{
    int nn = (int)n;
    double *mean = dc_calloc((size_t)d, sizeof(double), "PCA mean");
    float *xc = dc_malloc((size_t)n * d * sizeof(float), "PCA centred rows");
    float *g = dc_malloc((size_t)n * n * sizeof(float), "PCA Gram matrix");
    double *gd = dc_malloc((size_t)n * n * sizeof(double), "PCA Gram matrix");
    double *w = dc_malloc((size_t)n * sizeof(double), "PCA eigenvalues");
    double *u = dc_malloc((size_t)n * d_out * sizeof(double), "PCA eigenvectors");
    float *uf = dc_malloc((size_t)n * d_out * sizeof(float), "PCA eigenvectors");
    float *vf = dc_malloc((size_t)d * d_out * sizeof(float), "PCA eigenvectors");
    double *z = dc_malloc((size_t)d * d_out * sizeof(double), "PCA eigenvectors");
    dc_status st = DC_OK;
    if (!mean || !xc || !g || !gd || !w || !u || !uf || !vf || !z) {
        st = DC_STATUS_NOMEM;
        goto done;
    }
    dc_rows rows;
    dc_rows_memory(&rows, x, n, d);
    pca_src src = {&rows, NULL, n, NULL};
    if ((st = column_mean(mean, &src, d))) goto done;
    for (int j = 0; j < d; j++) p->mean[j] = (float)mean[j];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - p->mean[j];
    dc_sgemm(0, 1, nn, nn, d, 1.0f / (float)n, xc, d, xc, d, 0.0f, g, nn);
    double trace = 0;
    for (int64_t i = 0; i < n * n; i++) gd[i] = g[i];
    for (int i = 0; i < nn; i++) trace += gd[(size_t)i * nn + i];
    if ((st = dc_eig_top(gd, nn, d_out, w, u, (2 * d_out + 16) * 8 <= nn))) goto done;
    for (int64_t i = 0; i < n * d_out; i++) uf[i] = (float)u[i];
    dc_sgemm(1, 0, d, d_out, nn, 1.0f, xc, d, uf, d_out, 0.0f, vf, d_out);
    for (int r = 0; r < d_out; r++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)vf[(size_t)i * d_out + r] * vf[(size_t)i * d_out + r];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
        for (int i = 0; i < d; i++) z[(size_t)i * d_out + r] = vf[(size_t)i * d_out + r] * inv;
    }
    set_projection(p, w, z, d, d_out, trace);
    dc_log_info("PCA %d -> %d (Gram matrix of %lld rows): keeping %.2f%% of the energy", d, d_out, (long long)n,
                100.0 * p->energy);
done:
    dc_free(mean);
    dc_free(xc);
    dc_free(g);
    dc_free(gd);
    dc_free(w);
    dc_free(u);
    dc_free(uf);
    dc_free(vf);
    dc_free(z);
    return st;
}

/* All rows of x into dst. */
static dc_status read_all(dc_rows *x, float *dst)
{
    for (int64_t c0 = 0; c0 < x->n; c0 += x->cap) {
        int64_t cn = x->n - c0 < x->cap ? x->n - c0 : x->cap;
        const float *r;
        dc_status st = dc_rows_read(x, c0, cn, &r);
        if (st) return st;
        memcpy(dst + c0 * x->d, r, (size_t)cn * x->d * sizeof(float));
    }
    return DC_OK;
}

/* The fit on the rows of src (n of them, d columns): the Gram path needs
 * them in memory (read in when they come from a file: fewer rows than
 * columns, so less than the d x d covariance). */
static dc_status fit_src(dc_pca *p, const pca_src *src, int d, int d_out)
{
    int64_t n = src->n;
    memset(p, 0, sizeof *p);
    if (n < 2) return dc_set_error(DC_STATUS_ARG, "PCA: needs at least 2 points, got %lld", (long long)n);
    if (d < 1 || d_out < 1 || d_out > d)
        return dc_set_error(DC_STATUS_ARG, "PCA: output dimension %d must be between 1 and the input dimension %d",
                            d_out, d);
    dc_status st = DC_OK;
    int64_t chunk = src_chunk(src);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        int64_t cn = n - c0 < chunk ? n - c0 : chunk;
        const float *x;
        if ((st = src_block(src, c0, cn, &x))) return st;
        int64_t bad = dc_find_nonfinite(x, cn * d);
        if (bad >= 0)
            return dc_set_error(DC_STATUS_ARG, "PCA: input has a NaN or infinite value at row %lld, column %lld",
                                (long long)((src->idx ? src->idx[c0 + bad / d] : c0 + bad / d)), (long long)(bad % d));
    }
    st = pca_alloc(p, d, d_out);
    if (st) return st;
    if (use_gram(n, d, d_out)) {
        float *all = NULL;
        const float *x = src->x->mem;
        if (src->idx || !x) {
            all = dc_malloc((size_t)n * d * sizeof(float), "PCA rows");
            if (!all) st = DC_STATUS_NOMEM;
            else if (src->idx) st = dc_rows_gather(src->x, src->idx, n, all);
            else st = read_all(src->x, all);
            x = all;
        }
        if (st == DC_OK) st = fit_gram(p, x, n, d, d_out);
        dc_free(all);
        if (st) dc_pca_free(p);
        return st;
    }

    size_t dd = (size_t)d * d;
    double *mean = dc_calloc((size_t)d, sizeof(double), "PCA mean");
    double *cov = dc_calloc(dd, sizeof(double), "PCA covariance");
    float *blk = dc_malloc(dd * sizeof(float), "PCA covariance block");
    float *buf = dc_malloc((size_t)PCA_BLOCK * d * sizeof(float), "PCA centred block");
    double *w = dc_malloc((size_t)d * sizeof(double), "PCA eigenvalues");
    double *z = dc_malloc((size_t)d * d_out * sizeof(double), "PCA eigenvectors");
    if (!mean || !cov || !blk || !buf || !w || !z) {
        st = DC_STATUS_NOMEM;
        goto done;
    }
    double t0 = dc_time_now();
    if ((st = column_mean(mean, src, d))) goto done;
    for (int j = 0; j < d; j++) p->mean[j] = (float)mean[j];
    if ((st = covariance(cov, blk, buf, src, p->mean, d))) goto done;
    double trace = 0;
    for (int i = 0; i < d; i++) trace += cov[(size_t)i * d + i];
    double t1 = dc_time_now();

    /* Only the d_out largest eigenpairs are needed: dsyevr with an index
     * range skips the others. Eigenvalues ascending in w[0..d_out);
     * eigenvector r is column r of z (d, d_out). */
    if ((st = dc_eig_top(cov, d, d_out, w, z, use_iterative(d, d_out)))) goto done;
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
    if (st) dc_pca_free(p);
    return st;
}

dc_status dc_pca_fit(dc_pca *p, const float *x, int64_t n, int d, int d_out)
{
    dc_rows rows;
    dc_rows_memory(&rows, x, n, d);
    return fit_src(p, &(pca_src){&rows, NULL, n, NULL}, d, d_out);
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

dc_status dc_pca_fit_rows(dc_pca *p, dc_rows *x, int d_out, int64_t max_rows, uint64_t seed)
{
    if (!dc_rows_streamed(x)) return dc_pca_fit_sample(p, x->mem, x->n, x->d, d_out, max_rows, seed);
    memset(p, 0, sizeof *p);
    int64_t n = x->n, ns = max_rows > 0 && n > max_rows ? max_rows : n;
    int64_t *rows = NULL;
    float *tmp = dc_malloc((size_t)PCA_BLOCK * x->d * sizeof(float), "PCA block");
    if (!tmp) return DC_STATUS_NOMEM;
    if (ns < n) { /* the rows dc_pca_fit_sample draws */
        rows = dc_malloc((size_t)ns * sizeof *rows, "PCA sample indices");
        if (!rows) {
            dc_free(tmp);
            return DC_STATUS_NOMEM;
        }
        dc_rng r;
        dc_rng_init(&r, seed, DC_RNG_STREAM_PCA, 0, 0);
        dc_rng_sample_distinct(&r, (uint64_t)n, (size_t)ns, rows);
        qsort(rows, (size_t)ns, sizeof *rows, cmp_i64);
        dc_log_info("PCA: fitting on %lld of %lld rows", (long long)ns, (long long)n);
    }
    dc_status st = fit_src(p, &(pca_src){x, rows, ns, tmp}, x->d, d_out);
    dc_free(rows);
    dc_free(tmp);
    return st;
}

dc_status dc_pca_apply_rows(const dc_pca *p, dc_rows *x, float *out, dc_npy_writer *w, int l2)
{
    DC_ASSERT(x->d == p->d_in && (out != NULL) != (w != NULL));
    int k = p->d_out;
    if (!dc_rows_streamed(x) && out) {
        dc_pca_apply(p, out, x->mem, x->n, l2);
        return DC_OK;
    }
    int64_t chunk = dc_rows_streamed(x) ? x->cap : PCA_BLOCK;
    float *tmp = w ? dc_malloc((size_t)chunk * k * sizeof(float), "whitened block") : NULL;
    if (w && !tmp) return DC_STATUS_NOMEM;
    dc_status st = DC_OK;
    for (int64_t c0 = 0; c0 < x->n && st == DC_OK; c0 += chunk) {
        int64_t cn = x->n - c0 < chunk ? x->n - c0 : chunk;
        const float *xc;
        if ((st = dc_rows_read(x, c0, cn, &xc))) break;
        float *dst = w ? tmp : out + c0 * k;
        dc_pca_apply(p, dst, xc, cn, l2);
        if (w) st = dc_npy_writer_write(w, tmp, (size_t)cn * k * sizeof(float));
    }
    dc_free(tmp);
    return st;
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

dc_status dc_pca_whitened_rows(const dc_pca *p, dc_rows *x, const char *scratch, float **owned, dc_rows *out)
{
    int k = p->d_out;
    *owned = NULL;
    if (!scratch) {
        *owned = dc_malloc((size_t)(x->n > 0 ? x->n : 1) * k * sizeof(float), "whitened features");
        dc_status s = *owned ? dc_pca_apply_rows(p, x, *owned, NULL, 1) : DC_STATUS_NOMEM;
        if (s == DC_OK) dc_rows_memory(out, *owned, x->n, k);
        return s;
    }
    dc_npy_writer w;
    dc_status s = dc_npy_writer_open(&w, scratch, DC_DTYPE_F32, 2, (int64_t[]){x->n, k});
    if (s == DC_OK) s = dc_pca_apply_rows(p, x, NULL, &w, 1);
    if (s == DC_OK) s = dc_npy_writer_commit(&w);
    else dc_npy_writer_abort(&w);
    if (s == DC_OK) s = dc_rows_open_npy(out, scratch, PCA_BLOCK);
    return s;
}

dc_status dc_pca_apply_inplace(const dc_pca *p, float *x, int64_t n, int l2)
{
    DC_ASSERT(p->d_out <= p->d_in);
    int d = p->d_in, k = p->d_out;
    float *tmp = dc_malloc((size_t)PCA_BLOCK * k * sizeof(float), "whitened block");
    if (!tmp) return DC_STATUS_NOMEM;
    /* block b's outputs end at (b0 + nb)·k <= (b0 + nb)·d: past the rows
     * still to read never */
    for (int64_t b0 = 0; b0 < n; b0 += PCA_BLOCK) {
        int64_t nb = n - b0 < PCA_BLOCK ? n - b0 : PCA_BLOCK;
        dc_pca_apply(p, tmp, x + b0 * d, nb, l2);
        memcpy(x + b0 * k, tmp, (size_t)nb * k * sizeof(float));
    }
    dc_free(tmp);
    return DC_OK;
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
