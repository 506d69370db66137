/* test_pca.c — PCA-whitening against the original's recipe computed by
 * NumPy (tools/gen_cluster_fixtures.py), whitened covariance ≈ identity,
 * save/load round trip, rejection of bad input; the subspace-iteration
 * eigensolver against dsyevr, and wide (d > 4096) PCAs with fewer rows than
 * columns (the Gram-matrix path) and more (covariance, subspace iteration). */
#include "dc/cluster.h"
#include "dc/io.h"
#include "cluster/eig.h"
#include "test.h"

#include <lapacke.h>
#include <string.h>

#include <math.h>

static const char *fixture(const char *name) { return test_fixture("cluster", name); }

/* The subspace iteration against LAPACK's dsyevr on the same matrices: a
 * decaying spectrum and a rank-deficient one; then a wide PCA (d > 4096,
 * where dc_pca_fit takes the iterative path) whitens to the identity. */
static void check_iterative(void)
{
    const int d = 400, k = 24;
    for (int rank = d; rank >= 10; rank = rank == d ? 10 : 0) {
        double *m = dc_xmalloc((size_t)d * d * sizeof(double)), *a = dc_xmalloc((size_t)d * d * sizeof(double));
        dc_rng r;
        dc_rng_init(&r, 3, DC_RNG_STREAM_TEST, (uint32_t)rank, 0);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) m[(size_t)i * d + j] = j < rank ? dc_rng_normal(&r) * exp(-j / 15.0) : 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int l = 0; l < d; l++) s += m[(size_t)i * d + l] * m[(size_t)j * d + l];
                a[(size_t)i * d + j] = s;
            }
        double wi[24], wl[24], *zi = dc_xmalloc((size_t)d * k * sizeof(double)),
                               *zl = dc_xmalloc((size_t)d * k * sizeof(double));
        CHECK_MSG(dc_eig_top_iterative(a, d, k, wi, zi) == 1, "rank %d: no convergence", rank);
        CHECK(dc_eig_top(a, d, k, wl, zl, 0) == DC_OK); /* dsyevr: overwrites a */
        double top = wl[k - 1], werr = 0, verr = 0;
        for (int j = 0; j < k; j++) {
            double e = fabs(wi[j] - wl[j]) / top;
            if (e > werr) werr = e;
            if (wl[j] < 1e-5 * top) continue; /* below the floor: any null vector */
            double dot = 0;
            for (int i = 0; i < d; i++) dot += zi[(size_t)i * k + j] * zl[(size_t)i * k + j];
            if (1 - fabs(dot) > verr) verr = 1 - fabs(dot);
        }
        printf("subspace iteration vs dsyevr (rank %d): eigenvalues %.2g, eigenvectors 1-|cos| %.2g\n", rank, werr,
               verr);
        CHECK_MSG(werr < 1e-12 && verr < 1e-9, "rank %d: eigenvalues %g, vectors %g", rank, werr, verr);
        dc_free(m);
        dc_free(a);
        dc_free(zi);
        dc_free(zl);
    }

    /* n < d: the Gram-matrix path; n > d: the covariance and subspace iteration */
    for (int n = 300; n; n = n == 300 ? 4300 : 0) {
        const int wide = 4200, ko = 16;
        float *x = dc_xmalloc((size_t)n * wide * sizeof(float)), *y = dc_xmalloc((size_t)n * ko * sizeof(float));
        dc_rng r;
        dc_rng_init(&r, 4, DC_RNG_STREAM_TEST, 0, 0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < wide; j++)
                x[(size_t)i * wide + j] = (float)(dc_rng_normal(&r) * (1.0 + 20.0 * (j % 37 == 0)));
        dc_pca p;
        CHECK(dc_pca_fit(&p, x, n, wide, ko) == DC_OK);
        CHECK(p.energy > 0 && p.energy <= 1);
        dc_pca_apply(&p, y, x, n, 0);
        double maxerr = 0;
        for (int a = 0; a < ko; a++)
            for (int b = 0; b < ko; b++) {
                double s = 0; /* the projection is centred: the mean is 0 */
                for (int i = 0; i < n; i++) s += (double)y[i * ko + a] * y[i * ko + b];
                double e = fabs(s / n - (a == b));
                if (e > maxerr) maxerr = e;
            }
        /* the 114 boosted columns (variance 441) hold the top directions */
        double boosted = 0;
        for (int j = 0; j < wide; j += 37) boosted += (double)p.proj[j] * p.proj[j];
        double all = 0;
        for (int j = 0; j < wide; j++) all += (double)p.proj[j] * p.proj[j];
        printf("wide PCA (%d rows, %d -> %d): whitened covariance off identity by %.2g; top direction %.4f in the "
               "boosted columns\n", n, wide, ko, maxerr, boosted / all);
        CHECK_MSG(maxerr < 1e-3, "wide PCA, %d rows: whitened covariance off identity by %g", n, maxerr);
        CHECK_MSG(boosted / all > 0.95, "wide PCA, %d rows: top direction %g in the boosted columns", n, boosted / all);
        dc_pca_free(&p);
        dc_free(x);
        dc_free(y);
    }
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    check_iterative();
    dc_array x, want;
    CHECK(dc_npy_read(fixture("pca_x.npy"), &x) == DC_OK);
    CHECK(dc_npy_read(fixture("pca_expect.npy"), &want) == DC_OK);
    if (!x.data || !want.data) return TEST_SUMMARY();
    int64_t n = x.shape[0];
    int d = (int)x.shape[1], k = (int)want.shape[1];
    CHECK(n == 300 && d == 12 && k == 5);

    dc_pca p;
    CHECK(dc_pca_fit(&p, x.data, n, d, k) == DC_OK);
    CHECK(p.energy > 0.5 && p.energy <= 1.0);
    for (int r = 1; r < k; r++) CHECK(p.eigvals[r] <= p.eigvals[r - 1]);
    float *y = dc_xmalloc((size_t)n * k * sizeof(float));
    dc_pca_apply(&p, y, x.data, n, 1);
    double maxdiff = 0;
    for (int64_t i = 0; i < n * k; i++) {
        double e = fabs(y[i] - ((float *)want.data)[i]);
        if (e > maxdiff) maxdiff = e;
    }
    printf("PCA vs NumPy fixture: max abs difference %.3g\n", maxdiff);
    CHECK_MSG(maxdiff < 2e-4, "max diff %g", maxdiff);

    /* Without L2: whitened covariance is the identity on the kept dims. */
    dc_pca_apply(&p, y, x.data, n, 0);
    double maxerr = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double ma = 0, mb = 0, s = 0;
            for (int64_t i = 0; i < n; i++) {
                ma += y[i * k + a];
                mb += y[i * k + b];
            }
            ma /= n;
            mb /= n;
            for (int64_t i = 0; i < n; i++) s += (y[i * k + a] - ma) * (y[i * k + b] - mb);
            double e = fabs(s / n - (a == b ? 1.0 : 0.0));
            if (e > maxerr) maxerr = e;
        }
    CHECK_MSG(maxerr < 1e-3, "whitened covariance off identity by %g", maxerr);

    /* Save / load gives the same transform. */
    const char *path = test_path("pca.safetensors");
    CHECK(dc_pca_save(&p, path) == DC_OK);
    dc_pca q;
    CHECK(dc_pca_load(&q, path) == DC_OK);
    CHECK(q.d_in == d && q.d_out == k && q.energy == p.energy);
    CHECK(memcmp(q.proj, p.proj, (size_t)k * d * sizeof(float)) == 0);
    CHECK(memcmp(q.mean, p.mean, (size_t)d * sizeof(float)) == 0);
    dc_pca_free(&q);
    /* A safetensors file that is not a PCA is refused. */
    dc_st_writer *w = dc_st_writer_new();
    dc_st_writer_add(w, "other", DC_DTYPE_F32, 1, (int64_t[]){1}, y);
    const char *other = test_path("other.safetensors");
    CHECK(dc_st_writer_write(w, other) == DC_OK);
    dc_st_writer_free(w);
    CHECK(dc_pca_load(&q, other) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "not a PCA file");

    /* Fitting on a seeded sample: deterministic, and close to the full fit
     * on this well-conditioned data. */
    dc_pca s1, s2;
    CHECK(dc_pca_fit_sample(&s1, x.data, n, d, k, 150, 9) == DC_OK);
    CHECK(dc_pca_fit_sample(&s2, x.data, n, d, k, 150, 9) == DC_OK);
    CHECK(memcmp(s1.proj, s2.proj, (size_t)k * d * sizeof(float)) == 0);
    CHECK(memcmp(s1.proj, p.proj, (size_t)k * d * sizeof(float)) != 0);
    CHECK(fabs(s1.energy - p.energy) < 0.05);
    dc_pca_free(&s1);
    dc_pca_free(&s2);
    CHECK(dc_pca_fit_sample(&s1, x.data, n, d, k, 1000, 9) == DC_OK); /* n < max: all rows */
    CHECK(memcmp(s1.proj, p.proj, (size_t)k * d * sizeof(float)) == 0);
    dc_pca_free(&s1);

    /* Bad input. */
    CHECK(dc_pca_fit(&q, x.data, n, d, d + 1) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "between 1 and the input dimension 12");
    CHECK(dc_pca_fit(&q, x.data, 1, d, 2) == DC_STATUS_ARG);
    ((float *)x.data)[5 * d + 3] = NAN;
    CHECK(dc_pca_fit(&q, x.data, n, d, 2) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "row 5, column 3");

    /* Rank-deficient input: eigenvalues are floored, not zero. */
    float flat[100 * 4];
    for (int i = 0; i < 100; i++) {
        flat[i * 4 + 0] = (float)i;
        flat[i * 4 + 1] = (float)(2 * i);
        flat[i * 4 + 2] = 1.0f;
        flat[i * 4 + 3] = (float)(i % 7);
    }
    CHECK(dc_pca_fit(&q, flat, 100, 4, 4) == DC_OK);
    int finite = 1;
    for (int i = 0; i < 16; i++) finite &= isfinite(q.proj[i]);
    CHECK(finite && q.eigvals[3] > 0);
    dc_pca_free(&q);

    dc_pca_free(&p);
    dc_free(y);
    dc_array_free(&x);
    dc_array_free(&want);
    return TEST_SUMMARY();
}
