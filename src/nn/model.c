/* model.c — the network's forward and backward passes over the buffers
 * plan.c allocated: NCHW kernels, or oneDNN's convolutions on
 * channel-blocked activations with batch norm and ReLU fused, or the GPU
 * engine (dispatched here: the host sees the same calls). Batch norm in
 * training uses the (global, when distributed) batch's statistics, split
 * in sums a distributed caller all-reduces. Backward accumulates into
 * `grads`. Includes: dc/nn.h, dc/kernels.h, gpu/gpu.h. */
#include "dc/nn.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "gpu/gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* A GPU failure: kept (the first), the calls that cannot return it go on
 * harmlessly; dc_model_status reports it. */
static void gpu_failed(dc_model *m, dc_status s)
{
    if (s && !m->gpu_status) {
        m->gpu_status = s;
        dc_log_error("%s", dc_last_error());
    }
}

/* The host view of a GPU-resident layer output, grown on demand. */
static float *host_view(dc_model *m, int64_t n)
{
    if (n > m->nview) {
        dc_free(m->view);
        m->view = dc_xmalloc((size_t)n * sizeof *m->view);
        m->nview = n;
    }
    return m->view;
}

/* ------------------------------------------------------------------------ */
/* Forward and backward                                                     */
/* ------------------------------------------------------------------------ */

static const float *wptr(const dc_model *m, const dc_layer *l)
{
    return (l->fixed ? m->fixed : m->params) + l->w_off;
}

static const float *bptr(const dc_model *m, const dc_layer *l)
{
    return (l->fixed ? m->fixed : m->params) + l->b_off;
}

/* Floats per sample of layer l's output / input in the layout in use. */
static int64_t out_size(const dc_model *m, const dc_layer *l)
{
    return l->blocked && m->blocked ? dc_blk_size(l->oc, (int64_t)l->oh * l->ow) : (int64_t)l->oc * l->oh * l->ow;
}

static int64_t in_size(const dc_model *m, const dc_layer *l)
{
    return l->in_blocked && m->blocked ? dc_blk_size(l->c, (int64_t)l->h * l->w) : (int64_t)l->c * l->h * l->w;
}

/* On the blocked engine a batch norm and the ReLU after it run as one
 * pass (forward: ReLU(BN(x)) into the ReLU's output; backward: the ReLU's
 * mask applied inside BN's backward). */
static int fused_bn(const dc_model *m, int i)
{
    return m->blocked && m->layers[i].kind == DC_LAYER_BN && m->layers[i].blocked && i + 1 < m->nlayers &&
           m->layers[i + 1].kind == DC_LAYER_RELU;
}

/* Batch norm in training: the batch's statistics (the global batch's when
 * distributed), the running ones updated, the output normalised — into the
 * following ReLU's output when fused. */
static void bn_forward_train(dc_model *m, int i, float *y, const float *x, int N)
{
    dc_layer *l = &m->layers[i];
    int blk = l->blocked && m->blocked, hw = l->h * l->w;
    const float *gamma = m->params + l->w_off, *beta = m->params + l->b_off;
    float *rm = m->stats + l->rm_off, *rv = m->stats + l->rv_off;
    float *mean = m->cache + l->cache_off, *rstd = mean + l->c;
    double *sum = m->bn_tmp, *sumsq = m->bn_tmp + l->c + 1;
    int64_t count = (int64_t)N * hw;
    double *m2 = sumsq + l->c, *lsum = m2 + l->c; /* bn_tmp holds 4·(C+1) */
    int64_t lcount = count;
    if (blk) {
        dc_bn_moments_blk(sum, m2, x, N, l->c, hw);
        memcpy(lsum, sum, (size_t)l->c * sizeof *lsum);
    } else {
        dc_bn_sums(sum, x, N, l->c, hw);
    }
    if (m->reduce) { /* the global batch: sums and count, then centred squares */
        sum[l->c] = (double)count;
        m->reduce(m->reduce_ctx, sum, l->c + 1);
        count = (int64_t)sum[l->c];
        m->global_batch = count / hw;
    }
    for (int c = 0; c < l->c; c++) mean[c] = (float)(sum[c] / (double)count);
    if (blk) /* about the (global, float) mean from the local moments */
        for (int c = 0; c < l->c; c++) {
            double dm = lsum[c] / (double)lcount - mean[c];
            sumsq[c] = m2[c] + (double)lcount * dm * dm;
        }
    else
        dc_bn_centered_sumsq(sumsq, x, mean, N, l->c, hw);
    if (m->reduce) m->reduce(m->reduce_ctx, sumsq, l->c);
    dc_bn_finalize(mean, rstd, rm, rv, sumsq, l->c, count, BN_EPS, BN_MOMENTUM);
    if (fused_bn(m, i))
        dc_bn_apply_blk(m->acts + l[1].act_off, x, gamma, beta, mean, rstd, N, l->c, hw, 1);
    else if (blk)
        dc_bn_apply_blk(y, x, gamma, beta, mean, rstd, N, l->c, hw, 0);
    else
        dc_bn_apply(y, x, gamma, beta, mean, rstd, N, l->c, hw);
    m->nbt[l->bn_index]++;
}

/* Batch norm in evaluation: the running statistics. */
static void bn_forward_eval(dc_model *m, int i, float *y, const float *x, int N)
{
    const dc_layer *l = &m->layers[i];
    int hw = l->h * l->w;
    const float *gamma = m->params + l->w_off, *beta = m->params + l->b_off;
    const float *rm = m->stats + l->rm_off, *rv = m->stats + l->rv_off;
    if (fused_bn(m, i))
        dc_batchnorm_forward_eval_blk(m->acts + l[1].act_off, x, gamma, beta, rm, rv, N, l->c, hw, BN_EPS, 1);
    else if (l->blocked && m->blocked)
        dc_batchnorm_forward_eval_blk(y, x, gamma, beta, rm, rv, N, l->c, hw, BN_EPS, 0);
    else
        dc_batchnorm_forward_eval(y, x, gamma, beta, rm, rv, N, l->c, hw, BN_EPS);
}

/* Batch norm's backward: γ and β gradients from this process's samples,
 * the input gradient d (NULL: none) from the global batch's sums. */
static void bn_backward(dc_model *m, int i, float *d, const float *g, const float *x, int N)
{
    const dc_layer *l = &m->layers[i];
    int blk = l->blocked && m->blocked, hw = l->h * l->w;
    const float *mean = m->cache + l->cache_off, *rstd = mean + l->c;
    double *sdy = m->bn_tmp, *sdx = m->bn_tmp + l->c;
    const float *gm = m->params + l->w_off;
    const float *ro = fused_bn(m, i) ? m->acts + l[1].act_off : NULL;
    if (blk)
        dc_bn_backward_sums_blk(sdy, sdx, g, x, mean, rstd, ro, N, l->c, hw);
    else
        dc_bn_backward_sums(sdy, sdx, g, x, mean, rstd, N, l->c, hw);
    float *dg = m->grads + l->w_off, *db = m->grads + l->b_off;
    const double *ty = sdy, *tx = sdx;
    int64_t count = (int64_t)N * hw;
    if (m->reduce) {
        for (int c = 0; c < l->c; c++) {
            dg[c] += (float)sdx[c];
            db[c] += (float)sdy[c];
        }
        dg = db = NULL;
        double *gy = m->bn_tmp + 2 * l->c, *gx = gy + l->c;
        memcpy(gy, sdy, (size_t)l->c * sizeof *gy);
        memcpy(gx, sdx, (size_t)l->c * sizeof *gx);
        m->reduce(m->reduce_ctx, gy, 2 * l->c);
        ty = gy;
        tx = gx;
        count = m->global_batch * hw;
    }
    if (blk)
        dc_bn_backward_apply_blk(d, dg, db, g, x, gm, mean, rstd, ro, ty, tx, N, l->c, hw, count);
    else
        dc_bn_backward_apply(d, dg, db, g, x, gm, mean, rstd, ty, tx, N, l->c, hw, count);
}

const float *dc_model_forward(dc_model *m, const float *in, int N, int train)
{
    DC_ASSERT(N >= 1 && N <= m->max_batch);
    DC_ASSERT(train >= 0 && train <= DC_FORWARD_FROZEN);
    if (m->gpu) {
        float *v = host_view(m, (int64_t)N * m->feat_dim);
        if (m->gpu_status == DC_OK) gpu_failed(m, dc_gpu_forward(m->gpu, m, in, N, train));
        if (m->gpu_status == DC_OK) gpu_failed(m, dc_gpu_layer_output(m->gpu, m, m->nlayers - 1, v));
        return v;
    }
    m->batch = N;
    m->train = train;
    m->input = in;
    int bn_batch = train == 1, dropout = train == 1 || train == DC_FORWARD_DROPOUT;
    const float *x = in;
    for (int i = 0; i < m->nlayers; i++) {
        dc_layer *l = &m->layers[i];
        float *y = m->acts + l->act_off;
        int64_t insize = in_size(m, l), outsize = out_size(m, l);
        int blk = l->blocked && m->blocked;
        switch (l->kind) {
        case DC_LAYER_PAD: dc_pad_forward(y, x, N * l->c, l->h, l->w, l->pad); break;
        case DC_LAYER_CONV:
            if (blk)
                dc_dnnl_conv_forward(m->convs[i], y, x, wptr(m, l), bptr(m, l), N);
            else
                dc_conv2d_forward(y, m->work, x, wptr(m, l), bptr(m, l), N, l->c, l->h, l->w, l->oc, l->k,
                                  l->stride, l->pad);
            break;
        case DC_LAYER_BN:
            if (bn_batch)
                bn_forward_train(m, i, y, x, N);
            else
                bn_forward_eval(m, i, y, x, N);
            break;
        case DC_LAYER_RELU:
            if (!(i > 0 && fused_bn(m, i - 1))) dc_relu_forward(y, x, N * insize);
            break;
        case DC_LAYER_MAXPOOL:
            if (blk)
                dc_maxpool_forward_blk(y, m->args + l->cache_off, x, N, l->c, l->h, l->w, l->k, l->stride);
            else
                dc_maxpool_forward(y, m->args + l->cache_off, x, N * l->c, l->h, l->w, l->k, l->stride);
            break;
        case DC_LAYER_AVGPOOL: dc_avgpool_forward(y, x, N * l->c, l->h, l->w, l->k, l->stride); break;
        case DC_LAYER_FLATTEN: {
            const dc_layer *p = &m->layers[i - 1];
            if (l->in_blocked && m->blocked)
                dc_blk_to_nchw(y, x, N, p->oc, p->oh * p->ow);
            else
                memcpy(y, x, (size_t)(N * outsize) * sizeof *y);
            break;
        }
        case DC_LAYER_LINEAR:
            dc_linear_forward(y, x, m->params + l->w_off, m->params + l->b_off, N, l->c, l->oc);
            break;
        case DC_LAYER_DROPOUT:
            if (dropout)
                dc_dropout_forward(y, m->masks + l->cache_off, x, N * outsize, m->sample_offset * outsize, l->p,
                                   m->dropout_seed, (uint32_t)i, (uint32_t)m->step);
            else
                memcpy(y, x, (size_t)(N * outsize) * sizeof *y);
            break;
        }
        x = y;
    }
    if (train) m->step++;
    return x;
}

const float *dc_model_layer_output(dc_model *m, int i)
{
    DC_ASSERT(i >= 0 && i < m->nlayers);
    const dc_layer *l = &m->layers[i];
    if (m->gpu) {
        float *v = host_view(m, (int64_t)m->batch * l->oc * l->oh * l->ow);
        if (m->gpu_status == DC_OK) gpu_failed(m, dc_gpu_layer_output(m->gpu, m, i, v));
        return v;
    }
    const float *y = m->acts + l->act_off;
    if (!(l->blocked && m->blocked)) return y;
    int64_t n = (int64_t)m->batch * l->oc * l->oh * l->ow;
    if (n > m->nview) { /* grown on demand: feature extraction, not a training step */
        dc_free(m->view);
        m->view = dc_xmalloc((size_t)n * sizeof *m->view);
        m->nview = n;
    }
    dc_blk_to_nchw(m->view, y, m->batch, l->oc, l->oh * l->ow);
    return m->view;
}

void dc_model_zero_grad(dc_model *m)
{
    if (m->gpu) {
        if (m->gpu_status == DC_OK) gpu_failed(m, dc_gpu_zero_grad(m->gpu, m));
        return;
    }
    memset(m->grads, 0, (size_t)m->nparams * sizeof *m->grads);
}

void dc_model_backward(dc_model *m, const float *dout) { dc_model_backward_from(m, dout, 0); }

void dc_model_backward_from(dc_model *m, const float *dout, int from)
{
    DC_ASSERT(m->train && m->batch > 0 && from >= 0 && from < m->nlayers);
    int first = 0; /* the first layer with trainable parameters */
    while (first < m->nlayers && !(m->layers[first].kind == DC_LAYER_CONV && !m->layers[first].fixed)) first++;
    int partial = from > first; /* stops above the first trainable layer */
    if (partial) first = from;
    if (m->train != 1) /* batch norm ran on its running statistics: no backward through it */
        for (int i = first; i < m->nlayers; i++) DC_ASSERT(m->layers[i].kind != DC_LAYER_BN);
    if (m->gpu) {
        if (m->gpu_status == DC_OK) gpu_failed(m, dc_gpu_backward_host(m->gpu, m, dout, partial ? from : 0));
        return;
    }
    int N = m->batch;
    float *g = m->grad_a, *dx = m->grad_b;
    memcpy(g, dout, (size_t)N * m->feat_dim * sizeof *g);
    for (int i = m->nlayers - 1; i >= first; i--) {
        dc_layer *l = &m->layers[i];
        int blk = l->blocked && m->blocked;
        if (l->kind == DC_LAYER_FLATTEN) {
            const dc_layer *p = &m->layers[i - 1];
            if (!(l->in_blocked && m->blocked)) continue; /* same gradient */
            dc_blk_from_nchw(dx, g, N, p->oc, p->oh * p->ow);
            float *t = g;
            g = dx;
            dx = t;
            continue;
        }
        if (l->kind == DC_LAYER_RELU && fused_bn(m, i - 1)) continue; /* inside BN's backward */
        const float *x = i == 0 ? m->input : m->acts + m->layers[i - 1].act_off;
        const float *y = m->acts + l->act_off;
        int64_t insize = in_size(m, l), outsize = out_size(m, l);
        float *d = i > first ? dx : NULL;
        if (d && !(blk && (l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_BN || l->kind == DC_LAYER_MAXPOOL)))
            /* the blocked kernels and oneDNN's convolution overwrite */
            memset(d, 0, (size_t)(N * insize) * sizeof *d);
        switch (l->kind) {
        case DC_LAYER_PAD:
            if (d) dc_pad_backward(d, g, N * l->c, l->h, l->w, l->pad);
            break;
        case DC_LAYER_CONV:
            DC_ASSERT(!l->fixed);
            if (blk)
                dc_dnnl_conv_backward(m->convs[i], d, m->grads + l->w_off, m->grads + l->b_off, m->dwork, g, x,
                                      m->params + l->w_off, N);
            else
                dc_conv2d_backward(d, m->grads + l->w_off, m->grads + l->b_off, m->work, m->dwork, g, x,
                                   m->params + l->w_off, N, l->c, l->h, l->w, l->oc, l->k, l->stride, l->pad);
            break;
        case DC_LAYER_BN: bn_backward(m, i, d, g, x, N); break;
        case DC_LAYER_RELU:
            if (d) dc_relu_backward(d, g, y, N * insize);
            break;
        case DC_LAYER_MAXPOOL:
            if (d && blk)
                dc_maxpool_backward_blk(d, g, m->args + l->cache_off, N, l->c, l->h, l->w, l->oh, l->ow);
            else if (d)
                dc_maxpool_backward(d, g, m->args + l->cache_off, N * l->c, l->h, l->w, l->oh, l->ow);
            break;
        case DC_LAYER_AVGPOOL:
            if (d) dc_avgpool_backward(d, g, N * l->c, l->h, l->w, l->k, l->stride);
            break;
        case DC_LAYER_LINEAR:
            dc_linear_backward(d, m->grads + l->w_off, m->grads + l->b_off, g, x, m->params + l->w_off, N,
                               l->c, l->oc);
            break;
        case DC_LAYER_DROPOUT:
            if (d && m->train == DC_FORWARD_FROZEN) /* ran as the identity */
                memcpy(d, g, (size_t)(N * outsize) * sizeof *d);
            else if (d)
                dc_dropout_backward(d, g, m->masks + l->cache_off, N * outsize, l->p);
            break;
        case DC_LAYER_FLATTEN: break;
        }
        if (m->grad_ready && l->w_off >= 0 && !l->fixed &&
            (l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_BN || l->kind == DC_LAYER_LINEAR))
            m->grad_ready(m->grad_ctx, l->w_off);
        float *t = g;
        g = dx;
        dx = t;
    }
}
