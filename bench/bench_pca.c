/* bench_pca.c — times deepercluster's PCA-whitening fit + apply + L2 on a
 * .npy feature matrix; prints one JSON line.
 * Usage: bench_pca X.npy D_OUT   (run by bench/kmeans_vs_faiss.py) */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"
#include "dc/io.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_pca X.npy D_OUT\n");
        return 2;
    }
    dc_log_set_level(getenv("DC_BENCH_DEBUG") ? DC_LOG_DEBUG : DC_LOG_WARN);
    dc_array x;
    if (dc_npy_read(argv[1], &x) || dc_array_expect(&x, argv[1], DC_DTYPE_F32, 2, NULL)) {
        fprintf(stderr, "%s\n", dc_last_error());
        return 1;
    }
    int k = atoi(argv[2]);
    int64_t n = x.shape[0];
    int d = (int)x.shape[1];
    float *y = dc_xmalloc((size_t)n * k * sizeof(float));
    for (int64_t i = 0; i < n * k; i += 1024) y[i] = 0; /* pre-fault the output */
    double t0 = dc_time_now();
    dc_pca p;
    if (dc_pca_fit(&p, x.data, n, d, k)) {
        fprintf(stderr, "%s\n", dc_last_error());
        return 1;
    }
    double t1 = dc_time_now();
    dc_pca_apply(&p, y, x.data, n, 1);
    double t2 = dc_time_now();
    double hwm = peak_rss_mb();
    printf("{\"seconds\": %.4f, \"fit\": %.4f, \"apply\": %.4f, \"peak_rss_mb\": %.1f}\n", t2 - t0, t1 - t0,
           t2 - t1, hwm);
    dc_pca_free(&p);
    dc_free(y);
    dc_array_free(&x);
    return 0;
}
