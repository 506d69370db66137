/* loop.c — the DeeperCluster training loop (SPEC §1, §4, §5; the original's
 * main.py): every R epochs, features of every image under the clustering
 * transform, PCA-whitening + L2, two-level k-means, heads reset; between
 * them, epochs of uniform sampling over pseudo-labels per super-class and
 * SGD on the two-level loss. The run directory holds the configuration,
 * log, per-epoch statistics, assignments and checkpoints; a run resumes
 * from its checkpoint, mid-epoch included, and SIGINT/SIGTERM write one
 * before stopping. Every random draw is keyed by (seed, epoch, position),
 * so a resumed run computes what an uninterrupted one does.
 * Includes: dc/train.h, dc/cluster.h, dc/data.h, dc/nn.h, dc/io.h. */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"
#include "dc/comm.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "dc/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The caller's stop request: nonzero (a signal number) stops the run. */
static int stop_requested(const dc_train_config *c) { return c->stop ? atomic_load(c->stop) : 0; }

/* Whether any rank was asked to stop: all of them must stop at the same
 * step, or the others would wait for it forever. Returns the signal. */
static int stop_agreed(const dc_train_config *c)
{
    int64_t v = stop_requested(c);
    if (c->comm && dc_comm_size(c->comm) > 1) {
        int64_t all[2] = {v, v != 0};
        if (dc_comm_allreduce_i64(c->comm, all, 2) != DC_OK) return 0;
        v = all[1] ? (v ? v : 15) : 0;
    }
    return (int)v;
}

void dc_train_config_defaults(dc_train_config *c, const char *method)
{
    memset(c, 0, sizeof *c);
    c->method = method ? method : "deepercluster";
    c->sobel = 1;
    c->crop_min_scale = 0; /* from the preset */
    c->reassignment = 3;
    c->dim_pca = 0; /* from the preset */
    c->niter = 10;
    c->lr = 0.05;
    c->wd = 1e-5;
    c->epochs = 0; /* from the preset */
    c->seed = 31;
    c->checkpoint_freq = 5;
    if (strcmp(c->method, "deepcluster") == 0) {
        c->super_classes = 1;
        c->rotnet = 0;
        c->k = 0; /* from the data */
    } else if (strcmp(c->method, "rotnet") == 0) {
        c->super_classes = 4;
        c->rotnet = 1;
        c->k = 1;
    } else {
        c->super_classes = 8;
        c->rotnet = 1;
        c->k = 0;
    }
    c->batch_size = 0; /* from the method and the preset */
}

int dc_train_default_batch(const char *method, const dc_preset *p)
{
    /* per super-class, for a global batch of 128: the methods' presets */
    int b = strcmp(method, "deepcluster") == 0 ? 128 : strcmp(method, "rotnet") == 0 ? 32 : 16;
    b = b * dc_preset_batch(p) / 128;
    return b > 0 ? b : 1;
}

/* What the program's options check, checked again for callers of the
 * library: NULL, or what to change. */
static const char *check_ranges(const dc_train_config *c, char *buf, size_t len)
{
    if (!c->method ||
        (strcmp(c->method, "deepercluster") && strcmp(c->method, "deepcluster") && strcmp(c->method, "rotnet"))) {
        snprintf(buf, len, "--method %s is not one of deepercluster, deepcluster, rotnet", c->method ? c->method : "(none)");
        return buf;
    }
    const struct {
        const char *name;
        double v, lo, hi;
    } r[] = {{"k", c->k, 0, 1e9}, {"super-classes", c->super_classes, 1, 1e6}, {"rotnet", c->rotnet, 0, 1},
             {"sobel", c->sobel, 0, 1}, {"crop-min-scale", c->crop_min_scale, 0, 1},
             {"reassignment", c->reassignment, 1, 1e6}, {"dim-pca", c->dim_pca, 0, 1e6}, {"niter", c->niter, 0, 1e6},
             {"warm-restart", c->warm_restart, 0, 1}, {"lr", c->lr, 1e-12, 100}, {"wd", c->wd, 0, 1},
             {"epochs", c->epochs, 0, 1e6}, {"batch-size", c->batch_size, 0, 1e5},
             {"epoch-size", (double)c->epoch_size, 0, 1e12}, {"workers", c->workers, 0, 256},
             {"threads", c->threads, 0, 4096}, {"seed", (double)c->seed, 0, 9.2e18},
             {"checkpoint-freq", c->checkpoint_freq, 0, 1e6}, {"max-images", c->max_images, 0, 2e9}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!(r[i].v >= r[i].lo && r[i].v <= r[i].hi)) { /* NaN fails too */
            snprintf(buf, len, "--%s: %.15g is out of range (must be between %.15g and %.15g)", r[i].name, r[i].v,
                     r[i].lo, r[i].hi);
            return buf;
        }
    return NULL;
}

const char *dc_train_config_resolve(dc_train_config *c, int64_t n, int side, char *buf, size_t len)
{
    if (check_ranges(c, buf, len)) return buf;
    if (!c->arch) c->arch = side > 0 && side <= 32 ? "vgg-s32" : side > 0 && side <= 64 ? "vgg-s64" : "vgg16";
    const dc_preset *p = dc_preset_find(c->arch);
    if (!p) {
        snprintf(buf, len, "--arch %s is not a preset (presets: %s)", c->arch, dc_preset_names());
        return buf;
    }
    if (c->dim_pca == 0) c->dim_pca = dc_preset_dim_pca(p);
    if (c->epochs == 0) c->epochs = p->epochs > 0 ? p->epochs : 10;
    if (c->batch_size == 0) c->batch_size = dc_train_default_batch(c->method, p);
    if (c->crop_min_scale == 0) c->crop_min_scale = p->crop_min_scale > 0 ? p->crop_min_scale : 0.08;
    if (c->dim_pca > p->hidden) {
        snprintf(buf, len, "--dim-pca %d is larger than the %s feature dimension %d", c->dim_pca, c->arch, p->hidden);
        return buf;
    }
    if (c->rotnet && c->super_classes % 4 != 0) {
        snprintf(buf, len, "--super-classes %d is not a multiple of 4, which rotation needs (use a multiple of 4, or --rotnet 0)",
                 c->super_classes);
        return buf;
    }
    int m = c->rotnet ? c->super_classes / 4 : c->super_classes;
    if (c->k == 0) {
        /* about 150 images or more per cluster, a power of two: 64 for
         * 12,000 images, 256 for 60,000 (measured on Fashion-MNIST, README) */
        c->k = 2 * m;
        while ((int64_t)c->k * 2 * 150 <= n) c->k *= 2;
        if (c->k > n) c->k = (int)(n / m * m);
    }
    if (c->k < m || c->k % m != 0) {
        snprintf(buf, len, "--k %d is not a multiple of the %d super-clusters (choose k = %d x the sub-clusters per super-cluster)",
                 c->k, m, m);
        return buf;
    }
    if (c->k > n) {
        snprintf(buf, len, "--k %d is larger than the %lld images (use at most %lld clusters)", c->k, (long long)n,
                 (long long)n);
        return buf;
    }
    if (c->epoch_size == 0) {
        c->epoch_size = n / (4 * m) / c->batch_size * c->batch_size;
        if (c->epoch_size < c->batch_size) c->epoch_size = c->batch_size;
    }
    if (c->epoch_size < c->batch_size) {
        snprintf(buf, len, "--epoch-size %lld is smaller than --batch-size %d", (long long)c->epoch_size, c->batch_size);
        return buf;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    dc_train_config *c;
    const dc_dataset *d;
    int64_t n;
    int S, m, k_sub, B, C, size;
    dc_model model;
    dc_head sup;
    dc_head *subs;
    dc_stepper st;
    int32_t *assign;      /* (n, 2): super-cluster, sub-cluster          */
    int assign_epoch;     /* epoch of the clustering in use, -1: none     */
    int64_t *members;     /* image indices grouped by (super, sub)        */
    int64_t *mstart;      /* (m·k_sub + 1) group boundaries               */
    int32_t **lists;      /* per super-class: the epoch's samples          */
    float *batch;         /* 2 slots of (rows, C, size, size): the step's
                             batch and, with loader workers, the next    */
    int32_t *tsup, *tsub; /* 2 slots of (rows)                            */
    size_t slot_floats;   /* floats per batch slot                        */
    dc_loader *loader;    /* NULL: batches made between steps             */
    int cur_epoch;        /* the epoch the loader's jobs belong to        */
    float *tmp;           /* per-thread transform scratch                 */
    size_t tmpn;
    dc_image_buf *bufs;   /* per-thread decoding buffers                  */
    int nth;
    float *cent_super, *cent_sub; /* previous centroids (warm restart)    */
    int have_cent;
    double nmi_prev;      /* of the last clustering, NAN before a second */
    int rank, W;          /* this process among the run's                  */
    dc_comm *self;        /* a one-rank communicator when c->comm is NULL */
    int lo, hi;           /* its rows of each global batch (S·B)           */
    dc_device dev;        /* where the network computes                     */
    char path[4096];
} run_state;

static const char *run_path(run_state *r, const char *name)
{
    size_t n = strlen(r->c->out);
    while (n > 1 && r->c->out[n - 1] == '/') n--; /* "RUN/" names RUN too */
    snprintf(r->path, sizeof r->path, "%.*s/%s", (int)n, r->c->out, name);
    return r->path;
}

static dc_status ensure_dir(const char *p)
{
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return dc_set_error(DC_STATUS_IO, "%s: cannot create directory: %s", p, strerror(errno));
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) return dc_set_error(DC_STATUS_IO, "%s: not a directory", p);
    return DC_OK;
}

/* Image i's cluster as one index over all k: super · k/m + sub. */
static int32_t flat_cluster(const run_state *r, int64_t i)
{
    return r->assign[2 * i] * r->k_sub + r->assign[2 * i + 1];
}

/* Groups images by (super, sub) cluster for the sampler. */
static void build_groups(run_state *r)
{
    int G = r->m * r->k_sub;
    memset(r->mstart, 0, (size_t)(G + 1) * sizeof *r->mstart);
    for (int64_t i = 0; i < r->n; i++) r->mstart[flat_cluster(r, i) + 1]++;
    for (int g = 0; g < G; g++) r->mstart[g + 1] += r->mstart[g];
    int64_t *pos = dc_xmalloc((size_t)G * sizeof *pos);
    memcpy(pos, r->mstart, (size_t)G * sizeof *pos);
    for (int64_t i = 0; i < r->n; i++) r->members[pos[flat_cluster(r, i)]++] = i;
    dc_free(pos);
}

/* SPEC §5 sampling for super-class s: epoch_size images drawn from its
 * super-cluster, the same number per non-empty sub-cluster (with
 * replacement only for sub-clusters too small), shuffled; as the original's
 * DistUnifTargSampler. Entries encode image·k_sub + sub-cluster. */
static void sample_epoch(run_state *r, int epoch, int s)
{
    int c = r->c->rotnet ? s / 4 : s;
    dc_sample_uniform(r->lists[s], r->c->epoch_size, r->members, r->mstart + (size_t)c * r->k_sub, r->k_sub, r->n,
                      (uint64_t)r->c->seed, (uint32_t)epoch, (uint32_t)s);
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                              */
/* ------------------------------------------------------------------------ */

typedef struct {
    int epoch, step;           /* next to run                                */
    double sums[7];            /* partial epoch: loss, super, sub, hits ×3, n */
    double seconds;
} progress_state;

static char *fingerprint(const run_state *r, char *buf, size_t n)
{
    const dc_train_config *c = r->c;
    snprintf(buf, n, "arch=%s sobel=%d S=%d rotnet=%d k=%d batch=%d epoch_size=%lld seed=%lld data_n=%lld",
             c->arch, c->sobel, c->super_classes, c->rotnet, c->k, c->batch_size, (long long)c->epoch_size,
             (long long)c->seed, (long long)r->n);
    if (c->crop_min_scale != 0.08) { /* only when not the default: older runs keep resuming */
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, " crop=%g", c->crop_min_scale);
    }
    return buf;
}

/* The value of `key` in a fingerprint ("k=v k=v ..."), copied into val;
 * 0 when absent. */
static int fp_value(const char *fp, const char *key, char *val, size_t n)
{
    size_t kl = strlen(key);
    for (const char *t = fp; *t; t += strcspn(t, " "), t += strspn(t, " ")) {
        if (strncmp(t, key, kl) == 0 && t[kl] == '=') {
            snprintf(val, n, "%.*s", (int)strcspn(t + kl + 1, " "), t + kl + 1);
            return 1;
        }
    }
    return 0;
}

/* "k: 16 in the run, 32 now; ..." for each setting two fingerprints differ in. */
static void fingerprint_diff(const char *run, const char *now, char *buf, size_t n)
{
    buf[0] = '\0';
    const char *fps[2] = {now, run};
    for (int side = 0; side < 2; side++) {
        for (const char *t = fps[side]; *t; t += strcspn(t, " "), t += strspn(t, " ")) {
            char key[64], a[128], b[128];
            snprintf(key, sizeof key, "%.*s", (int)strcspn(t, "= "), t);
            int in_run = fp_value(run, key, a, sizeof a), in_now = fp_value(now, key, b, sizeof b);
            if ((side == 1 && in_now) || (in_run && in_now && strcmp(a, b) == 0)) continue;
            size_t len = strlen(buf);
            snprintf(buf + len, n - len, "%s%s: %s in the run, %s now", len ? "; " : "", key,
                     in_run ? a : "default", in_now ? b : "default");
        }
    }
}

static dc_status save_checkpoint(run_state *r, const progress_state *ps, const char *path)
{
    if (r->rank != 0) return DC_OK;
    /* on a GPU: the weights, heads and momentum it holds */
    dc_status ss = dc_step_sync(&r->st, &r->model, &r->sup, r->subs, 1);
    if (ss) return ss;
    dc_st_writer *w = dc_st_writer_new();
    dc_model_add_tensors(&r->model, w);
    int D = r->model.feat_dim, S = r->S, K = r->k_sub;
    dc_st_writer_add(w, "optimizer.body.momentum", DC_DTYPE_F32, 1, (int64_t[]){r->model.nparams}, r->st.momentum);
    dc_st_writer_add(w, "head.super.weight", DC_DTYPE_F32, 2, (int64_t[]){S, D}, r->sup.w);
    dc_st_writer_add(w, "head.super.bias", DC_DTYPE_F32, 1, (int64_t[]){S}, r->sup.b);
    dc_st_writer_add(w, "head.super.momentum_weight", DC_DTYPE_F32, 2, (int64_t[]){S, D}, r->sup.mw);
    dc_st_writer_add(w, "head.super.momentum_bias", DC_DTYPE_F32, 1, (int64_t[]){S}, r->sup.mb);
    size_t nw = (size_t)S * K * D, nb = (size_t)S * K;
    float *sw = dc_xmalloc(nw * 4), *sb = dc_xmalloc(nb * 4), *smw = dc_xmalloc(nw * 4), *smb = dc_xmalloc(nb * 4);
    int32_t *has = dc_xmalloc((size_t)(S + 1) * 4);
    for (int s = 0; s < S; s++) {
        memcpy(sw + (size_t)s * K * D, r->subs[s].w, (size_t)K * D * 4);
        memcpy(sb + (size_t)s * K, r->subs[s].b, (size_t)K * 4);
        memcpy(smw + (size_t)s * K * D, r->subs[s].mw, (size_t)K * D * 4);
        memcpy(smb + (size_t)s * K, r->subs[s].mb, (size_t)K * 4);
        has[s] = r->subs[s].has_momentum;
    }
    has[S] = r->sup.has_momentum;
    dc_st_writer_add(w, "head.sub.weight", DC_DTYPE_F32, 3, (int64_t[]){S, K, D}, sw);
    dc_st_writer_add(w, "head.sub.bias", DC_DTYPE_F32, 2, (int64_t[]){S, K}, sb);
    dc_st_writer_add(w, "head.sub.momentum_weight", DC_DTYPE_F32, 3, (int64_t[]){S, K, D}, smw);
    dc_st_writer_add(w, "head.sub.momentum_bias", DC_DTYPE_F32, 2, (int64_t[]){S, K}, smb);
    dc_st_writer_add(w, "head.has_momentum", DC_DTYPE_I32, 1, (int64_t[]){S + 1}, has);
    if (r->c->warm_restart && r->have_cent) { /* where the next k-means starts */
        int64_t P = r->c->dim_pca;
        dc_st_writer_add(w, "cluster.super_centroids", DC_DTYPE_F32, 2, (int64_t[]){r->m, P}, r->cent_super);
        dc_st_writer_add(w, "cluster.sub_centroids", DC_DTYPE_F32, 2, (int64_t[]){r->c->k, P}, r->cent_sub);
    }
    char v[64], fp[512];
    dc_st_writer_set_meta(w, "format", "deepercluster-checkpoint");
    dc_st_writer_set_meta(w, "arch", r->c->arch);
    snprintf(v, sizeof v, "%d", r->c->sobel);
    dc_st_writer_set_meta(w, "sobel", v);
    snprintf(v, sizeof v, "%d", r->C);
    dc_st_writer_set_meta(w, "in_channels", v);
    dc_st_writer_set_meta(w, "version", "1");
    dc_st_writer_set_meta(w, "fingerprint", fingerprint(r, fp, sizeof fp));
#define META_I(key, val)                                  \
    do {                                                  \
        snprintf(v, sizeof v, "%lld", (long long)(val));  \
        dc_st_writer_set_meta(w, key, v);                 \
    } while (0)
    META_I("epoch", ps->epoch);
    META_I("step", ps->step);
    META_I("assign_epoch", r->assign_epoch);
    META_I("body_first", r->st.body_first);
    META_I("model_step", r->model.step);
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "sum%d", i);
        snprintf(v, sizeof v, "%.17g", ps->sums[i]);
        dc_st_writer_set_meta(w, key, v);
    }
    snprintf(v, sizeof v, "%.17g", ps->seconds);
    dc_st_writer_set_meta(w, "seconds", v);
#undef META_I
    dc_status s = dc_st_writer_write(w, path);
    dc_st_writer_free(w);
    dc_free(sw);
    dc_free(sb);
    dc_free(smw);
    dc_free(smb);
    dc_free(has);
    return s;
}

static dc_status write_checkpoint(run_state *r, const progress_state *ps)
{
    if (r->rank != 0) return DC_OK;
    dc_status s = save_checkpoint(r, ps, run_path(r, "checkpoint.safetensors"));
    if (s) return s;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "epoch", ps->epoch);
    cJSON_AddNumberToObject(j, "step", ps->step);
    cJSON_AddNumberToObject(j, "assign_epoch", r->assign_epoch);
    cJSON_AddStringToObject(j, "weights", "checkpoint.safetensors");
    s = dc_json_write(run_path(r, "checkpoint.json"), j);
    cJSON_Delete(j);
    return s;
}

static dc_status load_assignments(run_state *r, int epoch)
{
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d.npy", epoch);
    dc_array a;
    dc_status s = dc_npy_read(run_path(r, name), &a);
    if (s) return s;
    s = dc_array_expect(&a, r->path, DC_DTYPE_I32, 2, (int64_t[]){r->n, 2});
    if (s == DC_OK) {
        memcpy(r->assign, a.data, (size_t)r->n * 2 * sizeof(int32_t));
        for (int64_t i = 0; i < r->n && s == DC_OK; i++)
            if (r->assign[2 * i] < 0 || r->assign[2 * i] >= r->m || r->assign[2 * i + 1] < 0 ||
                r->assign[2 * i + 1] >= r->k_sub)
                s = dc_set_error(DC_STATUS_FORMAT, "%s: assignment out of range at row %lld", r->path, (long long)i);
    }
    dc_array_free(&a);
    if (s == DC_OK) {
        r->assign_epoch = epoch;
        build_groups(r);
    }
    return s;
}

/* The checkpoint's metadata `key`, a number: into *out, or an error naming
 * the key (a damaged or hand-edited file, not a crash). */
static dc_status meta_number(const dc_st_file *f, const char *key, const char **out)
{
    const char *v = dc_st_meta(f, key);
    char *end = NULL;
    if (v) (void)strtod(v, &end);
    if (!v || end == v || *end != '\0')
        return dc_set_error(DC_STATUS_FORMAT, "%s: metadata '%s' is missing or not a number", dc_st_path(f), key);
    *out = v;
    return DC_OK;
}

/* The counters a checkpoint records: epoch and step, the stepper's and the
 * model's positions, the running sums of the epoch's statistics, the
 * epoch's seconds and the epoch of the assignments in force. */
static dc_status load_counters(const dc_st_file *f, run_state *r, progress_state *ps, int *assign_epoch)
{
    static const char *const keys[] = {"epoch", "step", "body_first", "model_step", "sum0", "sum1", "sum2",
                                       "sum3", "sum4", "sum5", "sum6", "seconds", "assign_epoch"};
    const char *v[sizeof keys / sizeof keys[0]];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        dc_status s = meta_number(f, keys[i], &v[i]);
        if (s) return s;
    }
    ps->epoch = atoi(v[0]);
    ps->step = atoi(v[1]);
    r->st.body_first = atoi(v[2]);
    r->model.step = strtoull(v[3], NULL, 10);
    for (int i = 0; i < 7; i++) ps->sums[i] = strtod(v[4 + i], NULL);
    ps->seconds = strtod(v[11], NULL);
    *assign_epoch = atoi(v[12]);
    return DC_OK;
}

/* The centroids a --warm-restart run saved, when they fit this run's k and
 * dim_pca (after a change of --dim-pca the next k-means starts cold). */
static dc_status load_centroids(run_state *r, const dc_st_file *f)
{
    const dc_st_tensor *t = dc_st_find(f, "cluster.super_centroids");
    int64_t D = r->c->dim_pca;
    if (!t || t->ndim != 2 || t->shape[0] != r->m || t->shape[1] != D) return DC_OK;
    dc_status s = dc_st_read(f, "cluster.super_centroids", DC_DTYPE_F32, 2, (int64_t[]){r->m, D}, r->cent_super);
    if (s == DC_OK) s = dc_st_read(f, "cluster.sub_centroids", DC_DTYPE_F32, 2, (int64_t[]){r->c->k, D}, r->cent_sub);
    r->have_cent = s == DC_OK;
    return s;
}

static dc_status load_checkpoint(run_state *r, progress_state *ps)
{
    dc_st_file *f;
    dc_status s = dc_st_open(run_path(r, "checkpoint.safetensors"), &f);
    if (s) return s;
    char fp[512];
    const char *fmt = dc_st_meta(f, "format"), *have = dc_st_meta(f, "fingerprint");
    if (!fmt || strcmp(fmt, "deepercluster-checkpoint") != 0) {
        s = dc_set_error(DC_STATUS_FORMAT, "%s: not a deepercluster checkpoint", dc_st_path(f));
    } else if (!have || strcmp(have, fingerprint(r, fp, sizeof fp)) != 0) {
        char diff[1024];
        fingerprint_diff(have ? have : "", fp, diff, sizeof diff);
        s = dc_set_error(DC_STATUS_ARG,
                         "%s holds a run with other settings (%s); resume with the same options, or choose another --out",
                         r->c->out, diff);
    }
    int D = r->model.feat_dim, S = r->S, K = r->k_sub;
    if (s == DC_OK) s = dc_model_load_tensors(&r->model, f);
    if (s == DC_OK)
        s = dc_st_read(f, "optimizer.body.momentum", DC_DTYPE_F32, 1, (int64_t[]){r->model.nparams}, r->st.momentum);
    if (s == DC_OK) s = dc_st_read(f, "head.super.weight", DC_DTYPE_F32, 2, (int64_t[]){S, D}, r->sup.w);
    if (s == DC_OK) s = dc_st_read(f, "head.super.bias", DC_DTYPE_F32, 1, (int64_t[]){S}, r->sup.b);
    if (s == DC_OK) s = dc_st_read(f, "head.super.momentum_weight", DC_DTYPE_F32, 2, (int64_t[]){S, D}, r->sup.mw);
    if (s == DC_OK) s = dc_st_read(f, "head.super.momentum_bias", DC_DTYPE_F32, 1, (int64_t[]){S}, r->sup.mb);
    size_t nw = (size_t)S * K * D, nb = (size_t)S * K;
    float *sw = dc_xmalloc(nw * 4), *sb = dc_xmalloc(nb * 4), *smw = dc_xmalloc(nw * 4), *smb = dc_xmalloc(nb * 4);
    int32_t *has = dc_xmalloc((size_t)(S + 1) * 4);
    if (s == DC_OK) s = dc_st_read(f, "head.sub.weight", DC_DTYPE_F32, 3, (int64_t[]){S, K, D}, sw);
    if (s == DC_OK) s = dc_st_read(f, "head.sub.bias", DC_DTYPE_F32, 2, (int64_t[]){S, K}, sb);
    if (s == DC_OK) s = dc_st_read(f, "head.sub.momentum_weight", DC_DTYPE_F32, 3, (int64_t[]){S, K, D}, smw);
    if (s == DC_OK) s = dc_st_read(f, "head.sub.momentum_bias", DC_DTYPE_F32, 2, (int64_t[]){S, K}, smb);
    if (s == DC_OK) s = dc_st_read(f, "head.has_momentum", DC_DTYPE_I32, 1, (int64_t[]){S + 1}, has);
    if (s == DC_OK) {
        for (int q = 0; q < S; q++) {
            memcpy(r->subs[q].w, sw + (size_t)q * K * D, (size_t)K * D * 4);
            memcpy(r->subs[q].b, sb + (size_t)q * K, (size_t)K * 4);
            memcpy(r->subs[q].mw, smw + (size_t)q * K * D, (size_t)K * D * 4);
            memcpy(r->subs[q].mb, smb + (size_t)q * K, (size_t)K * 4);
            r->subs[q].has_momentum = has[q];
        }
        r->sup.has_momentum = has[S];
        int ae = -1;
        s = load_counters(f, r, ps, &ae);
        if (s == DC_OK) s = load_centroids(r, f);
        if (s == DC_OK && ae >= 0) s = load_assignments(r, ae);
    }
    dc_free(sw);
    dc_free(sb);
    dc_free(smw);
    dc_free(smb);
    dc_free(has);
    dc_st_close(f);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Clustering step (SPEC §4)                                                */
/* ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* assignments/epoch-NNN-nearest.npy, int64 (k, NEAREST): for each cluster
 * (super · k_sub + sub) the images nearest its centroid in the whitened
 * space, nearest first, -1 past its size: what the report shows. */
#define NEAREST 16
static dc_status write_nearest(run_state *r, int epoch, const float *x, const dc_hkmeans_result *h)
{
    int k = r->c->k, d = r->c->dim_pca;
    int64_t *best = dc_malloc((size_t)k * NEAREST * sizeof(int64_t), "nearest members");
    float *dist = dc_malloc((size_t)k * NEAREST * sizeof(float), "nearest distances");
    int *cnt = dc_calloc((size_t)k, sizeof(int), "nearest counts");
    if (!best || !dist || !cnt) {
        dc_free(best);
        dc_free(dist);
        dc_free(cnt);
        return DC_STATUS_NOMEM;
    }
    for (int64_t i = 0; i < (int64_t)k * NEAREST; i++) best[i] = -1;
    for (int64_t i = 0; i < r->n; i++) {
        int c = h->super[i] * r->k_sub + h->sub[i];
        const float *cen = h->sub_centroids + (size_t)c * d, *xi = x + i * d;
        float dd = 0;
        for (int j = 0; j < d; j++) dd += (xi[j] - cen[j]) * (xi[j] - cen[j]);
        /* insertion into the cluster's sorted list of at most NEAREST */
        int64_t *bi = best + (size_t)c * NEAREST;
        float *di = dist + (size_t)c * NEAREST;
        int m = cnt[c];
        if (m == NEAREST && dd >= di[m - 1]) continue;
        int pos = m < NEAREST ? m : NEAREST - 1;
        while (pos > 0 && di[pos - 1] > dd) {
            di[pos] = di[pos - 1];
            bi[pos] = bi[pos - 1];
            pos--;
        }
        di[pos] = dd;
        bi[pos] = i;
        if (m < NEAREST) cnt[c] = m + 1;
    }
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d-nearest.npy", epoch);
    dc_status s = dc_npy_write(run_path(r, name), DC_DTYPE_I64, 2, (int64_t[]){k, NEAREST}, best);
    dc_free(best);
    dc_free(dist);
    dc_free(cnt);
    return s;
}

/* Every rank's rows [n·q/W, n·(q+1)/W) of feat (n, D), to every rank. */
static dc_status gather_rows(run_state *r, float *feat, int D)
{
    size_t *cnt = dc_xmalloc((size_t)r->W * sizeof *cnt);
    for (int q = 0; q < r->W; q++)
        cnt[q] = (size_t)(r->n * (q + 1) / r->W - r->n * q / r->W) * D * sizeof(float);
    int64_t lo = r->n * r->rank / r->W;
    float *mine = dc_malloc(cnt[r->rank] ? cnt[r->rank] : 1, "feature share");
    dc_status s = mine ? DC_OK : DC_STATUS_NOMEM;
    if (s == DC_OK) {
        memcpy(mine, feat + lo * D, cnt[r->rank]);
        s = dc_comm_allgatherv(r->c->comm, mine, cnt[r->rank], feat, cnt);
    }
    dc_free(mine);
    dc_free(cnt);
    return s;
}

/* The PCA rank 0 fitted (status s there), to every rank: one fit, so that
 * no rank whitens differently. */
static dc_status share_pca(run_state *r, dc_pca *p, dc_status s, int din, int dout)
{
    const dc_comm *cm = r->c->comm;
    int64_t ok = s == DC_OK;
    dc_status cs = dc_comm_bcast(cm, &ok, sizeof ok, 0);
    if (cs) return cs;
    if (!ok) return r->rank == 0 ? s : dc_set_error(DC_STATUS_INTERNAL, "the PCA failed on rank 0");
    if (r->rank != 0) {
        p->d_in = din;
        p->d_out = dout;
        p->mean = dc_xmalloc((size_t)din * sizeof(float));
        p->proj = dc_xmalloc((size_t)dout * din * sizeof(float));
        p->eigvals = dc_xmalloc((size_t)dout * sizeof(float));
    }
    if ((cs = dc_comm_bcast(cm, p->mean, (size_t)din * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, p->proj, (size_t)dout * din * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, p->eigvals, (size_t)dout * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, &p->energy, sizeof p->energy, 0)))
        return cs;
    return DC_OK;
}

/* assignments/epoch-NNN.npy (int32, N x 2: super, sub) and .tsv: one line
 * per image, its file (image folders, lists) or its index, then super, sub. */
static dc_status write_assignments(run_state *r, int epoch)
{
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d.npy", epoch);
    dc_status s = dc_npy_write(run_path(r, name), DC_DTYPE_I32, 2, (int64_t[]){r->n, 2}, r->assign);
    if (s != DC_OK) return s;
    snprintf(name, sizeof name, "assignments/epoch-%03d.tsv", epoch);
    dc_afile af;
    s = dc_afile_open(&af, run_path(r, name));
    if (s != DC_OK) return s;
    int paths = r->n > 0 && dc_dataset_path(r->d, 0) != NULL;
    const char *head = paths ? "path\tsuper\tsub\n" : "index\tsuper\tsub\n";
    dc_afile_write(&af, head, strlen(head));
    char line[64];
    for (int64_t i = 0; i < r->n; i++) {
        if (paths) {
            const char *p = dc_dataset_path(r->d, i);
            dc_afile_write(&af, p, strlen(p));
        } else {
            int len = snprintf(line, sizeof line, "%lld", (long long)i);
            dc_afile_write(&af, line, (size_t)len);
        }
        int len = snprintf(line, sizeof line, "\t%d\t%d\n", r->assign[2 * i], r->assign[2 * i + 1]);
        dc_afile_write(&af, line, (size_t)len);
    }
    return dc_afile_commit(&af);
}

/* The features of every image under the clustering transform, whitened
 * by a PCA fitted on a sample of them (rank 0 fits, saves and shares it),
 * L2-normalised, into x (n × dim_pca). */
static dc_status whiten_features(run_state *r, int epoch, float *x, cJSON *j)
{
    dc_train_config *c = r->c;
    int D = r->model.feat_dim;
    float *feat = dc_malloc((size_t)r->n * D * sizeof(float), "features");
    if (!feat) return DC_STATUS_NOMEM;
    /* each rank its share of the images, then all of them everywhere */
    int64_t flo = r->n * r->rank / r->W, fhi = r->n * (r->rank + 1) / r->W;
    dc_status s = dc_extract_features_range(feat + flo * D, &r->model, r->d, flo, fhi - flo, r->model.nlayers - 1, 0,
                                            "features");
    if (r->W > 1 && s == DC_OK) s = gather_rows(r, feat, D);
    dc_pca pca = {0};
    if (r->rank == 0 && s == DC_OK)
        s = dc_pca_fit_sample(&pca, feat, r->n, D, c->dim_pca, (int64_t)D * (D - 1) / 2,
                              (uint64_t)c->seed * 1000003u + (uint64_t)epoch);
    if (r->W > 1) s = share_pca(r, &pca, s, D, c->dim_pca);
    if (s == DC_OK) {
        dc_pca_apply(&pca, x, feat, r->n, 1);
        if (r->rank == 0) s = dc_pca_save(&pca, run_path(r, "pca.safetensors"));
        cJSON_AddNumberToObject(j, "pca_energy", pca.energy);
    }
    dc_pca_free(&pca);
    dc_free(feat);
    return s;
}

/* Cluster sizes: min / median / max to the log and stats, and a warning
 * when one cluster holds most of the data. */
static void record_sizes(run_state *r, int epoch, const dc_hkmeans_result *h, cJSON *j)
{
    int k = r->c->k;
    int64_t *sz = dc_xmalloc((size_t)k * sizeof *sz);
    memcpy(sz, h->sub_counts, (size_t)k * sizeof *sz);
    qsort(sz, (size_t)k, sizeof *sz, cmp_i64);
    cJSON *o = cJSON_AddObjectToObject(j, "sizes");
    cJSON_AddNumberToObject(o, "min", (double)sz[0]);
    cJSON_AddNumberToObject(o, "median", (double)sz[k / 2]);
    cJSON_AddNumberToObject(o, "max", (double)sz[k - 1]);
    dc_log_info("clustering epoch %d: %d clusters, sizes min %lld / median %lld / max %lld, %d empty splits", epoch,
                k, (long long)sz[0], (long long)sz[k / 2], (long long)sz[k - 1], h->splits1 + h->splits2);
    if (k >= 4 && sz[k - 1] > r->n / 2)
        dc_log_warn("clusters collapse: one cluster holds %lld of %lld images", (long long)sz[k - 1],
                    (long long)r->n);
    dc_free(sz);
}

/* SPEC §4.1–4.5: whitened features, then two-level k-means into r->assign
 * (and the centroids, for --warm-restart). */
static dc_status cluster_images(run_state *r, int epoch, cJSON *j)
{
    dc_train_config *c = r->c;
    float *x = dc_malloc((size_t)r->n * c->dim_pca * sizeof(float), "whitened features");
    if (!x) return DC_STATUS_NOMEM;
    dc_status s = whiten_features(r, epoch, x, j);
    dc_hkmeans_result h = {0};
    if (s == DC_OK) {
        dc_kmeans_params kp = dc_kmeans_params_default();
        kp.k = c->k;
        kp.niter = c->niter;
        kp.seed = (uint64_t)c->seed * 1000003u + (uint64_t)epoch;
        kp.progress = 1;
        int warm = c->warm_restart && r->have_cent;
        if (!c->comm && !r->self) r->self = dc_comm_self();
        s = dc_hkmeans_train_dist(&h, c->comm ? c->comm : r->self, x, r->n, r->n * r->rank / r->W,
                                  r->n * (r->rank + 1) / r->W, c->dim_pca, r->m, &kp, warm ? r->cent_super : NULL,
                                  warm ? r->cent_sub : NULL);
    }
    if (s == DC_OK) {
        for (int64_t i = 0; i < r->n; i++) {
            r->assign[2 * i] = h.super[i];
            r->assign[2 * i + 1] = h.sub[i];
        }
        memcpy(r->cent_super, h.super_centroids, (size_t)r->m * c->dim_pca * 4);
        memcpy(r->cent_sub, h.sub_centroids, (size_t)c->k * c->dim_pca * 4);
        r->have_cent = 1;
        cJSON_AddNumberToObject(j, "objective_super", h.obj1);
        cJSON_AddNumberToObject(j, "objective_sub", h.obj2);
        cJSON_AddNumberToObject(j, "empty_splits", h.splits1 + h.splits2);
        record_sizes(r, epoch, &h, j);
    }
    if (s == DC_OK && r->rank == 0) s = write_nearest(r, epoch, x, &h);
    dc_hkmeans_result_free(&h);
    dc_free(x);
    return s;
}

/* The new assignment against the previous one (prev: NULL at the first)
 * and, when the data has labels (never used for training), against them. */
static void score_assignment(run_state *r, int epoch, const int32_t *prev, cJSON *j)
{
    int32_t *cur = dc_xmalloc((size_t)r->n * sizeof *cur);
    for (int64_t i = 0; i < r->n; i++) cur[i] = flat_cluster(r, i);
    if (prev) {
        double nmi;
        dc_nmi(&nmi, cur, prev, r->n);
        cJSON_AddNumberToObject(j, "nmi_prev", nmi);
        r->nmi_prev = nmi;
        dc_log_info("clustering epoch %d: NMI with the previous assignment %.4f", epoch, nmi);
    } else {
        cJSON_AddNullToObject(j, "nmi_prev");
    }
    const int32_t *lab = dc_dataset_labels(r->d);
    dc_cluster_scores sc;
    if (lab && r->c->k > 1 && dc_cluster_scores_compute(&sc, cur, lab, r->n) == DC_OK) {
        cJSON *o = cJSON_AddObjectToObject(j, "labels");
        cJSON_AddNumberToObject(o, "nmi", sc.nmi);
        cJSON_AddNumberToObject(o, "ari", sc.ari);
        if (sc.acc >= 0) cJSON_AddNumberToObject(o, "acc", sc.acc);
        cJSON_AddNumberToObject(o, "purity", sc.purity);
        dc_log_info("clusters against the labels (not used for training): NMI %.4f, ARI %.4f, purity %.4f", sc.nmi,
                    sc.ari, sc.purity);
    }
    dc_free(cur);
}

static dc_status cluster_step(run_state *r, int epoch)
{
    dc_train_config *c = r->c;
    double t0 = dc_time_now();
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "clustering");
    cJSON_AddNumberToObject(j, "epoch", epoch);
    int32_t *prev = NULL;
    if (r->assign_epoch >= 0) {
        prev = dc_xmalloc((size_t)r->n * sizeof *prev);
        for (int64_t i = 0; i < r->n; i++) prev[i] = flat_cluster(r, i);
    }
    dc_status s = DC_OK;
    if (c->k == 1 && r->m == 1) /* RotNet: no clustering, one pseudo-class */
        memset(r->assign, 0, (size_t)r->n * 2 * sizeof(int32_t));
    else
        s = cluster_images(r, epoch, j);
    if (s == DC_OK) {
        score_assignment(r, epoch, prev, j);
        if (r->rank == 0) s = write_assignments(r, epoch);
    }
    if (s == DC_OK) {
        r->assign_epoch = epoch;
        build_groups(r);
        /* SPEC §4.7: new heads, fresh momentum; the body is kept */
        if (r->m > 1) dc_head_reset(&r->sup, (uint64_t)c->seed, 1000u + (uint32_t)epoch, 0);
        for (int q = 0; q < r->S; q++) dc_head_reset(&r->subs[q], (uint64_t)c->seed, 1000u + (uint32_t)epoch, 1u + (uint32_t)q);
        dc_step_heads_changed(&r->st);
        cJSON_AddNumberToObject(j, "seconds", dc_time_now() - t0);
        if (r->rank == 0) s = dc_json_append_line(run_path(r, "stats.jsonl"), j);
    }
    cJSON_Delete(j);
    dc_free(prev);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Training epoch (SPEC §5)                                                 */
/* ------------------------------------------------------------------------ */

/* Row q of this rank's share of the global batch of (epoch, step), into
 * batch slot `slot`, with scratch t: a function of the seed, epoch and
 * sample only. Row q is sample (lo + q) % B of super-class (lo + q) / B. */
static dc_status fill_row(run_state *r, int slot, int epoch, int step, int q, int t)
{
    int B = r->B, C = r->C, size = r->size, rows = r->hi - r->lo;
    int64_t E = r->c->epoch_size;
    int g = r->lo + q, s = g / B, j = g % B;
    int32_t code = r->lists[s][(int64_t)step * B + j];
    int64_t img = code / r->k_sub;
    dc_rng rng;
    dc_rng_init(&rng, (uint64_t)r->c->seed, DC_RNG_STREAM_AUGMENT, (uint32_t)epoch,
                (uint32_t)((int64_t)s * E + (int64_t)step * B + j));
    dc_image im;
    if (dc_dataset_get(r->d, img, &r->bufs[t], &im) != DC_OK)
        return dc_set_error(DC_STATUS_FORMAT, "%s", dc_last_error());
    dc_transform_train_scale(r->batch + slot * r->slot_floats + (size_t)q * C * size * size, &im, size,
                             r->c->rotnet ? s % 4 : 0, &rng, r->tmp + (size_t)t * r->tmpn, r->c->crop_min_scale);
    r->tsup[(size_t)slot * rows + q] = s;
    r->tsub[(size_t)slot * rows + q] = code % r->k_sub;
    return DC_OK;
}

static dc_status loader_row(void *ctx, int slot, int64_t job, int row, int worker)
{
    run_state *r = ctx;
    return fill_row(r, slot, r->cur_epoch, (int)job, row, worker);
}

/* The batch of (epoch, step) into slot 0, on the OpenMP threads. */
static dc_status make_batch(run_state *r, int epoch, int step)
{
    dc_status st = DC_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int q = 0; q < r->hi - r->lo; q++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        if (fill_row(r, 0, epoch, step, q, t) != DC_OK) {
#pragma omp critical(dc_batch_error)
            if (st == DC_OK) st = dc_set_error(DC_STATUS_FORMAT, "%s", dc_last_error());
        }
    }
    return st;
}

/* Waits for the loader's jobs in flight (their results are not used). */
static void drain_loader(run_state *r)
{
    if (!r->loader) return;
    dc_loader_wait(r->loader, 0);
    dc_loader_wait(r->loader, 1);
    dc_clear_error();
}

/* The step's batch: made now, or waited for from the loader, which then
 * starts on the next one; *slot: where it lies. */
static dc_status next_batch(run_state *r, int epoch, int step, int steps, int *slot)
{
    int rows = r->hi - r->lo;
    *slot = 0;
    if (!r->loader) return make_batch(r, epoch, step);
    *slot = step % 2;
    dc_status s = dc_loader_wait(r->loader, *slot);
    if (s == DC_OK && step + 1 < steps) dc_loader_submit(r->loader, (step + 1) % 2, step + 1, rows);
    return s;
}

/* The epoch's line of stats.jsonl and the log (keys: the contract). */
static dc_status epoch_stats(run_state *r, const progress_state *ps, int epoch, double waited)
{
    dc_train_config *c = r->c;
    double n = ps->sums[6] > 0 ? ps->sums[6] : 1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "epoch");
    cJSON_AddNumberToObject(j, "epoch", epoch);
    cJSON_AddNumberToObject(j, "loss", ps->sums[0] / n);
    cJSON_AddNumberToObject(j, "prec", ps->sums[5] / n);
    cJSON_AddNumberToObject(j, "loss_super", ps->sums[1] / n);
    cJSON_AddNumberToObject(j, "prec_super", ps->sums[3] / n);
    cJSON_AddNumberToObject(j, "loss_sub", ps->sums[2] / n);
    cJSON_AddNumberToObject(j, "prec_sub", ps->sums[4] / n);
    cJSON_AddNumberToObject(j, "images", n);
    cJSON_AddNumberToObject(j, "seconds", ps->seconds);
    cJSON_AddNumberToObject(j, "images_per_s", ps->seconds > 0 ? n / ps->seconds : 0);
    cJSON_AddNumberToObject(j, "data_wait_s", waited);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    if (isfinite(r->nmi_prev)) cJSON_AddNumberToObject(j, "nmi_prev", r->nmi_prev);
    else cJSON_AddNullToObject(j, "nmi_prev");
    cJSON_AddNumberToObject(j, "assignment_epoch", r->assign_epoch);
    dc_log_info("epoch %d: loss %.4f (super %.4f, sub %.4f), prec %.3f (super %.3f, sub %.3f), %.1f images/s", epoch,
                ps->sums[0] / n, ps->sums[1] / n, ps->sums[2] / n, ps->sums[5] / n, ps->sums[3] / n, ps->sums[4] / n,
                ps->seconds > 0 ? n / ps->seconds : 0);
    dc_status s = r->rank == 0 ? dc_json_append_line(run_path(r, "stats.jsonl"), j) : DC_OK;
    cJSON_Delete(j);
    return s;
}

static void add_step(progress_state *ps, const dc_step_stats *st)
{
    ps->sums[0] += st->loss * st->n;
    ps->sums[1] += st->loss_super * st->n;
    ps->sums[2] += st->loss_sub * st->n;
    ps->sums[3] += st->correct_super;
    ps->sums[4] += st->correct_sub;
    ps->sums[5] += st->correct_both;
    ps->sums[6] += st->n;
}

static dc_status train_epoch(run_state *r, progress_state *ps)
{
    dc_train_config *c = r->c;
    int epoch = ps->epoch, steps = (int)(c->epoch_size / r->B);
    for (int s = 0; s < r->S; s++) sample_epoch(r, epoch, s);
    dc_progress_opts po = dc_progress_opts_default();
    po.unit = "step";
    char label[32];
    snprintf(label, sizeof label, "epoch %d", epoch);
    dc_progress *bar = dc_progress_start(label, (uint64_t)steps, &po);
    double t0 = dc_time_now(), waited = 0;
    int rows = r->hi - r->lo, sig = 0;
    dc_status s = DC_OK;
    r->cur_epoch = epoch;
    if (r->loader && ps->step < steps) dc_loader_submit(r->loader, ps->step % 2, ps->step, rows);
    for (int step = ps->step; step < steps && s == DC_OK && !sig; step++) {
        int slot;
        double tw = dc_time_now();
        s = next_batch(r, epoch, step, steps, &slot);
        waited += dc_time_now() - tw;
        if (s) break;
        dc_step_stats st;
        dc_step_compute(&r->st, &r->model, &r->sup, r->subs, r->batch + slot * r->slot_floats,
                        r->tsup + (size_t)slot * rows, r->tsub + (size_t)slot * rows, rows, &st);
        if ((s = dc_step_status(&r->st))) break;
        dc_step_sgd(&r->st, &r->model, &r->sup, r->subs, (float)c->lr, (float)c->wd);
        if ((s = dc_step_status(&r->st))) break;
        if (!isfinite(st.loss)) {
            s = dc_set_error(DC_STATUS_INTERNAL, "epoch %d step %d: the loss is not finite (%g); lower --lr (now %g)",
                             epoch, step, st.loss, c->lr);
            break;
        }
        add_step(ps, &st);
        ps->step = step + 1;
        char note[64];
        snprintf(note, sizeof note, "loss %.4f", ps->sums[0] / ps->sums[6]);
        dc_progress_set_note(bar, note);
        dc_progress_update(bar, (uint64_t)step + 1);
        sig = stop_agreed(c);
    }
    if (s || sig) drain_loader(r);
    dc_progress_finish(bar);
    if (s) return s;
    ps->seconds += dc_time_now() - t0;
    if (sig) {
        dc_log_warn("signal %d: writing a checkpoint at epoch %d, step %d", sig, epoch, ps->step);
        s = write_checkpoint(r, ps);
        return s ? s : dc_set_error(DC_STATUS_INTERRUPTED, "stopped by signal %d; run the same command to resume", sig);
    }
    return epoch_stats(r, ps, epoch, waited);
}

/* ------------------------------------------------------------------------ */
/* The run                                                                  */
/* ------------------------------------------------------------------------ */

static void run_free(run_state *r)
{
    dc_loader_stop(r->loader);
    dc_model_unpin_host(&r->model, r->batch);
    dc_model_free(&r->model);
    dc_head_free(&r->sup);
    for (int s = 0; s < r->S && r->subs; s++) dc_head_free(&r->subs[s]);
    dc_free(r->subs);
    dc_stepper_free(&r->st);
    dc_free(r->assign);
    dc_free(r->members);
    dc_free(r->mstart);
    for (int s = 0; s < r->S && r->lists; s++) dc_free(r->lists[s]);
    dc_free(r->lists);
    dc_free(r->batch);
    dc_free(r->tsup);
    dc_free(r->tsub);
    dc_free(r->tmp);
    for (int t = 0; t < r->nth && r->bufs; t++) dc_image_buf_free(&r->bufs[t]);
    dc_free(r->bufs);
    dc_free(r->cent_super);
    dc_free(r->cent_sub);
}

/* config.json's object: every resolved option. */
static cJSON *config_json(const run_state *r)
{
    const dc_train_config *c = r->c;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", c->data);
    if (c->labels) cJSON_AddStringToObject(j, "labels", c->labels);
    cJSON_AddStringToObject(j, "out", c->out);
    cJSON_AddStringToObject(j, "method", c->method);
    cJSON_AddStringToObject(j, "arch", c->arch);
    cJSON_AddNumberToObject(j, "images", (double)r->n);
    cJSON_AddNumberToObject(j, "k", c->k);
    cJSON_AddNumberToObject(j, "super_classes", c->super_classes);
    cJSON_AddNumberToObject(j, "super_clusters", r->m);
    cJSON_AddNumberToObject(j, "rotnet", c->rotnet);
    cJSON_AddNumberToObject(j, "sobel", c->sobel);
    cJSON_AddNumberToObject(j, "crop_min_scale", c->crop_min_scale);
    cJSON_AddNumberToObject(j, "reassignment", c->reassignment);
    cJSON_AddNumberToObject(j, "dim_pca", c->dim_pca);
    cJSON_AddNumberToObject(j, "niter", c->niter);
    cJSON_AddNumberToObject(j, "warm_restart", c->warm_restart);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "wd", c->wd);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "batch_size", c->batch_size);
    cJSON_AddNumberToObject(j, "epoch_size", (double)c->epoch_size);
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddNumberToObject(j, "checkpoint_freq", c->checkpoint_freq);
    if (c->pretrained) cJSON_AddStringToObject(j, "pretrained", c->pretrained);
    cJSON_AddNumberToObject(j, "max_images", c->max_images);
    char dev[512];
    cJSON_AddStringToObject(j, "device", r->dev.gpu < 0 ? "cpu" : (snprintf(dev, sizeof dev, "cuda:%d", r->dev.gpu), dev));
    cJSON_AddStringToObject(j, "device_name", dc_device_describe(&r->dev, dev, sizeof dev));
    if (r->dev.gpu >= 0) {
        cJSON_AddStringToObject(j, "precision", dc_precision_name(r->dev.precision));
        cJSON_AddNumberToObject(j, "autotune", r->dev.autotune);
    }
    cJSON_AddStringToObject(j, "version", DC_VERSION_STRING);
    return j;
}

static dc_status write_config(run_state *r)
{
    cJSON *j = config_json(r);
    dc_status s = dc_json_write(run_path(r, "config.json"), j);
    cJSON_Delete(j);
    return s;
}

/* Appends to *msg "key now (was old)" and to `changed` {"key": {"was", "now"}}. */
static void add_change(cJSON *changed, const char *key, const cJSON *was, const cJSON *now, char *msg, size_t n)
{
    cJSON *pair = cJSON_CreateObject();
    cJSON_AddItemToObject(pair, "was", was ? cJSON_Duplicate(was, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(pair, "now", now ? cJSON_Duplicate(now, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(changed, key, pair);
    char *a = was ? cJSON_PrintUnformatted(was) : NULL, *b = now ? cJSON_PrintUnformatted(now) : NULL;
    size_t len = strlen(msg);
    snprintf(msg + len, n - len, "%s%s %s (was %s)", len ? ", " : "", key, b ? b : "unset", a ? a : "unset");
    cJSON_free(a);
    cJSON_free(b);
}

/* A resumed run whose options outside the checkpoint's fingerprint differ
 * from its config.json (more epochs, another rate, other clustering
 * settings, threads): the change is logged, recorded in stats.jsonl as a
 * "resume" line, and config.json rewritten with the options now in force. */
static dc_status note_resume(run_state *r, const progress_state *ps)
{
    cJSON *now = config_json(r), *was = NULL;
    dc_status s = dc_json_read(run_path(r, "config.json"), &was);
    if (s != DC_OK) {
        dc_log_warn("%s; writing it anew", dc_last_error());
        s = dc_json_write(run_path(r, "config.json"), now);
        cJSON_Delete(now);
        return s;
    }
    cJSON *changed = cJSON_CreateObject(), *item;
    char msg[2048] = "";
    cJSON_ArrayForEach(item, now) {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(was, item->string);
        if (strcmp(item->string, "out") != 0 && !(old && cJSON_Compare(old, item, 1)))
            add_change(changed, item->string, old, item, msg, sizeof msg);
    }
    cJSON_ArrayForEach(item, was) {
        if (!cJSON_GetObjectItemCaseSensitive(now, item->string))
            add_change(changed, item->string, item, NULL, msg, sizeof msg);
    }
    if (cJSON_GetArraySize(changed) > 0) {
        dc_log_info("resuming with other options than the run's config.json: %s", msg);
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "type", "resume");
        cJSON_AddNumberToObject(line, "epoch", ps->epoch);
        cJSON_AddNumberToObject(line, "step", ps->step);
        cJSON_AddItemToObject(line, "changed", changed);
        changed = NULL;
        s = dc_json_append_line(run_path(r, "stats.jsonl"), line);
        cJSON_Delete(line);
        if (s == DC_OK) s = dc_json_write(run_path(r, "config.json"), now);
    }
    cJSON_Delete(changed);
    cJSON_Delete(was);
    cJSON_Delete(now);
    return s;
}

/* The run's buffers, allocated once: scratch per thread or loader worker,
 * assignments and cluster lists, the two batch slots, centroids. */
static dc_status run_buffers(run_state *r, int GB, int max_side)
{
    const dc_train_config *c = r->c;
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    if (c->workers > nth) nth = c->workers;
    r->tmpn = dc_transform_tmp_size(r->size, r->model.preset->eval_resize, 2 * max_side + 64, r->C);
    r->nth = nth;
    r->bufs = dc_xcalloc((size_t)nth, sizeof *r->bufs);
    r->assign = dc_calloc((size_t)r->n * 2, sizeof(int32_t), "assignments");
    r->members = dc_malloc((size_t)r->n * sizeof(int64_t), "cluster members");
    r->mstart = dc_calloc((size_t)c->k + 1, sizeof(int64_t), "cluster bounds");
    r->lists = dc_xcalloc((size_t)r->S, sizeof *r->lists);
    for (int q = 0; q < r->S; q++) r->lists[q] = dc_xmalloc((size_t)c->epoch_size * sizeof(int32_t));
    r->slot_floats = (size_t)GB * r->C * r->size * r->size;
    r->batch = dc_malloc(2 * r->slot_floats * sizeof(float), "batch");
    r->tsup = dc_malloc(2 * (size_t)GB * sizeof(int32_t), "targets");
    r->tsub = dc_malloc(2 * (size_t)GB * sizeof(int32_t), "targets");
    r->tmp = dc_malloc((size_t)nth * r->tmpn * sizeof(float), "transform scratch");
    r->cent_super = dc_calloc((size_t)r->m * c->dim_pca, sizeof(float), "centroids");
    r->cent_sub = dc_calloc((size_t)c->k * c->dim_pca, sizeof(float), "centroids");
    if (!r->assign || !r->members || !r->mstart || !r->batch || !r->tsup || !r->tsub || !r->tmp || !r->cent_super ||
        !r->cent_sub)
        return DC_STATUS_NOMEM;
    return DC_OK;
}

/* The starting point: the run's checkpoint when there is one (*resumed = 1),
 * else --pretrained's weights, else the initialisation as it is. */
static dc_status start_state(run_state *r, progress_state *ps, int *resumed)
{
    struct stat st;
    dc_status s = DC_OK;
    *resumed = 0;
    if (stat(run_path(r, "checkpoint.safetensors"), &st) == 0) {
        s = load_checkpoint(r, ps);
        if (s == DC_OK) {
            *resumed = 1;
            dc_log_info("resuming from %s: epoch %d, step %d", run_path(r, "checkpoint.safetensors"), ps->epoch,
                        ps->step);
        }
    } else if (r->c->pretrained) {
        dc_st_file *f;
        s = dc_st_open(r->c->pretrained, &f);
        if (s == DC_OK) {
            s = dc_model_load_tensors(&r->model, f);
            dc_st_close(f);
        }
        if (s == DC_OK) dc_log_info("starting from the weights in %s", r->c->pretrained);
    }
    /* on a GPU: what was loaded (all of it: the heads may be loaded too) */
    if (s == DC_OK) s = dc_step_sync(&r->st, &r->model, &r->sup, r->subs, 0);
    return s;
}

/* skipped.tsv: the files the dataset found broken, with the reason. */
static dc_status write_skipped(run_state *r)
{
    const dc_dataset *d = r->d;
    dc_afile af;
    dc_status s = dc_afile_open(&af, run_path(r, "skipped.tsv"));
    if (s != DC_OK) return s;
    dc_afile_write(&af, "path\treason\n", 12);
    for (int64_t i = 0; i < dc_dataset_nskipped(d); i++) {
        const char *p, *w;
        dc_dataset_skipped(d, i, &p, &w);
        dc_log_info("skipped %s: %s", p, w);
        dc_afile_write(&af, p, strlen(p));
        dc_afile_write(&af, "\t", 1);
        dc_afile_write(&af, w, strlen(w));
        dc_afile_write(&af, "\n", 1);
    }
    s = dc_afile_commit(&af);
    if (s == DC_OK && dc_dataset_nskipped(d))
        dc_log_warn("%lld broken files skipped: listed in %s", (long long)dc_dataset_nskipped(d), r->path);
    return s;
}

/* The run's shape from the resolved options: super-classes, clusters,
 * this rank's rows of each global batch. */
static dc_status run_init(run_state *r, dc_train_config *c, dc_dataset *d, int64_t n)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    r->d = d;
    r->n = n;
    r->S = c->super_classes;
    r->m = c->rotnet ? r->S / 4 : r->S;
    r->k_sub = c->k / r->m;
    r->B = c->batch_size;
    r->C = dc_dataset_channels(d);
    r->assign_epoch = -1;
    r->nmi_prev = NAN;
    r->W = c->comm ? dc_comm_size(c->comm) : 1;
    r->rank = c->comm ? dc_comm_rank(c->comm) : 0;
    if (r->W > r->S * r->B)
        return dc_set_error(DC_STATUS_ARG, "%d processes for a global batch of %d images: use at most %d", r->W,
                            r->S * r->B, r->S * r->B);
    r->lo = (int)((int64_t)r->S * r->B * r->rank / r->W);
    r->hi = (int)((int64_t)r->S * r->B * (r->rank + 1) / r->W);
    return DC_OK;
}

/* Refuses, before any buffer is filled, a run this machine cannot hold:
 * the network for this rank's share of the global batch, and the
 * clustering's features of every image (raw and whitened). */
static dc_status check_memory(const run_state *r)
{
    const dc_train_config *c = r->c;
    int64_t have = dc_memory_budget(), fixed, per;
    const dc_preset *p = dc_preset_find(c->arch);
    int rows = r->hi - r->lo;
    dc_status s = dc_model_device_fit(p, c->sobel, r->C, rows, &r->dev);
    if (s) {
        char why[600];
        snprintf(why, sizeof why, "%s", dc_last_error());
        return dc_set_error(s, "%s (each step holds --batch-size %d x %d super-classes%s)", why, r->B, r->S,
                            r->W > 1 ? ", shared by the processes" : "");
    }
    s = dc_model_memory(p, c->sobel, r->C, &fixed, &per);
    if (s || have <= 0) return s;
    int64_t feats = r->n * ((int64_t)p->hidden + c->dim_pca) * (int64_t)sizeof(float);
    int64_t net = r->dev.gpu >= 0 ? 0 : fixed + per * rows; /* on a GPU, its memory: just checked */
    if (net + feats <= have) return DC_OK;
    int64_t fit = (int64_t)dc_model_fit_batch(fixed + feats, per, have) * r->W / r->S;
    char advice[160];
    if (fit >= 1)
        snprintf(advice, sizeof advice, "use --batch-size %lld or less", (long long)fit);
    else
        snprintf(advice, sizeof advice, "not even --batch-size 1 fits: use fewer images (--max-images)%s",
                 strcmp(c->arch, "vgg-s32") ? " or a smaller --arch" : "");
    const double G = 1073741824.0;
    return dc_set_error(DC_STATUS_ARG,
                        "%s with --batch-size %d (%d images per step%s) needs about %.1f GiB of memory (%.1f for "
                        "the network, %.1f for the clustering's features of %lld images), more than the %.1f GiB "
                        "this machine allows: %s",
                        c->arch, r->B, rows, r->W > 1 ? " in this process" : "", (net + feats) / G, net / G,
                        feats / G, (long long)r->n, have / G, advice);
}

/* Network, heads, optimiser and the step's buffers, sized for this rank's
 * share of the global batch; d (the run's dataset) learns the decode size. */
static dc_status build_network(run_state *r, dc_dataset *d)
{
    dc_train_config *c = r->c;
    int GB = r->hi - r->lo;
    r->dev.autotune = c->autotune;
    dc_status s = dc_model_init_device(&r->model, dc_preset_find(c->arch), c->sobel, r->C, GB, (uint64_t)c->seed,
                                       &r->dev);
    if (s == DC_OK && r->dev.gpu >= 0) {
        char buf[512];
        dc_log_info("device %s, %s, %s convolution algorithms; %.2f GiB of GPU memory for the network",
                    dc_device_describe(&r->dev, buf, sizeof buf), dc_precision_name(r->dev.precision),
                    r->dev.autotune ? "timed" : "heuristic (deterministic)",
                    dc_model_device_bytes(&r->model) / 1073741824.0);
    }
    r->size = r->model.in_size;
    int D = r->model.feat_dim;
    if (s == DC_OK) s = dc_head_init(&r->sup, D, r->S, (uint64_t)c->seed, 999, 0);
    r->subs = dc_xcalloc((size_t)r->S, sizeof *r->subs);
    for (int q = 0; q < r->S && s == DC_OK; q++)
        s = dc_head_init(&r->subs[q], D, r->k_sub, (uint64_t)c->seed, 999, 1u + (uint32_t)q);
    if (s == DC_OK) s = dc_stepper_init(&r->st, &r->model, r->S, r->k_sub, GB);
    if (s == DC_OK) dc_step_use_comm(&r->st, &r->model, c->comm, r->lo);
    if (r->W > 1 && s == DC_OK) {
        int64_t bn, all = dc_step_comm_bytes(&r->st, &r->model, &bn);
        dc_log_info("%d processes: this one takes rows %d..%d of each global batch of %d", r->W, r->lo, r->hi - 1,
                    r->S * r->B);
        dc_log_info("each step all-reduces %.2f MB per process (batch norm %.1f KB in %d small reductions); "
                    "each k-means pass %.1f KB",
                    all / 1e6, bn / 1e3, 3 * r->model.nbn, ((double)c->k * c->dim_pca * 8 + c->k * 8 + 8) / 1e3);
    }
    if (s == DC_OK) {
        dc_dataset_set_decode_hint(d, r->model.preset->eval_resize);
        s = run_buffers(r, GB, dc_dataset_max_side(d));
        if (s == DC_OK) dc_model_pin_host(&r->model, r->batch, 2 * r->slot_floats * sizeof(float));
    }
    return s;
}

/* Clustering every R epochs, training, checkpoints: from ps to the last
 * epoch, or until an error or a stop signal. */
static dc_status run_epochs(run_state *r, progress_state *ps)
{
    dc_train_config *c = r->c;
    dc_status s = DC_OK;
    while (s == DC_OK && ps->epoch < c->epochs) {
        int epoch = ps->epoch;
        if (ps->step == 0 && (r->assign_epoch < 0 || epoch % c->reassignment == 0) && r->assign_epoch != epoch) {
            s = cluster_step(r, epoch);
            /* a checkpoint after clustering: a kill during the epoch keeps it */
            if (s == DC_OK) s = write_checkpoint(r, ps);
            if (s) break;
            int sig = stop_agreed(c);
            if (sig)
                return dc_set_error(DC_STATUS_INTERRUPTED, "stopped by signal %d; run the same command to resume",
                                    sig);
        }
        s = train_epoch(r, ps);
        if (s) break;
        ps->epoch++;
        ps->step = 0;
        memset(ps->sums, 0, sizeof ps->sums);
        ps->seconds = 0;
        s = write_checkpoint(r, ps);
        if (s == DC_OK && c->checkpoint_freq > 0 && ps->epoch % c->checkpoint_freq == 0) {
            char name[64];
            snprintf(name, sizeof name, "checkpoints/epoch-%03d.safetensors", ps->epoch);
            s = save_checkpoint(r, ps, run_path(r, name));
        }
    }
    return s;
}

static dc_status train_run(dc_train_config *c)
{
    if (!c->data || !c->out)
        return dc_set_error(DC_STATUS_ARG, "the images (data) and the run directory (out) are both needed");
    char why[512];
    if (check_ranges(c, why, sizeof why)) return dc_set_error(DC_STATUS_ARG, "%s", why);
    dc_dataset *d;
    dc_status s = dc_dataset_open(c->data, c->labels, &d);
    if (s) return s;
    int64_t n = dc_dataset_size(d);
    if (c->max_images > 0 && c->max_images < n) n = c->max_images;
    int side = dc_dataset_height(d) > dc_dataset_width(d) ? dc_dataset_height(d) : dc_dataset_width(d);
    if (dc_train_config_resolve(c, n, side, why, sizeof why)) {
        dc_dataset_close(d);
        return dc_set_error(DC_STATUS_ARG, "%s", why);
    }
    run_state r;
    FILE *log = NULL;
    if ((s = run_init(&r, c, d, n)) || (s = dc_device_parse(&r.dev, c->device, c->precision, dc_device_local_rank())) ||
        (s = check_memory(&r)) || (s = ensure_dir(c->out)) ||
        (s = ensure_dir(run_path(&r, "assignments"))) || (s = ensure_dir(run_path(&r, "checkpoints")))) {
        dc_dataset_close(d);
        return s;
    }
    log = r.rank == 0 ? fopen(run_path(&r, "log.txt"), "a") : NULL;
    if (r.rank == 0 && !log) {
        dc_dataset_close(d);
        return dc_set_error(DC_STATUS_IO, "%s: cannot write: %s", r.path, strerror(errno));
    }
    dc_log_set_tee(log);
    dc_log_info("deepercluster %s: %s", DC_VERSION_STRING, dc_dataset_describe(d));
    dc_log_info("%s: %s, %d super-classes (%d super-clusters%s), k = %d, %d epochs of %lld images per super-class, "
                "batch %d per super-class",
                c->method, c->arch, r.S, r.m, c->rotnet ? " x 4 rotations" : "", c->k, c->epochs,
                (long long)c->epoch_size, r.B);
    s = build_network(&r, d);
    /* a GPU should not wait for batches made between its steps: by default
     * loader threads prepare the next batch during each step (the same
     * batches, so the same bits) */
    int workers = c->workers;
#ifdef _OPENMP
    if (workers == 0 && r.dev.gpu >= 0) workers = omp_get_max_threads() > 2 ? omp_get_max_threads() - 1 : 1;
#else
    if (workers == 0 && r.dev.gpu >= 0) workers = 1;
#endif
    if (s == DC_OK && workers > 0) s = dc_loader_start(&r.loader, workers, 2, loader_row, &r);
    progress_state ps = {0};
    int resumed = 0;
    if (s == DC_OK) s = start_state(&r, &ps, &resumed);
    if (s == DC_OK && !resumed && r.rank == 0) s = write_config(&r);
    if (s == DC_OK && resumed && r.rank == 0) s = note_resume(&r, &ps);
    if (s == DC_OK && !resumed && r.rank == 0) s = write_skipped(&r);
    if (s == DC_OK) s = run_epochs(&r, &ps);
    if (s == DC_OK) dc_log_info("done: %d epochs; weights in %s", c->epochs, run_path(&r, "checkpoint.safetensors"));
    else if (s != DC_STATUS_INTERRUPTED) dc_log_error("%s", dc_last_error());
    dc_log_set_tee(NULL);
    if (log) fclose(log);
    run_free(&r);
    dc_comm_free(r.self);
    dc_dataset_close(d);
    return s;
}

dc_status dc_train_run(dc_train_config *c)
{
#ifdef _OPENMP
    /* c->threads for this run only: the caller's OpenMP setting comes back */
    int saved = omp_get_max_threads();
    if (c->threads > 0) omp_set_num_threads(c->threads);
#endif
    dc_status s = train_run(c);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    return s;
}
