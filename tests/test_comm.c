/* test_comm.c — the communication module and distributed k-means. Run
 * alone (single-process backend) by tests/run.sh, and under mpirun with 2
 * and 4 ranks by tests/test_mpi.sh: collectives give the expected sums and
 * concatenations, and k-means over the ranks' slices equals single-process
 * k-means on the whole data (assignments identical, centroids within 1e-5),
 * empty-cluster splits across ranks included. Every rank checks; rank 0
 * prints the totals. DC_TEST_ABORT=1 makes rank 1 fail on purpose. */
#include "dc/cluster.h"
#include "dc/comm.h"
#include "dc/nn.h"
#include "dc/train.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *blobs(int64_t n, int d, int c, uint64_t seed) { return test_blobs(n, d, c, seed, 3.0); }

/* Distributed vs single-process k-means on the same data. */
static void compare_kmeans(const dc_comm *c, const float *x, int64_t n, int d, int k, int niter)
{
    int W = dc_comm_size(c), me = dc_comm_rank(c);
    int64_t lo = n * me / W, hi = n * (me + 1) / W;
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = k;
    p.niter = niter;
    p.seed = 3;
    dc_kmeans_result dist, single;
    CHECK(dc_kmeans_train_dist(&dist, c, x + lo * d, hi - lo, lo, n, d, &p, NULL) == DC_OK);
    CHECK(dc_kmeans_train(&single, x, n, d, &p, NULL) == DC_OK);
    int32_t *all = dc_xmalloc((size_t)n * sizeof *all);
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    for (int r = 0; r < W; r++) cnt[r] = (size_t)(n * (r + 1) / W - n * r / W) * sizeof(int32_t);
    CHECK(dc_comm_allgatherv(c, dist.assign, (size_t)(hi - lo) * sizeof(int32_t), all, cnt) == DC_OK);
    CHECK_MSG(memcmp(all, single.assign, (size_t)n * sizeof *all) == 0, "k=%d: assignments differ", k);
    double e = 0, m = 1e-12;
    for (int64_t i = 0; i < (int64_t)k * d; i++) {
        if (fabs(dist.centroids[i] - single.centroids[i]) > e) e = fabs(dist.centroids[i] - single.centroids[i]);
        if (fabs(single.centroids[i]) > m) m = fabs(single.centroids[i]);
    }
    CHECK_MSG(e / m < 1e-5, "k=%d: centroids differ by %g", k, e / m);
    CHECK(memcmp(dist.counts, single.counts, (size_t)k * sizeof(int64_t)) == 0);
    CHECK_EQ_INT(dist.total_splits, single.total_splits);
    CHECK_CLOSE(dist.passes[niter].obj, single.passes[niter].obj, 1e-6 * single.passes[niter].obj + 1e-9);
    if (W == 1) CHECK(memcmp(dist.centroids, single.centroids, (size_t)k * d * sizeof(float)) == 0);
    dc_free(all);
    dc_free(cnt);
    dc_kmeans_result_free(&dist);
    dc_kmeans_result_free(&single);
}

/* Two-level k-means across the ranks, each holding only its own rows
 * (members moved by the all-to-all in rounds of `chunk` bytes), = on one
 * process (m > 1 and the flat DeepCluster case m = 1). */
static void compare_hkmeans(const dc_comm *c, const float *x, int64_t n, int d, int m, int k, int64_t chunk)
{
    int W = dc_comm_size(c), me = dc_comm_rank(c);
    int64_t lo = n * me / W, hi = n * (me + 1) / W;
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = k;
    p.niter = 6;
    p.seed = 9;
    dc_hkmeans_result a, b;
    CHECK(dc_hkmeans_train(&a, x, n, d, m, &p, NULL, NULL) == DC_OK);
    /* only this rank's rows, in a buffer of their own */
    float *mine = dc_xmalloc((size_t)(hi - lo + 1) * d * sizeof *mine);
    memcpy(mine, x + lo * d, (size_t)(hi - lo) * d * sizeof *mine);
    CHECK(dc_hkmeans_train_dist(&b, c, mine, n, lo, hi, d, m, &p, NULL, NULL, chunk) == DC_OK);
    dc_free(mine);
    CHECK_MSG(memcmp(a.super, b.super, (size_t)n * sizeof(int32_t)) == 0, "m=%d k=%d: super-clusters differ", m, k);
    CHECK_MSG(memcmp(a.sub, b.sub, (size_t)n * sizeof(int32_t)) == 0, "m=%d k=%d: sub-clusters differ", m, k);
    CHECK(memcmp(a.sub_counts, b.sub_counts, (size_t)k * sizeof(int64_t)) == 0);
    CHECK(memcmp(a.super_counts, b.super_counts, (size_t)m * sizeof(int64_t)) == 0);
    double e = 0;
    for (int64_t i = 0; i < (int64_t)k * d; i++) e = fmax(e, fabs(a.sub_centroids[i] - b.sub_centroids[i]));
    CHECK_MSG(e < 1e-5, "m=%d k=%d: sub-centroids differ by %g", m, k, e);
    if (m == 1 || k == m) /* means in index order: the same bits */
        CHECK(memcmp(a.super_centroids, b.super_centroids, (size_t)m * d * sizeof(float)) == 0 &&
              (k != m || memcmp(a.sub_centroids, b.sub_centroids, (size_t)k * d * sizeof(float)) == 0));
    CHECK_CLOSE(a.obj2, b.obj2, 1e-6 * a.obj2 + 1e-9);
    dc_hkmeans_result_free(&a);
    dc_hkmeans_result_free(&b);
}

/* A small VGG (conv-BN-ReLU, pools, dropout) and the two-level step over a
 * global batch of 12 split across the ranks, against one process taking the
 * whole batch: batch-norm statistics synchronised forward (outputs and
 * running statistics) and backward, dropout masks keyed by global sample
 * index, losses and every gradient. */
static void compare_step(const dc_comm *c)
{
    static const dc_preset spec = {"test", 12, "4 M 6", 10, 0.5f, 12};
    int W = dc_comm_size(c), me = dc_comm_rank(c);
    enum { N = 12, S = 4, K = 3 };
    int lo = N * me / W, hi = N * (me + 1) / W;
    dc_model full, part;
    CHECK(dc_model_init_spec(&full, &spec, 0, 1, N, 5) == DC_OK);
    CHECK(dc_model_init_spec(&part, &spec, 0, 1, N, 5) == DC_OK);
    int D = full.feat_dim;
    dc_head fs, ps, fsub[S], psub[S];
    dc_head_init(&fs, D, S, 5, 1, 0);
    dc_head_init(&ps, D, S, 5, 1, 0);
    for (int q = 0; q < S; q++) {
        dc_head_init(&fsub[q], D, K, 5, 1, 1u + (uint32_t)q);
        dc_head_init(&psub[q], D, K, 5, 1, 1u + (uint32_t)q);
    }
    dc_stepper fst, pst;
    CHECK(dc_stepper_init(&fst, &full, S, K, N) == DC_OK);
    CHECK(dc_stepper_init(&pst, &part, S, K, N) == DC_OK);
    dc_step_use_comm(&pst, &part, c, lo);
    float *x = test_blobs(N, 144, 3, 11, 3.0);
    int32_t sup[N], sub[N];
    for (int i = 0; i < N; i++) {
        sup[i] = (i * 7) % S;
        sub[i] = (i * 5) % K;
    }
    double worst_loss = 0, worst_g = 0, worst_out = 0, worst_rv = 0;
    for (int step = 0; step < 3; step++) {
        dc_step_stats a, b;
        dc_step_compute(&fst, &full, &fs, fsub, x, sup, sub, N, &a);
        dc_step_compute(&pst, &part, &ps, psub, x + (size_t)lo * 144, sup + lo, sub + lo, hi - lo, &b);
        CHECK(pst.comm_status == DC_OK);
        CHECK_EQ_INT(b.n, N);
        CHECK_EQ_INT(b.correct_super, a.correct_super);
        worst_loss = fmax(worst_loss, fabs(a.loss - b.loss) / a.loss);
        const float *fo = dc_model_layer_output(&full, full.nlayers - 1), *po = dc_model_layer_output(&part, part.nlayers - 1);
        for (int i = 0; i < (hi - lo) * D; i++) worst_out = fmax(worst_out, fabs(fo[(size_t)lo * D + i] - po[i]));
        for (int64_t i = 0; i < full.nparams; i++) worst_g = fmax(worst_g, fabs(full.grads[i] - part.grads[i]));
        for (int q = 0; q < S; q++)
            for (int i = 0; i < K * D; i++) worst_g = fmax(worst_g, fabs(fsub[q].dw[i] - psub[q].dw[i]));
        for (int i = 0; i < S * D; i++) worst_g = fmax(worst_g, fabs(fs.dw[i] - ps.dw[i]));
        for (int64_t i = 0; i < full.nstats; i++) worst_rv = fmax(worst_rv, fabs(full.stats[i] - part.stats[i]));
        dc_step_sgd(&fst, &full, &fs, fsub, 0.05f, 1e-4f);
        dc_step_sgd(&pst, &part, &ps, psub, 0.05f, 1e-4f);
    }
    /* the gradient sums started inside the backward (the body's bucket) */
    CHECK_MSG(W == 1 || pst.early >= 3, "%lld buckets started during 3 backward passes", (long long)pst.early);
    CHECK(worst_loss < 1e-5);
    CHECK(worst_out < 1e-4);
    CHECK(worst_g < 1e-5);
    CHECK(worst_rv < 1e-5);
    if (worst_loss >= 1e-5 || worst_out >= 1e-4 || worst_g >= 1e-5 || worst_rv >= 1e-5)
        fprintf(stderr, "rank %d: step differs: loss %g, output %g, gradient %g, running stats %g\n", me, worst_loss,
                worst_out, worst_g, worst_rv);
    dc_free(x);
    dc_stepper_free(&fst);
    dc_stepper_free(&pst);
    dc_head_free(&fs);
    dc_head_free(&ps);
    for (int q = 0; q < S; q++) {
        dc_head_free(&fsub[q]);
        dc_head_free(&psub[q]);
    }
    dc_model_free(&full);
    dc_model_free(&part);
}

int main(int argc, char **argv)
{
    dc_log_set_level(DC_LOG_WARN);
    dc_comm *c;
    if (dc_comm_init(&argc, &argv, &c) != DC_OK) {
        fprintf(stderr, "%s\n", dc_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    int W = dc_comm_size(c), me = dc_comm_rank(c);
    if (me == 0) printf("backend %s, %d rank%s\n", dc_comm_backend(c), W, W > 1 ? "s" : "");
    if (getenv("DC_TEST_ABORT") && me == (W > 1 ? 1 : 0)) dc_comm_abort(c, "injected failure");

    /* collectives */
    double v = me + 1;
    float f[3] = {1, 2, (float)me};
    int64_t iv = (int64_t)1 << 40;
    CHECK(dc_comm_allreduce_f64(c, &v, 1) == DC_OK && v == W * (W + 1) / 2.0);
    CHECK(dc_comm_allreduce_f32(c, f, 3) == DC_OK && f[0] == W && f[1] == 2 * W && f[2] == W * (W - 1) / 2.0f);
    CHECK(dc_comm_allreduce_i64(c, &iv, 1) == DC_OK && iv == ((int64_t)W << 40));
    int32_t mine[2] = {me, me * 10}, *got = dc_xmalloc((size_t)2 * W * sizeof *got);
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    for (int r = 0; r < W; r++) cnt[r] = 2 * sizeof(int32_t);
    CHECK(dc_comm_allgatherv(c, mine, sizeof mine, got, cnt) == DC_OK);
    int ok = 1;
    for (int r = 0; r < W; r++) ok &= got[2 * r] == r && got[2 * r + 1] == 10 * r;
    CHECK(ok);
    int64_t token = me == 0 ? 4242 : 0;
    CHECK(dc_comm_bcast(c, &token, sizeof token, 0) == DC_OK && token == 4242);
    dc_comm *half;
    CHECK(dc_comm_split(c, me % 2, me, &half) == DC_OK);
    int expect = W / 2 + (W % 2 && me % 2 == 0);
    CHECK(dc_comm_size(half) == expect && dc_comm_rank(half) == me / 2);
    double hv = 1;
    CHECK(dc_comm_allreduce_f64(half, &hv, 1) == DC_OK && hv == expect);
    dc_comm_free(half);
    CHECK(dc_comm_barrier(c) == DC_OK);
    dc_free(got);
    dc_free(cnt);

    /* distributed k-means = single-process k-means */
    int64_t n = 3001;
    float *x = blobs(n, 12, 9, 7);
    compare_kmeans(c, x, n, 12, 20, 8);
    compare_kmeans(c, x, n, 12, 1, 3);
    dc_free(x);
    /* many duplicates: empty clusters split across ranks */
    enum { N2 = 203, D2 = 4 };
    float dup[N2 * D2];
    for (int i = 0; i < N2; i++)
        for (int j = 0; j < D2; j++) dup[i * D2 + j] = i % 7 ? 1.0f : (float)(i * (j + 2));
    compare_kmeans(c, dup, N2, D2, 25, 5);
    float *hx = blobs(1500, 8, 12, 4);
    compare_hkmeans(c, hx, 1500, 8, 2, 12, 0); /* W = 4: clustering groups of 2 ranks */
    compare_hkmeans(c, hx, 1500, 8, 3, 12, 0);  /* W = 4: groups of 2, 1 and 1 */
    compare_hkmeans(c, hx, 1500, 8, 5, 20, 0);  /* W < 5: super-clusters dealt to the ranks */
    compare_hkmeans(c, hx, 1500, 8, 1, 10, 0);
    compare_hkmeans(c, hx, 1500, 8, 3, 12, 1000); /* the all-to-all in rounds of 1,000 bytes */
    compare_hkmeans(c, hx, 1500, 8, 5, 20, 1000);
    compare_hkmeans(c, hx, 1500, 8, 3, 3, 0);   /* one sub-cluster each: means */
    dc_free(hx);
    /* a super-cluster of 3 points, which some ranks hold none of and which
     * is smaller than its clustering group at W = 4 (m = 2: groups of 2) */
    {
        enum { NS = 403, DS = 4 };
        float *sk = blobs(NS, DS, 3, 5);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < DS; j++) sk[(int64_t)(NS / 2 + i) * DS + j] = 1000.0f + (float)(i * j);
        compare_hkmeans(c, sk, NS, DS, 2, 8, 0);
        compare_hkmeans(c, sk, NS, DS, 2, 8, 64);
        dc_free(sk);
    }

    /* the training step over a global batch split across the ranks */
    compare_step(c);

    /* totals over the ranks; rank 0 reports */
    int64_t tot[2] = {test_passed, test_failed};
    dc_comm_allreduce_i64(c, tot, 2);
    int failed = tot[1] > 0;
    if (me == 0) printf("%lld passed, %lld failed\n", (long long)tot[0], (long long)tot[1]);
    dc_comm_finalize(c);
    return failed;
}
