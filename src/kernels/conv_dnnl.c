/* conv_dnnl.c — convolution through oneDNN's primitives on channel-blocked
 * activations (nChw16c: for each sample and block of 16 channels, the
 * plane with the 16 channels innermost). oneDNN's direct AVX-512
 * convolutions reach 300–350 GFLOP/s here against about 200 for im2col +
 * GEMM, and need no column buffer. Parameters stay in PyTorch's OIHW layout
 * in the model; each forward reorders them into the primitive's layout and
 * each backward reorders the weight gradient back and adds it.
 * Primitives are specific to the batch size: a small cache keeps the last
 * few sizes. Scratchpads are owned here (user mode), so executing a
 * primitive allocates nothing.
 * Includes: dc/kernels.h, oneDNN. */
#include "dc/kernels.h"

#include <stdlib.h>
#include <string.h>

#ifdef DC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

#define SLOTS 3

typedef struct {
    int n; /* batch size; 0: empty slot */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    dnnl_primitive_t w_to_fwd, w_to_bwd, dw_to_oihw;
    dnnl_memory_t src, wts_fwd, wts_bwd, bias, dst, diff_src, diff_dst, dwts, diff_bias, oihw, oihw_dw,
        scratch;
    size_t wfwd_bytes, wbwd_bytes, dw_bytes;
    int bwd_same_weights; /* the backward-data primitive reads wts_fwd */
    unsigned long use;    /* for replacing the least recently used slot */
} conv_slot;

struct dc_dnnl_conv {
    int C, H, W, OC, K, stride, pad, src_blocked, bwd_data;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_slot slot[SLOTS];
    unsigned long clock;
    void *scratch;      /* largest scratchpad of any primitive here */
    size_t scratch_bytes;
    void *wfwd, *wbwd, *dw; /* weights in the primitives' layouts, dW */
    const conv_slot *wfwd_slot; /* wfwd holds `wfwd_from` in this slot's layout */
    const float *wfwd_from;
    size_t wfwd_bytes, wbwd_bytes, dw_bytes;
    float *dbias;
};

#define TRY(call, what)                                                                              \
    do {                                                                                             \
        dnnl_status_t s_ = (call);                                                                   \
        if (s_ != dnnl_success) {                                                                    \
            st = dc_set_error(DC_STATUS_INTERNAL, "oneDNN: %s failed (status %d)", what, (int)s_);   \
            goto fail;                                                                               \
        }                                                                                            \
    } while (0)

static void slot_free(conv_slot *s)
{
    dnnl_primitive_t *p[] = {&s->fwd, &s->bwd_data, &s->bwd_weights, &s->w_to_fwd, &s->w_to_bwd, &s->dw_to_oihw};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (*p[i]) dnnl_primitive_destroy(*p[i]);
    dnnl_memory_t *m[] = {&s->src,      &s->wts_fwd,  &s->wts_bwd, &s->bias, &s->dst,     &s->diff_src,
                          &s->diff_dst, &s->dwts,     &s->diff_bias, &s->oihw, &s->oihw_dw, &s->scratch};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (*m[i]) dnnl_memory_destroy(*m[i]);
    memset(s, 0, sizeof *s);
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* Grows a buffer owned by the convolution (at primitive creation only). */
static dc_status grow(void **buf, size_t *have, size_t need)
{
    if (need <= *have) return DC_OK;
    void *p = dc_calloc(need ? need : 64, 1, "convolution buffers");
    if (!p) return DC_STATUS_NOMEM;
    dc_free(*buf);
    *buf = p;
    *have = need;
    return DC_OK;
}

static dc_status make_mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t e)
{
    return dnnl_memory_create(m, md, e, DNNL_MEMORY_NONE) == dnnl_success
               ? DC_OK
               : dc_set_error(DC_STATUS_INTERNAL, "oneDNN: memory creation failed");
}

static dc_status reorder(dnnl_primitive_t *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                         dnnl_engine_t e, dnnl_primitive_attr_t attr)
{
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, attr) != dnnl_success)
        return dc_set_error(DC_STATUS_INTERNAL, "oneDNN: no reorder for the convolution weights");
    dnnl_status_t s = dnnl_primitive_create(p, pd);
    dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success ? DC_OK : dc_set_error(DC_STATUS_INTERNAL, "oneDNN: reorder creation failed");
}

static dc_status slot_init(dc_dnnl_conv *c, conv_slot *s, int N)
{
    dc_status st = DC_OK;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    int OH = dc_conv_out_size(c->H, c->K, c->stride, c->pad), OW = dc_conv_out_size(c->W, c->K, c->stride, c->pad);
    dnnl_dims_t sd = {N, c->C, c->H, c->W}, wd = {c->OC, c->C, c->K, c->K}, bd = {c->OC}, dd = {N, c->OC, OH, OW};
    dnnl_dims_t strides = {c->stride, c->stride}, pads = {c->pad, c->pad};
    dnnl_memory_desc_t smd, wany, woihw, bmd, dmd;
    TRY(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, c->src_blocked ? dnnl_nChw16c : dnnl_nchw), "source");
    TRY(dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights");
    TRY(dnnl_memory_desc_init_by_tag(&woihw, 4, wd, dnnl_f32, dnnl_oihw), "weights");
    TRY(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x), "bias");
    TRY(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_nChw16c), "destination");
    TRY(dnnl_primitive_attr_create(&attr), "attributes");
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");

    dnnl_convolution_desc_t cd;
    TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &smd, &wany, &bmd,
                                           &dmd, strides, pads, pads),
        "convolution descriptor");
    TRY(dnnl_primitive_desc_create(&fpd, &cd, attr, c->engine, NULL), "convolution");
    TRY(dnnl_primitive_create(&s->fwd, fpd), "convolution");
    const dnnl_memory_desc_t *wf = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
    size_t need = scratch_size(fpd);

    dnnl_convolution_desc_t wdsc;
    TRY(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &smd, &wany, &bmd, &dmd, strides,
                                                    pads, pads),
        "weight-gradient descriptor");
    TRY(dnnl_primitive_desc_create(&wpd, &wdsc, attr, c->engine, fpd), "weight gradient");
    TRY(dnnl_primitive_create(&s->bwd_weights, wpd), "weight gradient");
    const dnnl_memory_desc_t *dw = dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0);
    if (scratch_size(wpd) > need) need = scratch_size(wpd);

    const dnnl_memory_desc_t *wb = NULL;
    if (c->bwd_data) {
        dnnl_convolution_desc_t dd2;
        TRY(dnnl_convolution_backward_data_desc_init(&dd2, dnnl_convolution_direct, &smd, &wany, &dmd, strides, pads,
                                                     pads),
            "input-gradient descriptor");
        TRY(dnnl_primitive_desc_create(&dpd, &dd2, attr, c->engine, fpd), "input gradient");
        TRY(dnnl_primitive_create(&s->bwd_data, dpd), "input gradient");
        wb = dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0);
        if (scratch_size(dpd) > need) need = scratch_size(dpd);
        s->bwd_same_weights = dnnl_memory_desc_equal(wb, wf);
    }

    /* memory objects: handles are set before each execution */
    dnnl_memory_desc_t spmd;
    dnnl_dims_t spd = {(dnnl_dim_t)(need ? need : 1)};
    TRY(dnnl_memory_desc_init_by_tag(&spmd, 1, spd, dnnl_u8, dnnl_x), "scratchpad");
    if ((st = grow(&c->scratch, &c->scratch_bytes, need))) goto fail;
    if ((st = make_mem(&s->src, &smd, c->engine)) || (st = make_mem(&s->wts_fwd, wf, c->engine)) ||
        (st = make_mem(&s->bias, &bmd, c->engine)) || (st = make_mem(&s->dst, &dmd, c->engine)) ||
        (st = make_mem(&s->diff_dst, &dmd, c->engine)) || (st = make_mem(&s->dwts, dw, c->engine)) ||
        (st = make_mem(&s->diff_bias, &bmd, c->engine)) || (st = make_mem(&s->oihw, &woihw, c->engine)) ||
        (st = make_mem(&s->oihw_dw, &woihw, c->engine)) || (st = make_mem(&s->scratch, &spmd, c->engine)))
        goto fail;
    if ((st = reorder(&s->w_to_fwd, &woihw, wf, c->engine, NULL)) ||
        (st = reorder(&s->dw_to_oihw, dw, &woihw, c->engine, NULL)))
        goto fail;
    s->wfwd_bytes = dnnl_memory_desc_get_size(wf);
    s->dw_bytes = dnnl_memory_desc_get_size(dw);
    if ((st = grow(&c->wfwd, &c->wfwd_bytes, s->wfwd_bytes)) || (st = grow(&c->dw, &c->dw_bytes, s->dw_bytes)))
        goto fail;
    if (c->bwd_data) {
        if ((st = make_mem(&s->diff_src, &smd, c->engine))) goto fail;
        if (!s->bwd_same_weights) {
            if ((st = make_mem(&s->wts_bwd, wb, c->engine)) || (st = reorder(&s->w_to_bwd, &woihw, wb, c->engine, NULL)))
                goto fail;
            s->wbwd_bytes = dnnl_memory_desc_get_size(wb);
            if ((st = grow(&c->wbwd, &c->wbwd_bytes, s->wbwd_bytes))) goto fail;
        }
    }
    s->n = N;
fail:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st) slot_free(s);
    return st;
}

dc_status dc_dnnl_conv_create(dc_dnnl_conv **out, int C, int H, int W, int OC, int K, int stride, int pad,
                              int src_blocked, int bwd_data, int N)
{
    *out = NULL;
    dc_dnnl_conv *c = dc_calloc(1, sizeof *c, "convolution");
    if (!c) return DC_STATUS_NOMEM;
    c->C = C, c->H = H, c->W = W, c->OC = OC, c->K = K, c->stride = stride, c->pad = pad;
    c->src_blocked = src_blocked;
    c->bwd_data = bwd_data;
    dc_status st = DC_OK;
    c->dbias = dc_calloc((size_t)OC, sizeof *c->dbias, "convolution bias gradient");
    if (!c->dbias) {
        dc_dnnl_conv_free(c);
        return DC_STATUS_NOMEM;
    }
    TRY(dnnl_engine_create(&c->engine, dnnl_cpu, 0), "engine creation");
    TRY(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags), "stream creation");
    if ((st = slot_init(c, &c->slot[0], N))) goto fail;
    *out = c;
    return DC_OK;
fail:
    dc_dnnl_conv_free(c);
    return st;
}

void dc_dnnl_conv_free(dc_dnnl_conv *c)
{
    if (!c) return;
    for (int i = 0; i < SLOTS; i++) slot_free(&c->slot[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    dc_free(c->scratch);
    dc_free(c->wfwd);
    dc_free(c->wbwd);
    dc_free(c->dw);
    dc_free(c->dbias);
    dc_free(c);
}

/* The slot for batch size N, created on first use (aborts if oneDNN cannot
 * build for a size when it could for the first: a broken installation). */
static conv_slot *slot_for(dc_dnnl_conv *c, int N)
{
    conv_slot *lru = &c->slot[0];
    for (int i = 0; i < SLOTS; i++) {
        if (c->slot[i].n == N) {
            c->slot[i].use = ++c->clock;
            return &c->slot[i];
        }
        if (c->slot[i].use < lru->use) lru = &c->slot[i];
    }
    slot_free(lru);
    if (c->wfwd_slot == lru) c->wfwd_slot = NULL;
    dc_status st = slot_init(c, lru, N);
    if (st) {
        dc_log(DC_LOG_ERROR, "%s", dc_last_error());
        abort();
    }
    lru->use = ++c->clock;
    return lru;
}

#define SET(mem, ptr) DC_ASSERT(dnnl_memory_set_data_handle_v2((mem), (void *)(ptr), c->stream) == dnnl_success)

static void run(dc_dnnl_conv *c, conv_slot *s, dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args)
{
    SET(s->scratch, c->scratch);
    args[nargs].arg = DNNL_ARG_SCRATCHPAD;
    args[nargs].memory = s->scratch;
    DC_ASSERT(dnnl_primitive_execute(p, c->stream, nargs + 1, args) == dnnl_success);
    DC_ASSERT(dnnl_stream_wait(c->stream) == dnnl_success);
}

static void run_reorder(dc_dnnl_conv *c, dnnl_primitive_t p, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DC_ASSERT(dnnl_primitive_execute(p, c->stream, 2, a) == dnnl_success);
    DC_ASSERT(dnnl_stream_wait(c->stream) == dnnl_success);
}

void dc_dnnl_conv_forward(dc_dnnl_conv *c, float *out, const float *in, const float *w, const float *b, int N)
{
    conv_slot *s = slot_for(c, N);
    SET(s->oihw, w);
    SET(s->wts_fwd, c->wfwd);
    run_reorder(c, s->w_to_fwd, s->oihw, s->wts_fwd);
    c->wfwd_slot = s;
    c->wfwd_from = w;
    SET(s->src, in);
    SET(s->bias, b);
    SET(s->dst, out);
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, s->wts_fwd}, {DNNL_ARG_BIAS, s->bias},
                            {DNNL_ARG_DST, s->dst}};
    run(c, s, s->fwd, 4, a);
}

void dc_dnnl_conv_backward(dc_dnnl_conv *c, float *din, float *dw, float *db, float *dwtmp, const float *dout,
                           const float *in, const float *w, int N)
{
    conv_slot *s = slot_for(c, N);
    SET(s->diff_dst, dout);
    if (dw) {
        SET(s->src, in);
        SET(s->dwts, c->dw);
        SET(s->diff_bias, c->dbias);
        dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_DIFF_DST, s->diff_dst},
                                {DNNL_ARG_DIFF_WEIGHTS, s->dwts}, {DNNL_ARG_DIFF_BIAS, s->diff_bias}};
        run(c, s, s->bwd_weights, 4, a);
        SET(s->oihw_dw, dwtmp);
        run_reorder(c, s->dw_to_oihw, s->dwts, s->oihw_dw);
        int64_t nw = (int64_t)c->OC * c->C * c->K * c->K;
#pragma omp parallel for schedule(static) if (nw > 65536)
        for (int64_t i = 0; i < nw; i++) dw[i] += dwtmp[i];
        if (db)
            for (int o = 0; o < c->OC; o++) db[o] += c->dbias[o];
    }
    if (din) {
        DC_ASSERT(c->bwd_data);
        dnnl_memory_t wm = s->wts_fwd;
        if (!s->bwd_same_weights) {
            SET(s->oihw, w);
            SET(s->wts_bwd, c->wbwd);
            run_reorder(c, s->w_to_bwd, s->oihw, s->wts_bwd);
            wm = s->wts_bwd;
        } else if (c->wfwd_slot != s || c->wfwd_from != w) {
            /* the forward of the same batch normally left them there */
            SET(s->oihw, w);
            SET(s->wts_fwd, c->wfwd);
            run_reorder(c, s->w_to_fwd, s->oihw, s->wts_fwd);
            c->wfwd_slot = s;
            c->wfwd_from = w;
        }
        SET(s->diff_src, din);
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, s->diff_dst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, s->diff_src}};
        run(c, s, s->bwd_data, 3, a);
    }
}

const char *dc_dnnl_conv_impl(const dc_dnnl_conv *c)
{
    for (int i = 0; i < SLOTS; i++)
        if (c->slot[i].fwd) {
            const_dnnl_primitive_desc_t pd = NULL;
            const char *name = NULL;
            if (dnnl_primitive_get_primitive_desc(c->slot[i].fwd, &pd) == dnnl_success &&
                dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success)
                return name;
        }
    return "none";
}

#else /* !DC_HAVE_DNNL */

dc_status dc_dnnl_conv_create(dc_dnnl_conv **out, int C, int H, int W, int OC, int K, int stride, int pad,
                              int src_blocked, int bwd_data, int N)
{
    (void)C, (void)H, (void)W, (void)OC, (void)K, (void)stride, (void)pad, (void)src_blocked, (void)bwd_data, (void)N;
    *out = NULL;
    return dc_set_error(DC_STATUS_UNSUPPORTED, "built without oneDNN");
}
void dc_dnnl_conv_free(dc_dnnl_conv *c) { (void)c; }
void dc_dnnl_conv_forward(dc_dnnl_conv *c, float *out, const float *in, const float *w, const float *b, int N)
{
    (void)c, (void)out, (void)in, (void)w, (void)b, (void)N;
    abort();
}
void dc_dnnl_conv_backward(dc_dnnl_conv *c, float *din, float *dw, float *db, float *dwtmp, const float *dout,
                           const float *in, const float *w, int N)
{
    (void)c, (void)din, (void)dw, (void)db, (void)dwtmp, (void)dout, (void)in, (void)w, (void)N;
    abort();
}
const char *dc_dnnl_conv_impl(const dc_dnnl_conv *c)
{
    (void)c;
    return "none";
}
#endif
