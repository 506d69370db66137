/* test_gpu_kmeans.c — k-means's E-step on the GPU against the CPU's (make
 * check-gpu): on well-separated blobs the same assignments at every pass
 * and so the same centroids bit for bit (the sums are added in the CPU's
 * order); on random data the objective within 1e-5 relative; the GPU's
 * bits a function of the inputs; points streamed through the device a
 * chunk at a time, or read from a file, give the resident result bit for
 * bit; empty clusters split as on the CPU; two-level k-means and
 * `kmeans --device cuda` end to end; a GPU that is not there refused by
 * name. Prints SKIP and passes when no GPU is visible. */
#include "dc/cluster.h"
#include "dc/io.h"
#include "dc/nn.h"
#include "gpu/gpu_kmeans.h"
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static dc_kmeans_params params(int k, int niter, int gpu)
{
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = k;
    p.niter = niter;
    p.seed = 5;
    p.gpu = gpu;
    return p;
}

static int64_t differing(const int32_t *a, const int32_t *b, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += a[i] != b[i];
    return c;
}

static int same_result(const dc_kmeans_result *a, const dc_kmeans_result *b)
{
    if (a->n != b->n || a->k != b->k || a->d != b->d) return 0;
    if (memcmp(a->assign, b->assign, (size_t)a->n * sizeof *a->assign)) return 0;
    if (memcmp(a->centroids, b->centroids, (size_t)a->k * a->d * sizeof *a->centroids)) return 0;
    if (memcmp(a->counts, b->counts, (size_t)a->k * sizeof *a->counts)) return 0;
    for (int i = 0; i < a->npasses; i++)
        if (a->passes[i].obj != b->passes[i].obj) return 0;
    return 1;
}

/* k blobs far apart (spread 8 in d = 24 against unit noise), point i in
 * blob i mod k, and their centres (to start k-means from, one centroid per
 * blob: no point lies near a boundary, so no near-tie). */
static float *separated(int64_t n, int d, int k, float **centres)
{
    dc_rng r;
    dc_rng_init(&r, 3, DC_RNG_STREAM_TEST, 7, 0);
    float *c = dc_xmalloc((size_t)k * d * sizeof *c), *x = dc_xmalloc((size_t)n * d * sizeof *x);
    for (int64_t i = 0; i < (int64_t)k * d; i++) c[i] = (float)(dc_rng_normal(&r) * 8.0);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[i * d + j] = c[(i % k) * d + j] + (float)dc_rng_normal(&r);
    *centres = c;
    return x;
}

/* Blobs: the CPU's assignments at every pass, hence its centroids' bits. */
static void test_blobs_match(void)
{
    int64_t n = 20000;
    int d = 24, k = 32;
    float *init;
    float *x = separated(n, d, k, &init);
    dc_kmeans_params pc = params(k, 8, -1), pg = params(k, 8, 0);
    dc_kmeans_result rc, rg;
    CHECK(dc_kmeans_train(&rc, x, n, d, &pc, init) == DC_OK);
    dc_status s = dc_kmeans_train(&rg, x, n, d, &pg, init);
    CHECK_MSG(s == DC_OK, "%s", dc_last_error());
    if (s == DC_OK) {
        CHECK_EQ_INT(differing(rc.assign, rg.assign, n), 0);
        CHECK(memcmp(rc.centroids, rg.centroids, (size_t)k * d * sizeof(float)) == 0);
        CHECK(memcmp(rc.counts, rg.counts, (size_t)k * sizeof(int64_t)) == 0);
        for (int i = 0; i < rc.npasses; i++)
            CHECK_MSG(fabs(rc.passes[i].obj - rg.passes[i].obj) <= 1e-6 * rc.passes[i].obj, "pass %d: %.9g vs %.9g",
                      i, rc.passes[i].obj, rg.passes[i].obj);
        dc_kmeans_result_free(&rg);
    }
    dc_kmeans_result_free(&rc);
    dc_free(init);
    dc_free(x);
}

/* Random data (near-ties everywhere): the objective within 1e-5; run twice,
 * the same bits; a chunk at a time through the device, the same bits (the
 * chunks hold whole product blocks — 8,192 rows for this k — so the GEMMs
 * have the resident run's shapes over the same rows). */
static void test_random(void)
{
    int64_t n = 30011;
    int d = 32, k = 257;
    float *x = dc_xmalloc((size_t)n * d * sizeof *x);
    dc_rng r;
    dc_rng_init(&r, 9, DC_RNG_STREAM_TEST, 1, 0);
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)dc_rng_normal(&r);
    dc_kmeans_params pc = params(k, 10, -1), pg = params(k, 10, 0);
    dc_kmeans_result rc, g1, g2, g3;
    CHECK(dc_kmeans_train(&rc, x, n, d, &pc, NULL) == DC_OK);
    CHECK(dc_kmeans_train(&g1, x, n, d, &pg, NULL) == DC_OK);
    CHECK(dc_kmeans_train(&g2, x, n, d, &pg, NULL) == DC_OK);
    pg.device_rows = 16384 + 100; /* rounded down to two blocks: chunks of 16,384 and 13,627 */
    CHECK(dc_kmeans_train(&g3, x, n, d, &pg, NULL) == DC_OK);
    double oc = rc.passes[rc.npasses - 1].obj, og = g1.passes[g1.npasses - 1].obj;
    CHECK_MSG(fabs(oc - og) <= 1e-5 * oc, "objective CPU %.9g GPU %.9g", oc, og);
    printf("random %lld x %d, k = %d: objective CPU %.9g, GPU %.9g (%.2e relative), %lld of %lld assignments differ\n",
           (long long)n, d, k, oc, og, fabs(oc - og) / oc, (long long)differing(rc.assign, g1.assign, n),
           (long long)n);
    CHECK(same_result(&g1, &g2));
    CHECK(same_result(&g1, &g3));
    /* what the device holds: all the points, or two blocks of 8,192 when capped */
    dc_rows mem;
    dc_rows_memory(&mem, x, n, d);
    dc_gpu_kmeans *gk = NULL;
    CHECK(dc_gpu_kmeans_create(&gk, 0, &mem, k, 0) == DC_OK);
    if (gk) CHECK_EQ_INT(dc_gpu_kmeans_resident(gk), n);
    dc_gpu_kmeans_free(gk);
    gk = NULL;
    CHECK(dc_gpu_kmeans_create(&gk, 0, &mem, k, 16384 + 100) == DC_OK);
    if (gk) CHECK_EQ_INT(dc_gpu_kmeans_resident(gk), 16384);
    dc_gpu_kmeans_free(gk);
    /* from a file read 1,000 rows at a time: the same bits */
    const char *path = test_path("gpu-kmeans.npy");
    int64_t shape[2] = {n, d};
    CHECK(dc_npy_write(path, DC_DTYPE_F32, 2, shape, x) == DC_OK);
    dc_rows src;
    CHECK(dc_rows_open_npy(&src, path, 1000) == DC_OK);
    dc_kmeans_result g4;
    pg.device_rows = 0;
    CHECK(dc_kmeans_train_rows(&g4, &src, &pg, NULL) == DC_OK);
    CHECK(same_result(&g1, &g4));
    dc_kmeans_result_free(&g4);
    dc_rows_close(&src);
    remove(path);
    dc_kmeans_result_free(&rc);
    dc_kmeans_result_free(&g1);
    dc_kmeans_result_free(&g2);
    dc_kmeans_result_free(&g3);
    dc_free(x);
}

/* More clusters than distinct points: empty clusters are split, every
 * point counted; the same as the CPU (exact ties go to the lower index). */
static void test_empty(void)
{
    int64_t n = 400;
    int d = 8, k = 64;
    float *base = test_blobs(40, d, 5, 4, 6.0);
    float *x = dc_xmalloc((size_t)n * d * sizeof *x);
    for (int64_t i = 0; i < n; i++) memcpy(x + i * d, base + (i % 40) * d, (size_t)d * sizeof *x);
    dc_kmeans_params pc = params(k, 5, -1), pg = params(k, 5, 0);
    dc_kmeans_result rc, rg;
    CHECK(dc_kmeans_train(&rc, x, n, d, &pc, NULL) == DC_OK);
    CHECK(dc_kmeans_train(&rg, x, n, d, &pg, NULL) == DC_OK);
    int64_t total = 0;
    for (int j = 0; j < k; j++) total += rg.counts[j];
    CHECK_EQ_INT(total, n);
    CHECK(rg.total_splits > 0);
    /* exact ties between copies of one centroid: both take the lower index
     * when the products of equal rows are equal, which cuBLAS does not promise */
    double oc = rc.passes[rc.npasses - 1].obj, og = rg.passes[rg.npasses - 1].obj;
    CHECK_MSG(fabs(oc - og) <= 1e-4 * (oc + 1e-6), "objective CPU %.9g GPU %.9g", oc, og);
    printf("duplicates: %d and %d splits, %lld of %lld assignments differ\n", rc.total_splits, rg.total_splits,
           (long long)differing(rc.assign, rg.assign, n), (long long)n);
    dc_kmeans_result_free(&rc);
    dc_kmeans_result_free(&rg);
    dc_free(base);
    dc_free(x);
}

/* Two levels (SPEC §4.3) from random members (a super-cluster may split a
 * blob, so near-ties are possible): the objectives within 1e-5, all but a
 * few assignments the CPU's. */
static void test_two_level(void)
{
    int64_t n = 12000;
    int d = 16, m = 4, k = 32;
    float *x = test_blobs(n, d, k, 6, 10.0);
    dc_kmeans_params pc = params(k, 6, -1), pg = params(k, 6, 0);
    dc_hkmeans_result hc, hg;
    CHECK(dc_hkmeans_train(&hc, x, n, d, m, &pc, NULL, NULL) == DC_OK);
    CHECK(dc_hkmeans_train(&hg, x, n, d, m, &pg, NULL, NULL) == DC_OK);
    CHECK_MSG(fabs(hc.obj1 - hg.obj1) <= 1e-5 * hc.obj1, "level 1: %.9g vs %.9g", hc.obj1, hg.obj1);
    CHECK_MSG(fabs(hc.obj2 - hg.obj2) <= 1e-5 * hc.obj2, "level 2: %.9g vs %.9g", hc.obj2, hg.obj2);
    int64_t diff = 0;
    for (int64_t i = 0; i < n; i++) diff += hc.super[i] != hg.super[i] || hc.sub[i] != hg.sub[i];
    CHECK_MSG(diff <= n / 1000, "%lld of %lld points in other clusters", (long long)diff, (long long)n);
    dc_hkmeans_result_free(&hc);
    dc_hkmeans_result_free(&hg);
    dc_free(x);
}

static void test_errors(void)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    dc_kmeans_params p = params(2, 2, 99);
    dc_kmeans_result r;
    CHECK(dc_kmeans_train(&r, x, 4, 2, &p, NULL) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "cuda:99");
}

/* The command: --device cuda gives the CPU's assignments on blobs. */
static void test_cli(void)
{
    const char *bin = getenv("DC_TEST_BIN");
    if (!bin) {
        printf("test_cli: DC_TEST_BIN unset, skipped\n");
        return;
    }
    int64_t n = 5000;
    int d = 12, k = 16;
    float *x = test_blobs(n, d, k, 8, 8.0);
    int64_t shape[2] = {n, d};
    char in[512], a1[512], a2[512], cmd[4096];
    snprintf(in, sizeof in, "%s", test_path("cli-x.npy"));
    snprintf(a1, sizeof a1, "%s", test_path("cli-cpu.npy"));
    snprintf(a2, sizeof a2, "%s", test_path("cli-gpu.npy"));
    CHECK(dc_npy_write(in, DC_DTYPE_F32, 2, shape, x) == DC_OK);
    snprintf(cmd, sizeof cmd,
             "%s kmeans --in %s --k %d --out %s --device cpu 2>/dev/null && %s kmeans --in %s --k %d --out %s "
             "--device cuda 2>/dev/null",
             bin, in, k, a1, bin, in, k, a2);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    dc_array p1, p2;
    if (dc_npy_map(a1, &p1) == DC_OK) {
        if (dc_npy_map(a2, &p2) == DC_OK) {
            CHECK_EQ_INT(p2.shape[0], n);
            if (p2.shape[0] == n) {
                int64_t diff = differing(p1.data, p2.data, n);
                CHECK_MSG(diff <= n / 1000, "kmeans --device cuda: %lld of %lld assignments differ from the CPU's",
                          (long long)diff, (long long)n);
            }
            dc_array_free(&p2);
        } else {
            CHECK_MSG(0, "%s", dc_last_error());
        }
        dc_array_free(&p1);
    } else {
        CHECK_MSG(0, "%s", dc_last_error());
    }
    remove(in);
    remove(a1);
    remove(a2);
    dc_free(x);
}

int main(void)
{
    if (dc_device_gpu_count() == 0) {
        printf("SKIP: no CUDA GPU visible (or a build without CUDA): the GPU k-means tests did not run\n");
        return TEST_SUMMARY();
    }
    dc_log_set_level(DC_LOG_WARN);
    test_blobs_match();
    test_random();
    test_empty();
    test_two_level();
    test_errors();
    test_cli();
    return TEST_SUMMARY();
}
