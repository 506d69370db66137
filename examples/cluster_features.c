/* cluster_features.c — deepercluster as a library: a trained network's
 * features for a set of images, saved as .npy, then k-means on them scored
 * against the images' labels (what `deepercluster features` and `eval
 * clusters` do, in a few calls).
 *
 *   cc cluster_features.c $(pkg-config --cflags --libs deepercluster) -o cluster_features
 *   ./cluster_features RUN/checkpoint.safetensors images.idx.gz features.npy [LAYER [K]]
 *
 * LAYER: final (default) or convN; K: clusters (default: the number of
 * classes). Every library call returns a dc_status; dc_last_error() says
 * what went wrong. */
#include <dc/cluster.h>
#include <dc/data.h>
#include <dc/eval.h>
#include <dc/io.h>
#include <dc/nn.h>
#include <dc/train.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what)
{
    fprintf(stderr, "cluster_features: %s: %s\n", what, dc_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s WEIGHTS.safetensors DATA OUT.npy [LAYER [K]]\n", argv[0]);
        return 2;
    }
    const char *layer_name = argc > 4 ? argv[4] : "final";
    dc_log_set_level(DC_LOG_WARN);

    dc_dataset *d;
    if (dc_dataset_open(argv[2], NULL, &d)) return fail(argv[2]);
    dc_model m;
    if (dc_model_load_file(&m, argv[1], dc_dataset_channels(d), 0)) return fail(argv[1]);
    int layer = dc_model_layer_find(&m, layer_name);
    if (layer < 0) return fail(layer_name);
    /* Large JPEGs decoded at a reduced size by the DCT where the evaluation
     * transform's resize allows it (faster; as the program does). */
    dc_dataset_set_decode_hint(d, m.preset->eval_resize);

    /* Conv layers average-pooled under 10,000 values, as the linear probe. */
    int pool = dc_feature_pool_side(&m, layer, 10000);
    int64_t n = dc_dataset_size(d), dim = dc_feature_dim(&m, layer, pool);
    float *x = malloc((size_t)(n * dim) * sizeof *x);
    if (!x) return fprintf(stderr, "cluster_features: out of memory\n"), 1;
    if (dc_extract_features(x, &m, d, n, layer, pool, NULL)) return fail("features");
    if (dc_npy_write(argv[3], DC_DTYPE_F32, 2, (int64_t[]){n, dim}, x)) return fail(argv[3]);
    printf("%s: %lld x %lld features of %s\n", argv[3], (long long)n, (long long)dim, layer_name);

    const int32_t *labels = dc_dataset_labels(d);
    if (labels) {
        int k = argc > 5 ? atoi(argv[5]) : dc_dataset_nclasses(d);
        /* PCA-whitened to the preset's clustering dimension and L2-normalised,
         * 20 k-means passes, the best of 10 runs: eval clusters' defaults. */
        dc_cluster_scores sc;
        if (dc_eval_clusters(&sc, x, n, (int)dim, labels, k, dc_preset_dim_pca(m.preset), 20, 10, 0))
            return fail("k-means");
        printf("k-means, k = %d: NMI %.4f ARI %.4f ACC %.4f\n", k, sc.nmi, sc.ari, sc.acc);
    }
    free(x);
    dc_model_free(&m);
    dc_dataset_close(d);
    return 0;
}
