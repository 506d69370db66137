/* cmd_kmeans.c — `deepercluster kmeans`: the clustering step of SPEC §4 on
 * a feature matrix from a file: optional PCA-whitening + L2 normalisation,
 * then flat k-means or, with --super-clusters M, two-level k-means.
 * Includes: cli, dc/cluster.h, dc/io.h. */
#include "cli/cli.h"
#include "dc/cluster.h"
#include "dc/io.h"

#include <stdio.h>
#include <string.h>

/* Flat k-means of the n x d rows; assignments (N,) to out, centroids (K, D)
 * to cent when given. */
static dc_status kmeans_flat(const float *feat, int64_t n, int d, const dc_kmeans_params *kp, const char *out,
                             const char *cent)
{
    double t0 = dc_time_now();
    dc_kmeans_result r;
    dc_status s = dc_kmeans_train(&r, feat, n, d, kp, NULL);
    if (s != DC_OK) return s;
    s = dc_npy_write(out, DC_DTYPE_I32, 1, (int64_t[]){n}, r.assign);
    if (s == DC_OK && cent) s = dc_npy_write(cent, DC_DTYPE_F32, 2, (int64_t[]){kp->k, d}, r.centroids);
    printf("k-means: %lld points, d=%d, k=%d: objective %.6g, %d empty clusters split, %.2f s\n", (long long)n, d,
           kp->k, r.passes[r.npasses - 1].obj, r.total_splits, dc_time_now() - t0);
    dc_kmeans_result_free(&r);
    return s;
}

/* Two-level k-means: m super-clusters of k/m each; (super, sub) pairs (N, 2)
 * to out, sub-centroids (M, K/M, D) to cent when given. */
static dc_status kmeans_two_level(const float *feat, int64_t n, int d, int m, const dc_kmeans_params *kp,
                                  const char *out, const char *cent)
{
    double t0 = dc_time_now();
    int k = kp->k;
    dc_hkmeans_result h;
    dc_status s = dc_hkmeans_train(&h, feat, n, d, m, kp, NULL, NULL);
    if (s != DC_OK) return s;
    int32_t *pairs = dc_malloc((size_t)n * 2 * sizeof *pairs, "assignments");
    s = pairs ? DC_OK : DC_STATUS_NOMEM;
    if (s == DC_OK) {
        for (int64_t i = 0; i < n; i++) {
            pairs[2 * i] = h.super[i];
            pairs[2 * i + 1] = h.sub[i];
        }
        s = dc_npy_write(out, DC_DTYPE_I32, 2, (int64_t[]){n, 2}, pairs);
        if (s == DC_OK && cent) s = dc_npy_write(cent, DC_DTYPE_F32, 3, (int64_t[]){m, k / m, d}, h.sub_centroids);
    }
    printf("hierarchical k-means: %lld points, d=%d, %d super-clusters x %d: objectives %.6g / %.6g, "
           "%d + %d empty clusters split, %.2f s\n",
           (long long)n, d, m, k / m, h.obj1, h.obj2, h.splits1, h.splits2, dc_time_now() - t0);
    dc_free(pairs);
    dc_hkmeans_result_free(&h);
    return s;
}

/* The float32 (N, D) matrix of `in`, N and D at least 1. */
static dc_status open_matrix(dc_array *x, const char *in)
{
    dc_status s = dc_npy_map(in, x);
    if (s) return s;
    s = dc_array_expect(x, in, DC_DTYPE_F32, 2, NULL);
    if (s == DC_OK && (x->shape[0] < 1 || x->shape[1] < 1))
        s = dc_set_error(DC_STATUS_FORMAT, "%s: empty feature matrix", in);
    if (s) dc_array_free(x);
    return s;
}

int dc_cmd_kmeans(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *cent = NULL, *pca_out = NULL;
    int k = 0, m = 1, pca = 0, niter = 10, threads = 0, verbose = 0;
    int64_t seed = 0, pca_sample = -1;
    const dc_opt opts[] = {
        {"in", NULL, DC_OPT_STRING, &in, 0, 0, NULL, 1, "X.npy", "features, float32 (N, D)"},
        {"k", "nmb-cluster", DC_OPT_INT, &k, 1, 1e9, NULL, 1, "K", "number of clusters (in all)"},
        {"super-clusters", "nmb-super-clusters", DC_OPT_INT, &m, 1, 1e6, NULL, 0, "M",
         "two-level: M super-clusters of K/M sub-clusters each"},
        {"pca", "dim-pca", DC_OPT_INT, &pca, 0, 1e6, NULL, 0, "D",
         "PCA-whiten to D dimensions and L2-normalise first (0: raw features)"},
        {"pca-sample", NULL, DC_OPT_I64, &pca_sample, -1, 1e15, NULL, 0, "N",
         "fit the PCA on at most N random rows (-1: D_in(D_in-1)/2, as the original)"},
        {"pca-out", NULL, DC_OPT_STRING, &pca_out, 0, 0, NULL, 0, "P.safetensors", "save the fitted PCA"},
        {"niter", NULL, DC_OPT_INT, &niter, 0, 1e6, NULL, 0, "I", "update passes (a final assignment pass follows)"},
        {"seed", NULL, DC_OPT_I64, &seed, 0, 9.2e18, NULL, 0, "S", "random seed"},
        {"out", NULL, DC_OPT_STRING, &out, 0, 0, NULL, 1, "A.npy",
         "assignments: int32 (N,), or (N, 2) = (super, sub) with --super-clusters"},
        {"centroids", NULL, DC_OPT_STRING, &cent, 0, 0, NULL, 0, "C.npy",
         "centroids: (K, D'), or (M, K/M, D') with --super-clusters"},
        {"threads", NULL, DC_OPT_INT, &threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"verbose", NULL, DC_OPT_FLAG, &verbose, 0, 0, NULL, 0, NULL, "log every k-means pass"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "kmeans", "--in X.npy --k K --out A.npy [options]",
                      "Clusters the rows of a float32 feature matrix as DeeperCluster's clustering\n"
                      "step does: optional PCA-whitening and L2 normalisation, then Lloyd's k-means\n"
                      "(empty clusters split), flat or two-level.",
                      opts, (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    if (k % m != 0) {
        fprintf(stderr, "deepercluster kmeans: --k %d is not a multiple of --super-clusters %d; "
                        "choose K = M x (sub-clusters per super-cluster)\n", k, m);
        return DC_EXIT_USAGE;
    }
    dc_cli_set_threads(threads);

    dc_array x;
    if (open_matrix(&x, in)) return dc_cli_fail();
    int64_t n = x.shape[0];
    int d = (int)x.shape[1];
    if (pca > d) {
        dc_array_free(&x);
        fprintf(stderr, "deepercluster kmeans: --pca %d is larger than the feature dimension %d\n", pca, d);
        return DC_EXIT_USAGE;
    }
    int rc = DC_EXIT_FAIL;
    float *feat = x.data;
    float *owned = NULL;
    if (pca > 0) {
        owned = dc_malloc((size_t)n * pca * sizeof(float), "whitened features");
        if (!owned || dc_pca_whiten(owned, x.data, n, d, pca, pca_sample, (uint64_t)seed, pca_out)) goto done;
        feat = owned;
        d = pca;
    }
    dc_kmeans_params kp = dc_kmeans_params_default();
    kp.k = k;
    kp.niter = niter;
    kp.seed = (uint64_t)seed;
    kp.verbose = verbose;
    kp.progress = 1;
    if ((m == 1 ? kmeans_flat(feat, n, d, &kp, out, cent) : kmeans_two_level(feat, n, d, m, &kp, out, cent)) != DC_OK)
        goto done;
    rc = DC_EXIT_OK;
done:
    if (rc != DC_EXIT_OK) dc_cli_fail();
    dc_free(owned);
    dc_array_free(&x);
    return rc;
}
