/* cmd_eval.c — `deepercluster features` and `deepercluster eval
 * linear|knn|clusters`: frozen networks (a run, a weights file, or
 * random:<preset> as the baseline) under the evaluation transform, judged
 * by the protocols of SPEC §7; a table on stdout, JSON with --json, and a
 * line in RUN/eval.jsonl when the weights are a run.
 * Includes: cli, dc/eval.h, dc/train.h, dc/data.h, dc/io.h. */
#include "cli/cli.h"
#include "dc/data.h"
#include "dc/eval.h"
#include "dc/io.h"
#include "dc/train.h"

#include <stdio.h>
#include <string.h>

/* Features of `layer` for a dataset; owned result. */
static int64_t max_images; /* --max-images: only the first N images of each set */

static int64_t nimg(const dc_dataset *d)
{
    int64_t n = dc_dataset_size(d);
    return max_images > 0 && max_images < n ? max_images : n;
}

static dc_status features_for(float **out, int64_t *dim, dc_model *m, const dc_dataset *d, const char *layer,
                              int pool, const char *label)
{
    char err[256];
    int li = dc_cli_layer_index(m, layer, err, sizeof err);
    if (li < 0) return dc_set_error(DC_STATUS_ARG, "%s", err);
    int side = pool ? dc_feature_pool_side(m, li, 10000) : 0;
    int64_t n = nimg(d);
    *dim = dc_feature_dim(m, li, side);
    *out = dc_malloc((size_t)n * *dim * sizeof(float), "features");
    if (!*out) return DC_STATUS_NOMEM;
    dc_status s = dc_extract_features(*out, m, d, n, li, side, label);
    if (s) {
        dc_free(*out);
        *out = NULL;
    }
    return s;
}

/* The raw-pixel baseline: every image's pixels / 255 in CHW order; the
 * images must all have one size. */
static dc_status pixel_features(float **out, int64_t *dim, const dc_dataset *d)
{
    int h = dc_dataset_height(d), w = dc_dataset_width(d), c = dc_dataset_channels(d);
    if (h <= 0 || w <= 0)
        return dc_set_error(DC_STATUS_ARG, "--weights pixels needs images of one size (IDX, CIFAR)");
    int64_t n = nimg(d);
    *dim = (int64_t)c * h * w;
    *out = dc_malloc((size_t)n * *dim * sizeof(float), "pixel features");
    if (!*out) return DC_STATUS_NOMEM;
    dc_image_buf b = {0};
    dc_status s = DC_OK;
    for (int64_t i = 0; i < n && s == DC_OK; i++) {
        dc_image im;
        s = dc_dataset_get(d, i, &b, &im);
        if (s == DC_OK && (im.h != h || im.w != w))
            s = dc_set_error(DC_STATUS_FORMAT, "image %lld is %dx%d, not %dx%d", (long long)i, im.h, im.w, h, w);
        for (int64_t p = 0; s == DC_OK && p < (int64_t)h * w; p++)
            for (int k = 0; k < c; k++) (*out)[i * *dim + k * (int64_t)h * w + p] = im.data[p * im.c + k] / 255.0f;
    }
    dc_image_buf_free(&b);
    if (s) {
        dc_free(*out);
        *out = NULL;
    }
    return s;
}

static int finish(dc_status s, const char *cmd)
{
    if (s == DC_OK) return DC_EXIT_OK;
    if (s == DC_STATUS_ARG) {
        fprintf(stderr, "deepercluster %s: %s\n", cmd, dc_last_error());
        return DC_EXIT_USAGE;
    }
    return dc_cli_fail();
}

int dc_cmd_features(int argc, char **argv)
{
    const char *weights = NULL, *data = NULL, *labels = NULL, *layer = "final", *out = NULL, *lab_out = NULL;
    int sobel = 1, batch = 128, threads = 0;
    int64_t seed = 0;
    const dc_opt opts[] = {
        {"weights", NULL, DC_OPT_STRING, &weights, 0, 0, NULL, 1, "W", "RUN directory, weights .safetensors, or random:<preset>"},
        {"data", NULL, DC_OPT_STRING, &data, 0, 0, NULL, 1, "SRC", "images (IDX file, CIFAR batches)"},
        {"labels", NULL, DC_OPT_STRING, &labels, 0, 0, NULL, 0, "FILE", "IDX labels, when not beside the images"},
        {"layer", NULL, DC_OPT_STRING, &layer, 0, 0, NULL, 0, "NAME",
         "final (the body's output) or convN (after its ReLU, average-pooled under 10k values)"},
        {"out", NULL, DC_OPT_STRING, &out, 0, 0, NULL, 1, "X.npy", "features, float32 (N, D), in dataset order"},
        {"labels-out", NULL, DC_OPT_STRING, &lab_out, 0, 0, NULL, 0, "Y.npy", "the labels, int32 (N,)"},
        {"sobel", NULL, DC_OPT_INT, &sobel, 0, 1, NULL, 0, "0|1", "Sobel stage for random:<preset>"},
        {"seed", NULL, DC_OPT_I64, &seed, 0, 9.2e18, NULL, 0, "S", "seed for random:<preset>"},
        {"batch-size", NULL, DC_OPT_INT, &batch, 1, 4096, NULL, 0, "B", "images per forward pass"},
        {"threads", NULL, DC_OPT_INT, &threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"max-images", NULL, DC_OPT_I64, &max_images, 0, 1e12, NULL, 0, "N", "the first N images only (0: all)"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "features", "--weights W --data SRC --out X.npy [options]",
                      "Computes a layer's features for every image, under the evaluation transform.", opts,
                      (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    dc_cli_set_threads(threads);
    dc_dataset *d = NULL;
    dc_model m = {0};
    float *x = NULL;
    int64_t dim;
    dc_status s = dc_dataset_open(data, labels, &d);
    if (s == DC_OK) s = dc_cli_load_model(&m, weights, dc_dataset_channels(d), sobel, (uint64_t)seed, batch, NULL, 0);
    if (s == DC_OK) dc_dataset_set_decode_hint(d, m.preset->eval_resize);
    if (s == DC_OK) s = features_for(&x, &dim, &m, d, layer, 1, "features");
    if (s == DC_OK) s = dc_npy_write(out, DC_DTYPE_F32, 2, (int64_t[]){nimg(d), dim}, x);
    if (s == DC_OK && lab_out) {
        if (!dc_dataset_labels(d)) s = dc_set_error(DC_STATUS_ARG, "--labels-out: %s has no labels", data);
        else s = dc_npy_write(lab_out, DC_DTYPE_I32, 1, (int64_t[]){nimg(d)}, dc_dataset_labels(d));
    }
    if (s == DC_OK) printf("%s: %lld x %lld features of layer %s\n", out, (long long)nimg(d), (long long)dim, layer);
    dc_free(x);
    dc_model_free(&m);
    dc_dataset_close(d);
    return finish(s, "features");
}

int dc_cmd_eval(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        FILE *f = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout : stderr;
        fprintf(f, "usage: deepercluster eval linear|knn|clusters [options]\n"
                   "       deepercluster eval <protocol> --help\n\n"
                   "  linear     linear probe on frozen features (top-1, top-5)\n"
                   "  knn        weighted k-nearest-neighbour classifier\n"
                   "  clusters   k-means on the features against the labels (NMI, ARI, accuracy)\n");
        return f == stdout ? DC_EXIT_OK : DC_EXIT_USAGE;
    }
    const char *proto = argv[1];
    int is_linear = strcmp(proto, "linear") == 0, is_knn = strcmp(proto, "knn") == 0,
        is_clusters = strcmp(proto, "clusters") == 0;
    if (!is_linear && !is_knn && !is_clusters) {
        fprintf(stderr, "deepercluster eval: unknown protocol '%s' (linear, knn or clusters)\n", proto);
        return DC_EXIT_USAGE;
    }
    const char *weights = NULL, *train = NULL, *test = NULL, *data = NULL, *layer = is_linear ? "all" : "final";
    const char *json = NULL, *record = NULL;
    int sobel = 1, batch = 128, threads = 0, k = 0, dim_pca = -1, niter = 20, epochs = 10, restarts = 10;
    int64_t seed = 0;
    double T = 0.07;
    dc_opt opts[20];
    int no = 0;
    opts[no++] = (dc_opt){"weights", NULL, DC_OPT_STRING, &weights, 0, 0, NULL, 1, "W",
                          "RUN directory, weights .safetensors, random:<preset>, or pixels (raw-pixel baseline)"};
    if (is_clusters) {
        opts[no++] = (dc_opt){"data", NULL, DC_OPT_STRING, &data, 0, 0, NULL, 1, "SRC", "labelled images"};
        opts[no++] = (dc_opt){"k", NULL, DC_OPT_INT, &k, 0, 1e6, NULL, 0, "K", "clusters (0: the number of classes)"};
        opts[no++] = (dc_opt){"pca", NULL, DC_OPT_INT, &dim_pca, -1, 1e5, NULL, 0, "D",
                              "PCA-whiten to D dimensions + L2 first (0: raw features; -1: as the run's "
                              "clustering, its config's dim_pca, else the preset's; raw for pixels)"};
        opts[no++] = (dc_opt){"niter", NULL, DC_OPT_INT, &niter, 0, 1e6, NULL, 0, "I", "k-means passes"};
        opts[no++] = (dc_opt){"restarts", NULL, DC_OPT_INT, &restarts, 1, 1000, NULL, 0, "R",
                              "k-means runs from different starts; the lowest objective is scored"};
    } else {
        opts[no++] = (dc_opt){"train", NULL, DC_OPT_STRING, &train, 0, 0, NULL, 1, "SRC", "labelled training images"};
        opts[no++] = (dc_opt){"test", NULL, DC_OPT_STRING, &test, 0, 0, NULL, 1, "SRC", "labelled test images"};
    }
    if (is_knn) {
        opts[no++] = (dc_opt){"k", NULL, DC_OPT_INT, &k, 1, 4096, NULL, 0, "K", "neighbours (default 20)"};
        opts[no++] = (dc_opt){"temperature", NULL, DC_OPT_DOUBLE, &T, 1e-4, 100, NULL, 0, "T", "vote temperature"};
    }
    if (is_linear) opts[no++] = (dc_opt){"epochs", NULL, DC_OPT_INT, &epochs, 1, 1e4, NULL, 0, "E", "probe training epochs"};
    opts[no++] = (dc_opt){"layer", NULL, DC_OPT_STRING, &layer, 0, 0, NULL, 0, "NAME",
                          is_linear ? "convN, final or all" : "final or convN"};
    opts[no++] = (dc_opt){"json", NULL, DC_OPT_STRING, &json, 0, 0, NULL, 0, "F.json", "also write the results as JSON"};
    opts[no++] = (dc_opt){"record", NULL, DC_OPT_STRING, &record, 0, 0, NULL, 0, "RUN",
                          "also append the results to RUN/eval.jsonl (e.g. a random baseline beside a run)"};
    opts[no++] = (dc_opt){"sobel", NULL, DC_OPT_INT, &sobel, 0, 1, NULL, 0, "0|1", "Sobel stage for random:<preset>"};
    opts[no++] = (dc_opt){"seed", NULL, DC_OPT_I64, &seed, 0, 9.2e18, NULL, 0, "S", "seed (random weights, k-means, probe)"};
    opts[no++] = (dc_opt){"batch-size", NULL, DC_OPT_INT, &batch, 1, 4096, NULL, 0, "B", "images per forward pass"};
    opts[no++] = (dc_opt){"threads", NULL, DC_OPT_INT, &threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"};
    opts[no++] = (dc_opt){"max-images", NULL, DC_OPT_I64, &max_images, 0, 1e12, NULL, 0, "N",
                          "the first N images of each set only (0: all)"};
    if (is_knn && k == 0) k = 20;
    dc_args a;
    int code;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "eval %s", proto);
    if (!dc_cli_parse(&a, cmd, is_clusters ? "--weights W --data SRC [options]" : "--weights W --train SRC --test SRC [options]",
                      is_linear ? "Linear probe: a linear classifier on the frozen, average-pooled features of a\n"
                                  "layer, its learning rate chosen on 10% of the training set held out."
                      : is_knn ? "Weighted k-NN on L2-normalised features (cosine similarity, votes exp(sim/T))."
                               : "k-means on the features, scored against the labels.",
                      opts, no, 0, argc - 1, argv + 1, &code))
        return code;
    dc_cli_set_threads(threads);
    dc_dataset *dtr = NULL, *dte = NULL;
    dc_model m = {0};
    char run[4096];
    cJSON *res = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(res, "results");
    cJSON_AddStringToObject(res, "protocol", proto);
    cJSON_AddStringToObject(res, "weights", weights);
    dc_status s = dc_dataset_open(is_clusters ? data : train, NULL, &dtr);
    if (s == DC_OK && !is_clusters) s = dc_dataset_open(test, NULL, &dte);
    if (s == DC_OK && (!dc_dataset_labels(dtr) || (dte && !dc_dataset_labels(dte))))
        s = dc_set_error(DC_STATUS_ARG, "evaluation needs labelled images (IDX with its labels, CIFAR)");
    int pixels = strcmp(weights, "pixels") == 0; /* the raw-pixel baseline */
    run[0] = 0;
    if (pixels) layer = "pixels";
    if (s == DC_OK && !pixels)
        s = dc_cli_load_model(&m, weights, dc_dataset_channels(dtr), sobel, (uint64_t)seed, batch, run, sizeof run);
    if (s == DC_OK && !pixels) {
        dc_dataset_set_decode_hint(dtr, m.preset->eval_resize);
        if (dte) dc_dataset_set_decode_hint(dte, m.preset->eval_resize);
    }
    int run_dim = 0; /* the run's clustering dimension, from its config.json */
    if (s == DC_OK && run[0] && is_clusters) {
        char cpath[4200];
        snprintf(cpath, sizeof cpath, "%s/config.json", run);
        cJSON *cfg = NULL;
        double v;
        if (dc_json_read(cpath, &cfg) == DC_OK && dc_json_get_number(cfg, "dim_pca", cpath, &v) == DC_OK) run_dim = (int)v;
        cJSON_Delete(cfg);
    }
    int nconv = s == DC_OK && !pixels ? dc_model_nconv(&m) : 0;
    int first = 0, last = 0;
    if (s == DC_OK && is_linear && strcmp(layer, "all") == 0) {
        first = 1;
        last = nconv + 1; /* conv1 … convN, then final */
    }
    printf("%-8s %8s %8s %8s\n", "layer", is_clusters ? "NMI" : "top1", is_clusters ? "ARI" : is_linear ? "top5" : "", is_clusters ? "ACC" : "");
    for (int li = first; li <= last && s == DC_OK; li++) {
        char lname[32];
        if (first == 0) snprintf(lname, sizeof lname, "%s", layer);
        else if (li <= nconv) snprintf(lname, sizeof lname, "conv%d", li);
        else snprintf(lname, sizeof lname, "final");
        float *xtr = NULL, *xte = NULL;
        int64_t dim = 0, dim2 = 0;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "layer", lname);
        if (pixels) {
            s = pixel_features(&xtr, &dim, dtr);
            if (s == DC_OK && dte) s = pixel_features(&xte, &dim2, dte);
        } else {
            s = features_for(&xtr, &dim, &m, dtr, lname, 1, "features");
            if (s == DC_OK && dte) s = features_for(&xte, &dim2, &m, dte, lname, 1, "features");
        }
        if (s == DC_OK && is_clusters) {
            int kk = k > 0 ? k : dc_dataset_nclasses(dtr);
            dc_cluster_scores sc;
            int dp = dim_pca;
            if (dp < 0) dp = pixels ? 0 : run_dim > 0 && strcmp(lname, "final") == 0 ? run_dim : dc_preset_dim_pca(m.preset);
            if (dp >= dim) dp = 0;
            dc_log_info("k-means (k = %d, best of %d) on the %s features%s%d", kk, restarts, lname,
                        dp ? ", PCA-whitened + L2, dimension " : " as they are, dimension ", dp ? dp : (int)dim);
            cJSON_AddNumberToObject(row, "pca", dp);
            s = dc_eval_clusters(&sc, xtr, nimg(dtr), (int)dim, dc_dataset_labels(dtr), kk, dp, niter, restarts,
                                 (uint64_t)seed);
            if (s == DC_OK) {
                printf("%-8s %8.4f %8.4f %8.4f\n", lname, sc.nmi, sc.ari, sc.acc);
                cJSON_AddNumberToObject(row, "nmi", sc.nmi);
                cJSON_AddNumberToObject(row, "ari", sc.ari);
                cJSON_AddNumberToObject(row, "acc", sc.acc);
                cJSON_AddNumberToObject(row, "k", kk);
            }
        } else if (s == DC_OK && is_knn) {
            double top1;
            s = dc_knn_eval(&top1, xtr, dc_dataset_labels(dtr), nimg(dtr), xte, dc_dataset_labels(dte),
                            nimg(dte), (int)dim, dc_dataset_nclasses(dtr), k, T);
            if (s == DC_OK) {
                printf("%-8s %8.4f\n", lname, top1);
                cJSON_AddNumberToObject(row, "top1", top1);
                cJSON_AddNumberToObject(row, "k", k);
            }
        } else if (s == DC_OK) {
            dc_probe_params pp = dc_probe_params_default();
            pp.epochs = epochs;
            pp.seed = (uint64_t)seed;
            dc_probe_result pr;
            int ncls = dc_dataset_nclasses(dtr) > dc_dataset_nclasses(dte) ? dc_dataset_nclasses(dtr) : dc_dataset_nclasses(dte);
            s = dc_linear_probe(&pr, xtr, dc_dataset_labels(dtr), nimg(dtr), xte, dc_dataset_labels(dte),
                                nimg(dte), (int)dim, ncls, &pp);
            if (s == DC_OK) {
                printf("%-8s %8.4f %8.4f\n", lname, pr.top1, pr.top5);
                cJSON_AddNumberToObject(row, "top1", pr.top1);
                if (pr.top5 >= 0) cJSON_AddNumberToObject(row, "top5", pr.top5);
                cJSON_AddNumberToObject(row, "lr", pr.lr);
                cJSON_AddNumberToObject(row, "dim", (double)dim);
            }
        }
        fflush(stdout);
        cJSON_AddItemToArray(rows, row);
        dc_free(xtr);
        dc_free(xte);
    }
    /* single-layer results also at the top level: the contract keys */
    if (s == DC_OK && cJSON_GetArraySize(rows) == 1) {
        cJSON *r0 = cJSON_GetArrayItem(rows, 0), *e;
        cJSON_ArrayForEach(e, r0) cJSON_AddItemToObject(res, e->string, cJSON_Duplicate(e, 1));
    }
    if (s == DC_OK && json) s = dc_json_write(json, res);
    if (s == DC_OK && run[0]) {
        char path[4200];
        snprintf(path, sizeof path, "%s/eval.jsonl", run);
        s = dc_json_append_line(path, res);
    }
    if (s == DC_OK && record && !(run[0] && strcmp(record, run) == 0)) {
        char path[4200];
        snprintf(path, sizeof path, "%s/eval.jsonl", record);
        s = dc_json_append_line(path, res);
    }
    cJSON_Delete(res);
    dc_model_free(&m);
    dc_dataset_close(dtr);
    dc_dataset_close(dte);
    return finish(s, cmd);
}
