/* bench_cluster_volume.c — what one process holds and moves in a
 * clustering (dc_cluster_volume_compute: the program's own accounting,
 * printed at the start of every distributed run), for the paper's
 * configuration and this project's, against what it held before the
 * features were sharded (every image's features and whitened rows on every
 * process). held: the peak, features + whitened rows while whitening, then
 * whitened rows + level-2 members, plus labels and centroids. No timing: sizes only. Usage: build/release/bench/bench_cluster_volume */
#include "dc/train.h"

#include <stdio.h>

static void row(const char *name, int64_t n, int W, int D, int dim, int k, int m)
{
    dc_cluster_volume v;
    dc_cluster_volume_compute(&v, n, W, D, dim, k, m);
    const double G = 1e9;
    /* the features are freed once whitened; the members come after */
    double peak = (double)(v.features > v.level2 ? v.features : v.level2) + (double)v.whitened;
    double held = peak + (double)(v.labels + v.centroids);
    double before = (double)n * (D + dim) * 4 + (double)v.labels + (double)v.centroids;
    printf("%-34s %9.2f %9.2f %9.2f %8.2f %8.3f %9.1f %9.2f %8.1f %8.1f %9.2f %7.1fx\n", name, v.features / G,
           v.whitened / G, v.level2 / G, v.labels / G, v.centroids / G, v.pca_in / G, v.alltoall / G, v.pass1 / 1e3,
           v.pass2 / 1e3, held / G, before / held);
}

int main(void)
{
    printf("GB per process (k-means pass all-reduce in KB)\n");
    printf("%-34s %9s %9s %9s %8s %8s %9s %9s %8s %8s %9s %8s\n", "configuration", "features", "whitened", "level 2",
           "labels", "centr.", "PCA in", "all2all", "pass1", "pass2", "held", "before");
    row("paper: 96M, W=64, D=4096, k=320000", 96000000, 64, 4096, 4096, 320000, 16);
    row("paper at W=16", 96000000, 16, 4096, 4096, 320000, 16);
    row("paper at W=8 (W < m)", 96000000, 8, 4096, 4096, 320000, 16);
    row("1M images, W=4, D=4096, k=10000", 1000000, 4, 4096, 256, 10000, 4);
    row("Fashion-MNIST 60k, W=2, vgg-s32", 60000, 2, 512, 32, 256, 2);
    return 0;
}
