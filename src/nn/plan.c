/* plan.c — a preset turned into a VGG-style network (the original's
 * src/model/vgg16.py and model_factory.py): the layer list (zero padding,
 * the fixed Sobel stage, conv–BN–ReLU blocks and max-pools from the cfg
 * string, then Linear→ReLU→Dropout→Linear giving the feature vector, no
 * final ReLU), the flat buffers it needs planned and refused when they
 * exceed the machine (or the GPU), then allocated once and initialised as
 * SPEC §2; the model's device (CPU, oneDNN's blocked convolutions, or the
 * GPU engine), and queries over the layer list.
 * Includes: dc/nn.h, dc/kernels.h, gpu/gpu.h. */
#include "dc/nn.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "gpu/gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Building the layer list                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    dc_model *m;
    int cap;
    int c, h, w;  /* current per-sample shape */
    int64_t maxsize;
    int feat_idx, nconv;
    int64_t maxwork, maxdwork;
    int maxc;
    int blocked; /* inside the conv stack: outputs may be channel-blocked */
} builder;

static dc_layer *add(builder *b, dc_layer_kind kind, const char *name)
{
    dc_model *m = b->m;
    if (m->nlayers == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        m->layers = dc_xrealloc(m->layers, (size_t)b->cap * sizeof *m->layers);
    }
    dc_layer *l = &m->layers[m->nlayers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->c = l->oc = b->c;
    l->h = l->oh = b->h;
    l->w = l->ow = b->w;
    l->w_off = l->b_off = l->rm_off = l->rv_off = l->cache_off = -1;
    l->in_blocked = m->nlayers >= 2 && m->layers[m->nlayers - 2].blocked;
    l->blocked = b->blocked && kind != DC_LAYER_FLATTEN;
    return l;
}

/* Records the output shape, reserves activations and moves the cursor. */
static void finish(builder *b, dc_layer *l)
{
    dc_model *m = b->m;
    /* blocked tensors have room for their padded channels, so the buffers
     * serve both layouts; the flatten has its own (the NCHW copy of a
     * blocked input) */
    int64_t size = l->blocked ? dc_blk_size(l->oc, (int64_t)l->oh * l->ow) : (int64_t)l->oc * l->oh * l->ow;
    l->act_off = m->nacts;
    m->nacts += size * m->max_batch;
    int64_t insize = l->in_blocked ? dc_blk_size(l->c, (int64_t)l->h * l->w) : (int64_t)l->c * l->h * l->w;
    if (size > b->maxsize) b->maxsize = size;
    if (insize > b->maxsize) b->maxsize = insize;
    b->c = l->oc;
    b->h = l->oh;
    b->w = l->ow;
}

static void add_conv(builder *b, const char *name, int oc, int k, int pad, int fixed)
{
    dc_model *m = b->m;
    dc_layer *l = add(b, DC_LAYER_CONV, name);
    l->oc = oc;
    l->k = k;
    l->stride = 1;
    l->pad = pad;
    l->fixed = fixed;
    if (fixed) l->blocked = 0;
    l->oh = dc_conv_out_size(l->h, k, 1, pad);
    l->ow = dc_conv_out_size(l->w, k, 1, pad);
    int64_t nw = (int64_t)oc * l->c * k * k;
    int64_t *cnt = fixed ? &m->nfixed : &m->nparams;
    l->w_off = *cnt;
    l->b_off = *cnt + nw;
    *cnt += nw + oc;
    int64_t work = (int64_t)dc_conv2d_workspace(l->c, l->h, l->w, k, 1, pad);
    if (work > b->maxwork) b->maxwork = work;
    int64_t dwork = fixed ? 0 : (int64_t)dc_conv2d_workspace_dw(l->c, oc, k, l->oh, l->ow);
    if (!fixed && nw > dwork) dwork = nw; /* the oneDNN weight gradient in OIHW */
    if (dwork > b->maxdwork) b->maxdwork = dwork;
    finish(b, l);
}

static void add_linear(builder *b, const char *name, int out)
{
    dc_model *m = b->m;
    dc_layer *l = add(b, DC_LAYER_LINEAR, name);
    l->c = l->c * l->h * l->w;
    l->h = l->w = 1;
    l->oc = out;
    l->oh = l->ow = 1;
    l->w_off = m->nparams;
    l->b_off = m->nparams + (int64_t)out * l->c;
    m->nparams += (int64_t)out * l->c + out;
    finish(b, l);
}

static void feature_name(builder *b, char *buf, size_t n)
{
    snprintf(buf, n, "body.features.%d", b->feat_idx++);
}

static dc_status build(builder *b, const dc_preset *p, int sobel, int in_c)
{
    dc_model *m = b->m;
    char name[40];
    b->c = in_c;
    b->h = b->w = p->input;
    dc_layer *l = add(b, DC_LAYER_PAD, "padding");
    l->pad = sobel ? 2 : 1;
    l->oh = l->h + 2 * l->pad;
    l->ow = l->w + 2 * l->pad;
    finish(b, l);
    if (sobel) {
        add_conv(b, "sobel.0", 1, 1, 0, 1);
        add_conv(b, "sobel.1", 2, 3, 0, 1);
    }
    const char *s = p->features;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        if (*s == 'M') {
            feature_name(b, name, sizeof name);
            l = add(b, DC_LAYER_MAXPOOL, name);
            l->k = l->stride = 2;
            l->oh = (l->h - 2) / 2 + 1;
            l->ow = (l->w - 2) / 2 + 1;
            l->cache_off = m->nargs;
            m->nargs += (l->blocked ? dc_blk_size(l->oc, (int64_t)l->oh * l->ow) : (int64_t)l->oc * l->oh * l->ow) *
                        m->max_batch;
            finish(b, l);
            s++;
            continue;
        }
        int ch = (int)strtol(s, (char **)&s, 10);
        DC_ASSERT(ch > 0);
        feature_name(b, name, sizeof name);
        b->blocked = 1;
        add_conv(b, name, ch, 3, 1, 0);
        feature_name(b, name, sizeof name);
        l = add(b, DC_LAYER_BN, name);
        l->w_off = m->nparams;
        l->b_off = m->nparams + ch;
        m->nparams += 2 * ch;
        l->rm_off = m->nstats;
        l->rv_off = m->nstats + ch;
        m->nstats += 2 * ch;
        l->cache_off = m->ncache;
        m->ncache += 2 * ch;
        l->bn_index = m->nbn++;
        if (ch > b->maxc) b->maxc = ch;
        finish(b, l);
        feature_name(b, name, sizeof name);
        l = add(b, DC_LAYER_RELU, name);
        l->conv_index = ++b->nconv;
        finish(b, l);
    }
    if (b->h < 1 || b->w < 1)
        return dc_set_error(DC_STATUS_ARG, "preset %s: input %d is too small for its pools", p->name, p->input);
    b->blocked = 0;
    l = add(b, DC_LAYER_FLATTEN, "flatten");
    l->oc = l->c * l->h * l->w;
    l->oh = l->ow = 1;
    finish(b, l);
    add_linear(b, "body.classifier.0", p->hidden);
    finish(b, add(b, DC_LAYER_RELU, "body.classifier.1"));
    l = add(b, DC_LAYER_DROPOUT, "body.classifier.2");
    l->p = p->dropout;
    l->cache_off = m->nmasks;
    m->nmasks += (int64_t)l->oc * m->max_batch;
    finish(b, l);
    add_linear(b, "body.classifier.3", p->hidden);
    m->feat_dim = p->hidden;
    return DC_OK;
}

/* ------------------------------------------------------------------------ */
/* Initialisation (SPEC §2)                                                 */
/* ------------------------------------------------------------------------ */

static void init_params(dc_model *m, uint64_t seed)
{
    for (int i = 0; i < m->nlayers; i++) {
        dc_layer *l = &m->layers[i];
        dc_rng r;
        dc_rng_init(&r, seed, DC_RNG_STREAM_INIT, (uint32_t)i, 0);
        if (l->kind == DC_LAYER_CONV && l->fixed) {
            float *w = m->fixed + l->w_off, *b = m->fixed + l->b_off;
            if (l->k == 1) {
                /* grey: mean of the colour channels (one grey channel: 1) */
                for (int c = 0; c < l->c; c++) w[c] = l->c == 3 ? 1.0f / 3.0f : 1.0f;
            } else {
                static const float gx[9] = {1, 0, -1, 2, 0, -2, 1, 0, -1};
                static const float gy[9] = {1, 2, 1, 0, 0, 0, -1, -2, -1};
                memcpy(w, gx, sizeof gx);
                memcpy(w + 9, gy, sizeof gy);
            }
            for (int o = 0; o < l->oc; o++) b[o] = 0;
        } else if (l->kind == DC_LAYER_CONV) {
            int64_t nw = (int64_t)l->oc * l->c * l->k * l->k;
            double std = sqrt(2.0 / (double)(l->k * l->k * l->oc));
            for (int64_t j = 0; j < nw; j++) m->params[l->w_off + j] = (float)(dc_rng_normal(&r) * std);
            for (int o = 0; o < l->oc; o++) m->params[l->b_off + o] = 0;
        } else if (l->kind == DC_LAYER_BN) {
            for (int c = 0; c < l->oc; c++) {
                m->params[l->w_off + c] = 1;
                m->params[l->b_off + c] = 0;
                m->stats[l->rm_off + c] = 0;
                m->stats[l->rv_off + c] = 1;
            }
            m->nbt[l->bn_index] = 0;
        } else if (l->kind == DC_LAYER_LINEAR) {
            float bound = 1.0f / sqrtf((float)l->c);
            int64_t nw = (int64_t)l->oc * l->c;
            for (int64_t j = 0; j < nw; j++)
                m->params[l->w_off + j] = (2.0f * dc_rng_uniform(&r) - 1.0f) * bound;
            for (int o = 0; o < l->oc; o++) m->params[l->b_off + o] = (2.0f * dc_rng_uniform(&r) - 1.0f) * bound;
        }
    }
}

void dc_model_free(dc_model *m)
{
    if (!m) return;
    dc_gpu_model_free(m->gpu);
    dc_free(m->layers);
    dc_free(m->params);
    dc_free(m->grads);
    dc_free(m->fixed);
    dc_free(m->stats);
    dc_free(m->nbt);
    dc_free(m->acts);
    dc_free(m->cache);
    dc_free(m->args);
    dc_free(m->masks);
    dc_free(m->grad_a);
    dc_free(m->grad_b);
    dc_free(m->work);
    dc_free(m->dwork);
    dc_free(m->bn_tmp);
    if (m->convs)
        for (int i = 0; i < m->nlayers; i++) dc_dnnl_conv_free(m->convs[i]);
    dc_free(m->convs);
    dc_free(m->view);
    memset(m, 0, sizeof *m);
}

dc_status dc_model_init(dc_model *m, const char *preset, int sobel, int in_c, int max_batch,
                        uint64_t seed)
{
    memset(m, 0, sizeof *m);
    const dc_preset *p = dc_preset_find(preset);
    if (!p) return dc_set_error(DC_STATUS_ARG, "unknown architecture '%s' (presets: %s)", preset, dc_preset_names());
    return dc_model_init_spec(m, p, sobel, in_c, max_batch > 0 ? max_batch : dc_preset_batch(p), seed);
}

static void create_convs(dc_model *m);

/* The layer list of (p, sobel, in_c) for max_batch images, and the sizes of
 * the buffers that go with it; nothing else allocated. */
static dc_status plan(dc_model *m, builder *b, const dc_preset *p, int sobel, int in_c, int max_batch)
{
    memset(m, 0, sizeof *m);
    memset(b, 0, sizeof *b);
    m->device.gpu = -1; /* the CPU until dc_model_init_device or use_device says otherwise */
    if (in_c != 1 && in_c != 3)
        return dc_set_error(DC_STATUS_ARG, "input must have 1 or 3 channels, not %d", in_c);
    if (max_batch < 1) return dc_set_error(DC_STATUS_ARG, "batch size must be at least 1");
    m->preset = p;
    m->sobel = sobel;
    m->in_c = in_c;
    m->in_size = p->input;
    m->max_batch = max_batch;
    b->m = m;
    dc_status s = build(b, p, sobel, in_c);
    if (s) {
        dc_model_free(m);
        return s;
    }
    m->ngrad = b->maxsize * max_batch;
    m->nwork = b->maxwork;
    m->ndwork = b->maxdwork;
    return DC_OK;
}

/* Bytes of every buffer a planned model fills: those below, the NCHW view
 * of a layer's output, and oneDNN's copies of the conv weights in its
 * layouts (forward, backward, gradient). */
static int64_t plan_bytes(const dc_model *m, const builder *b)
{
    int64_t conv_w = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].kind == DC_LAYER_CONV && !m->layers[i].fixed)
            conv_w += (int64_t)m->layers[i].oc * m->layers[i].c * m->layers[i].k * m->layers[i].k;
    int64_t floats = 2 * m->nparams + m->nfixed + m->nstats + m->nacts + m->ncache + 3 * m->ngrad + m->nwork +
                     m->ndwork + 3 * conv_w;
    return 4 * (floats + m->nargs) + m->nmasks + 8 * (int64_t)m->nbn + 32 * (int64_t)(b->maxc + 1);
}

dc_status dc_model_memory(const dc_preset *p, int sobel, int in_c, int64_t *fixed, int64_t *per_image)
{
    dc_model m;
    builder b;
    int64_t at[2];
    for (int i = 0; i < 2; i++) {
        dc_status s = plan(&m, &b, p, sobel, in_c, i + 1);
        if (s) return s;
        at[i] = plan_bytes(&m, &b);
        dc_model_free(&m);
    }
    *per_image = at[1] - at[0];
    *fixed = at[0] - *per_image;
    return DC_OK;
}

int dc_model_fit_batch(int64_t fixed, int64_t per_image, int64_t budget)
{
    if (budget < fixed + per_image) return 0;
    int64_t n = (budget - fixed) / (per_image > 0 ? per_image : 1);
    return n > 1 << 20 ? 1 << 20 : (int)n;
}

/* The host's activation buffers (the CPU engine's alone). */
static void free_host_acts(dc_model *m)
{
    void *b[] = {m->acts, m->cache, m->args, m->masks, m->grad_a, m->grad_b, m->work, m->dwork, m->bn_tmp, m->view};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) dc_free(b[i]);
    m->acts = m->cache = m->grad_a = m->grad_b = m->work = m->dwork = m->view = NULL;
    m->args = NULL;
    m->masks = NULL;
    m->bn_tmp = NULL;
    m->nview = 0;
    if (m->convs)
        for (int i = 0; i < m->nlayers; i++) dc_dnnl_conv_free(m->convs[i]);
    dc_free(m->convs);
    m->convs = NULL;
    m->blocked = 0;
}

dc_status dc_model_init_spec(dc_model *m, const dc_preset *p, int sobel, int in_c, int max_batch,
                             uint64_t seed)
{
    return dc_model_init_device(m, p, sobel, in_c, max_batch, seed, NULL);
}

dc_status dc_model_init_device(dc_model *m, const dc_preset *p, int sobel, int in_c, int max_batch, uint64_t seed,
                               const dc_device *dev)
{
    int on_gpu = dev && dev->gpu >= 0;
    builder b;
    dc_status s = plan(m, &b, p, sobel, in_c, max_batch);
    if (s) return s;
    int64_t need = plan_bytes(m, &b), have = dc_memory_budget();
    if (!on_gpu && have > 0 && need > have) {
        int64_t fixed, per;
        int fit = dc_model_memory(p, sobel, in_c, &fixed, &per) == DC_OK ? dc_model_fit_batch(fixed, per, have) : 0;
        dc_model_free(m);
        char fits[64] = "not even one image fits";
        if (fit) snprintf(fits, sizeof fits, "batches of at most %d", fit);
        return dc_set_error(DC_STATUS_NOMEM,
                            "%s for batches of %d images needs %.1f GiB of memory, more than the %.1f GiB this "
                            "machine allows: %s",
                            p->name, max_batch, need / 1073741824.0, have / 1073741824.0, fits);
    }
    m->params = dc_calloc((size_t)m->nparams, sizeof(float), "parameters");
    m->grads = dc_calloc((size_t)m->nparams, sizeof(float), "gradients");
    m->fixed = dc_calloc((size_t)m->nfixed + 1, sizeof(float), "fixed parameters");
    m->stats = dc_calloc((size_t)m->nstats + 1, sizeof(float), "batch-norm statistics");
    m->nbt = dc_calloc((size_t)m->nbn + 1, sizeof(int64_t), "batch-norm counters");
    if (!m->params || !m->grads || !m->fixed || !m->stats || !m->nbt) {
        dc_model_free(m);
        return DC_STATUS_NOMEM;
    }
    init_params(m, seed);
    m->dropout_seed = seed;
    if (on_gpu) {
        m->device = *dev;
        s = dc_gpu_model_create(&m->gpu, m, dev);
        if (s) dc_model_free(m);
        return s;
    }
    m->acts = dc_calloc((size_t)m->nacts, sizeof(float), "activations");
    m->cache = dc_calloc((size_t)m->ncache + 1, sizeof(float), "batch-norm cache");
    m->args = dc_calloc((size_t)m->nargs + 1, sizeof(int32_t), "max-pool indices");
    m->masks = dc_calloc((size_t)m->nmasks + 1, 1, "dropout masks");
    m->grad_a = dc_calloc((size_t)m->ngrad, sizeof(float), "activation gradients");
    m->grad_b = dc_calloc((size_t)m->ngrad, sizeof(float), "activation gradients");
    m->work = dc_calloc((size_t)m->nwork + 1, sizeof(float), "convolution workspace");
    m->dwork = dc_calloc((size_t)m->ndwork + 1, sizeof(float), "convolution weight-gradient workspace");
    m->bn_tmp = dc_calloc(4 * (size_t)(b.maxc + 1), sizeof(double), "batch-norm sums");
    if (!m->acts || !m->cache || !m->args || !m->masks || !m->grad_a || !m->grad_b || !m->work || !m->dwork ||
        !m->bn_tmp) {
        dc_model_free(m);
        return DC_STATUS_NOMEM;
    }
    create_convs(m);
    return DC_OK;
}

dc_status dc_model_device_fit(const dc_preset *p, int sobel, int in_c, int max_batch, const dc_device *d)
{
    if (!d || d->gpu < 0) return DC_OK;
    dc_model m;
    builder b;
    dc_status s = plan(&m, &b, p, sobel, in_c, max_batch);
    if (s == DC_OK) s = dc_gpu_check_fit(&m, d);
    dc_model_free(&m);
    return s;
}

dc_status dc_model_use_device(dc_model *m, const dc_device *d)
{
    if (!d || d->gpu < 0 || m->gpu) return DC_OK;
    dc_status s = dc_gpu_model_create(&m->gpu, m, d);
    if (s) return s;
    m->device = *d;
    free_host_acts(m);
    return DC_OK;
}

dc_status dc_model_sync(dc_model *m, int to_host)
{
    if (!m->gpu) return DC_OK;
    dc_status s = dc_gpu_model_sync(m->gpu, m, to_host);
    if (s && !m->gpu_status) m->gpu_status = s;
    return s;
}

dc_status dc_model_status(const dc_model *m) { return m->gpu_status; }

void dc_model_pin_host(const dc_model *m, void *p, size_t bytes)
{
    if (m->gpu && p && bytes) (void)dc_gpu_pin(p, bytes);
}

void dc_model_unpin_host(const dc_model *m, void *p)
{
    if (m->gpu && p) dc_gpu_unpin(p);
}

int64_t dc_model_device_bytes(const dc_model *m) { return m->gpu ? dc_gpu_model_bytes(m->gpu) : 0; }

/* The oneDNN convolutions of the conv stack; without them (no oneDNN, or
 * it cannot build one) the model runs the NCHW kernels. */
static void create_convs(dc_model *m)
{
    m->convs = dc_calloc((size_t)m->nlayers, sizeof *m->convs, "convolutions");
    if (!m->convs) return;
    int first = 1;
    for (int i = 0; i < m->nlayers; i++) {
        dc_layer *l = &m->layers[i];
        if (l->kind != DC_LAYER_CONV || !l->blocked) continue;
        dc_status st = dc_dnnl_conv_create(&m->convs[i], l->c, l->h, l->w, l->oc, l->k, l->stride, l->pad,
                                           l->in_blocked, !first, m->max_batch);
        if (st) {
            dc_log(st == DC_STATUS_UNSUPPORTED ? DC_LOG_DEBUG : DC_LOG_WARN,
                   "the oneDNN convolutions are unavailable (%s): using the slower NCHW kernels", dc_last_error());
            for (int j = 0; j < m->nlayers; j++) dc_dnnl_conv_free(m->convs[j]);
            dc_free(m->convs);
            m->convs = NULL;
            return;
        }
        first = 0;
    }
    m->blocked = 1;
}

int dc_model_set_blocked(dc_model *m, int on)
{
    m->blocked = on && m->convs != NULL;
    return m->blocked;
}

int dc_model_conv_relu(const dc_model *m, int j)
{
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].kind == DC_LAYER_RELU && m->layers[i].conv_index == j) return i;
    return -1;
}

int dc_model_nconv(const dc_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) n += m->layers[i].kind == DC_LAYER_CONV && !m->layers[i].fixed;
    return n;
}

int dc_model_layer_find(const dc_model *m, const char *name)
{
    if (strcmp(name, "final") == 0) return m->nlayers - 1;
    if (strncmp(name, "conv", 4) == 0) {
        char *end;
        long j = strtol(name + 4, &end, 10);
        if (end != name + 4 && *end == '\0' && j >= 1 && j <= dc_model_nconv(m)) return dc_model_conv_relu(m, (int)j);
    }
    dc_set_error(DC_STATUS_ARG, "layer %s: expected final or conv1 ... conv%d", name, dc_model_nconv(m));
    return -1;
}
