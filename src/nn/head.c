/* head.c — the classification heads (super-class and per-super-class
 * sub-class linear layers, SPEC §5), each with its own gradients and
 * momentum so it can be re-initialised alone after a clustering step
 * (SPEC §4.7), and SGD with PyTorch's semantics (torch.optim.SGD with
 * momentum, no dampening, no Nesterov, weight decay added to the gradient).
 * Includes: dc/nn.h, core. */
#include "dc/nn.h"

#include <math.h>
#include <string.h>

void dc_head_free(dc_head *h)
{
    if (!h) return;
    dc_free(h->w);
    memset(h, 0, sizeof *h);
}

void dc_head_reset(dc_head *h, uint64_t seed, uint32_t a, uint32_t b)
{
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_INIT, a, b);
    float bound = 1.0f / sqrtf((float)h->in);
    int64_t nw = (int64_t)h->out * h->in;
    for (int64_t i = 0; i < nw; i++) h->w[i] = (2.0f * dc_rng_uniform(&r) - 1.0f) * bound;
    for (int i = 0; i < h->out; i++) h->b[i] = (2.0f * dc_rng_uniform(&r) - 1.0f) * bound;
    memset(h->dw, 0, (size_t)nw * sizeof *h->dw);
    memset(h->db, 0, (size_t)h->out * sizeof *h->db);
    memset(h->mw, 0, (size_t)nw * sizeof *h->mw);
    memset(h->mb, 0, (size_t)h->out * sizeof *h->mb);
    h->has_momentum = 0;
}

dc_status dc_head_init(dc_head *h, int in, int out, uint64_t seed, uint32_t a, uint32_t b)
{
    memset(h, 0, sizeof *h);
    DC_ASSERT(in >= 1 && out >= 1);
    size_t nw = (size_t)out * in;
    /* One block: w, b, dw, db, mw, mb. */
    size_t total = 3 * (nw + (size_t)out);
    float *blk = dc_malloc(total * sizeof(float), "classification head");
    if (!blk) return DC_STATUS_NOMEM;
    h->in = in;
    h->out = out;
    h->w = blk;
    h->b = h->w + nw;
    h->dw = h->b + out;
    h->db = h->dw + nw;
    h->mw = h->db + out;
    h->mb = h->mw + nw;
    dc_head_reset(h, seed, a, b);
    return DC_OK;
}

void dc_sgd_step(float *p, const float *g, float *v, int64_t n, float lr, float momentum,
                 float wd, int first)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        float vi = first ? d : momentum * v[i] + d;
        v[i] = vi;
        p[i] -= lr * vi;
    }
}
