/* cmd_kmeans.c — `deepercluster kmeans`: the clustering step of SPEC §4 on
 * a feature matrix from a file: optional PCA-whitening + L2 normalisation,
 * then flat k-means or, with --super-clusters M, two-level k-means.
 * Includes: cli, dc/cluster.h, dc/io.h. */
#include "cli/cli.h"
#include "dc/cluster.h"
#include "dc/io.h"
#include "dc/nn.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Rows per read when features are streamed from a file (a whole number of
 * every k-means E-step block and of the PCA's blocks). */
#define STREAM_ROWS 4096

/* Flat k-means of the n x d rows; assignments (N,) to out, centroids (K, D)
 * to cent when given. */
static dc_status kmeans_flat(dc_rows *feat, const dc_kmeans_params *kp, const char *out, const char *cent)
{
    double t0 = dc_time_now();
    int64_t n = feat->n;
    int d = feat->d;
    dc_kmeans_result r;
    dc_status s = dc_kmeans_train_rows(&r, feat, kp, NULL);
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
static dc_status kmeans_two_level(dc_rows *feat, int m, const dc_kmeans_params *kp, const dc_cluster_memory *mem,
                                  const char *out, const char *cent)
{
    double t0 = dc_time_now();
    int64_t n = feat->n;
    int d = feat->d, k = kp->k;
    dc_hkmeans_result h;
    dc_status s = dc_hkmeans_train_rows(&h, feat, m, kp, NULL, NULL, mem);
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

/* The float32 (N, D) matrix of `in`, N and D at least 1: mapped when its
 * N·D·4 bytes fit the budget, else read a block at a time (rows). */
static dc_status open_matrix(dc_array *x, dc_rows *rows, const char *in, int64_t budget)
{
    memset(x, 0, sizeof *x);
    dc_status s = dc_rows_open_npy(rows, in, STREAM_ROWS);
    if (s) return s;
    int64_t bytes = rows->n * (int64_t)rows->d * (int64_t)sizeof(float);
    if (bytes > budget) {
        dc_log_info("%s: %lld MB of features, over the memory budget of %lld MB: read a block at a time", in,
                    (long long)(bytes >> 20), (long long)(budget >> 20));
        return DC_OK;
    }
    dc_rows_close(rows);
    if ((s = dc_npy_map(in, x))) return s;
    dc_rows_memory(rows, x->data, x->shape[0], (int)x->shape[1]);
    return DC_OK;
}

/* The PCA-whitened, L2-normalised rows of x: fitted (and saved to pca_out)
 * as dc_pca_whiten does; written to memory (*owned) when they fit the
 * budget, else to the scratch file `scratch` (a row source over it). */
static dc_status whiten(dc_rows *out, float **owned, dc_rows *x, int dim, int64_t sample, uint64_t seed,
                        const char *pca_out, int64_t budget, const char *scratch)
{
    int d = x->d;
    int64_t lim = sample >= 0 ? sample : (int64_t)d * (d - 1) / 2;
    if (lim < 2) lim = 2;
    dc_pca p = {0};
    dc_status s = dc_pca_fit_rows(&p, x, dim, lim, seed);
    if (s == DC_OK && pca_out) s = dc_pca_save(&p, pca_out);
    int64_t bytes = x->n * (int64_t)dim * (int64_t)sizeof(float);
    if (s == DC_OK && bytes > budget)
        dc_log_info("whitened features: %lld MB, over the memory budget: in the scratch file %s", (long long)(bytes >> 20),
                    scratch);
    if (s == DC_OK) s = dc_pca_whitened_rows(&p, x, bytes > budget ? scratch : NULL, owned, out);
    dc_pca_free(&p);
    return s;
}

int dc_cmd_kmeans(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *cent = NULL, *pca_out = NULL, *scratch_dir = NULL, *device = "cpu";
    int k = 0, m = 1, pca = 0, niter = 10, threads = 0, verbose = 0;
    int64_t seed = 0, pca_sample = -1, memory_mb = 0;
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
        {"memory-mb", NULL, DC_OPT_I64, &memory_mb, 0, 1e12, NULL, 0, "MB",
         "features held in memory at once (0: half the available memory); larger ones are read from the file a "
         "block at a time, the whitened ones and super-clusters' members kept in scratch files: the same result"},
        {"scratch", NULL, DC_OPT_STRING, &scratch_dir, 0, 0, NULL, 0, "DIR",
         "folder for the scratch files (default: the folder of --out); removed after"},
        {"threads", NULL, DC_OPT_INT, &threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"verbose", NULL, DC_OPT_FLAG, &verbose, 0, 0, NULL, 0, NULL, "log every k-means pass"},
        {"device", NULL, DC_OPT_STRING, &device, 0, 0, NULL, 0, "D",
         "cpu, cuda or cuda:N: k-means's assignments and sums on that GPU (a CUDA build); PCA and the "
         "splits stay on the CPU"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "kmeans", "--in X.npy --k K --out A.npy [options]",
                      "Clusters the rows of a float32 feature matrix as DeeperCluster's clustering\n"
                      "step does: optional PCA-whitening and L2 normalisation, then Lloyd's k-means\n"
                      "(empty clusters split), flat or two-level. Features larger than --memory-mb\n"
                      "are streamed from the file, with the in-memory result.",
                      opts, (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    if (k % m != 0) {
        fprintf(stderr, "deepercluster kmeans: --k %d is not a multiple of --super-clusters %d; "
                        "choose K = M x (sub-clusters per super-cluster)\n", k, m);
        return DC_EXIT_USAGE;
    }
    dc_cli_set_threads(threads);
    dc_device dev;
    dc_status ds = dc_device_parse(&dev, device, NULL, 0);
    if (ds == DC_STATUS_ARG) {
        fprintf(stderr, "deepercluster kmeans: %s\n", dc_last_error());
        return DC_EXIT_USAGE;
    }
    if (ds != DC_OK) return dc_cli_fail();
    int64_t budget = memory_mb > 0 ? memory_mb << 20 : dc_memory_available() / 2;
    if (budget <= 0) budget = (int64_t)4 << 30;
    char dir[4096], scratch[4200];
    if (scratch_dir) {
        snprintf(dir, sizeof dir, "%s", scratch_dir);
    } else {
        snprintf(dir, sizeof dir, "%s", out);
        char *slash = strrchr(dir, '/');
        if (slash) slash[slash == dir ? 1 : 0] = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    snprintf(scratch, sizeof scratch, "%s/whitened.%ld.npy", dir, (long)getpid());
    dc_cluster_memory mem = {budget, dir};

    dc_array x;
    dc_rows src, white = {.fd = -1};
    if (open_matrix(&x, &src, in, budget)) return dc_cli_fail();
    int d = src.d;
    if (pca > d) {
        dc_rows_close(&src);
        dc_array_free(&x);
        fprintf(stderr, "deepercluster kmeans: --pca %d is larger than the feature dimension %d\n", pca, d);
        return DC_EXIT_USAGE;
    }
    int rc = DC_EXIT_FAIL;
    dc_rows *feat = &src;
    float *owned = NULL;
    if (pca > 0) {
        if (whiten(&white, &owned, &src, pca, pca_sample, (uint64_t)seed, pca_out, budget, scratch)) goto done;
        feat = &white;
    }
    dc_kmeans_params kp = dc_kmeans_params_default();
    kp.k = k;
    kp.niter = niter;
    kp.seed = (uint64_t)seed;
    kp.verbose = verbose;
    kp.progress = 1;
    kp.gpu = dev.gpu;
    if ((m == 1 ? kmeans_flat(feat, &kp, out, cent) : kmeans_two_level(feat, m, &kp, &mem, out, cent)) != DC_OK)
        goto done;
    rc = DC_EXIT_OK;
done:
    if (rc != DC_EXIT_OK) dc_cli_fail();
    if (dc_rows_streamed(&white)) remove(scratch);
    dc_rows_close(&white);
    dc_rows_close(&src);
    dc_free(owned);
    dc_array_free(&x);
    return rc;
}
