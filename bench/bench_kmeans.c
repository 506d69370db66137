/* bench_kmeans.c — times deepercluster's k-means (flat, or two-level with
 * --m) on a .npy feature matrix, printing one JSON line: seconds, passes,
 * achieved GFLOP/s of the E-step GEMM, peak resident memory.
 * Usage: bench_kmeans X.npy K NITER [M [GPU]]   (run by bench/kmeans_vs_faiss.py;
 * GPU: the E-step on that CUDA device, after an untimed warm-up run that
 * starts the device and cuBLAS; the timing includes the upload) */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_kmeans X.npy K NITER [M [GPU]]\n");
        return 2;
    }
    dc_log_set_level(DC_LOG_WARN);
    dc_array x;
    if (dc_npy_map(argv[1], &x) || dc_array_expect(&x, argv[1], DC_DTYPE_F32, 2, NULL)) {
        fprintf(stderr, "%s\n", dc_last_error());
        return 1;
    }
    int k = atoi(argv[2]), niter = atoi(argv[3]), m = argc > 4 ? atoi(argv[4]) : 1, gpu = argc > 5 ? atoi(argv[5]) : -1;
    int64_t n = x.shape[0];
    int d = (int)x.shape[1];
    /* Touch the input once so that page faults are not timed. */
    volatile float sink = 0;
    for (int64_t i = 0; i < n * d; i += 1024) sink += ((float *)x.data)[i];
    dc_kmeans_params p = dc_kmeans_params_default();
    p.k = k;
    p.niter = niter;
    p.seed = 1;
    p.gpu = gpu;
    if (gpu >= 0) { /* warm-up: the device's context, cuBLAS, the kernels' first launches */
        dc_kmeans_params w = p;
        w.k = 8;
        w.niter = 1;
        dc_kmeans_result r;
        if (dc_kmeans_train(&r, x.data, n < 4096 ? n : 4096, d, &w, NULL)) {
            fprintf(stderr, "%s\n", dc_last_error());
            return 1;
        }
        dc_kmeans_result_free(&r);
    }
    double t0 = dc_time_now(), flops;
    dc_status s;
    if (m > 1) {
        dc_hkmeans_result h;
        s = dc_hkmeans_train(&h, x.data, n, d, m, &p, NULL, NULL);
        dc_hkmeans_result_free(&h);
        flops = 2.0 * n * d * (m + k / m) * (niter + 1);
    } else {
        dc_kmeans_result r;
        s = dc_kmeans_train(&r, x.data, n, d, &p, NULL);
        dc_kmeans_result_free(&r);
        flops = 2.0 * n * d * k * (niter + 1);
    }
    double t = dc_time_now() - t0;
    if (s) {
        fprintf(stderr, "%s\n", dc_last_error());
        return 1;
    }
    double hwm = peak_rss_mb();
    printf("{\"seconds\": %.4f, \"gflops\": %.1f, \"peak_rss_mb\": %.1f, \"gemm\": \"%s\"}\n", t,
           flops / t / 1e9, hwm, gpu >= 0 ? "cuBLAS" : dc_sgemm_backend());
    dc_array_free(&x);
    return 0;
}
