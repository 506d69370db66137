/* finetune.c — transfer by fine-tuning (dc/finetune.h): the step (a
 * re-initialised classifier MLP and top layer, cross-entropy, clipping,
 * momentum SGD), the seeded class-balanced labelled subset and its
 * held-out part, the learning rate chosen on that part, ten-crop scoring,
 * and the state written after every epoch (and on a stop) so that a rerun
 * resumes to the same bytes.
 * On the GPU engine the body's forward, backward and the optimiser of its
 * parameters run on the device; the top layer (a few thousand weights)
 * stays on the host.
 * Includes: dc/finetune.h, dc/data.h, dc/kernels.h, dc/io.h, gpu/gpu.h. */
#include "dc/finetune.h"
#include "dc/data.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "gpu/gpu.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define FT_TAG 0x4654 /* "FT": the rng coordinate of fine-tuning's draws */

void dc_finetune_config_defaults(dc_finetune_config *c)
{
    memset(c, 0, sizeof *c);
    c->holdout = 0.1;
    c->crops = 10;
    c->sobel = 1;
}

/* ------------------------------------------------------------------------ */
/* The step                                                                 */
/* ------------------------------------------------------------------------ */

/* Calls fn(f, off, n) on each trained range of m->params. */
static void each_range(const dc_finetuner *f, void (*fn)(const dc_finetuner *, int64_t, int64_t, void *), void *ctx)
{
    const dc_model *m = f->m;
    if (f->mode == DC_FINETUNE_ALL) {
        fn(f, 0, m->nparams, ctx);
        return;
    }
    for (int i = f->from; i < m->nlayers; i++) {
        const dc_layer *l = &m->layers[i];
        if (l->kind != DC_LAYER_LINEAR) continue;
        fn(f, l->w_off, (int64_t)l->c * l->oc, ctx);
        fn(f, l->b_off, l->oc, ctx);
    }
}

static void normal_init(float *w, int64_t n, float *b, int64_t nb, uint64_t seed, uint32_t which)
{
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_INIT, FT_TAG, which);
    for (int64_t i = 0; i < n; i++) w[i] = (float)(0.01 * dc_rng_normal(&r));
    for (int64_t i = 0; i < nb; i++) b[i] = 0.1f;
}

void dc_finetuner_reset(dc_finetuner *f, uint64_t seed)
{
    dc_model *m = f->m;
    for (int i = 0; i < m->nlayers; i++) {
        dc_layer *l = &m->layers[i];
        if (l->kind == DC_LAYER_LINEAR)
            normal_init(m->params + l->w_off, (int64_t)l->c * l->oc, m->params + l->b_off, l->oc, seed, (uint32_t)i);
    }
    normal_init(f->hw, (int64_t)f->nclasses * m->feat_dim, f->hb, f->nclasses, seed, 0xffff);
    memset(f->mom, 0, (size_t)m->nparams * sizeof *f->mom);
    memset(f->hmw, 0, (size_t)f->nclasses * m->feat_dim * sizeof *f->hmw);
    memset(f->hmb, 0, (size_t)f->nclasses * sizeof *f->hmb);
    f->has_momentum = 0;
    (void)dc_finetuner_sync(f, 0); /* on the GPU engine: the re-initialised layers to the device */
}

/* A GPU failure kept as the model's (dc_model_status), the first one. */
static void gpu_status(dc_model *m, dc_status s)
{
    if (s != DC_OK && m->gpu_status == DC_OK) m->gpu_status = s;
}

dc_status dc_finetuner_sync(dc_finetuner *f, int to_host)
{
    dc_model *m = f->m;
    if (!m->gpu) return DC_OK;
    if (m->gpu_status != DC_OK) return m->gpu_status;
    dc_status s = dc_model_sync(m, to_host);
    if (s == DC_OK) s = dc_gpu_momentum_sync(m->gpu, m, f->mom, to_host);
    gpu_status(m, s);
    return s;
}

dc_status dc_finetuner_init(dc_finetuner *f, dc_model *m, int nclasses, dc_finetune_mode mode, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    DC_ASSERT(nclasses >= 1);
    f->m = m;
    f->mode = mode;
    f->nclasses = nclasses;
    f->wd = mode == DC_FINETUNE_ALL ? 1e-5 : 1e-6;
    f->momentum = 0.9;
    f->clip = mode == DC_FINETUNE_ALL ? 0 : 10;
    if (mode == DC_FINETUNE_CLASSIFIER) { /* the classifier MLP: from its first Linear on */
        f->from = 0;
        while (f->from < m->nlayers && m->layers[f->from].kind != DC_LAYER_LINEAR) f->from++;
        DC_ASSERT(f->from < m->nlayers);
    }
    int64_t F = m->feat_dim, C = nclasses, B = m->max_batch;
    f->hw = dc_malloc((size_t)(2 * C * F + 2 * C) * sizeof(float), "fine-tuning top layer");
    f->hdw = dc_malloc((size_t)(C * F + C) * sizeof(float), "fine-tuning top layer gradients");
    f->mom = dc_malloc((size_t)m->nparams * sizeof(float), "fine-tuning momentum");
    f->feat = dc_malloc((size_t)(3 * B * F + 3 * B * C) * sizeof(float), "fine-tuning batch buffers");
    if (!f->hw || !f->hdw || !f->mom || !f->feat) {
        dc_finetuner_free(f);
        return DC_STATUS_NOMEM;
    }
    f->hb = f->hw + C * F;
    f->hmw = f->hb + C;
    f->hmb = f->hmw + C * F;
    f->hdb = f->hdw + C * F;
    f->dfeat = f->feat + B * F;
    f->dbody = f->dfeat + B * F;
    f->logits = f->dbody + B * F;
    f->probs = f->logits + B * C;
    f->dlogits = f->probs + B * C;
    dc_finetuner_reset(f, seed);
    return DC_OK;
}

void dc_finetuner_free(dc_finetuner *f)
{
    if (!f) return;
    dc_free(f->hw);
    dc_free(f->hdw);
    dc_free(f->mom);
    dc_free(f->feat);
    memset(f, 0, sizeof *f);
}

/* The range operations: on the host's arrays, or on the device's where
 * the GPU engine holds the model. */
static void zero_range(const dc_finetuner *f, int64_t off, int64_t n, void *ctx)
{
    (void)ctx;
    memset(f->m->grads + off, 0, (size_t)n * sizeof(float));
}

static void sumsq_range(const dc_finetuner *f, int64_t off, int64_t n, void *ctx)
{
    double s = 0;
    if (f->m->gpu) {
        if (f->m->gpu_status == DC_OK) gpu_status(f->m, dc_gpu_grad_sumsq(f->m->gpu, f->m, off, n, &s));
    } else {
        const float *g = f->m->grads + off;
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    }
    *(double *)ctx += s;
}

static void scale_range(const dc_finetuner *f, int64_t off, int64_t n, void *ctx)
{
    float a = *(const float *)ctx, *g = f->m->grads + off;
    if (f->m->gpu) {
        if (f->m->gpu_status == DC_OK) gpu_status(f->m, dc_gpu_grad_scale(f->m->gpu, f->m, off, n, a));
        return;
    }
    for (int64_t i = 0; i < n; i++) g[i] *= a;
}

typedef struct {
    float lr;
} sgd_ctx;

static void sgd_range(const dc_finetuner *f, int64_t off, int64_t n, void *ctx)
{
    dc_model *m = f->m;
    float lr = ((sgd_ctx *)ctx)->lr;
    if (m->gpu) {
        if (m->gpu_status == DC_OK)
            gpu_status(m, dc_gpu_sgd(m->gpu, m, off, n, lr, (float)f->momentum, (float)f->wd, !f->has_momentum));
        return;
    }
    dc_sgd_step(m->params + off, m->grads + off, f->mom + off, n, lr, (float)f->momentum, (float)f->wd,
                !f->has_momentum);
}

static void head_forward(dc_finetuner *f, const float *body, int N)
{
    int F = f->m->feat_dim, C = f->nclasses;
    /* the original's model_factory(relu=True): a ReLU between the body and the top layer */
    dc_relu_forward(f->feat, body, (int64_t)N * F);
    dc_linear_forward(f->logits, f->feat, f->hw, f->hb, N, F, C);
}

/* The forward pass of a training step: the body in the mode's way, the
 * ReLU, the top layer (into f->logits). */
static void step_forward(dc_finetuner *f, const float *x, int N, int dropout)
{
    int mode = f->mode == DC_FINETUNE_ALL ? 1 : dropout ? DC_FORWARD_DROPOUT : DC_FORWARD_FROZEN;
    head_forward(f, dc_model_forward(f->m, x, N, mode), N);
}

/* The rest of a step from f->dlogits: backward, clipping, SGD (on the GPU
 * engine the body's on the device, the top layer's here). */
static void step_backward(dc_finetuner *f, int N, float lr)
{
    dc_model *m = f->m;
    int F = m->feat_dim, C = f->nclasses;
    if (f->mode == DC_FINETUNE_ALL || m->gpu) dc_model_zero_grad(m);
    else each_range(f, zero_range, NULL);
    memset(f->hdw, 0, (size_t)(C * (int64_t)F + C) * sizeof(float));
    memset(f->dfeat, 0, (size_t)N * F * sizeof(float));
    memset(f->dbody, 0, (size_t)N * F * sizeof(float));
    dc_linear_backward(f->dfeat, f->hdw, f->hdb, f->dlogits, f->feat, f->hw, N, F, C);
    dc_relu_backward(f->dbody, f->dfeat, f->feat, (int64_t)N * F);
    dc_model_backward_from(m, f->dbody, f->from);
    if (f->clip > 0) { /* torch.nn.utils.clip_grad_norm_: every trained parameter's gradient */
        double ss = 0;
        each_range(f, sumsq_range, &ss);
        for (int64_t i = 0; i < C * (int64_t)F + C; i++) ss += (double)f->hdw[i] * f->hdw[i];
        double coef = f->clip / (sqrt(ss) + 1e-6);
        if (coef < 1) {
            float a = (float)coef;
            each_range(f, scale_range, &a);
            for (int64_t i = 0; i < C * (int64_t)F + C; i++) f->hdw[i] *= a;
        }
    }
    sgd_ctx sc = {lr};
    each_range(f, sgd_range, &sc);
    dc_sgd_step(f->hw, f->hdw, f->hmw, (int64_t)C * F, lr, (float)f->momentum, (float)f->wd, !f->has_momentum);
    dc_sgd_step(f->hb, f->hdb, f->hmb, C, lr, (float)f->momentum, (float)f->wd, !f->has_momentum);
    f->has_momentum = 1;
}

void dc_finetuner_step(dc_finetuner *f, const float *x, const int32_t *y, int N, float lr, int dropout,
                       double *loss, int *correct)
{
    int C = f->nclasses;
    step_forward(f, x, N, dropout);
    *loss = dc_softmax_xent_forward(f->probs, correct, f->logits, y, N, C) / N;
    memset(f->dlogits, 0, (size_t)N * C * sizeof(float));
    dc_softmax_xent_backward(f->dlogits, f->probs, y, N, C, 1.0f / (float)N);
    step_backward(f, N, lr);
}

void dc_finetuner_step_multi(dc_finetuner *f, const float *x, const int8_t *t, int N, float lr, int dropout,
                             double *loss)
{
    int C = f->nclasses;
    step_forward(f, x, N, dropout);
    double sum = 0;
    for (int64_t i = 0; i < (int64_t)N * C; i++) {
        double z = f->logits[i];
        if (t[i] < 0) {
            f->dlogits[i] = 0;
            continue;
        }
        /* BCE with logits, stably: max(z, 0) − z·t + log(1 + e^−|z|) */
        sum += (z > 0 ? z : 0) - z * t[i] + log1p(exp(-fabs(z)));
        f->dlogits[i] = (float)((1.0 / (1.0 + exp(-z)) - t[i]) / N);
    }
    *loss = sum / N;
    step_backward(f, N, lr);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

double dc_average_precision(const float *score, const int8_t *t, int64_t n, int64_t stride)
{
    /* (score, target) pairs of the scored images, by score descending */
    float *pairs = dc_xmalloc((size_t)(2 * n + 2) * sizeof(float));
    int64_t m = 0, pos = 0;
    for (int64_t i = 0; i < n; i++) {
        int8_t v = t[i * stride];
        if (v < 0) continue;
        pairs[2 * m] = score[i * stride];
        pairs[2 * m + 1] = (float)v;
        pos += v;
        m++;
    }
    if (pos == 0) {
        dc_free(pairs);
        return -1;
    }
    qsort(pairs, (size_t)m, 2 * sizeof(float), cmp_desc);
    double ap = 0, prev_recall = 0;
    int64_t tp = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j < m && pairs[2 * j] == pairs[2 * i]) tp += pairs[2 * j + 1] > 0, j++;
        double recall = (double)tp / pos, precision = (double)tp / j;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    dc_free(pairs);
    return ap;
}

void dc_finetuner_logits(dc_finetuner *f, const float *x, int N, float *out)
{
    head_forward(f, dc_model_forward(f->m, x, N, 0), N);
    memcpy(out, f->logits, (size_t)N * f->nclasses * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* The job                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    const dc_finetune_config *c;
    dc_dataset *dtr, *dte;
    dc_model m;
    dc_finetuner f;
    int C, in_c, size, resize, nth;
    float min_scale;
    int32_t *lab, *hold; /* the labelled subset (shuffled, per class) and its held-out part */
    int multi;           /* multi-label data: targets in tm_tr, tm_te (N, C): 1, 0, -1 */
    int8_t *tm_tr, *tm_te, *tb;
    int64_t nlab, nhold;
    int32_t *train_idx;  /* the phase's training images */
    int64_t ntrain;
    float *x;            /* a batch of inputs */
    int32_t *y;
    dc_image_buf *bufs;  /* per thread */
    float *tmp;          /* per thread */
    size_t ntmp;
    int32_t *perm;
    char state[4200], log[4200];
    const struct ft_head *head; /* --head-first's trained classifier, put in
                                   place of the re-initialised one (NULL: none) */
} ft_job;

/* The classifier MLP and top layer trained by --head-first's first stage:
 * the Linear layers' weights and biases in layer order, and the top layer. */
typedef struct ft_head {
    float *w, *hw; /* n floats; (C, F) + C floats */
    int64_t n;
    double lr, val;
} ft_head;

/* The weights and biases of m's Linear layers (those dc_finetuner_reset
 * re-initialises), in layer order: copied into dst and then from src (each
 * when given); returns their number of floats. */
static int64_t linear_ranges(dc_model *m, float *dst, const float *src)
{
    int64_t k = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const dc_layer *l = &m->layers[i];
        if (l->kind != DC_LAYER_LINEAR) continue;
        int64_t off[2] = {l->w_off, l->b_off}, n[2] = {(int64_t)l->c * l->oc, l->oc};
        for (int t = 0; t < 2; t++) {
            if (dst) memcpy(dst + k, m->params + off[t], (size_t)n[t] * sizeof(float));
            if (src) memcpy(m->params + off[t], src + k, (size_t)n[t] * sizeof(float));
            k += n[t];
        }
    }
    return k;
}

static void job_free(ft_job *j)
{
    dc_finetuner_free(&j->f);
    dc_model_free(&j->m);
    dc_dataset_close(j->dtr);
    dc_dataset_close(j->dte);
    dc_free(j->lab);
    dc_free(j->hold);
    dc_free(j->train_idx);
    dc_free(j->x);
    dc_free(j->y);
    dc_free(j->tmp);
    dc_free(j->perm);
    dc_free(j->tm_tr);
    dc_free(j->tm_te);
    dc_free(j->tb);
    if (j->bufs)
        for (int t = 0; t < j->nth; t++) dc_image_buf_free(&j->bufs[t]);
    dc_free(j->bufs);
}

/* The labelled subset: each class's images in a seeded order, the first
 * labels_per_class (or label_fraction of them, at least one; else all);
 * of those, the first max(1, round(holdout·n)) held out when the rate is
 * to be chosen. Checks that the test set's classes were all seen. */
static dc_status select_multi(ft_job *j)
{
    const dc_finetune_config *c = j->c;
    int64_t n = dc_dataset_size(j->dtr);
    if (c->labels_per_class > 0)
        return dc_set_error(DC_STATUS_ARG, "--labels-per-class needs single-label data (multi-label: --label-fraction)");
    j->lab = dc_xmalloc((size_t)n * sizeof *j->lab);
    j->hold = dc_xmalloc((size_t)n * sizeof *j->hold);
    for (int64_t i = 0; i < n; i++) j->lab[i] = (int32_t)i;
    dc_rng r;
    dc_rng_init(&r, c->seed, DC_RNG_STREAM_EVAL, FT_TAG, 0xffffffu);
    dc_rng_shuffle_i32(&r, j->lab, (size_t)n);
    j->nlab = c->label_fraction > 0 ? llround(c->label_fraction * (double)n) : n;
    if (j->nlab < 1) j->nlab = 1;
    j->nhold = 0;
    if (c->lr <= 0) {
        if (j->nlab < 2)
            return dc_set_error(DC_STATUS_ARG, "%lld labelled image: choosing the learning rate holds out at least one "
                                "and trains on the rest (give --lr, or more labels)", (long long)j->nlab);
        j->nhold = llround(c->holdout * (double)j->nlab);
        if (j->nhold < 1) j->nhold = 1;
        if (j->nhold >= j->nlab) j->nhold = j->nlab - 1;
        memcpy(j->hold, j->lab, (size_t)j->nhold * sizeof *j->hold);
    }
    return DC_OK;
}

static dc_status select_labels(ft_job *j)
{
    const dc_finetune_config *c = j->c;
    if (j->multi) return select_multi(j);
    const int32_t *ytr = dc_dataset_labels(j->dtr), *yte = dc_dataset_labels(j->dte);
    int64_t ntr = dc_dataset_size(j->dtr), nte = dc_dataset_size(j->dte);
    int C = j->C;
    int64_t *count = dc_xcalloc((size_t)C, sizeof *count);
    for (int64_t i = 0; i < ntr; i++) count[ytr[i]]++;
    dc_status s = DC_OK;
    for (int64_t i = 0; i < nte && s == DC_OK; i++)
        if (yte[i] >= C || count[yte[i]] == 0)
            s = dc_set_error(DC_STATUS_ARG, "--test: class %d (image %lld) has no training images in --train %s",
                             (int)yte[i], (long long)i, c->train);
    int32_t **byc = dc_xcalloc((size_t)C, sizeof *byc);
    int64_t *fill = dc_xcalloc((size_t)C, sizeof *fill);
    for (int k = 0; k < C; k++) byc[k] = dc_xmalloc((size_t)(count[k] + 1) * sizeof **byc);
    for (int64_t i = 0; i < ntr; i++) byc[ytr[i]][fill[ytr[i]]++] = (int32_t)i;
    j->lab = dc_xmalloc((size_t)ntr * sizeof *j->lab);
    j->hold = dc_xmalloc((size_t)ntr * sizeof *j->hold);
    j->nlab = j->nhold = 0;
    for (int k = 0; k < C && s == DC_OK; k++) {
        if (count[k] == 0) continue;
        dc_rng r;
        dc_rng_init(&r, c->seed, DC_RNG_STREAM_EVAL, FT_TAG, (uint32_t)k);
        dc_rng_shuffle_i32(&r, byc[k], (size_t)count[k]);
        int64_t take = count[k];
        if (c->labels_per_class > 0) {
            if (count[k] < c->labels_per_class) {
                s = dc_set_error(DC_STATUS_ARG, "--labels-per-class %d: class %d has only %lld training images",
                                 c->labels_per_class, k, (long long)count[k]);
                break;
            }
            take = c->labels_per_class;
        } else if (c->label_fraction > 0) {
            take = llround(c->label_fraction * (double)count[k]);
            if (take < 1) take = 1;
        }
        int64_t h = 0;
        if (c->lr <= 0) {
            if (take < 2) {
                s = dc_set_error(DC_STATUS_ARG, "class %d has %lld labelled image%s: choosing the learning rate "
                                 "holds out at least one per class and trains on the rest (give --lr, or more labels)",
                                 k, (long long)take, take == 1 ? "" : "s");
                break;
            }
            h = llround(c->holdout * (double)take);
            if (h < 1) h = 1;
            if (h >= take) h = take - 1;
        }
        for (int64_t i = 0; i < take; i++) {
            if (i < h) j->hold[j->nhold++] = byc[k][i];
            j->lab[j->nlab++] = byc[k][i];
        }
    }
    for (int k = 0; k < C; k++) dc_free(byc[k]);
    dc_free(byc);
    dc_free(fill);
    dc_free(count);
    return s;
}

/* The phase's training images: the labelled subset, without the held-out
 * part when choosing the rate. */
static void phase_images(ft_job *j, int choosing)
{
    uint8_t *held = dc_xcalloc((size_t)dc_dataset_size(j->dtr), 1);
    for (int64_t q = 0; choosing && q < j->nhold; q++) held[j->hold[q]] = 1;
    j->ntrain = 0;
    for (int64_t i = 0; i < j->nlab; i++)
        if (!held[j->lab[i]]) j->train_idx[j->ntrain++] = j->lab[i];
    dc_free(held);
}

/* Inputs of images idx[0..n) into j->x: the training transform without the
 * rotation (crop from (seed, AUGMENT, FT_TAG + phase·65536 + epoch, image))
 * or, crop >= 0, the evaluation view `crop` of TenCrop. */
static dc_status load_batch(ft_job *j, dc_dataset *d, const int32_t *idx, int n, int crop, uint32_t epoch_key)
{
    int64_t per = (int64_t)j->in_c * j->size * j->size;
    dc_status s = DC_OK;
#pragma omp parallel for schedule(dynamic, 4) num_threads(j->nth)
    for (int i = 0; i < n; i++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        dc_image im;
        dc_status si = dc_dataset_get(d, idx[i], &j->bufs[t], &im);
        if (si != DC_OK) {
#pragma omp critical
            if (s == DC_OK) s = si;
            continue;
        }
        float *out = j->x + (int64_t)i * per, *tmp = j->tmp + (size_t)t * j->ntmp;
        if (crop >= 0) {
            dc_transform_eval_crop(out, &im, j->resize, j->size, crop, tmp);
        } else {
            dc_rng r;
            dc_rng_init(&r, j->c->seed, DC_RNG_STREAM_AUGMENT, epoch_key, (uint32_t)idx[i]);
            dc_transform_train_scale(out, &im, j->size, 0, &r, tmp, j->min_scale);
        }
    }
    return s;
}

/* top-1 and top-5 (-1 with 5 classes or fewer; mAP and -1 for multi-label
 * data) of the images idx[0..n) of d
 * from the logits summed over `crops` crops, and, when loss is not NULL,
 * the mean loss of those logits (cross-entropy; multi-label: the binary
 * cross-entropy summed over the classes, ignored targets left out). */
static dc_status score(ft_job *j, dc_dataset *d, const int32_t *idx, int64_t n, int crops, double *top1,
                       double *top5, double *loss)
{
    int C = j->C, B = j->m.max_batch;
    float *acc = dc_malloc((size_t)n * C * sizeof(float), "fine-tuning scores");
    float *lg = dc_malloc((size_t)B * C * sizeof(float), "fine-tuning logits");
    if (!acc || !lg) {
        dc_free(acc);
        dc_free(lg);
        return DC_STATUS_NOMEM;
    }
    memset(acc, 0, (size_t)n * C * sizeof(float));
    dc_status s = DC_OK;
    for (int k = 0; k < crops && s == DC_OK; k++)
        for (int64_t b0 = 0; b0 < n && s == DC_OK; b0 += B) {
            int nb = (int)(n - b0 < B ? n - b0 : B);
            s = load_batch(j, d, idx + b0, nb, k, 0);
            if (s != DC_OK) break;
            dc_finetuner_logits(&j->f, j->x, nb, lg);
            if ((s = dc_model_status(&j->m)) != DC_OK) break;
            for (int64_t i = 0; i < (int64_t)nb * C; i++) acc[b0 * C + i] += lg[i];
        }
    if (j->multi) { /* the mean over the classes of the average precision */
        const int8_t *tm = d == j->dtr ? j->tm_tr : j->tm_te;
        int8_t *t = dc_xmalloc((size_t)n * C + 1);
        for (int64_t i = 0; i < n; i++) memcpy(t + i * C, tm + (int64_t)idx[i] * C, (size_t)C);
        double sum = 0, bce = 0;
        int classes = 0;
        for (int q = 0; s == DC_OK && q < C; q++) {
            double ap = dc_average_precision(acc + q, t + q, n, C);
            if (ap >= 0) sum += ap, classes++;
        }
        for (int64_t i = 0; i < n * C; i++) { /* max(z, 0) - z t + log(1 + e^-|z|), stable */
            double z = acc[i] / crops;
            if (t[i] >= 0) bce += (z > 0 ? z : 0) - z * t[i] + log1p(exp(-fabs(z)));
        }
        if (loss) *loss = n ? bce / n : 0;
        *top1 = classes ? sum / classes : 0;
        *top5 = -1;
        dc_free(t);
        dc_free(acc);
        dc_free(lg);
        return s;
    }
    const int32_t *y = dc_dataset_labels(d);
    int64_t h1 = 0, h5 = 0;
    double ce = 0;
    for (int64_t i = 0; s == DC_OK && i < n; i++) {
        const float *a = acc + i * C;
        int t = y[idx[i]], above = 0;
        double mx = a[0], se = 0;
        for (int q = 0; q < C; q++) above += a[q] > a[t] || (a[q] == a[t] && q < t);
        for (int q = 1; q < C; q++) mx = a[q] > mx ? a[q] : mx;
        for (int q = 0; q < C; q++) se += exp((a[q] - mx) / crops);
        ce += log(se) - (a[t] - mx) / crops;
        h1 += above == 0;
        h5 += above < 5;
    }
    if (loss) *loss = n ? ce / n : 0;
    *top1 = n ? (double)h1 / n : 0;
    *top5 = C > 5 && n ? (double)h5 / n : -1;
    dc_free(acc);
    dc_free(lg);
    return s;
}

#define FT_MAXRATES 6 /* candidate learning rates at most */

/* The resumable state: the model's tensors, the momentum, the top layer,
 * where the job stands (meta: job, phase, epoch, step_in_epoch, …). */
typedef struct {
    int phase, epoch, step; /* the next step to run */
    double loss_sum;
    int64_t hits, seen;
    double val[FT_MAXRATES];  /* held-out score of each candidate rate (-1: not yet, or diverged) */
    double vloss[FT_MAXRATES]; /* and its held-out loss (breaks ties; HUGE_VAL: not yet, or diverged) */
} ft_pos;

/* The candidate rates: the mode's rate × {0.1, 1, 10}, then, while the best
 * sits at an edge of the rates tried, strictly ahead of every other, one
 * more decade past that edge (at most FT_MAXRATES in all). "Best": the
 * higher held-out score, then the lower held-out loss (a held-out part of
 * ten images ties often), then the smaller rate. */
static int ahead(const ft_pos *p, const double *rate, int a, int b)
{
    if (p->val[a] != p->val[b]) return p->val[a] > p->val[b];
    if (p->vloss[a] != p->vloss[b]) return p->vloss[a] < p->vloss[b];
    return rate[a] < rate[b];
}

/* The rate of candidate q given the scores of candidates 0 … q-1, or 0 when
 * the choice is over (the best is inside the grid, or the grid is full). */
static double candidate_rate(double base, const ft_pos *p, int q)
{
    if (q < 3) return base * (q == 0 ? 0.1 : q == 1 ? 1 : 10);
    if (q >= FT_MAXRATES) return 0;
    double rate[FT_MAXRATES], lo = 0, hi = 0;
    int best = 0;
    for (int i = 0; i < q; i++) {
        rate[i] = candidate_rate(base, p, i);
        if (i == 0 || rate[i] < lo) lo = rate[i];
        if (i == 0 || rate[i] > hi) hi = rate[i];
        if (ahead(p, rate, i, best)) best = i;
    }
    if (p->val[best] < 0) return 0; /* every rate diverged */
    for (int i = 0; i < q; i++)     /* a tie on score and loss: no edge to move */
        if (i != best && p->val[i] == p->val[best] && p->vloss[i] == p->vloss[best]) return 0;
    return rate[best] == hi ? hi * 10 : rate[best] == lo ? lo / 10 : 0;
}

/* The best of the first n candidates. */
static int best_candidate(double base, const ft_pos *p, int n)
{
    double rate[FT_MAXRATES];
    int best = 0;
    for (int i = 0; i < n; i++) rate[i] = candidate_rate(base, p, i);
    for (int i = 1; i < n; i++)
        if (ahead(p, rate, i, best)) best = i;
    return best;
}

/* What the training depends on. Not the test crops, which only the final
 * scoring reads: a finished job's directory re-scores with other --crops
 * without training again. */
static void job_key(const ft_job *j, char *buf, size_t n)
{
    const dc_finetune_config *c = j->c;
    snprintf(buf, n, "weights=%s train=%s test=%s train_labels=%s test_labels=%s mode=%d labels_per_class=%d label_fraction=%.17g epochs=%d "
                     "lr=%.17g holdout=%.17g batch=%d sobel=%d seed=%llu",
             c->weights, c->train, c->test, c->train_labels ? c->train_labels : "-",
             c->test_labels ? c->test_labels : "-", (int)c->mode, c->labels_per_class, c->label_fraction, c->epochs, c->lr,
             c->holdout, c->batch, c->sobel, (unsigned long long)c->seed);
    if (c->head_first) { /* jobs without it keep the keys of earlier versions */
        size_t k = strlen(buf);
        snprintf(buf + k, n - k, " head_first=1 head_lr=%.17g", c->head_lr);
    }
}

/* A stored job key without the " crops=N" that versions before 2026-12-07
 * wrote into it (their directories resume, and re-score, as new ones). */
static void strip_crops(const char *in, char *out, size_t n)
{
    snprintf(out, n, "%s", in);
    char *at = strstr(out, " crops=");
    if (!at) return;
    const char *end = at + 7;
    while (*end >= '0' && *end <= '9') end++;
    memmove(at, end, strlen(end) + 1);
}

/* The training loss of the last epoch in the job's log (a finished job
 * re-scored trains no epoch), or 0 when there is none. */
static double logged_loss(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    char line[4096], last[4096] = "";
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"phase\"")) snprintf(last, sizeof last, "%s", line);
    fclose(f);
    cJSON *o = cJSON_Parse(last);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "loss");
    double v = cJSON_IsNumber(l) && l->valuedouble >= 0 ? l->valuedouble : 0;
    cJSON_Delete(o);
    return v;
}

static dc_status save_state(ft_job *j, const ft_pos *p)
{
    dc_status s = dc_finetuner_sync(&j->f, 1); /* on a GPU: weights, statistics, momentum to the host */
    if (s != DC_OK) return s;
    dc_st_writer *w = dc_st_writer_new();
    dc_model_add_tensors(&j->m, w);
    int64_t C = j->C, F = j->m.feat_dim;
    dc_st_writer_add(w, "finetune.momentum", DC_DTYPE_F32, 1, (int64_t[]){j->m.nparams}, j->f.mom);
    dc_st_writer_add(w, "finetune.top.weight", DC_DTYPE_F32, 2, (int64_t[]){C, F}, j->f.hw);
    dc_st_writer_add(w, "finetune.top.bias", DC_DTYPE_F32, 1, (int64_t[]){C}, j->f.hb);
    dc_st_writer_add(w, "finetune.top.weight_momentum", DC_DTYPE_F32, 2, (int64_t[]){C, F}, j->f.hmw);
    dc_st_writer_add(w, "finetune.top.bias_momentum", DC_DTYPE_F32, 1, (int64_t[]){C}, j->f.hmb);
    char key[8192], v[1024];
    job_key(j, key, sizeof key);
    dc_st_writer_set_meta(w, "job", key);
    int n = snprintf(v, sizeof v, "%d %d %d %d %llu %.17g %lld %lld", p->phase, p->epoch, p->step, j->f.has_momentum,
                     (unsigned long long)j->m.step, p->loss_sum, (long long)p->hits, (long long)p->seen);
    for (int q = 0; q < FT_MAXRATES; q++)
        n += snprintf(v + n, sizeof v - (size_t)n, " %.17g %.17g", p->val[q], p->vloss[q]);
    dc_st_writer_set_meta(w, "position", v);
    s = dc_st_writer_write(w, j->state);
    dc_st_writer_free(w);
    return s;
}

/* DC_OK when the state file f (open) holds j's job, else the error. */
static dc_status same_job(const ft_job *j, dc_st_file *f)
{
    char key[8192], stored[8192] = "";
    job_key(j, key, sizeof key);
    const char *jk = dc_st_meta(f, "job");
    if (jk) strip_crops(jk, stored, sizeof stored);
    if (!jk || strcmp(stored, key) != 0)
        return dc_set_error(DC_STATUS_ARG, "--out %s holds another fine-tuning job (%s); use a new directory",
                            j->c->out, jk ? jk : "no job key");
    return DC_OK;
}

/* 1: resumed from the state file; 0: none there; < 0: an error. */
static int load_state(ft_job *j, ft_pos *p, dc_status *err)
{
    struct stat sb;
    if (stat(j->state, &sb) != 0) return 0;
    dc_st_file *f = NULL;
    dc_status s = dc_st_open(j->state, &f);
    if (s == DC_OK) s = same_job(j, f);
    const char *pos = s == DC_OK ? dc_st_meta(f, "position") : NULL;
    int hm = 0;
    unsigned long long step = 0;
    long long hits = 0, seen = 0;
    int used = 0;
    if (s == DC_OK && (!pos || sscanf(pos, "%d %d %d %d %llu %lg %lld %lld%n", &p->phase, &p->epoch, &p->step, &hm, &step,
                                      &p->loss_sum, &hits, &seen, &used) != 8))
        s = dc_set_error(DC_STATUS_FORMAT, "%s: no readable position", j->state);
    /* the candidates' scores and losses, FT_MAXRATES of them (a state of the
     * fixed three-rate grid has 3 scores, and its phases mean other things) */
    for (int q = 0, k = 0; s == DC_OK && q < FT_MAXRATES; q++, used += k)
        if (sscanf(pos + used, " %lg %lg%n", &p->val[q], &p->vloss[q], &k) != 2)
            s = dc_set_error(DC_STATUS_FORMAT, "%s: written by an earlier version (a fixed grid of three rates); "
                             "use a new --out directory", j->state);
    int64_t C = j->C, F = j->m.feat_dim;
    if (s == DC_OK) s = dc_model_load_tensors(&j->m, f);
    if (s == DC_OK) s = dc_st_read(f, "finetune.momentum", DC_DTYPE_F32, 1, (int64_t[]){j->m.nparams}, j->f.mom);
    if (s == DC_OK) s = dc_st_read(f, "finetune.top.weight", DC_DTYPE_F32, 2, (int64_t[]){C, F}, j->f.hw);
    if (s == DC_OK) s = dc_st_read(f, "finetune.top.bias", DC_DTYPE_F32, 1, (int64_t[]){C}, j->f.hb);
    if (s == DC_OK) s = dc_st_read(f, "finetune.top.weight_momentum", DC_DTYPE_F32, 2, (int64_t[]){C, F}, j->f.hmw);
    if (s == DC_OK) s = dc_st_read(f, "finetune.top.bias_momentum", DC_DTYPE_F32, 1, (int64_t[]){C}, j->f.hmb);
    dc_st_close(f);
    if (s == DC_OK) s = dc_finetuner_sync(&j->f, 0); /* on a GPU: the resumed state to the device */
    if (s != DC_OK) {
        *err = s;
        return -1;
    }
    j->f.has_momentum = hm;
    j->m.step = step;
    p->hits = hits;
    p->seen = seen;
    return 1;
}

/* The network of the job, its classifier and top layer re-initialised:
 * done at the start of each phase (the same pre-trained body for every
 * candidate rate). */
static dc_status open_network(ft_job *j)
{
    const dc_finetune_config *c = j->c;
    dc_finetuner_free(&j->f);
    dc_model_free(&j->m);
    int batch = c->batch > 0 ? c->batch : 128;
    dc_status s = dc_model_open(&j->m, c->weights, j->in_c, c->sobel, c->seed, batch, c->device, c->precision, NULL, 0);
    if (s != DC_OK) return s;
    j->m.dropout_seed = c->seed;
    j->m.step = 0;
    s = dc_finetuner_init(&j->f, &j->m, j->C, c->mode, c->seed);
    if (s != DC_OK || !j->head) return s;
    /* --head-first: the classifier trained over the frozen body instead of
     * the re-initialised one (the body is the pre-trained one either way) */
    DC_ASSERT(linear_ranges(&j->m, NULL, NULL) == j->head->n);
    linear_ranges(&j->m, NULL, j->head->w);
    memcpy(j->f.hw, j->head->hw, (size_t)(j->C * (int64_t)j->m.feat_dim + j->C) * sizeof(float));
    return dc_finetuner_sync(&j->f, 0);
}

static int default_epochs(int64_t n)
{
    int64_t e = n > 0 ? (50000 + n / 2) / n : 200;
    return (int)(e < 10 ? 10 : e > 200 ? 200 : e);
}

static double rate_at(const ft_job *j, double lr, int epoch, int epochs, int64_t t, int64_t total)
{
    if (j->c->mode == DC_FINETUNE_ALL) { /* eval_pretrain.py: ÷10 every 30 of 100 epochs */
        int every = 3 * epochs / 10;
        if (every < 1) every = 1;
        return lr * pow(0.1, epoch / every);
    }
    int64_t every = total / 15; /* eval_voc_classif.py: halved every 10,000 of 150,000 iterations */
    if (every < 1) every = 1;
    return lr * pow(0.5, (double)(t / every));
}

/* Multi-label targets from a .npy (rows, C) of 1 / 0 / -1 or 255 (any
 * integer or float dtype) into int8 1 / 0 / -1; C must equal want_c when
 * that is nonzero. */
static dc_status load_multi(const char *path, const char *opt, int64_t rows, int want_c, int8_t **out, int *c_out)
{
    dc_array a;
    dc_status s = dc_npy_read(path, &a);
    if (s != DC_OK) return s;
    if (a.ndim != 2 || a.shape[0] != rows || a.shape[1] < 1 || (want_c && a.shape[1] != want_c)) {
        s = dc_set_error(DC_STATUS_ARG, "%s %s: expected an array (%lld, %s), one row of class targets per image, "
                         "got %d dimensions (%lld, %lld)", opt, path, (long long)rows,
                         want_c ? "the training labels' columns" : "classes", a.ndim, (long long)a.shape[0],
                         (long long)(a.ndim > 1 ? a.shape[1] : 0));
        dc_array_free(&a);
        return s;
    }
    int64_t n = rows * a.shape[1];
    int8_t *t = dc_xmalloc((size_t)n + 1);
    for (int64_t i = 0; i < n && s == DC_OK; i++) {
        double v = a.dtype == DC_DTYPE_F32 ? ((const float *)a.data)[i]
                   : a.dtype == DC_DTYPE_I32 ? ((const int32_t *)a.data)[i]
                   : a.dtype == DC_DTYPE_I64 ? (double)((const int64_t *)a.data)[i]
                   : a.dtype == DC_DTYPE_U8  ? ((const uint8_t *)a.data)[i]
                                             : NAN;
        if (v == 1) t[i] = 1;
        else if (v == 0) t[i] = 0;
        else if (v == -1 || v == 255) t[i] = -1;
        else
            s = dc_set_error(DC_STATUS_ARG, "%s %s: value %g at image %lld, class %lld (expected 1 present, 0 absent, "
                             "-1 or 255 ignored)", opt, path, v, (long long)(i / a.shape[1]),
                             (long long)(i % a.shape[1]));
    }
    if (s == DC_OK) *c_out = (int)a.shape[1];
    if (s == DC_OK) *out = t;
    else dc_free(t);
    dc_array_free(&a);
    return s;
}

static dc_status job_open(ft_job *j)
{
    const dc_finetune_config *c = j->c;
    dc_status s = dc_dataset_open(c->train, NULL, &j->dtr);
    if (s == DC_OK) s = dc_dataset_open(c->test, NULL, &j->dte);
    if (s != DC_OK) return s;
    j->multi = c->train_labels || c->test_labels;
    if (j->multi && !(c->train_labels && c->test_labels))
        return dc_set_error(DC_STATUS_ARG, "multi-label data needs both --train-labels and --test-labels");
    if (j->multi) {
        if ((s = load_multi(c->train_labels, "--train-labels", dc_dataset_size(j->dtr), 0, &j->tm_tr, &j->C)) ||
            (s = load_multi(c->test_labels, "--test-labels", dc_dataset_size(j->dte), j->C, &j->tm_te, &j->C)))
            return s;
    }
    if (!j->multi && !dc_dataset_labels(j->dtr))
        return dc_set_error(DC_STATUS_ARG, "--train %s has no labels (IDX with its labels file, CIFAR, or a folder "
                            "of class sub-folders)", c->train);
    if (!j->multi && !dc_dataset_labels(j->dte))
        return dc_set_error(DC_STATUS_ARG, "--test %s has no labels (IDX with its labels file, CIFAR, or a folder "
                            "of class sub-folders)", c->test);
    j->in_c = dc_dataset_channels(j->dtr);
    if (dc_dataset_channels(j->dte) != j->in_c)
        return dc_set_error(DC_STATUS_ARG, "--train has %d-channel images, --test %d-channel ones", j->in_c,
                            dc_dataset_channels(j->dte));
    if (!j->multi) j->C = dc_dataset_nclasses(j->dtr);
    if (j->C < 2 && !j->multi) return dc_set_error(DC_STATUS_ARG, "--train %s has a single class", c->train);
    if ((s = select_labels(j)) != DC_OK) return s;
    if ((s = open_network(j)) != DC_OK) return s;
    j->size = j->m.preset->input;
    j->resize = j->m.preset->eval_resize;
    j->min_scale = j->m.preset->crop_min_scale > 0 ? j->m.preset->crop_min_scale : 0.08f;
    dc_dataset_set_decode_hint(j->dtr, j->resize);
    dc_dataset_set_decode_hint(j->dte, j->resize);
    j->nth = 1;
#ifdef _OPENMP
    j->nth = omp_get_max_threads();
#endif
    int side = dc_dataset_max_side(j->dtr), side2 = dc_dataset_max_side(j->dte);
    j->ntmp = dc_transform_tmp_size(j->size, j->resize, side > side2 ? side : side2, j->in_c);
    int B = j->m.max_batch;
    j->bufs = dc_xcalloc((size_t)j->nth, sizeof *j->bufs);
    j->tmp = dc_malloc(j->ntmp * j->nth * sizeof(float), "transform scratch");
    j->x = dc_malloc((size_t)B * j->in_c * j->size * j->size * sizeof(float), "fine-tuning batch");
    j->y = dc_malloc((size_t)B * sizeof(int32_t), "fine-tuning labels");
    j->tb = dc_malloc((size_t)B * j->C + 1, "fine-tuning targets");
    j->train_idx = dc_malloc((size_t)(j->nlab + 1) * sizeof(int32_t), "fine-tuning images");
    j->perm = dc_malloc((size_t)(j->nlab + 1) * sizeof(int32_t), "fine-tuning order");
    if (!j->tmp || !j->x || !j->y || !j->tb || !j->train_idx || !j->perm) return DC_STATUS_NOMEM;
    return DC_OK;
}

static dc_status make_dir(const char *p)
{
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return dc_set_error(DC_STATUS_IO, "--out %s: cannot create the directory: %s", p, strerror(errno));
    return DC_OK;
}

/* One job: c's training (from `head` in place of a re-initialised
 * classifier when given), then the test set scored into r; or, with
 * head_out, the first stage of --head-first: no scoring, the trained
 * classifier into head_out. */
static dc_status run_job(const dc_finetune_config *c, dc_finetune_result *r, const ft_head *head, ft_head *head_out)
{
    ft_job j = {.c = c, .head = head};
    dc_status s = job_open(&j);
    ft_pos p = {.phase = 0};
    for (int q = 0; q < FT_MAXRATES; q++) p.val[q] = -1, p.vloss[q] = HUGE_VAL;
    if (s == DC_OK && c->out) {
        s = make_dir(c->out);
        snprintf(j.state, sizeof j.state, "%s/finetune.safetensors", c->out);
        snprintf(j.log, sizeof j.log, "%s/finetune.jsonl", c->out);
        if (s == DC_OK && load_state(&j, &p, &s) > 0)
            dc_log_info("resuming %s: phase %d, epoch %d, step %d", j.state, p.phase, p.epoch, p.step);
        /* the labelled subset and its held-out part, as indices into --train
         * (after the check that the directory holds this job, if any) */
        char ip[4200];
        snprintf(ip, sizeof ip, "%s/labelled.npy", c->out);
        if (s == DC_OK) s = dc_npy_write(ip, DC_DTYPE_I32, 1, (int64_t[]){j.nlab}, j.lab);
        snprintf(ip, sizeof ip, "%s/held_out.npy", c->out);
        if (s == DC_OK) s = dc_npy_write(ip, DC_DTYPE_I32, 1, (int64_t[]){j.nhold}, j.hold);
    }
    double base = c->mode == DC_FINETUNE_ALL ? 0.05 : 0.003;
    /* phases 0 … ncand-1 try the candidate rates (their number known once
     * the scores are in), the last trains at the chosen one */
    int choose = c->lr <= 0;
    int64_t n_final = j.nlab;
    int epochs = c->epochs > 0 ? c->epochs : default_epochs(n_final);
    if (s == DC_OK)
        dc_log_info("%s fine-tuning of %s: %lld labelled images of %d classes (%lld held out to choose the rate), "
                    "%d epochs%s", head_out ? "--head-first, its first stage: classifier"
                    : c->mode == DC_FINETUNE_ALL ? "whole-network" : "classifier", c->weights,
                    (long long)j.nlab, j.C, (long long)j.nhold, epochs,
                    head ? ", from the classifier trained over the frozen body" : "");
    double lr_used = c->lr, last_loss = 0;
    int trained = 0; /* epochs run by this invocation */
    int resumed_phase = p.phase, ncand = 0;
    for (int ph = p.phase; s == DC_OK; ph++) {
        if (choose) /* candidate q ≥ 3 exists once the scores before it are in (q ≤ ph) and the grid goes on */
            for (ncand = 3; ncand <= ph && candidate_rate(base, &p, ncand) > 0;) ncand++;
        if (ph > (choose ? ncand : 0)) break;
        int cand = choose && ph < ncand;
        double lr = cand ? candidate_rate(base, &p, ph) : c->lr;
        if (choose && !cand) lr = candidate_rate(base, &p, best_candidate(base, &p, ncand));
        lr_used = lr;
        if (ph != resumed_phase || (p.epoch == 0 && p.step == 0)) {
            if ((s = open_network(&j)) != DC_OK) break;
            if (ph != resumed_phase) p.epoch = p.step = 0, p.loss_sum = 0, p.hits = p.seen = 0;
        }
        resumed_phase = -1;
        phase_images(&j, cand);
        int B = j.m.max_batch < j.ntrain ? j.m.max_batch : (int)j.ntrain;
        int64_t steps = j.ntrain / B, total = steps * epochs;
        r->batch = B;
        for (int e = p.epoch; e < epochs && s == DC_OK; e++) {
            uint32_t key = (uint32_t)(FT_TAG + (uint32_t)ph * 65536u + (uint32_t)e);
            for (int64_t i = 0; i < j.ntrain; i++) j.perm[i] = j.train_idx[i];
            dc_rng rr;
            dc_rng_init(&rr, c->seed, DC_RNG_STREAM_SAMPLER, (uint32_t)ph, (uint32_t)e);
            dc_rng_shuffle_i32(&rr, j.perm, (size_t)j.ntrain);
            for (int64_t st = p.step; st < steps && s == DC_OK; st++) {
                const int32_t *idx = j.perm + st * B;
                if ((s = load_batch(&j, j.dtr, idx, B, -1, key)) != DC_OK) break;
                double loss;
                int hits = 0;
                float rate = (float)rate_at(&j, lr, e, epochs, (int64_t)e * steps + st, total);
                if (j.multi) {
                    for (int i = 0; i < B; i++) memcpy(j.tb + (int64_t)i * j.C, j.tm_tr + (int64_t)idx[i] * j.C, (size_t)j.C);
                    dc_finetuner_step_multi(&j.f, j.x, j.tb, B, rate, 1, &loss);
                } else {
                    const int32_t *yl = dc_dataset_labels(j.dtr);
                    for (int i = 0; i < B; i++) j.y[i] = yl[idx[i]];
                    dc_finetuner_step(&j.f, j.x, j.y, B, rate, 1, &loss, &hits);
                }
                if ((s = dc_model_status(&j.m)) != DC_OK) break;
                p.loss_sum += loss * B;
                p.hits += hits;
                p.seen += B;
                p.step = (int)st + 1;
                if (c->stop && *c->stop) {
                    p.phase = ph;
                    p.epoch = e;
                    if (c->out && (s = save_state(&j, &p)) != DC_OK) break;
                    s = dc_set_error(DC_STATUS_INTERRUPTED, "stopped in epoch %d%s", e,
                                     c->out ? "; the same command resumes it" : "");
                }
            }
            if (s != DC_OK) break;
            last_loss = p.seen ? p.loss_sum / p.seen : 0;
            trained++;
            double acc = j.multi ? -1 : p.seen ? (double)p.hits / p.seen : 0;
            if (!isfinite(last_loss)) {
                dc_log_warn("rate %g diverged (loss %g) in epoch %d", lr, last_loss, e);
                if (!cand) {
                    s = dc_set_error(DC_STATUS_INTERNAL, "fine-tuning diverged at rate %g (give a smaller --lr)", lr);
                    break;
                }
            }
            if (j.multi)
                dc_log_info("%s lr %g, epoch %d/%d: loss %.4f", cand ? "choosing:" : "training:", lr, e + 1, epochs,
                            last_loss);
            else
                dc_log_info("%s lr %g, epoch %d/%d: loss %.4f, training accuracy %.4f", cand ? "choosing:" : "training:",
                            lr, e + 1, epochs, last_loss, acc);
            p.phase = ph;
            p.epoch = e + 1;
            p.step = 0;
            p.loss_sum = 0;
            p.hits = p.seen = 0;
            int done_training = e + 1 == epochs || !isfinite(last_loss);
            if (cand && done_training) {
                double t1, t5, tl = HUGE_VAL;
                if (!isfinite(last_loss)) t1 = -1;
                else if ((s = score(&j, j.dtr, j.hold, j.nhold, 1, &t1, &t5, &tl)) != DC_OK) break;
                if (!isfinite(tl)) t1 = -1, tl = HUGE_VAL;
                p.val[ph] = t1;
                p.vloss[ph] = tl;
                dc_log_info("rate %g: held-out %s %.4f, loss %.4f", lr, j.multi ? "mAP" : "accuracy", t1, tl);
                p.phase = ph + 1; /* the next phase starts afresh */
                p.epoch = 0;
                e = epochs;
            }
            if (c->out) {
                if ((s = save_state(&j, &p)) != DC_OK) break;
                cJSON *line = cJSON_CreateObject();
                cJSON_AddStringToObject(line, "phase", cand ? "choose" : "train");
                cJSON_AddNumberToObject(line, "lr", lr);
                cJSON_AddNumberToObject(line, "epoch", p.phase == ph ? p.epoch - 1 : epochs - 1);
                cJSON_AddNumberToObject(line, "loss", isfinite(last_loss) ? last_loss : -1);
                if (!j.multi) cJSON_AddNumberToObject(line, "accuracy", acc);
                if (cand && p.phase == ph + 1) {
                    cJSON_AddNumberToObject(line, "held_out_top1", p.val[ph]);
                    cJSON_AddNumberToObject(line, "held_out_loss", isfinite(p.vloss[ph]) ? p.vloss[ph] : -1);
                }
                s = dc_json_append_line(j.log, line);
                cJSON_Delete(line);
            }
        }
        if (s == DC_OK) p.phase = ph + 1, p.epoch = p.step = 0;
    }
    if (s == DC_OK && head_out) { /* --head-first's first stage: its classifier, not scored */
        if (!trained && c->out) dc_log_info("%s: the first stage was done", c->out);
        s = dc_finetuner_sync(&j.f, 1);
        if (s == DC_OK) {
            int64_t CF = j.C * (int64_t)j.m.feat_dim + j.C;
            head_out->n = linear_ranges(&j.m, NULL, NULL);
            head_out->w = dc_malloc((size_t)head_out->n * sizeof(float), "--head-first classifier");
            head_out->hw = dc_malloc((size_t)CF * sizeof(float), "--head-first top layer");
            if (!head_out->w || !head_out->hw) s = DC_STATUS_NOMEM;
            else {
                linear_ranges(&j.m, head_out->w, NULL);
                memcpy(head_out->hw, j.f.hw, (size_t)CF * sizeof(float));
                head_out->lr = lr_used;
                head_out->val = choose ? p.val[best_candidate(base, &p, ncand)] : -1;
            }
        }
    } else if (s == DC_OK) {
        if (!trained && c->out)
            dc_log_info("%s: the fine-tuning was done; scoring it on %s with %d crop%s", c->out, c->test, c->crops,
                        c->crops > 1 ? "s" : "");
        dc_device_describe(&j.m.device, r->device, sizeof r->device);
        int64_t nte = dc_dataset_size(j.dte);
        int32_t *all = dc_xmalloc((size_t)nte * sizeof *all);
        for (int64_t i = 0; i < nte; i++) all[i] = (int32_t)i;
        s = score(&j, j.dte, all, nte, c->crops, &r->top1, &r->top5, NULL);
        r->map = -1;
        if (j.multi) r->map = r->top1, r->top1 = r->top5 = -1;
        dc_free(all);
        r->lr = lr_used;
        r->val_top1 = -1;
        if (choose) r->val_top1 = p.val[best_candidate(base, &p, ncand)];
        r->loss = trained || !c->out ? last_loss : logged_loss(j.log);
        r->epochs = epochs;
        r->nclasses = j.C;
        r->labelled = j.nlab;
        r->held_out = choose ? j.nhold : 0;
        r->trained = j.nlab;
        r->tested = nte;
    }
    job_free(&j);
    return s;
}

dc_status dc_finetune_run(const dc_finetune_config *c, dc_finetune_result *r)
{
    memset(r, 0, sizeof *r);
    r->head_lr = r->head_val_top1 = -1;
    if (c->mode != DC_FINETUNE_CLASSIFIER && c->mode != DC_FINETUNE_ALL)
        return dc_set_error(DC_STATUS_ARG, "fine-tuning mode %d: expected classifier or all", (int)c->mode);
    if (c->labels_per_class > 0 && c->label_fraction > 0)
        return dc_set_error(DC_STATUS_ARG, "--labels-per-class and --label-fraction: give one of them");
    if (c->label_fraction < 0 || c->label_fraction > 1)
        return dc_set_error(DC_STATUS_ARG, "--label-fraction %g: expected a share in (0, 1]", c->label_fraction);
    if (c->crops != 1 && c->crops != 10) return dc_set_error(DC_STATUS_ARG, "--crops %d: expected 1 or 10", c->crops);
    if (c->holdout <= 0 || c->holdout >= 1)
        return dc_set_error(DC_STATUS_ARG, "held-out share %g: expected one in (0, 1)", c->holdout);
    if (c->head_first && c->mode != DC_FINETUNE_ALL)
        return dc_set_error(DC_STATUS_ARG, "--head-first 1 goes with --mode all (the classifier mode trains the "
                            "classifier alone already)");
    if (c->head_lr < 0 || (c->head_lr > 0 && !c->head_first))
        return dc_set_error(DC_STATUS_ARG, "--head-lr %g: the rate of --head-first 1's first stage (give both)",
                            c->head_lr);
    if (!c->head_first) return run_job(c, r, NULL, NULL);
    /* --head-first: the classifier-mode job (its own directory out/head, so
     * that it resumes as the classifier mode's own), then every layer */
    dc_finetune_config h = *c;
    h.mode = DC_FINETUNE_CLASSIFIER;
    h.head_first = 0;
    h.lr = c->head_lr;
    h.head_lr = 0;
    char hdir[4200];
    dc_status s = DC_OK;
    if (c->out) { /* a directory of another job is refused before the first stage */
        ft_job j = {.c = c};
        snprintf(hdir, sizeof hdir, "%s/finetune.safetensors", c->out);
        struct stat sb;
        dc_st_file *f = NULL;
        if (stat(hdir, &sb) == 0 && (s = dc_st_open(hdir, &f)) == DC_OK) {
            s = same_job(&j, f);
            dc_st_close(f);
        }
        snprintf(hdir, sizeof hdir, "%s/head", c->out);
        h.out = hdir;
        if (s == DC_OK) s = make_dir(c->out);
    }
    ft_head head = {0};
    if (s == DC_OK) s = run_job(&h, r, NULL, &head);
    if (s == DC_OK) {
        dc_log_info("--head-first: the classifier trained over the frozen body (rate %g); now every layer", head.lr);
        s = run_job(c, r, &head, NULL);
        r->head_lr = head.lr;
        r->head_val_top1 = head.val;
    }
    dc_free(head.w);
    dc_free(head.hw);
    return s;
}
