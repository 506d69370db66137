/* cmd_eval.c — `deepercluster features` and `deepercluster eval
 * linear|knn|clusters`: frozen networks (a run, a weights file, or
 * random:<preset> as the baseline) under the evaluation transform, judged
 * by the protocols of SPEC §7; a table on stdout, JSON with --json, and a
 * line in RUN/eval.jsonl when the weights are a run.
 * Includes: cli, dc/eval.h, dc/train.h, dc/data.h, dc/io.h. */
#include "cli/cli.h"
#include "dc/data.h"
#include "dc/eval.h"
#include "dc/finetune.h"
#include "eval/finetune_options.h"
#include "dc/io.h"
#include "dc/train.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH_HELP "images per forward pass (0: the preset's, 128; 32 for vgg16)"

/* The number of images used from `d`: its first `max` (0: all). */
static int64_t nimg(const dc_dataset *d, int64_t max)
{
    int64_t n = dc_dataset_size(d);
    return max > 0 && max < n ? max : n;
}

/* A layer to evaluate: its name, index in the model, pooling and width. */
typedef struct {
    char name[32];
    int index, pool_side; /* index -1: the pixels */
    int64_t dim;
} eval_layer;

/* The layer `name` of m, average-pooled under 10k values, into l. */
static dc_status layer_resolve(dc_model *m, const char *name, eval_layer *l)
{
    char err[256];
    if (name != l->name) snprintf(l->name, sizeof l->name, "%s", name);
    if (dc_feature_layer(m, name, &l->index, &l->pool_side, &l->dim) != DC_OK) { /* "layer X: expected …", as the option */
        snprintf(err, sizeof err, "--%s", dc_last_error());
        return dc_set_error(DC_STATUS_ARG, "%s", err);
    }
    return DC_OK;
}

/* The raw-pixel baseline: the first n images' pixels / 255 in CHW order;
 * the images must all have one size. */
static dc_status pixel_features(float **out, int64_t *dim, const dc_dataset *d, int64_t n)
{
    int h = dc_dataset_height(d), w = dc_dataset_width(d), c = dc_dataset_channels(d);
    if (h <= 0 || w <= 0)
        return dc_set_error(DC_STATUS_ARG, "--weights pixels needs images of one size (IDX, CIFAR)");
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
    int sobel = 1, batch = 0, threads = 0;
    int64_t seed = 0, max_images = 0;
    const char *device = NULL, *precision = NULL;
    const dc_opt opts[] = {
        {"weights", NULL, DC_OPT_STRING, &weights, 0, 0, NULL, 1, "W", "RUN directory, weights .safetensors, or random:<preset>"},
        {"data", NULL, DC_OPT_STRING, &data, 0, 0, NULL, 1, "SRC", "images: IDX, CIFAR batches, image folder or .txt list, pack"},
        {"labels", NULL, DC_OPT_STRING, &labels, 0, 0, NULL, 0, "FILE", "IDX labels, when not beside the images"},
        {"layer", NULL, DC_OPT_STRING, &layer, 0, 0, NULL, 0, "NAME",
         "final (the body's output) or convN (after its ReLU, average-pooled under 10k values)"},
        {"out", NULL, DC_OPT_STRING, &out, 0, 0, NULL, 1, "X.npy", "features, float32 (N, D), in dataset order"},
        {"labels-out", NULL, DC_OPT_STRING, &lab_out, 0, 0, NULL, 0, "Y.npy", "the labels, int32 (N,)"},
        {"sobel", NULL, DC_OPT_INT, &sobel, 0, 1, NULL, 0, "0|1", "Sobel stage for random:<preset>"},
        {"seed", NULL, DC_OPT_I64, &seed, 0, 9.2e18, NULL, 0, "S", "seed for random:<preset>"},
        {"batch-size", NULL, DC_OPT_INT, &batch, 0, 4096, NULL, 0, "B", BATCH_HELP},
        {"threads", NULL, DC_OPT_INT, &threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"max-images", NULL, DC_OPT_I64, &max_images, 0, 1e12, NULL, 0, "N", "the first N images only (0: all)"},
        {"device", NULL, DC_OPT_STRING, &device, 0, 0, NULL, 0, "D", DEVICE_HELP},
        {"precision", NULL, DC_OPT_CHOICE, &precision, 0, 0, "fp32|tf32", 0, "P", PRECISION_HELP},
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
    eval_layer l = {0};
    int64_t n = 0;
    dc_status s = dc_dataset_open(data, labels, &d);
    if (s == DC_OK) s = dc_model_open(&m, weights, dc_dataset_channels(d), sobel, (uint64_t)seed, batch, device, precision,
                                      NULL, 0);
    if (s == DC_OK) {
        dc_dataset_set_decode_hint(d, m.preset->eval_resize);
        n = nimg(d, max_images);
        s = layer_resolve(&m, layer, &l);
    }
    /* streamed to the file: features of any number of images, in little memory */
    if (s == DC_OK) s = dc_extract_features_npy(out, &m, d, n, l.index, l.pool_side, 0, "features");
    if (s == DC_OK && lab_out) {
        if (!dc_dataset_labels(d)) s = dc_set_error(DC_STATUS_ARG, "--labels-out: %s has no labels", data);
        else s = dc_npy_write(lab_out, DC_DTYPE_I32, 1, (int64_t[]){n}, dc_dataset_labels(d));
    }
    if (s == DC_OK) printf("%s: %lld x %lld features of layer %s\n", out, (long long)n, (long long)l.dim, layer);
    dc_model_free(&m);
    dc_dataset_close(d);
    return finish(s, "features");
}

/* One `eval` invocation: its options, then the data and network they name. */
typedef struct {
    const char *proto;
    int is_linear, is_knn, is_clusters;
    const char *weights, *train, *test, *data, *layer, *json, *record;
    int sobel, batch, threads, k, dim_pca, niter, epochs, restarts, runs, average;
    int64_t seed, max_images, memory_mb;
    const char *device, *precision;
    double T;
    dc_dataset *dtr, *dte; /* dtr: the training set (the data for clusters); dte: NULL for clusters */
    int64_t ntr, nte;      /* images used of each */
    dc_model m;
    int pixels;  /* the raw-pixel baseline instead of a network */
    int run_dim; /* the run's clustering dimension, from its config.json (0: none) */
    char run[4096];
} eval_job;

/* The option table of e->proto into opts (room for 20); returns its length. */
static int eval_options(eval_job *e, dc_opt *opts)
{
    int no = 0;
    opts[no++] = (dc_opt){"weights", NULL, DC_OPT_STRING, &e->weights, 0, 0, NULL, 1, "W",
                          "RUN directory, weights .safetensors, random:<preset>, or pixels (raw-pixel baseline)"};
    if (e->is_clusters) {
        opts[no++] = (dc_opt){"data", NULL, DC_OPT_STRING, &e->data, 0, 0, NULL, 1, "SRC", "labelled images (IDX with labels, CIFAR, class folders, pack)"};
        opts[no++] = (dc_opt){"k", NULL, DC_OPT_INT, &e->k, 0, 1e6, NULL, 0, "K", "clusters (0: the number of classes)"};
        opts[no++] = (dc_opt){"pca", NULL, DC_OPT_INT, &e->dim_pca, -1, 1e5, NULL, 0, "D",
                              "PCA-whiten to D dimensions + L2 first (0: raw features; -1: as the run's "
                              "clustering, its config's dim_pca, else the preset's; raw for pixels)"};
        opts[no++] = (dc_opt){"niter", NULL, DC_OPT_INT, &e->niter, 0, 1e6, NULL, 0, "I", "k-means passes"};
        opts[no++] = (dc_opt){"restarts", NULL, DC_OPT_INT, &e->restarts, 1, 1000, NULL, 0, "R",
                              "k-means runs from different starts; the lowest objective is scored"};
        opts[no++] = (dc_opt){"runs", NULL, DC_OPT_INT, &e->runs, 1, 1000, NULL, 0, "N",
                              "cluster N times (seeds S, S+1, ...; each the best of --restarts) and report the "
                              "mean and standard deviation of the scores (one clustering moves the NMI by about "
                              "a point)"};
    } else {
        opts[no++] = (dc_opt){"train", NULL, DC_OPT_STRING, &e->train, 0, 0, NULL, 1, "SRC", "labelled training images (as --test)"};
        opts[no++] = (dc_opt){"test", NULL, DC_OPT_STRING, &e->test, 0, 0, NULL, 1, "SRC", "labelled test images (IDX with labels, CIFAR, class folders, pack)"};
    }
    if (e->is_knn) {
        opts[no++] = (dc_opt){"k", NULL, DC_OPT_INT, &e->k, 1, 4096, NULL, 0, "K", "neighbours (default 20)"};
        opts[no++] = (dc_opt){"temperature", NULL, DC_OPT_DOUBLE, &e->T, 1e-4, 100, NULL, 0, "T", "vote temperature"};
    }
    if (e->is_linear) {
        opts[no++] = (dc_opt){"epochs", NULL, DC_OPT_INT, &e->epochs, 1, 1e4, NULL, 0, "E", "probe training epochs"};
        opts[no++] = (dc_opt){"average", NULL, DC_OPT_INT, &e->average, 0, 1, NULL, 0, "0|1",
                              "1: the classifier is the mean of the SGD iterates of the second half of the epochs; "
                              "0: the last iterate (reads ill-conditioned features, as a trained final layer, low)"};
    }
    if (!e->is_knn) {
        opts[no++] = (dc_opt){"memory-mb", NULL, DC_OPT_I64, &e->memory_mb, 0, 1e12, NULL, 0, "MB",
                              "--layer all: features of layers extracted in one pass take at most MB "
                              "(0: half the available memory)"};
    }
    opts[no++] = (dc_opt){"layer", NULL, DC_OPT_STRING, &e->layer, 0, 0, NULL, 0, "NAME",
                          e->is_knn ? "final or convN" : "convN, final or all (every layer from one pass over the images)"};
    opts[no++] = (dc_opt){"json", NULL, DC_OPT_STRING, &e->json, 0, 0, NULL, 0, "F.json", "also write the results as JSON"};
    opts[no++] = (dc_opt){"record", NULL, DC_OPT_STRING, &e->record, 0, 0, NULL, 0, "RUN",
                          "also append the results to RUN/eval.jsonl (e.g. a random baseline beside a run)"};
    opts[no++] = (dc_opt){"sobel", NULL, DC_OPT_INT, &e->sobel, 0, 1, NULL, 0, "0|1", "Sobel stage for random:<preset>"};
    opts[no++] = (dc_opt){"seed", NULL, DC_OPT_I64, &e->seed, 0, 9.2e18, NULL, 0, "S", "seed (random weights, k-means, probe)"};
    opts[no++] = (dc_opt){"batch-size", NULL, DC_OPT_INT, &e->batch, 0, 4096, NULL, 0, "B", BATCH_HELP};
    opts[no++] = (dc_opt){"threads", NULL, DC_OPT_INT, &e->threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"};
    opts[no++] = (dc_opt){"max-images", NULL, DC_OPT_I64, &e->max_images, 0, 1e12, NULL, 0, "N",
                          "the first N images of each set only (0: all)"};
    opts[no++] = (dc_opt){"device", NULL, DC_OPT_STRING, &e->device, 0, 0, NULL, 0, "D", DEVICE_HELP};
    opts[no++] = (dc_opt){"precision", NULL, DC_OPT_CHOICE, &e->precision, 0, 0, "fp32|tf32", 0, "P", PRECISION_HELP};
    return no;
}

/* Opens the labelled sets and the network (or the pixel baseline). */
static dc_status eval_open(eval_job *e)
{
    dc_status s = dc_dataset_open(e->is_clusters ? e->data : e->train, NULL, &e->dtr);
    if (s == DC_OK && !e->is_clusters) s = dc_dataset_open(e->test, NULL, &e->dte);
    if (s == DC_OK && (!dc_dataset_labels(e->dtr) || (e->dte && !dc_dataset_labels(e->dte))))
        s = dc_set_error(DC_STATUS_ARG, "evaluation needs labelled images (IDX with its labels, CIFAR)");
    if (s != DC_OK) return s;
    e->ntr = nimg(e->dtr, e->max_images);
    e->nte = e->dte ? nimg(e->dte, e->max_images) : 0;
    int k = e->is_clusters && e->k == 0 ? dc_dataset_nclasses(e->dtr) : e->k;
    if ((e->is_knn || e->is_clusters) && k > e->ntr) /* before any feature is computed */
        return dc_set_error(DC_STATUS_ARG, "%s%d%s is more than the %lld %simages (set --k to at most %lld)",
                            e->k ? "--k " : "k = ", k, e->k ? "" : ", the number of classes,", (long long)e->ntr,
                            e->is_knn ? "training " : "", (long long)e->ntr);
    e->pixels = strcmp(e->weights, "pixels") == 0;
    if (e->pixels) {
        e->layer = "pixels";
        return DC_OK;
    }
    s = dc_model_open(&e->m, e->weights, dc_dataset_channels(e->dtr), e->sobel, (uint64_t)e->seed, e->batch, e->device,
                      e->precision, e->run, sizeof e->run);
    if (s != DC_OK) return s;
    dc_dataset_set_decode_hint(e->dtr, e->m.preset->eval_resize);
    if (e->dte) dc_dataset_set_decode_hint(e->dte, e->m.preset->eval_resize);
    if (e->run[0] && e->is_clusters) {
        char cpath[4200];
        snprintf(cpath, sizeof cpath, "%s/config.json", e->run);
        cJSON *cfg = NULL;
        double v;
        if (dc_json_read(cpath, &cfg) == DC_OK && dc_json_get_number(cfg, "dim_pca", cpath, &v) == DC_OK)
            e->run_dim = (int)v;
        cJSON_Delete(cfg);
    }
    return DC_OK;
}

static dc_status score_clusters(const eval_job *e, const char *lname, float *x, int64_t dim, cJSON *row)
{
    int k = e->k > 0 ? e->k : dc_dataset_nclasses(e->dtr);
    int dp = e->dim_pca;
    if (dp < 0) dp = e->pixels ? 0 : e->run_dim > 0 && strcmp(lname, "final") == 0 ? e->run_dim : dc_preset_dim_pca(e->m.preset);
    if (dp >= dim) dp = 0;
    char runs[48] = "";
    if (e->runs > 1) snprintf(runs, sizeof runs, "%d clusterings, each ", e->runs);
    dc_log_info("k-means (k = %d, %sbest of %d) on the %s features%s%d", k, runs, e->restarts, lname,
                dp ? ", PCA-whitened + L2, dimension " : " as they are, dimension ", dp ? dp : (int)dim);
    cJSON_AddNumberToObject(row, "pca", dp);
    dc_cluster_scores sc, sd;
    dc_status s = dc_eval_clusters_runs(&sc, &sd, x, e->ntr, (int)dim, dc_dataset_labels(e->dtr), k, dp, e->niter,
                                        e->restarts, e->runs, (uint64_t)e->seed);
    if (s != DC_OK) return s;
    if (e->runs > 1)
        printf("%-8s %8.4f ±%.4f %8.4f ±%.4f %8.4f ±%.4f\n", lname, sc.nmi, sd.nmi, sc.ari, sd.ari, sc.acc, sd.acc);
    else
        printf("%-8s %8.4f %8.4f %8.4f\n", lname, sc.nmi, sc.ari, sc.acc);
    cJSON_AddNumberToObject(row, "nmi", sc.nmi);
    cJSON_AddNumberToObject(row, "ari", sc.ari);
    cJSON_AddNumberToObject(row, "acc", sc.acc);
    cJSON_AddNumberToObject(row, "k", k);
    cJSON_AddNumberToObject(row, "runs", e->runs);
    if (e->runs > 1) {
        cJSON_AddNumberToObject(row, "nmi_sd", sd.nmi);
        cJSON_AddNumberToObject(row, "ari_sd", sd.ari);
        cJSON_AddNumberToObject(row, "acc_sd", sd.acc);
    }
    return DC_OK;
}

static dc_status score_knn(const eval_job *e, const char *lname, float *xtr, float *xte, int64_t dim,
                           cJSON *row)
{
    double top1;
    dc_status s = dc_knn_eval(&top1, xtr, dc_dataset_labels(e->dtr), e->ntr, xte, dc_dataset_labels(e->dte), e->nte,
                              (int)dim, dc_dataset_nclasses(e->dtr), e->k, e->T);
    if (s != DC_OK) return s;
    printf("%-8s %8.4f\n", lname, top1);
    cJSON_AddNumberToObject(row, "top1", top1);
    cJSON_AddNumberToObject(row, "k", e->k);
    return DC_OK;
}

static dc_status score_linear(const eval_job *e, const char *lname, float *xtr, float *xte, int64_t dim,
                              cJSON *row)
{
    dc_probe_params pp = dc_probe_params_default();
    pp.epochs = e->epochs;
    pp.average = e->average;
    pp.seed = (uint64_t)e->seed;
    int ctr = dc_dataset_nclasses(e->dtr), cte = dc_dataset_nclasses(e->dte);
    dc_probe_result pr;
    dc_status s = dc_linear_probe(&pr, xtr, dc_dataset_labels(e->dtr), e->ntr, xte, dc_dataset_labels(e->dte), e->nte,
                                  (int)dim, ctr > cte ? ctr : cte, &pp);
    if (s != DC_OK) return s;
    printf("%-8s %8.4f %8.4f\n", lname, pr.top1, pr.top5);
    cJSON_AddNumberToObject(row, "top1", pr.top1);
    if (pr.top5 >= 0) cJSON_AddNumberToObject(row, "top5", pr.top5);
    cJSON_AddNumberToObject(row, "lr", pr.lr);
    cJSON_AddNumberToObject(row, "probe_epochs", pp.epochs);
    cJSON_AddNumberToObject(row, "averaged", pp.average);
    cJSON_AddNumberToObject(row, "dim", (double)dim);
    return DC_OK;
}

/* How much the features of layers extracted together may take: --memory-mb,
 * else half the memory the system has available, else 4 GB. */
static int64_t feature_budget(int64_t memory_mb)
{
    if (memory_mb > 0) return memory_mb << 20;
    int64_t avail = dc_memory_available();
    return avail > 0 ? avail / 2 : (int64_t)4 << 30;
}

/* The layers named by --layer (all: conv1 … convN, then final) into a new
 * array of *n (caller frees). */
static dc_status eval_resolve(eval_job *e, eval_layer **out, int *n)
{
    int all = !e->is_knn && !e->pixels && strcmp(e->layer, "all") == 0, nconv = all ? dc_model_nconv(&e->m) : 0;
    *n = all ? nconv + 1 : 1;
    eval_layer *l = *out = dc_xcalloc((size_t)*n, sizeof *l);
    for (int q = 0; q < *n; q++) {
        if (!all) snprintf(l[q].name, sizeof l[q].name, "%s", e->layer);
        else if (q < nconv) snprintf(l[q].name, sizeof l[q].name, "conv%d", q + 1);
        else snprintf(l[q].name, sizeof l[q].name, "final");
        l[q].index = -1;
        if (e->pixels) continue;
        dc_status s = layer_resolve(&e->m, l[q].name, &l[q]);
        if (s != DC_OK) return s;
    }
    return DC_OK;
}

/* Features of the layers l[0..nl) for both sets, from one forward pass over
 * each set (the pixels for the baseline: nl = 1, l->dim set here); owned
 * results. */
static dc_status eval_features(eval_job *e, eval_layer *l, int nl, float **xtr, float **xte)
{
    if (e->pixels) {
        int64_t dim2 = 0;
        dc_status s = pixel_features(&xtr[0], &l->dim, e->dtr, e->ntr);
        if (s == DC_OK && e->dte) s = pixel_features(&xte[0], &dim2, e->dte, e->nte);
        if (s == DC_OK && dim2 && dim2 != l->dim)
            s = dc_set_error(DC_STATUS_ARG, "--weights pixels: the training and test images differ in size");
        return s;
    }
    int li[64], side[64];
    for (int q = 0; q < nl; q++) {
        li[q] = l[q].index;
        side[q] = l[q].pool_side;
        xtr[q] = dc_malloc((size_t)e->ntr * l[q].dim * sizeof(float), "features");
        xte[q] = e->dte ? dc_malloc((size_t)e->nte * l[q].dim * sizeof(float), "features") : NULL;
        if (!xtr[q] || (e->dte && !xte[q])) return DC_STATUS_NOMEM;
    }
    dc_status s = dc_extract_features_layers(xtr, &e->m, e->dtr, 0, e->ntr, nl, li, side, "features");
    if (s == DC_OK && e->dte) s = dc_extract_features_layers(xte, &e->m, e->dte, 0, e->nte, nl, li, side, "features");
    return s;
}

/* The rows of layers l[0..n), scored by the protocol: the layers extracted
 * together in groups whose features fit feature_budget(). */
static dc_status eval_layers(eval_job *e, eval_layer *l, int n, cJSON *rows)
{
    int64_t budget = feature_budget(e->memory_mb), images = e->ntr + e->nte;
    dc_status s = DC_OK;
    for (int i = 0; i < n && s == DC_OK;) {
        int j = i + 1; /* the group: [i, j) */
        int64_t bytes = images * l[i].dim * 4;
        while (j < n && j - i < 64 && bytes + images * l[j].dim * 4 <= budget) bytes += images * l[j++].dim * 4;
        if (j - i > 1)
            dc_log_info("layers %s to %s from one pass: %.1f GB of features", l[i].name, l[j - 1].name, bytes / 1e9);
        float *xtr[64] = {0}, *xte[64] = {0};
        s = eval_features(e, l + i, j - i, xtr, xte);
        for (int q = i; q < j; q++) {
            float *a = xtr[q - i], *b = xte[q - i];
            if (s == DC_OK) {
                cJSON *row = cJSON_CreateObject();
                cJSON_AddStringToObject(row, "layer", l[q].name);
                cJSON_AddItemToArray(rows, row);
                s = e->is_clusters ? score_clusters(e, l[q].name, a, l[q].dim, row)
                    : e->is_knn    ? score_knn(e, l[q].name, a, b, l[q].dim, row)
                                   : score_linear(e, l[q].name, a, b, l[q].dim, row);
                fflush(stdout);
            }
            dc_free(a);
            dc_free(b);
        }
        i = j;
    }
    return s;
}

/* The results to --json, RUN/eval.jsonl when the weights are a run, and
 * --record's RUN/eval.jsonl. */
static dc_status eval_save(const eval_job *e, cJSON *res)
{
    dc_status s = e->json ? dc_json_write(e->json, res) : DC_OK;
    const char *runs[2] = {e->run[0] ? e->run : NULL,
                           e->record && !(e->run[0] && strcmp(e->record, e->run) == 0) ? e->record : NULL};
    for (int i = 0; i < 2 && s == DC_OK; i++) {
        if (!runs[i]) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/eval.jsonl", runs[i]);
        s = dc_json_append_line(path, res);
    }
    return s;
}

/* `eval finetune`: the network trained with labels (dc/finetune.h). */
static int eval_finetune(int argc, char **argv)
{
    dc_finetune_args fa;
    dc_finetune_args_defaults(&fa);
    dc_opt opts[DC_FINETUNE_MAX_OPTS];
    int nopts = dc_finetune_option_table(&fa, opts, 1);
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "eval finetune", "--weights W --train SRC --test SRC [options]",
                      "Fine-tuning: the network trained with labels on a classification task, starting from W;\n"
                      "top-1/top-5 (multi-label: mAP) on the test set, logits summed over ten crops.",
                      opts, nopts, 0, argc, argv, &code))
        return code;
    dc_cli_set_threads(fa.threads);
    dc_finetune_args_finish(&fa);
    dc_finetune_config c = fa.c;
    const char *mode = fa.mode, *json = fa.json, *record = fa.record;
    const char *how = c.head_first ? "all, head first" : mode; /* the row's name */
    c.stop = dc_cli_stop_flag();
    dc_finetune_result r;
    dc_status s = dc_finetune_run(&c, &r);
    if (s == DC_STATUS_INTERRUPTED) {
        fprintf(stderr, "deepercluster eval finetune: %s\n", dc_last_error());
        return 130;
    }
    if (s == DC_OK) {
        if (r.map >= 0) {
            printf("%-8s %8s\n", "layer", "mAP");
            printf("%-8s %8.4f\n", "final", r.map);
        } else {
            printf("%-8s %8s %8s\n", "layer", "top1", "top5");
            printf("%-8s %8.4f %8.4f\n", "final", r.top1, r.top5);
        }
        fflush(stdout);
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "protocol", "finetune");
        cJSON_AddStringToObject(res, "weights", c.weights);
        cJSON_AddStringToObject(res, "mode", mode);
        cJSON_AddStringToObject(res, "device", r.device);
        /* a row as the other protocols' (the report's table): the "layer"
         * names the setting, so a random:<preset> baseline recorded with
         * --record RUN lands beside the run's own row */
        char setting[96];
        if (c.labels_per_class > 0) snprintf(setting, sizeof setting, "%s, %d per class", how, c.labels_per_class);
        else if (c.label_fraction > 0) snprintf(setting, sizeof setting, "%s, %g of the labels", how, c.label_fraction);
        else snprintf(setting, sizeof setting, "%s, all labels", how);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "layer", setting);
        if (r.top1 >= 0) cJSON_AddNumberToObject(row, "top1", r.top1);
        if (r.top5 >= 0) cJSON_AddNumberToObject(row, "top5", r.top5);
        if (r.map >= 0) cJSON_AddNumberToObject(row, "map", r.map);
        cJSON_AddNumberToObject(row, "lr", r.lr);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(res, "results"), row);
        cJSON_AddStringToObject(res, "layer", setting);
        if (r.top1 >= 0) cJSON_AddNumberToObject(res, "top1", r.top1);
        if (r.top5 >= 0) cJSON_AddNumberToObject(res, "top5", r.top5);
        if (r.map >= 0) cJSON_AddNumberToObject(res, "map", r.map);
        cJSON_AddNumberToObject(res, "lr", r.lr);
        if (r.val_top1 >= 0) cJSON_AddNumberToObject(res, "held_out_top1", r.val_top1);
        cJSON_AddNumberToObject(res, "head_first", c.head_first);
        if (c.head_first) cJSON_AddNumberToObject(res, "head_lr", r.head_lr);
        if (r.head_val_top1 >= 0) cJSON_AddNumberToObject(res, "head_held_out_top1", r.head_val_top1);
        cJSON_AddNumberToObject(res, "labels_per_class", c.labels_per_class);
        cJSON_AddNumberToObject(res, "label_fraction", c.label_fraction);
        cJSON_AddNumberToObject(res, "labelled", (double)r.labelled);
        cJSON_AddNumberToObject(res, "held_out", (double)r.held_out);
        cJSON_AddNumberToObject(res, "classes", r.nclasses);
        cJSON_AddNumberToObject(res, "epochs", r.epochs);
        cJSON_AddNumberToObject(res, "batch", r.batch);
        cJSON_AddNumberToObject(res, "crops", c.crops);
        cJSON_AddNumberToObject(res, "loss", r.loss);
        cJSON_AddNumberToObject(res, "seed", (double)c.seed);
        struct stat st;
        int is_run = stat(c.weights, &st) == 0 && S_ISDIR(st.st_mode);
        if (json) s = dc_json_write(json, res);
        const char *runs[2] = {is_run ? c.weights : NULL, record && !(is_run && strcmp(record, c.weights) == 0) ? record : NULL};
        for (int i = 0; i < 2 && s == DC_OK; i++) {
            if (!runs[i]) continue;
            char path[4200];
            snprintf(path, sizeof path, "%s/eval.jsonl", runs[i]);
            s = dc_json_append_line(path, res);
        }
        cJSON_Delete(res);
    }
    return finish(s, "eval finetune");
}

int dc_cmd_eval(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        FILE *f = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout : stderr;
        fprintf(f, "usage: deepercluster eval linear|knn|clusters|finetune [options]\n"
                   "       deepercluster eval <protocol> --help\n\n"
                   "  linear     linear probe on frozen features (top-1, top-5)\n"
                   "  knn        weighted k-nearest-neighbour classifier\n"
                   "  clusters   k-means on the features against the labels (NMI, ARI, accuracy)\n"
                   "  finetune   the network trained with labels from these weights (top-1, top-5)\n");
        return f == stdout ? DC_EXIT_OK : DC_EXIT_USAGE;
    }
    if (strcmp(argv[1], "finetune") == 0) return eval_finetune(argc - 1, argv + 1);
    eval_job e = {.proto = argv[1], .sobel = 1, .batch = 0, .dim_pca = -1, .niter = 20, .epochs = 10,
                  .average = 1, .restarts = 10, .runs = 1, .T = 0.07};
    e.is_linear = strcmp(e.proto, "linear") == 0;
    e.is_knn = strcmp(e.proto, "knn") == 0;
    e.is_clusters = strcmp(e.proto, "clusters") == 0;
    if (!e.is_linear && !e.is_knn && !e.is_clusters) {
        fprintf(stderr, "deepercluster eval: unknown protocol '%s' (linear, knn, clusters or finetune)\n", e.proto);
        return DC_EXIT_USAGE;
    }
    e.layer = e.is_linear ? "all" : "final";
    if (e.is_knn) e.k = 20;
    dc_opt opts[20];
    int no = eval_options(&e, opts);
    dc_args a;
    int code;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "eval %s", e.proto);
    if (!dc_cli_parse(&a, cmd, e.is_clusters ? "--weights W --data SRC [options]" : "--weights W --train SRC --test SRC [options]",
                      e.is_linear ? "Linear probe: a linear classifier on the frozen, average-pooled features of a\n"
                                    "layer (standardised columns, SGD with momentum, the iterates of the second\n"
                                    "half averaged), its learning rate chosen on 10% of the training set held out."
                      : e.is_knn ? "Weighted k-NN on L2-normalised features (cosine similarity, votes exp(sim/T))."
                                 : "k-means on the features, scored against the labels.",
                      opts, no, 0, argc - 1, argv + 1, &code))
        return code;
    dc_cli_set_threads(e.threads);
    cJSON *res = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(res, "results");
    cJSON_AddStringToObject(res, "protocol", e.proto);
    cJSON_AddStringToObject(res, "weights", e.weights);
    dc_status s = eval_open(&e);
    eval_layer *layers = NULL;
    int nl = 0;
    if (s == DC_OK) s = eval_resolve(&e, &layers, &nl);
    if (s == DC_OK && e.is_clusters && e.runs > 1) /* mean ± sd columns; "±" is two bytes */
        printf("%-8s %17s %17s %17s\n", "layer", "NMI ± sd", "ARI ± sd", "ACC ± sd");
    else if (s == DC_OK) /* the table's header once the inputs are known to be good */
        printf("%-8s %8s %8s %8s\n", "layer", e.is_clusters ? "NMI" : "top1",
               e.is_clusters ? "ARI" : e.is_linear ? "top5" : "", e.is_clusters ? "ACC" : "");
    if (s == DC_OK) s = eval_layers(&e, layers, nl, rows);
    dc_free(layers);
    /* single-layer results also at the top level: the contract keys */
    if (s == DC_OK && cJSON_GetArraySize(rows) == 1) {
        cJSON *r0 = cJSON_GetArrayItem(rows, 0), *it;
        cJSON_ArrayForEach(it, r0) cJSON_AddItemToObject(res, it->string, cJSON_Duplicate(it, 1));
    }
    if (s == DC_OK) s = eval_save(&e, res);
    cJSON_Delete(res);
    dc_model_free(&e.m);
    dc_dataset_close(e.dtr);
    dc_dataset_close(e.dte);
    return finish(s, cmd);
}
