/* rundir.c — the run directory (the contract is docs/run-directory.md: config.json,
 * log.txt, stats.jsonl, assignments/, checkpoints/): paths, the checkpoint
 * (weights, heads, momentum, counters, centroids; a fingerprint of the
 * options that must not change) written atomically and read back, the
 * notes of a resume that changed options, the list of skipped files.
 * Includes: train/run.h (dc/train.h, dc/cluster.h, dc/comm.h, dc/io.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

const char *dc_run_path(run_state *r, const char *name)
{
    size_t n = strlen(r->c->out);
    while (n > 1 && r->c->out[n - 1] == '/') n--; /* "RUN/" names RUN too */
    snprintf(r->path, sizeof r->path, "%.*s/%s", (int)n, r->c->out, name);
    return r->path;
}

dc_status dc_run_ensure_dir(const char *p)
{
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return dc_set_error(DC_STATUS_IO, "%s: cannot create directory: %s", p, strerror(errno));
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) return dc_set_error(DC_STATUS_IO, "%s: not a directory", p);
    return DC_OK;
}

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

dc_status dc_run_save_checkpoint(run_state *r, const progress_state *ps, const char *path)
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

dc_status dc_run_write_checkpoint(run_state *r, const progress_state *ps)
{
    if (r->rank != 0) return DC_OK;
    dc_status s = dc_run_save_checkpoint(r, ps, dc_run_path(r, "checkpoint.safetensors"));
    if (s) return s;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "epoch", ps->epoch);
    cJSON_AddNumberToObject(j, "step", ps->step);
    cJSON_AddNumberToObject(j, "assign_epoch", r->assign_epoch);
    cJSON_AddStringToObject(j, "weights", "checkpoint.safetensors");
    s = dc_json_write(dc_run_path(r, "checkpoint.json"), j);
    cJSON_Delete(j);
    return s;
}

static dc_status load_assignments(run_state *r, int epoch)
{
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d.npy", epoch);
    dc_array a;
    dc_status s = dc_npy_read(dc_run_path(r, name), &a);
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
        dc_run_build_groups(r);
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
    dc_status s = dc_st_open(dc_run_path(r, "checkpoint.safetensors"), &f);
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
    cJSON_AddStringToObject(j, "lr_schedule", c->lr_schedule ? c->lr_schedule : "constant");
    cJSON_AddNumberToObject(j, "warmup_epochs", c->warmup_epochs);
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
        cJSON_AddNumberToObject(j, "gpu_kmeans", c->gpu_kmeans);
    }
    cJSON_AddStringToObject(j, "version", DC_VERSION_STRING);
    return j;
}

dc_status dc_run_write_config(run_state *r)
{
    cJSON *j = config_json(r);
    dc_status s = dc_json_write(dc_run_path(r, "config.json"), j);
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
dc_status dc_run_note_resume(run_state *r, const progress_state *ps)
{
    cJSON *now = config_json(r), *was = NULL;
    dc_status s = dc_json_read(dc_run_path(r, "config.json"), &was);
    if (s != DC_OK) {
        dc_log_warn("%s; writing it anew", dc_last_error());
        s = dc_json_write(dc_run_path(r, "config.json"), now);
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
        s = dc_json_append_line(dc_run_path(r, "stats.jsonl"), line);
        cJSON_Delete(line);
        if (s == DC_OK) s = dc_json_write(dc_run_path(r, "config.json"), now);
    }
    cJSON_Delete(changed);
    cJSON_Delete(was);
    cJSON_Delete(now);
    return s;
}

/* The starting point: the run's checkpoint when there is one (*resumed = 1),
 * else --pretrained's weights, else the initialisation as it is. */
dc_status dc_run_start_state(run_state *r, progress_state *ps, int *resumed)
{
    struct stat st;
    dc_status s = DC_OK;
    *resumed = 0;
    if (stat(dc_run_path(r, "checkpoint.safetensors"), &st) == 0) {
        s = load_checkpoint(r, ps);
        if (s == DC_OK) {
            *resumed = 1;
            dc_log_info("resuming from %s: epoch %d, step %d", dc_run_path(r, "checkpoint.safetensors"), ps->epoch,
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
dc_status dc_run_write_skipped(run_state *r)
{
    const dc_dataset *d = r->d;
    dc_afile af;
    dc_status s = dc_afile_open(&af, dc_run_path(r, "skipped.tsv"));
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
