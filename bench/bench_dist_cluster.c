/* bench_dist_cluster.c — the sharded clustering's peak resident memory per
 * process (issue 25): run under mpirun -np W, each process makes only its
 * own rows of N synthetic D-dimensional features (64 Gaussian blobs, each
 * row seeded by its index: the same matrix at any W), then the training
 * loop's clustering on them — PCA fitted on the sampled rows gathered a
 * block at a time, whitening to DIM in place, two-level k-means across the
 * processes with level 2's all-to-all. Rank 0 prints W, seconds, the
 * largest peak resident set over the processes, what they held before the
 * features (libraries), and the peak over N·D·4/W (the target:
 * ≤ 1.3, plus k·D·8). bench/dist_memory.sh runs it at W = 1, 2, 4.
 * Usage: bench_dist_cluster [N [D [DIM [K [M]]]]] (2000000 256 128 256 4) */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"
#include "dc/comm.h"
#include "dc/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int64_t peak_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (int64_t)u.ru_maxrss;
}

int main(int argc, char **argv)
{
    dc_comm *c;
    if (dc_comm_init(&argc, &argv, &c) != DC_OK) {
        fprintf(stderr, "%s\n", dc_last_error());
        return 1;
    }
    dc_log_set_level(DC_LOG_WARN);
    int64_t n = argc > 1 ? atoll(argv[1]) : 2000000;
    int d = argc > 2 ? atoi(argv[2]) : 256, dim = argc > 3 ? atoi(argv[3]) : 128;
    int k = argc > 4 ? atoi(argv[4]) : 256, m = argc > 5 ? atoi(argv[5]) : 4;
    int W = dc_comm_size(c), me = dc_comm_rank(c);
    int64_t lo = n * me / W, hi = n * (me + 1) / W;
    int64_t base = peak_kb();
    double t0 = dc_time_now();
    float *x = dc_xmalloc((size_t)(hi - lo) * d * sizeof(float));
    float *centres = dc_xmalloc((size_t)64 * d * sizeof(float));
    dc_rng g;
    dc_rng_init(&g, 1, DC_RNG_STREAM_TEST, 0, 0);
    for (int i = 0; i < 64 * d; i++) centres[i] = (float)(2 * dc_rng_normal(&g));
    for (int64_t i = lo; i < hi; i++) {
        dc_rng_init(&g, 2, DC_RNG_STREAM_TEST, (uint32_t)i, (uint32_t)(i >> 32));
        const float *ce = centres + (size_t)(dc_rng_below(&g, 64)) * d;
        for (int j = 0; j < d; j++) x[(i - lo) * d + j] = ce[j] + (float)dc_rng_normal(&g);
    }
    dc_free(centres);
    double t1 = dc_time_now();
    dc_rows local;
    dc_rows_memory(&local, x, hi - lo, d);
    dc_shard sh = {c, &local, n, d};
    dc_rows src;
    dc_pca pca = {0};
    dc_status s = dc_rows_shard(&src, &sh, 4096);
    if (s == DC_OK) s = dc_pca_fit_rows(&pca, &src, dim, (int64_t)d * (d - 1) / 2, 7);
    dc_rows_close(&src);
    if (s == DC_OK) s = dc_pca_apply_inplace(&pca, x, hi - lo, 1);
    dc_pca_free(&pca);
    if (s == DC_OK) x = dc_xrealloc(x, (size_t)(hi - lo > 0 ? hi - lo : 1) * dim * sizeof(float));
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = k;
    p.niter = 5;
    p.seed = 3;
    dc_hkmeans_result h;
    if (s == DC_OK) s = dc_hkmeans_train_dist(&h, c, x, n, lo, hi, dim, m, &p, NULL, NULL, 0);
    double t2 = dc_time_now();
    if (s != DC_OK) {
        fprintf(stderr, "rank %d: %s\n", me, dc_last_error());
        dc_comm_abort(c, "failed");
    }
    int64_t mine[2] = {peak_kb(), base}, *all = dc_xmalloc((size_t)2 * W * sizeof *all);
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    for (int q = 0; q < W; q++) cnt[q] = sizeof mine;
    dc_comm_allgatherv(c, mine, sizeof mine, all, cnt);
    if (me == 0) {
        int64_t peak = 0, b = 0;
        for (int q = 0; q < W; q++) {
            if (all[2 * q] > peak) peak = all[2 * q];
            if (all[2 * q + 1] > b) b = all[2 * q + 1];
        }
        double share = (double)n * d * 4 / W / 1048576.0, extra = (double)k * d * 8 / 1048576.0;
        printf("W=%d: %lld x %d -> %d, k = %d in %d: make %.1f s, cluster %.1f s; peak %.0f MB per process "
               "(%.0f MB before the features); (peak - before) / (N*D*4/W = %.0f MB) = %.2f; target 1.3 + k*D*8 (%.1f MB)\n",
               W, (long long)n, d, dim, k, m, t1 - t0, t2 - t1, peak / 1024.0, b / 1024.0, share,
               (peak - b) / 1024.0 / share, extra);
        printf("objectives %.6g / %.6g\n", h.obj1, h.obj2);
    }
    dc_hkmeans_result_free(&h);
    dc_free(x);
    dc_free(all);
    dc_free(cnt);
    dc_comm_finalize(c);
    return 0;
}
