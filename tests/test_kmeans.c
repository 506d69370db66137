/* test_kmeans.c — k-means and hierarchical k-means: monotone objective,
 * determinism across thread counts, empty-cluster splitting (SPEC §4.4),
 * corner cases (n == k, n < k, k == 1, identical points, NaN input), and
 * NMI on Fashion-MNIST raw pixels against scikit-learn's. */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"
#include "dc/io.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Gaussian blobs: n points in d dims around `c` centres. */
static float *blobs(int64_t n, int d, int c, uint64_t seed) { return test_blobs(n, d, c, seed, 4.0); }

/* Recounts assignments and checks them against r->counts and range. */
static int consistent(const dc_kmeans_result *r)
{
    int64_t *c = dc_xcalloc((size_t)r->k, sizeof *c);
    int ok = 1;
    for (int64_t i = 0; i < r->n; i++) {
        if (r->assign[i] < 0 || r->assign[i] >= r->k) ok = 0;
        else c[r->assign[i]]++;
    }
    for (int j = 0; ok && j < r->k; j++) ok = c[j] == r->counts[j];
    dc_free(c);
    return ok;
}

static int no_empty(const dc_kmeans_result *r)
{
    for (int j = 0; j < r->k; j++)
        if (r->counts[j] == 0) return 0;
    return 1;
}

static void test_objective_and_determinism(void)
{
    int64_t n = 3000;
    int d = 16;
    float *x = blobs(n, d, 12, 1);
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = 40;
    p.niter = 15;
    p.seed = 7;
    dc_kmeans_result a, b;
    CHECK(dc_kmeans_train(&a, x, n, d, &p, NULL) == DC_OK);
    CHECK(consistent(&a) && no_empty(&a));
    CHECK_EQ_INT(a.npasses, 16);
    int mono = 1;
    for (int i = 1; i < a.npasses; i++)
        if (a.passes[i].obj > a.passes[i - 1].obj * (1 + 1e-6) + 1e-6) mono = 0;
    CHECK(mono);
    CHECK(a.passes[15].obj < a.passes[0].obj);
    CHECK(a.passes[15].imbalance >= 1.0);

#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    CHECK(dc_kmeans_train(&b, x, n, d, &p, NULL) == DC_OK);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    CHECK(memcmp(a.assign, b.assign, (size_t)n * sizeof(int32_t)) == 0);
    CHECK(memcmp(a.centroids, b.centroids, (size_t)p.k * d * sizeof(float)) == 0);
    CHECK_CLOSE(a.passes[15].obj, b.passes[15].obj, 1e-6 * a.passes[15].obj);
    dc_kmeans_result_free(&b);

    /* Another seed gives another result. */
    p.seed = 8;
    CHECK(dc_kmeans_train(&b, x, n, d, &p, NULL) == DC_OK);
    CHECK(memcmp(a.centroids, b.centroids, (size_t)p.k * d * sizeof(float)) != 0);
    dc_kmeans_result_free(&b);

    /* Warm restart with zero update passes reproduces the final assignment. */
    p.seed = 7;
    p.niter = 0;
    CHECK(dc_kmeans_train(&b, x, n, d, &p, a.centroids) == DC_OK);
    CHECK(memcmp(a.assign, b.assign, (size_t)n * sizeof(int32_t)) == 0);
    dc_kmeans_result_free(&b);
    dc_kmeans_result_free(&a);
    dc_free(x);
}

static void test_init(void)
{
    enum { N = 50, D = 3, K = 50 };
    float x[N * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)(i / D);
    float c[K * D];
    dc_kmeans_init_centroids(c, x, N, D, K, 3, 0);
    int seen[N] = {0}, distinct = 1;
    for (int j = 0; j < K; j++) {
        int row = (int)c[j * D];
        if (seen[row]++) distinct = 0;
    }
    CHECK(distinct); /* k == n: a permutation of the rows */
    float c2[K * D];
    dc_kmeans_init_centroids(c2, x, N, D, K, 3, 0);
    CHECK(memcmp(c, c2, sizeof c) == 0);
    dc_kmeans_init_centroids(c2, x, N, D, K, 3, 1);
    CHECK(memcmp(c, c2, sizeof c) != 0);
    /* n < k: with replacement, every centroid is a data row. */
    float c3[8 * D];
    dc_kmeans_init_centroids(c3, x, 3, D, 8, 3, 0);
    int ok = 1;
    for (int j = 0; j < 8; j++) ok &= c3[j * D] >= 0 && c3[j * D] <= 2;
    CHECK(ok);
}

static void test_split_semantics(void)
{
    enum { K = 4, D = 5 };
    float c[K * D];
    for (int i = 0; i < K * D; i++) c[i] = (float)i;
    int64_t counts[K] = {10, 0, 1, 0};
    dc_kmeans_split s[K];
    int ns = dc_kmeans_split_empty(c, counts, K, D, 1, 0, 0, s);
    /* Only cluster 0 has two members to share: it donates to 1, then 3. */
    CHECK_EQ_INT(ns, 2);
    CHECK(s[0].empty == 1 && s[0].donor == 0 && s[0].moved == 5);
    CHECK(s[1].empty == 3 && s[1].donor == 0 && s[1].moved == 2);
    CHECK(counts[0] == 3 && counts[1] == 5 && counts[2] == 1 && counts[3] == 2);
    /* Alternating ±1e-7 around the donor's centroid. */
    CHECK(c[1 * D + 0] == (float)(0.0 - 1e-7) && c[1 * D + 1] == (float)(1.0 + 1e-7));
    CHECK(fabsf(c[3 * D + 0] - c[0]) < 1e-6f);
    /* Apply: the donor's first 5 members go to 1, the next 2 to 3. */
    int32_t assign[12] = {0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* 11 members of cluster 0? counts said 10: use indices 0,2..10 (10). */
    assign[11] = 2;
    dc_kmeans_apply_splits(assign, 12, K, s, ns, NULL);
    int32_t want[12] = {1, 2, 1, 1, 1, 1, 3, 3, 0, 0, 0, 2};
    CHECK(memcmp(assign, want, sizeof want) == 0);
    /* With skip: a rank whose lower ranks hold 6 of cluster 0's members. */
    int32_t part[4] = {0, 0, 0, 0};
    int64_t skip[K] = {6, 0, 0, 0};
    dc_kmeans_apply_splits(part, 4, K, s, ns, skip);
    int32_t want2[4] = {3, 0, 0, 0};
    CHECK(memcmp(part, want2, sizeof want2) == 0);
    /* No empty clusters: nothing to do. */
    int64_t full[K] = {1, 1, 1, 1};
    CHECK_EQ_INT(dc_kmeans_split_empty(c, full, K, D, 1, 0, 0, s), 0);
}

/* The E-step: nearest centroid, the lower index on exact ties (the
 * vectorised argmin must agree with the plain loop). */
static void test_assign_ties(void)
{
    enum { K = 19, D = 3, N = 40 };
    float c[K * D], x[N * D];
    for (int j = 0; j < K; j++)
        for (int t = 0; t < D; t++) c[j * D + t] = (float)(j * 10 + t);
    for (int t = 0; t < D; t++) c[11 * D + t] = c[3 * D + t];  /* 3 and 11 equal */
    for (int t = 0; t < D; t++) c[17 * D + t] = c[16 * D + t]; /* in the tail */
    for (int i = 0; i < N; i++)
        for (int t = 0; t < D; t++) x[i * D + t] = c[(i % K) * D + t] + 0.25f;
    dc_kmeans_work w;
    CHECK(dc_kmeans_work_init(&w, K, D) == DC_OK);
    int32_t a[N];
    double sums[K * D];
    int64_t counts[K];
    double obj = dc_kmeans_assign(a, sums, counts, x, NULL, N, D, c, K, &w);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int want = i % K;
        if (want == 11) want = 3;
        if (want == 17) want = 16;
        ok &= a[i] == want;
    }
    CHECK(ok);
    CHECK_CLOSE(obj, N * D * 0.0625, 1e-3);
    CHECK(counts[11] == 0 && counts[3] == 4 && counts[16] == 4 && counts[0] == 3);
    CHECK_CLOSE(sums[3 * D], 4 * 30.25, 1e-9);
    dc_kmeans_work_free(&w);
}

static void test_corner_cases(void)
{
    dc_kmeans_params p = dc_kmeans_params_default();
    dc_kmeans_result r;
    /* Duplicates force empty clusters; they are split, none is left. */
    enum { N = 100, D = 4 };
    float x[N * D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) x[i * D + j] = i < 95 ? 1.0f : (float)(i * (j + 1));
    p.k = 10;
    p.niter = 5;
    CHECK(dc_kmeans_train(&r, x, N, D, &p, NULL) == DC_OK);
    CHECK(r.total_splits > 0);
    CHECK(consistent(&r) && no_empty(&r));
    dc_kmeans_result_free(&r);

    /* All points identical. */
    float same[40 * 3];
    for (int i = 0; i < 120; i++) same[i] = 2.5f;
    p.k = 5;
    CHECK(dc_kmeans_train(&r, same, 40, 3, &p, NULL) == DC_OK);
    CHECK(consistent(&r) && no_empty(&r));
    CHECK(r.passes[r.npasses - 1].obj < 1e-9);
    dc_kmeans_result_free(&r);

    /* n == k: one point per cluster, zero objective. */
    p.k = 20;
    float *b = blobs(20, 6, 3, 2);
    CHECK(dc_kmeans_train(&r, b, 20, 6, &p, NULL) == DC_OK);
    CHECK(consistent(&r) && no_empty(&r));
    CHECK(r.passes[r.npasses - 1].obj < 1e-3 * r.passes[0].obj + 1e-3);
    dc_kmeans_result_free(&r);

    /* n < k: runs, assignments valid; some clusters necessarily empty. */
    p.k = 30;
    CHECK(dc_kmeans_train(&r, b, 20, 6, &p, NULL) == DC_OK);
    CHECK(consistent(&r));
    dc_kmeans_result_free(&r);

    /* k == 1: everything in cluster 0, centroid = mean. */
    p.k = 1;
    CHECK(dc_kmeans_train(&r, b, 20, 6, &p, NULL) == DC_OK);
    double mean0 = 0;
    for (int i = 0; i < 20; i++) mean0 += b[i * 6];
    CHECK(r.counts[0] == 20);
    CHECK_CLOSE(r.centroids[0], mean0 / 20, 1e-5);
    dc_kmeans_result_free(&r);

    /* NaN / Inf rejected, naming the row. */
    b[3 * 6 + 2] = NAN;
    p.k = 3;
    CHECK(dc_kmeans_train(&r, b, 20, 6, &p, NULL) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "NaN or infinite value at row 3, column 2");
    b[3 * 6 + 2] = INFINITY;
    CHECK(dc_kmeans_train(&r, b, 20, 6, &p, NULL) == DC_STATUS_ARG);
    dc_free(b);
    p.k = 0;
    CHECK(dc_kmeans_train(&r, same, 40, 3, &p, NULL) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "k must be at least 1");
}

static void test_hierarchical(void)
{
    int64_t n = 4000;
    int d = 8, m = 4;
    float *x = blobs(n, d, 16, 3);
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = 40;
    p.niter = 10;
    p.seed = 11;
    dc_hkmeans_result h;
    CHECK(dc_hkmeans_train(&h, x, n, d, m, &p, NULL, NULL) == DC_OK);
    CHECK(h.m == 4 && h.k_sub == 10);
    int64_t total = 0, subtotal = 0;
    int ok = 1;
    for (int c = 0; c < m; c++) {
        total += h.super_counts[c];
        int64_t s = 0;
        for (int j = 0; j < h.k_sub; j++) s += h.sub_counts[c * h.k_sub + j];
        ok &= s == h.super_counts[c];
        subtotal += s;
    }
    CHECK(total == n && subtotal == n && ok);
    int64_t *rc = dc_xcalloc(40, sizeof *rc);
    int inrange = 1;
    for (int64_t i = 0; i < n; i++) {
        inrange &= h.super[i] >= 0 && h.super[i] < m && h.sub[i] >= 0 && h.sub[i] < h.k_sub;
        if (inrange) rc[h.super[i] * h.k_sub + h.sub[i]]++;
    }
    CHECK(inrange);
    CHECK(memcmp(rc, h.sub_counts, 40 * sizeof *rc) == 0);
    int nonempty = 1;
    for (int j = 0; j < 40; j++) nonempty &= rc[j] > 0;
    CHECK(nonempty);
    dc_free(rc);

    /* Warm restart from the final centroids, no update pass: same labels. */
    dc_hkmeans_result w;
    p.niter = 0;
    CHECK(dc_hkmeans_train(&w, x, n, d, m, &p, h.super_centroids, h.sub_centroids) == DC_OK);
    CHECK(memcmp(w.super, h.super, (size_t)n * 4) == 0);
    CHECK(memcmp(w.sub, h.sub, (size_t)n * 4) == 0);
    dc_hkmeans_result_free(&w);

    /* Special cases: m == 1 (DeepCluster) and k == m (one sub-cluster). */
    p.niter = 5;
    p.k = 12;
    CHECK(dc_hkmeans_train(&w, x, n, d, 1, &p, NULL, NULL) == DC_OK);
    int all0 = 1;
    for (int64_t i = 0; i < n; i++) all0 &= w.super[i] == 0;
    CHECK(all0 && w.super_counts[0] == n && w.k_sub == 12);
    dc_hkmeans_result_free(&w);
    p.k = 4;
    CHECK(dc_hkmeans_train(&w, x, n, d, 4, &p, NULL, NULL) == DC_OK);
    all0 = 1;
    for (int64_t i = 0; i < n; i++) all0 &= w.sub[i] == 0;
    CHECK(all0 && w.k_sub == 1);
    dc_hkmeans_result_free(&w);
    p.k = 10;
    CHECK(dc_hkmeans_train(&w, x, n, d, 4, &p, NULL, NULL) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "not a multiple of the 4 super-clusters");
    dc_hkmeans_result_free(&h);
    dc_free(x);
}

/* Fashion-MNIST test images as floats in [0, 1]; NULL if absent. */
static float *load_idx_images(const char *path, int64_t *n, int *d)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[16];
    if (gzread(f, h, 16) != 16) {
        gzclose(f);
        return NULL;
    }
    *n = (int64_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
    *d = (h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11]) * (h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15]);
    size_t sz = (size_t)*n * (size_t)*d;
    unsigned char *raw = dc_xmalloc(sz);
    int ok = gzread(f, raw, (unsigned)sz) == (int)sz;
    gzclose(f);
    float *x = ok ? dc_xmalloc(sz * sizeof(float)) : NULL;
    for (size_t i = 0; ok && i < sz; i++) x[i] = raw[i] / 255.0f;
    dc_free(raw);
    return x;
}

static int32_t *load_idx_labels(const char *path, int64_t n)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[8];
    unsigned char *raw = dc_xmalloc((size_t)n);
    int ok = gzread(f, h, 8) == 8 && gzread(f, raw, (unsigned)n) == (int)n;
    gzclose(f);
    int32_t *y = ok ? dc_xmalloc((size_t)n * sizeof *y) : NULL;
    for (int64_t i = 0; ok && i < n; i++) y[i] = raw[i];
    dc_free(raw);
    return y;
}

static void test_fashion_mnist(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char ip[256], lp[256], fp[512];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", dir);
    int64_t n;
    int d;
    float *x = load_idx_images(ip, &n, &d);
    if (!x) {
        printf("SKIP Fashion-MNIST k-means: %s not found (apt-get install dataset-fashion-mnist)\n", ip);
        return;
    }
    int32_t *y = load_idx_labels(lp, n);
    CHECK(y != NULL && n == 10000 && d == 784);
    const char *root = getenv("DC_TEST_ROOT");
    snprintf(fp, sizeof fp, "%s/tests/fixtures/cluster/fmnist_kmeans.json", root ? root : ".");
    cJSON *j;
    double want = 0;
    CHECK(dc_json_read(fp, &j) == DC_OK);
    if (j) {
        cJSON *sk = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sklearn"), "random");
        CHECK(dc_json_get_number(sk, "mean", fp, &want) == DC_OK);
        cJSON_Delete(j);
    }
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = 10;
    p.niter = 20;
    double sum = 0;
    enum { SEEDS = 5 };
    for (int s = 0; s < SEEDS && y; s++) {
        p.seed = (uint64_t)s;
        dc_kmeans_result r;
        CHECK(dc_kmeans_train(&r, x, n, d, &p, NULL) == DC_OK);
        double nmi = 0;
        CHECK(dc_nmi(&nmi, r.assign, y, n) == DC_OK);
        sum += nmi;
        dc_kmeans_result_free(&r);
    }
    double mean = sum / SEEDS;
    printf("Fashion-MNIST raw-pixel k-means (k=10, 5 seeds): NMI %.4f, scikit-learn %.4f\n", mean, want);
    CHECK_MSG(fabs(mean - want) <= 0.02, "NMI %.4f vs scikit-learn %.4f", mean, want);
    dc_free(x);
    dc_free(y);
}

/* ---- features larger than memory: row sources read from a file ---- */

static int same_kmeans(const dc_kmeans_result *a, const dc_kmeans_result *b)
{
    if (a->k != b->k || a->n != b->n || a->npasses != b->npasses) return 0;
    for (int p = 0; p < a->npasses; p++)
        if (a->passes[p].obj != b->passes[p].obj) return 0;
    return !memcmp(a->assign, b->assign, (size_t)a->n * 4) && !memcmp(a->counts, b->counts, (size_t)a->k * 8) &&
           !memcmp(a->centroids, b->centroids, (size_t)a->k * a->d * 4);
}

static int same_pca(const dc_pca *a, const dc_pca *b)
{
    return a->d_in == b->d_in && a->d_out == b->d_out && a->energy == b->energy &&
           !memcmp(a->mean, b->mean, (size_t)a->d_in * 4) && !memcmp(a->eigvals, b->eigvals, (size_t)a->d_out * 4) &&
           !memcmp(a->proj, b->proj, (size_t)a->d_out * a->d_in * 4);
}

/* Features streamed from a file through a small buffer give the in-memory
 * results bit for bit: flat k-means (an E-step block of 699 rows that does
 * not divide the buffer, and one larger than it), two-level k-means with
 * super-clusters over the budget (their members through a scratch file,
 * removed after) and with one super-cluster, the PCA (all rows, a sample,
 * the Gram path) and its application into a file; a NaN past the first
 * block, a truncated file and a file shortened under the reader are errors
 * that name the row or the file. */
static void test_out_of_core(void)
{
    int64_t n = 5000;
    int d = 24;
    float *x = blobs(n, d, 12, 7);
    char path[512];
    snprintf(path, sizeof path, "%s", test_path("ooc.npy"));
    CHECK(dc_npy_write(path, DC_DTYPE_F32, 2, (int64_t[]){n, d}, x) == DC_OK);
    dc_rows f;
    CHECK(dc_rows_open_npy(&f, path, 1000) == DC_OK);
    CHECK(dc_rows_streamed(&f) && f.n == n && f.d == d);
    int ks[2] = {3000, 16};
    for (int t = 0; t < 2; t++) {
        dc_kmeans_params p = dc_kmeans_params_default();
        p.k = ks[t];
        p.niter = 3;
        p.seed = 11;
        dc_kmeans_result a, b;
        CHECK(dc_kmeans_train(&a, x, n, d, &p, NULL) == DC_OK);
        CHECK(dc_kmeans_train_rows(&b, &f, &p, NULL) == DC_OK);
        CHECK_MSG(same_kmeans(&a, &b), "k = %d: the file's k-means differs from the in-memory one", ks[t]);
        dc_kmeans_result_free(&a);
        dc_kmeans_result_free(&b);
    }
    char dir[512], scratch[600];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    snprintf(scratch, sizeof scratch, "%s/level2.%ld.npy", dir, (long)getpid());
    int ms[2] = {4, 1};
    for (int t = 0; t < 2; t++) {
        dc_kmeans_params p = dc_kmeans_params_default();
        p.k = 32;
        p.niter = 4;
        p.seed = 5;
        dc_cluster_memory mem = {1000 * d * 4, dir}; /* 1,000 rows: each super-cluster is larger */
        dc_hkmeans_result a, b;
        CHECK(dc_hkmeans_train(&a, x, n, d, ms[t], &p, NULL, NULL) == DC_OK);
        CHECK(dc_hkmeans_train_rows(&b, &f, ms[t], &p, NULL, NULL, &mem) == DC_OK);
        int same = a.obj1 == b.obj1 && a.obj2 == b.obj2 && !memcmp(a.super, b.super, (size_t)n * 4) &&
                   !memcmp(a.sub, b.sub, (size_t)n * 4) && !memcmp(a.sub_centroids, b.sub_centroids, (size_t)32 * d * 4) &&
                   !memcmp(a.super_centroids, b.super_centroids, (size_t)ms[t] * d * 4) &&
                   !memcmp(a.sub_counts, b.sub_counts, 32 * 8);
        CHECK_MSG(same, "m = %d: the file's two-level k-means differs from the in-memory one", ms[t]);
        CHECK_MSG(access(scratch, F_OK) != 0, "the level-2 scratch file %s was left behind", scratch);
        dc_hkmeans_result_free(&a);
        dc_hkmeans_result_free(&b);
    }
    int64_t samples[2] = {0, 1234};
    for (int t = 0; t < 2; t++) {
        dc_pca a, b;
        CHECK(dc_pca_fit_sample(&a, x, n, d, 8, samples[t], 3) == DC_OK);
        CHECK(dc_pca_fit_rows(&b, &f, 8, samples[t], 3) == DC_OK);
        CHECK_MSG(same_pca(&a, &b), "PCA on %lld rows: the file's fit differs", (long long)samples[t]);
        if (t == 1) { /* applied a block at a time into a file */
            float *wa = dc_xmalloc((size_t)n * 8 * 4);
            dc_pca_apply(&a, wa, x, n, 1);
            const char *wp = test_path("ooc-white.npy");
            dc_npy_writer w;
            CHECK(dc_npy_writer_open(&w, wp, DC_DTYPE_F32, 2, (int64_t[]){n, 8}) == DC_OK);
            CHECK(dc_pca_apply_rows(&b, &f, NULL, &w, 1) == DC_OK);
            CHECK(dc_npy_writer_commit(&w) == DC_OK);
            dc_array wb;
            CHECK(dc_npy_read(wp, &wb) == DC_OK);
            CHECK_MSG(wb.nbytes == (size_t)n * 8 * 4 && !memcmp(wa, wb.data, wb.nbytes),
                      "whitened a block at a time differs from at once");
            dc_array_free(&wb);
            remove(wp);
            /* in place: the features' buffer holds the whitened rows */
            float *xi = dc_xmalloc((size_t)n * d * 4);
            memcpy(xi, x, (size_t)n * d * 4);
            CHECK(dc_pca_apply_inplace(&a, xi, n, 1) == DC_OK);
            CHECK_MSG(!memcmp(wa, xi, (size_t)n * 8 * 4), "whitened in place differs from into a buffer");
            dc_free(xi);
            dc_free(wa);
        }
        dc_pca_free(&a);
        dc_pca_free(&b);
    }
    dc_rows_close(&f);
    /* the Gram path: fewer rows than columns, a wide input */
    {
        int64_t gn = 40;
        int gd = 4100;
        float *g = test_blobs(gn, gd, 3, 9, 2.0);
        const char *gp = test_path("ooc-gram.npy");
        CHECK(dc_npy_write(gp, DC_DTYPE_F32, 2, (int64_t[]){gn, gd}, g) == DC_OK);
        dc_rows gf;
        CHECK(dc_rows_open_npy(&gf, gp, 7) == DC_OK);
        dc_pca a, b;
        CHECK(dc_pca_fit_sample(&a, g, gn, gd, 6, 0, 1) == DC_OK);
        CHECK(dc_pca_fit_rows(&b, &gf, 6, 0, 1) == DC_OK);
        CHECK_MSG(same_pca(&a, &b), "Gram-path PCA: the file's fit differs");
        dc_pca_free(&a);
        dc_pca_free(&b);
        dc_rows_close(&gf);
        remove(gp);
        dc_free(g);
    }
    /* errors */
    x[(int64_t)4321 * d + 5] = NAN;
    CHECK(dc_npy_write(path, DC_DTYPE_F32, 2, (int64_t[]){n, d}, x) == DC_OK);
    CHECK(dc_rows_open_npy(&f, path, 1000) == DC_OK);
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = 4;
    dc_kmeans_result r;
    CHECK(dc_kmeans_train_rows(&r, &f, &p, NULL) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "NaN or infinite value at row 4321, column 5");
    CHECK(truncate(path, (off_t)f.off + (off_t)n * d * 4 - 4) == 0); /* shortened under the open reader */
    const float *rows;
    CHECK(dc_rows_read(&f, n - 10, 10, &rows) == DC_STATUS_IO);
    CHECK_STR_CONTAINS(dc_last_error(), "shorter than its header says");
    CHECK_STR_CONTAINS(dc_last_error(), path);
    dc_rows_close(&f);
    CHECK(dc_rows_open_npy(&f, path, 1000) == DC_STATUS_FORMAT);
    CHECK_STR_CONTAINS(dc_last_error(), "truncated");
    remove(path);
    dc_free(x);
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    test_objective_and_determinism();
    test_init();
    test_split_semantics();
    test_assign_ties();
    test_corner_cases();
    test_hierarchical();
    test_out_of_core();
    test_fashion_mnist();
    return TEST_SUMMARY();
}
