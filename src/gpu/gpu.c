/* gpu.c — the GPU engine: the model's forward and backward and the
 * two-level training step on one CUDA device, in C11 over the cuDNN and
 * cuBLAS C APIs and kernels.cu. Convolutions by cuDNN (NCHW fp32; IEEE
 * fp32 FMA math or TF32 tensor cores), the linear layers and heads by
 * cuBLAS, everything else by our kernels, whose reductions have a fixed
 * order. Algorithms are chosen once per shape from the deterministic ones;
 * every buffer is allocated at creation; a step launches kernels on one
 * stream and copies back only its statistics.
 * The training step: step.c. Includes: gpu/gpu_internal.h. */
#include "gpu/gpu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Errors: every call checked, turned into dc_status and one line          */
/* ------------------------------------------------------------------------ */

dc_status dcg_cuda_error(cudaError_t e, const char *what)
{
    if (e == cudaErrorMemoryAllocation)
        return dc_set_error(DC_STATUS_NOMEM, "out of GPU memory (%s): use a smaller --batch-size or --device cpu", what);
    if (e == cudaErrorInsufficientDriver) {
        int v = 0;
        if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0)
            return dc_set_error(DC_STATUS_UNSUPPORTED,
                                "no NVIDIA driver is installed, so no GPU is visible: run with --device cpu");
        return dc_set_error(DC_STATUS_UNSUPPORTED,
                            "the NVIDIA driver (CUDA %d.%d) is older than CUDA %d.%d, which this program was built "
                            "with: update the driver or run with --device cpu",
                            v / 1000, v % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    }
    if (e == cudaErrorNoDevice)
        return dc_set_error(DC_STATUS_UNSUPPORTED, "no CUDA GPU is visible: run with --device cpu");
    return dc_set_error(DC_STATUS_INTERNAL, "CUDA error in %s: %s (%s)", what, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}

/* A library's ignored failure (a probe inside cuDNN or cuBLAS) stays in the
 * runtime's per-thread last error until read; our launch checks read it.
 * Cleared at every entry point, so a launch reports its own error only
 * (a sticky error, a broken context, comes back at once anyway). */
void dcg_clear_stale(const char *where)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) dc_log_debug("gpu: a stale CUDA error before %s: %s", where, cudaGetErrorString(e));
}

int dc_gpu_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

dc_status dc_gpu_describe(int device, char *buf, size_t n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return dcg_cuda_error(e, "cudaGetDeviceCount");
    }
    if (device < 0 || device >= count)
        return dc_set_error(DC_STATUS_ARG, "cuda:%d: %d CUDA device%s visible (cuda:0 … cuda:%d)", device, count,
                            count == 1 ? " is" : "s are", count - 1);
    struct cudaDeviceProp p;
    CU(cudaGetDeviceProperties(&p, device));
    int drv = 0, rt = 0;
    CU(cudaDriverGetVersion(&drv));
    CU(cudaRuntimeGetVersion(&rt));
    size_t dnn = cudnnGetVersion();
    int bv = 0;
    cublasGetVersion(NULL, &bv);
    snprintf(buf, n,
             "%s (sm_%d%d, %d SMs, %.1f GiB; driver CUDA %d.%d, runtime %d.%d, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d)",
             p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, drv / 1000,
             drv % 1000 / 10, rt / 1000, rt % 1000 / 10, dnn / 10000, dnn % 10000 / 100, dnn % 100, bv / 10000,
             bv % 10000 / 100, bv % 100);
    return DC_OK;
}

/* ------------------------------------------------------------------------ */
/* The device model                                                         */
/* ------------------------------------------------------------------------ */

static void prof_collect(dc_gpu_model *g)
{
    if (!g->prof) return;
    float ms;
    if (g->prof_pending_f) {
        (void)cudaEventSynchronize(g->evf[g->nlayers]);
        for (int i = 0; i < g->nlayers; i++)
            if (cudaEventElapsedTime(&ms, g->evf[i], g->evf[i + 1]) == cudaSuccess) g->tf[i] += ms;
        g->nf++;
        g->prof_pending_f = 0;
    }
    if (g->prof_pending_b) {
        (void)cudaEventSynchronize(g->evb[g->nlayers]);
        for (int i = g->nlayers - 1; i >= g->prof_first; i--)
            if (cudaEventElapsedTime(&ms, g->evb[i], i > g->prof_first ? g->evb[i - 1] : g->evb[g->nlayers]) ==
                cudaSuccess)
                g->tb[i] += ms;
        g->nb++;
        g->prof_pending_b = 0;
    }
    (void)cudaGetLastError();
}

static void prof_print(dc_gpu_model *g, const char *const *names)
{
    if (!g->prof || (!g->nf && !g->nb)) return;
    double sf = 0, sb = 0;
    fprintf(stderr, "gpu profile (CUDA events; ms per pass over %lld forward and %lld backward passes)\n",
            (long long)g->nf, (long long)g->nb);
    fprintf(stderr, "  %-22s %10s %10s\n", "layer", "forward", "backward");
    for (int i = 0; i < g->nlayers; i++) {
        double f = g->nf ? g->tf[i] / g->nf : 0, b = g->nb ? g->tb[i] / g->nb : 0;
        sf += f;
        sb += b;
        if (f > 0.001 || b > 0.001) fprintf(stderr, "  %-22s %10.3f %10.3f\n", names[i], f, b);
    }
    fprintf(stderr, "  %-22s %10.3f %10.3f\n", "total", sf, sb);
}

static int64_t in_floats(const dc_model *m) { return (int64_t)m->in_c * m->in_size * m->in_size; }

/* What the three kinds of cuDNN's perf results share. */
typedef struct {
    cudnnStatus_t status;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
    int algo;
    size_t memory;
} algo_perf;

#define COPY_PERF(dst, src, n)                                                                                    \
    for (int c_ = 0; c_ < (n); c_++)                                                                              \
    (dst)[c_] = (algo_perf){(src)[c_].status, (src)[c_].determinism, (src)[c_].mathType, (int)(src)[c_].algo,     \
                            (src)[c_].memory}

/* The first usable result, in cuDNN's order (heuristic or timed): it ran,
 * it is deterministic, its workspace fits, and in the IEEE (fp32) mode it
 * uses neither tensor cores nor one of the `tr` transforms; -1 if none. */
static int pick(const algo_perf *a, int n, size_t limit, int ieee, const int *tr, int ntr)
{
    for (int i = 0; i < n; i++) {
        if (a[i].status != CUDNN_STATUS_SUCCESS || a[i].determinism != CUDNN_DETERMINISTIC || a[i].memory > limit)
            continue;
        int banned = ieee && a[i].math == CUDNN_TENSOR_OP_MATH;
        for (int t = 0; t < ntr && ieee; t++) banned |= a[i].algo == tr[t];
        if (!banned) return i;
    }
    return -1;
}

/* Descriptors and algorithms of conv layer i for batch N; `limit` bounds
 * each workspace. Deterministic algorithms only; cuDNN's heuristic order
 * unless autotune (then the fastest measured: a function of timing). */
static dc_status plan_conv(dc_gpu_model *g, const dc_model *m, int i, int N, size_t limit, int backward)
{
    const dc_layer *l = &m->layers[i];
    conv_plan *p = &g->conv[i];
    if (!p->x) {
        DNN(cudnnCreateTensorDescriptor(&p->x));
        DNN(cudnnCreateTensorDescriptor(&p->y));
        DNN(cudnnCreateFilterDescriptor(&p->w));
        DNN(cudnnCreateConvolutionDescriptor(&p->cf));
        DNN(cudnnCreateConvolutionDescriptor(&p->cd));
        DNN(cudnnCreateConvolutionDescriptor(&p->cw));
    }
    DNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, l->c, l->h, l->w));
    DNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, l->oc, l->oh, l->ow));
    DNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, l->oc, l->c, l->k, l->k));
    cudnnMathType_t math = g->dev.precision == DC_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    cudnnConvolutionDescriptor_t cds[3] = {p->cf, p->cd, p->cw};
    for (int d = 0; d < 3; d++) {
        DNN(cudnnSetConvolution2dDescriptor(cds[d], l->pad, l->pad, l->stride, l->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT));
        DNN(cudnnSetConvolutionMathType(cds[d], math));
    }
    int found = 0;
    enum { MAXA = 16 };
    /* fp32 is the parity mode: FMA kernels, and no FFT or Winograd
     * transforms, whose rounding differs from a direct sum (measured on an
     * H200: with them, test_parity's grey fixture ends 3 SGD steps 1.8e-3
     * from float64, PyTorch float32 1e-6); tf32 takes every deterministic
     * algorithm */
    int ieee = math != CUDNN_TENSOR_OP_MATH;
    algo_perf ap[MAXA];
    int k;
    cudnnConvolutionFwdAlgoPerf_t fp[MAXA];
    if (g->dev.autotune)
        DNN(cudnnFindConvolutionForwardAlgorithm(g->dnn, p->x, p->w, p->cf, p->y, MAXA, &found, fp));
    else
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(g->dnn, p->x, p->w, p->cf, p->y, MAXA, &found, fp));
    COPY_PERF(ap, fp, found);
    static const int fwd_tr[] = {CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
                                 CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED};
    if ((k = pick(ap, found, limit, ieee, fwd_tr, 4)) < 0)
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: cuDNN offers no deterministic forward convolution", l->name);
    p->af = fp[k].algo;
    p->wf = fp[k].memory;
    if (!ieee) DNN(cudnnSetConvolutionMathType(p->cf, fp[k].mathType));
    p->ad = 0;
    p->aw = 0;
    p->wd = p->ww = 0;
    p->has_bwd = 0;
    if (l->fixed || !backward) {
        p->n = N;
        return DC_OK;
    }
    cudnnConvolutionBwdDataAlgoPerf_t dp[MAXA];
    if (g->dev.autotune)
        DNN(cudnnFindConvolutionBackwardDataAlgorithm(g->dnn, p->w, p->y, p->cd, p->x, MAXA, &found, dp));
    else
        DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(g->dnn, p->w, p->y, p->cd, p->x, MAXA, &found, dp));
    COPY_PERF(ap, dp, found);
    static const int data_tr[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED};
    if ((k = pick(ap, found, limit, ieee, data_tr, 4)) < 0)
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: cuDNN offers no deterministic backward-data convolution",
                            l->name);
    p->ad = dp[k].algo;
    p->wd = dp[k].memory;
    if (!ieee) DNN(cudnnSetConvolutionMathType(p->cd, dp[k].mathType));
    cudnnConvolutionBwdFilterAlgoPerf_t wp[MAXA];
    if (g->dev.autotune)
        DNN(cudnnFindConvolutionBackwardFilterAlgorithm(g->dnn, p->x, p->y, p->cw, p->w, MAXA, &found, wp));
    else
        DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->dnn, p->x, p->y, p->cw, p->w, MAXA, &found, wp));
    COPY_PERF(ap, wp, found);
    static const int filter_tr[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED};
    if ((k = pick(ap, found, limit, ieee, filter_tr, 3)) < 0)
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: cuDNN offers no deterministic backward-filter convolution",
                            l->name);
    p->aw = wp[k].algo;
    p->ww = wp[k].memory;
    if (!ieee) DNN(cudnnSetConvolutionMathType(p->cw, wp[k].mathType));
    p->has_bwd = 1;
    p->n = N;
    return DC_OK;
}

/* Another batch size than planned (the last, shorter batch of a feature
 * extraction): the heuristic's choice for it, the backward only when
 * training; when none fits the workspace we have, a larger one (once per
 * new shape, never in a steady run). */
static dc_status conv_for_batch(dc_gpu_model *g, const dc_model *m, int i, int N, int backward)
{
    conv_plan *p = &g->conv[i];
    if (p->n == N && (p->has_bwd || !backward || m->layers[i].fixed)) return DC_OK;
    int autotune = g->dev.autotune;
    g->dev.autotune = 0;
    dc_status s = plan_conv(g, m, i, N, g->nwork, backward);
    if (s == DC_STATUS_UNSUPPORTED) {
        size_t freeb = 0, totalb = 0;
        CU(cudaMemGetInfo(&freeb, &totalb));
        s = plan_conv(g, m, i, N, freeb / 4, backward);
        size_t need = p->wf > p->wd ? p->wf : p->wd;
        if (p->ww > need) need = p->ww;
        if (s == DC_OK && need > g->nwork) {
            CU(cudaStreamSynchronize(g->s));
            CU(cudaFree(g->work));
            g->work = NULL;
            CU(cudaMalloc(&g->work, need));
            g->nwork = need;
        }
    }
    g->dev.autotune = autotune;
    return s;
}

void dc_gpu_model_free(dc_gpu_model *g)
{
    if (!g) return;
    if (g->s) cudaStreamSynchronize(g->s);
    if (g->prof) {
        prof_collect(g);
        prof_print(g, (const char *const *)g->names);
        for (int i = 0; i <= g->nlayers; i++) {
            if (g->evf) cudaEventDestroy(g->evf[i]);
            if (g->evb) cudaEventDestroy(g->evb[i]);
        }
    }
    dc_free(g->evf);
    dc_free(g->evb);
    dc_free(g->tf);
    dc_free(g->tb);
    dc_free(g->names);
    void *bufs[] = {g->params, g->grads, g->fixed, g->stats, g->acts, g->cache, g->grad_a, g->grad_b, g->input,
                    g->args, g->masks, g->part, g->sums, g->work, g->opt_mom, g->opt_red};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) cudaFree(bufs[i]);
    if (g->hsums) cudaFreeHost(g->hsums);
    for (int i = 0; g->conv && i < g->nlayers; i++) {
        conv_plan *p = &g->conv[i];
        if (!p->x) continue;
        cudnnDestroyTensorDescriptor(p->x);
        cudnnDestroyTensorDescriptor(p->y);
        cudnnDestroyFilterDescriptor(p->w);
        cudnnDestroyConvolutionDescriptor(p->cf);
        cudnnDestroyConvolutionDescriptor(p->cd);
        cudnnDestroyConvolutionDescriptor(p->cw);
    }
    if (g->blas) cublasDestroy(g->blas);
    if (g->dnn) cudnnDestroy(g->dnn);
    if (g->s) cudaStreamDestroy(g->s);
    dc_free(g->conv);
    dc_free(g->out);
    dc_free(g);
}

dc_status dcg_dmalloc(void *pp, size_t bytes, int64_t *total)
{
    void **p = (void **)pp;
    CU(cudaMalloc(p, bytes ? bytes : 16));
    *total += (int64_t)bytes;
    return DC_OK;
}

/* Device bytes for the model's buffers at batch B, the workspace aside. */
static int64_t plan_bytes(const dc_model *m, int B, int64_t npart, int maxc)
{
    /* m's per-batch sizes scale with max_batch: rescale to B */
    double r = (double)B / m->max_batch;
    int64_t per = (int64_t)((4 * (m->nacts + 2 * m->ngrad + 2 * in_floats(m) * (int64_t)m->max_batch) +
                             4 * m->nargs + m->nmasks) * r);
    return per + 4 * (2 * m->nparams + m->nfixed + m->nstats + m->ncache) + 8 * (npart + 2 * (int64_t)maxc + 2);
}

/* The reduction scratch: the largest channels × chunks of any layer. */
static void scratch_sizes(const dc_model *m, int64_t *npart_out, int *maxc_out)
{
    int maxc = 1;
    int64_t npart = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const dc_layer *l = &m->layers[i];
        int C = l->kind == DC_LAYER_LINEAR ? l->oc : l->c, HW = l->kind == DC_LAYER_LINEAR ? 1 : l->oh * l->ow;
        if (C > maxc) maxc = C;
        int64_t np = 2 * (int64_t)C * dcg_chan_parts(m->max_batch, C, HW);
        if (np > npart) npart = np;
    }
    if (m->feat_dim > maxc) maxc = m->feat_dim;
    if (npart < 2 * 4096 * 8) npart = 2 * 4096 * 8; /* the heads' columns */
    *npart_out = npart;
    *maxc_out = maxc;
}

/* Free device memory less room for cuDNN's and cuBLAS's own allocations. */
static int64_t usable_bytes(size_t freeb) { return (int64_t)freeb - (int64_t)(freeb / 20) - (512LL << 20); }

/* The refusal of a batch that does not fit, naming the largest that does. */
static dc_status too_large(const dc_model *m, int gpu, int64_t need, int64_t usable, int64_t npart, int maxc,
                           int64_t work)
{
    int64_t per = plan_bytes(m, 2, npart, maxc) - plan_bytes(m, 1, npart, maxc);
    int64_t fixed = plan_bytes(m, 1, npart, maxc) - per;
    int64_t fit = per > 0 && usable > fixed + work ? (usable - fixed - work) / per : 0;
    char fits[64] = "not even one image fits";
    if (fit > 0) snprintf(fits, sizeof fits, "batches of at most %lld images fit", (long long)fit);
    return dc_set_error(DC_STATUS_NOMEM,
                        "%s for batches of %d images needs %.1f GiB of GPU memory, more than the %.1f GiB free on "
                        "cuda:%d: %s",
                        m->preset->name, m->max_batch, need / 1073741824.0, usable / 1073741824.0, gpu, fits);
}

dc_status dc_gpu_check_fit(const dc_model *m, const dc_device *d)
{
    TRY(dc_gpu_describe(d->gpu, (char[512]){0}, 512));
    CU(cudaSetDevice(d->gpu));
    size_t freeb = 0, totalb = 0;
    CU(cudaMemGetInfo(&freeb, &totalb));
    int maxc;
    int64_t npart;
    scratch_sizes(m, &npart, &maxc);
    int64_t need = plan_bytes(m, m->max_batch, npart, maxc), usable = usable_bytes(freeb);
    return need > usable ? too_large(m, d->gpu, need, usable, npart, maxc, 0) : DC_OK;
}

static dc_status create(dc_gpu_model *g, dc_model *m)
{
    TRY(dc_gpu_describe(g->dev.gpu, (char[512]){0}, 512));
    CU(cudaSetDevice(g->dev.gpu));
    CU(cudaStreamCreateWithFlags(&g->s, cudaStreamNonBlocking));
    DNN(cudnnCreate(&g->dnn));
    DNN(cudnnSetStream(g->dnn, g->s));
    BLAS(cublasCreate(&g->blas));
    BLAS(cublasSetStream(g->blas, g->s));
    BLAS(cublasSetMathMode(g->blas, g->dev.precision == DC_PRECISION_FP32 ? CUBLAS_PEDANTIC_MATH
                                                                          : CUBLAS_TF32_TENSOR_OP_MATH));
    g->conv = dc_calloc((size_t)m->nlayers, sizeof *g->conv, "convolution plans");
    g->out = dc_calloc((size_t)m->nlayers, sizeof *g->out, "layer outputs");
    g->nlayers = m->nlayers;
    const char *pe = getenv("DC_GPU_PROFILE");
    if (pe && *pe == '1') {
        int n = m->nlayers + 1;
        g->evf = dc_calloc((size_t)n, sizeof *g->evf, "events");
        g->evb = dc_calloc((size_t)n, sizeof *g->evb, "events");
        g->tf = dc_calloc((size_t)n, sizeof *g->tf, "profile");
        g->tb = dc_calloc((size_t)n, sizeof *g->tb, "profile");
        g->names = dc_calloc((size_t)n, sizeof *g->names, "profile");
        if (!g->evf || !g->evb || !g->tf || !g->tb || !g->names) return DC_STATUS_NOMEM;
        for (int i = 0; i < n; i++) {
            CU(cudaEventCreate(&g->evf[i]));
            CU(cudaEventCreate(&g->evb[i]));
        }
        for (int i = 0; i < m->nlayers; i++) g->names[i] = m->layers[i].name;
        g->prof = 1;
    }
    if (!g->conv || !g->out) return DC_STATUS_NOMEM;

    int maxc;
    int64_t npart;
    scratch_sizes(m, &npart, &maxc);
    g->npart = npart;

    size_t freeb = 0, totalb = 0;
    CU(cudaMemGetInfo(&freeb, &totalb));
    /* leave room for cuDNN's and cuBLAS's own allocations */
    int64_t usable = usable_bytes(freeb);
    int64_t need = plan_bytes(m, m->max_batch, npart, maxc);
    size_t limit = (size_t)(usable - need > 0 ? (usable - need) / 4 : 0);
    if (limit > (8ULL << 30)) limit = 8ULL << 30;
    int64_t maxw = 0;
    for (int i = 0; i < m->nlayers && need <= usable; i++) {
        if (m->layers[i].kind != DC_LAYER_CONV) continue;
        TRY(plan_conv(g, m, i, m->max_batch, limit, 1));
        conv_plan *p = &g->conv[i];
        int64_t w = (int64_t)(p->wf > p->wd ? p->wf : p->wd);
        if ((int64_t)p->ww > w) w = (int64_t)p->ww;
        if (w > maxw) maxw = w;
    }
    if (need + maxw > usable) return too_large(m, g->dev.gpu, need + maxw, usable, npart, maxc, maxw);
    g->nwork = (size_t)maxw;
    int64_t t = 0;
    TRY(dcg_dmalloc(&g->params, 4 * (size_t)m->nparams, &t));
    TRY(dcg_dmalloc(&g->grads, 4 * (size_t)m->nparams, &t));
    TRY(dcg_dmalloc(&g->fixed, 4 * (size_t)(m->nfixed + 1), &t));
    TRY(dcg_dmalloc(&g->stats, 4 * (size_t)(m->nstats + 1), &t));
    TRY(dcg_dmalloc(&g->acts, 4 * (size_t)m->nacts, &t));
    TRY(dcg_dmalloc(&g->cache, 4 * (size_t)(m->ncache + 1), &t));
    TRY(dcg_dmalloc(&g->grad_a, 4 * (size_t)m->ngrad, &t));
    TRY(dcg_dmalloc(&g->grad_b, 4 * (size_t)m->ngrad, &t));
    TRY(dcg_dmalloc(&g->input, 4 * (size_t)(in_floats(m) * m->max_batch), &t));
    TRY(dcg_dmalloc(&g->args, 4 * (size_t)(m->nargs + 1), &t));
    TRY(dcg_dmalloc(&g->masks, (size_t)(m->nmasks + 1), &t));
    TRY(dcg_dmalloc(&g->part, 8 * (size_t)npart, &t));
    g->nsums = 2 * (int64_t)maxc + 2;
    TRY(dcg_dmalloc(&g->sums, 8 * (size_t)g->nsums, &t));
    TRY(dcg_dmalloc(&g->work, g->nwork, &t));
    CU(cudaMallocHost((void **)&g->hsums, 8 * (size_t)g->nsums));
    CU(cudaMemsetAsync(g->grads, 0, 4 * (size_t)m->nparams, g->s));
    g->bytes = t;
    return DC_OK;
}

dc_status dc_gpu_model_create(dc_gpu_model **out, dc_model *m, const dc_device *d)
{
    *out = NULL;
    dc_gpu_model *g = dc_calloc(1, sizeof *g, "GPU model");
    if (!g) return DC_STATUS_NOMEM;
    g->dev = *d;
    dc_status s = create(g, m);
    if (s == DC_OK) s = dc_gpu_model_sync(g, m, 0);
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", dc_last_error());
        dc_gpu_model_free(g);
        (void)cudaGetLastError();
        return dc_set_error(s, "%s", why);
    }
    *out = g;
    return DC_OK;
}

dc_status dc_gpu_sync(dc_gpu_model *g)
{
    CU(cudaStreamSynchronize(g->s));
    return DC_OK;
}

dc_status dc_gpu_pin(void *p, size_t bytes)
{
    cudaError_t e = cudaHostRegister(p, bytes, cudaHostRegisterDefault);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        dc_log_debug("gpu: host memory not pinned (%s): copies stay synchronous", cudaGetErrorString(e));
    }
    return DC_OK;
}

void dc_gpu_unpin(void *p)
{
    if (cudaHostUnregister(p) != cudaSuccess) (void)cudaGetLastError();
}

int64_t dc_gpu_model_bytes(const dc_gpu_model *g) { return g->bytes + (int64_t)g->nwork; }

void dc_gpu_model_log_algos(const dc_gpu_model *g, const dc_model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        const conv_plan *p = &g->conv[i];
        if (!p->x) continue;
        dc_log_debug("gpu: %s: algorithms fwd %d bwd-data %d bwd-filter %d, workspace %.1f/%.1f/%.1f MiB",
                     m->layers[i].name, (int)p->af, (int)p->ad, (int)p->aw, p->wf / 1048576.0, p->wd / 1048576.0,
                     p->ww / 1048576.0);
    }
}

dc_status dc_gpu_model_sync(dc_gpu_model *g, dc_model *m, int to_host)
{
    CU(cudaSetDevice(g->dev.gpu));
    enum cudaMemcpyKind k = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    struct {
        void *h, *d;
        size_t n;
    } c[] = {{m->params, g->params, 4 * (size_t)m->nparams},
             {m->fixed, g->fixed, 4 * (size_t)m->nfixed},
             {m->stats, g->stats, 4 * (size_t)m->nstats},
             {m->grads, g->grads, to_host ? 4 * (size_t)m->nparams : 0}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (c[i].n) CU(cudaMemcpyAsync(to_host ? c[i].h : c[i].d, to_host ? c[i].d : c[i].h, c[i].n, k, g->s));
    CU(cudaStreamSynchronize(g->s));
    return DC_OK;
}

dc_status dc_gpu_zero_grad(dc_gpu_model *g, const dc_model *m)
{
    dcg_clear_stale("zeroing gradients");
    CU(cudaMemsetAsync(g->grads, 0, 4 * (size_t)m->nparams, g->s));
    return DC_OK;
}

/* ------------------------------------------------------------------------ */
/* Layers                                                                   */
/* ------------------------------------------------------------------------ */

static int fused_bn(const dc_model *m, int i)
{
    return m->layers[i].kind == DC_LAYER_BN && i + 1 < m->nlayers && m->layers[i + 1].kind == DC_LAYER_RELU;
}

/* Row-major out (N, OUT) = in (N, IN) · wᵀ + b, as cuBLAS's column-major
 * outᵀ = wᵀᵀ · inᵀ. */
dc_status dcg_linear_fwd(dc_gpu_model *g, float *out, const float *in, const float *w, const float *b, int N,
                            int IN, int OUT)
{
    float one = 1.0f, beta = b ? 1.0f : 0.0f;
    if (b) K(dcg_bias(out, b, N, OUT, 1, 1, g->s));
    BLAS(cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, OUT, N, IN, &one, w, IN, in, IN, &beta, out, OUT));
    return DC_OK;
}

/* dw (OUT, IN) = wscale·doutᵀ · in + wbeta·dw; db += bscale·Σ dout; din =
 * dout · w (beta 0) — each when not NULL. */
dc_status dcg_linear_bwd(dc_gpu_model *g, float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int N, int IN, int OUT, float wscale, float wbeta)
{
    float zero = 0.0f, one = 1.0f;
    if (dw) BLAS(cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, IN, OUT, N, &wscale, in, IN, dout, OUT, &wbeta, dw, IN));
    if (db) {
        K(dcg_chan_reduce(g->sums, g->part, dout, NULL, NULL, NULL, DCG_RED_SUM, N, OUT, 1, g->s));
        K(dcg_add_sums(db, g->sums, OUT, wscale, g->s));
    }
    if (din) BLAS(cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, IN, N, OUT, &one, w, IN, dout, OUT, &zero, din, IN));
    return DC_OK;
}

/* The distributed caller's all-reduce of n doubles of g->sums, via host. */
static dc_status reduce_sums(dc_gpu_model *g, dc_model *m, int n)
{
    CU(cudaMemcpyAsync(g->hsums, g->sums, 8 * (size_t)n, cudaMemcpyDeviceToHost, g->s));
    CU(cudaStreamSynchronize(g->s));
    m->reduce(m->reduce_ctx, g->hsums, n);
    CU(cudaMemcpyAsync(g->sums, g->hsums, 8 * (size_t)n, cudaMemcpyHostToDevice, g->s));
    return DC_OK;
}

static dc_status bn_forward(dc_gpu_model *g, dc_model *m, int i, const float *x, int N, int train)
{
    dc_layer *l = &m->layers[i];
    int C = l->c, HW = l->h * l->w, fuse = fused_bn(m, i);
    float *y = g->acts + (fuse ? l[1].act_off : l->act_off);
    const float *gamma = g->params + l->w_off, *beta = g->params + l->b_off;
    float *mean = g->cache + l->cache_off, *rstd = mean + C;
    float *rm = g->stats + l->rm_off, *rv = g->stats + l->rv_off;
    if (!train) {
        K(dcg_bn_eval_stats(rstd, rv, C, BN_EPS, g->s));
        K(dcg_bn_apply(y, x, gamma, beta, rm, rstd, N, C, HW, fuse, g->s));
        return DC_OK;
    }
    int64_t count = (int64_t)N * HW;
    K(dcg_chan_reduce(g->sums, g->part, x, NULL, NULL, NULL, DCG_RED_MOMENTS, N, C, HW, g->s));
    if (m->reduce) {
        /* the global batch's moments and count */
        double c = (double)count;
        CU(cudaMemcpyAsync(g->sums + 2 * C, &c, 8, cudaMemcpyHostToDevice, g->s));
        TRY(reduce_sums(g, m, 2 * C + 1));
        count = (int64_t)g->hsums[2 * C];
        m->global_batch = count / HW;
    }
    K(dcg_bn_finalize(mean, rstd, rm, rv, g->sums, C, count, BN_EPS, BN_MOMENTUM, g->s));
    K(dcg_bn_apply(y, x, gamma, beta, mean, rstd, N, C, HW, fuse, g->s));
    m->nbt[l->bn_index]++;
    return DC_OK;
}

static dc_status bn_backward(dc_gpu_model *g, dc_model *m, int i, float *d, const float *gr, const float *x, int N)
{
    const dc_layer *l = &m->layers[i];
    int C = l->c, HW = l->h * l->w;
    const float *y = fused_bn(m, i) ? g->out[i + 1] : NULL;
    const float *mean = g->cache + l->cache_off, *rstd = mean + C;
    K(dcg_chan_reduce(g->sums, g->part, x, gr, y, mean, DCG_RED_BNBWD, N, C, HW, g->s));
    K(dcg_bn_bwd_params(g->grads + l->w_off, g->grads + l->b_off, g->sums, rstd, C, g->s));
    int64_t count = (int64_t)N * HW;
    if (m->reduce) {
        TRY(reduce_sums(g, m, 2 * C));
        count = m->global_batch * HW;
    }
    if (d) K(dcg_bn_bwd_data(d, gr, x, y, g->params + l->w_off, mean, rstd, g->sums, N, C, HW, count, g->s));
    return DC_OK;
}

static dc_status conv_forward(dc_gpu_model *g, const dc_model *m, int i, const float *x, float *y, int N)
{
    const dc_layer *l = &m->layers[i];
    TRY(conv_for_batch(g, m, i, N, m->train));
    conv_plan *p = &g->conv[i];
    const float *base = l->fixed ? g->fixed : g->params;
    float one = 1.0f, zero = 0.0f;
    DNN(cudnnConvolutionForward(g->dnn, &one, p->x, x, p->w, base + l->w_off, p->cf, p->af, g->work, p->wf, &zero,
                                p->y, y));
    K(dcg_bias(y, base + l->b_off, N, l->oc, l->oh * l->ow, 0, g->s));
    return DC_OK;
}

static dc_status conv_backward(dc_gpu_model *g, const dc_model *m, int i, float *d, const float *gr, const float *x,
                               int N)
{
    const dc_layer *l = &m->layers[i];
    TRY(conv_for_batch(g, m, i, N, 1));
    conv_plan *p = &g->conv[i];
    float one = 1.0f, zero = 0.0f;
    DNN(cudnnConvolutionBackwardFilter(g->dnn, &one, p->x, x, p->y, gr, p->cw, p->aw, g->work, p->ww, &one, p->w,
                                       g->grads + l->w_off));
    K(dcg_chan_reduce(g->sums, g->part, gr, NULL, NULL, NULL, DCG_RED_SUM, N, l->oc, l->oh * l->ow, g->s));
    K(dcg_add_sums(g->grads + l->b_off, g->sums, l->oc, 1.0f, g->s));
    if (d)
        DNN(cudnnConvolutionBackwardData(g->dnn, &one, p->w, g->params + l->w_off, p->y, gr, p->cd, p->ad, g->work,
                                         p->wd, &zero, p->x, d));
    return DC_OK;
}

/* train as dc_model_forward's: 0 evaluation, 1 training (batch
 * statistics, dropout), DC_FORWARD_DROPOUT (running statistics, dropout),
 * DC_FORWARD_FROZEN (running statistics, no dropout). */
static dc_status forward(dc_gpu_model *g, dc_model *m, const float *x, int N, int train)
{
    int bn_batch = train == 1, dropout = train == 1 || train == DC_FORWARD_DROPOUT;
    if (g->prof) prof_collect(g);
    for (int i = 0; i < m->nlayers; i++) {
        dc_layer *l = &m->layers[i];
        if (g->prof) CU(cudaEventRecord(g->evf[i], g->s));
        float *y = g->acts + l->act_off;
        g->out[i] = y;
        int64_t outsize = (int64_t)l->oc * l->oh * l->ow;
        switch (l->kind) {
        case DC_LAYER_PAD: K(dcg_pad_fwd(y, x, (int64_t)N * l->c, l->h, l->w, l->pad, g->s)); break;
        case DC_LAYER_CONV: TRY(conv_forward(g, m, i, x, y, N)); break;
        case DC_LAYER_BN: TRY(bn_forward(g, m, i, x, N, bn_batch)); break;
        case DC_LAYER_RELU:
            if (!(i > 0 && fused_bn(m, i - 1))) K(dcg_relu_fwd(y, x, N * outsize, g->s));
            break;
        case DC_LAYER_MAXPOOL:
            K(dcg_maxpool_fwd(y, g->args + l->cache_off, x, (int64_t)N * l->c, l->h, l->w, l->oh, l->ow, l->k,
                              l->stride, g->s));
            break;
        case DC_LAYER_AVGPOOL:
            return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: average pooling is not on the GPU engine", l->name);
        case DC_LAYER_FLATTEN: g->out[i] = (float *)x; break; /* NCHW: a view */
        case DC_LAYER_LINEAR:
            TRY(dcg_linear_fwd(g, y, x, g->params + l->w_off, g->params + l->b_off, N, l->c, l->oc));
            break;
        case DC_LAYER_DROPOUT:
            if (dropout) {
                dc_rng r;
                dc_rng_init(&r, m->dropout_seed, DC_RNG_STREAM_DROPOUT, (uint32_t)i, (uint32_t)m->step);
                K(dcg_dropout_fwd(y, g->masks + l->cache_off, x, N * outsize, m->sample_offset * outsize, l->p,
                                  r.key[0], r.key[1], (uint32_t)i, (uint32_t)m->step, g->s));
            } else {
                g->out[i] = (float *)x;
            }
            break;
        }
        x = g->out[i];
    }
    if (g->prof) {
        CU(cudaEventRecord(g->evf[m->nlayers], g->s));
        g->prof_pending_f = 1;
    }
    return DC_OK;
}

dc_status dc_gpu_forward(dc_gpu_model *g, dc_model *m, const float *in, int N, int train)
{
    DC_ASSERT(N >= 1 && N <= m->max_batch);
    dcg_clear_stale("a forward");
    m->batch = N;
    m->train = train;
    m->input = NULL;
    CU(cudaMemcpyAsync(g->input, in, 4 * (size_t)(in_floats(m) * N), cudaMemcpyHostToDevice, g->s));
    dc_status s = forward(g, m, g->input, N, train);
    if (train) m->step++;
    return s;
}

dc_status dc_gpu_forward_resident(dc_gpu_model *g, dc_model *m, int N, int train)
{
    dcg_clear_stale("a forward");
    m->batch = N;
    m->train = train;
    dc_status s = forward(g, m, g->input, N, train);
    if (train) m->step++;
    return s;
}

dc_status dc_gpu_layer_output(dc_gpu_model *g, const dc_model *m, int i, float *out)
{
    const dc_layer *l = &m->layers[i];
    if (i + 1 < m->nlayers && fused_bn(m, i))
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: batch norm runs fused with its ReLU on the GPU: take the ReLU's "
                                                   "output", l->name);
    CU(cudaMemcpyAsync(out, g->out[i], 4 * (size_t)((int64_t)m->batch * l->oc * l->oh * l->ow),
                       cudaMemcpyDeviceToHost, g->s));
    CU(cudaStreamSynchronize(g->s));
    return DC_OK;
}

dc_status dcg_backward(dc_gpu_model *g, dc_model *m, const float *dout, int from)
{
    DC_ASSERT(m->train && m->batch > 0 && from >= 0 && from < m->nlayers);
    int N = m->batch;
    int first = 0;
    while (first < m->nlayers && !(m->layers[first].kind == DC_LAYER_CONV && !m->layers[first].fixed)) first++;
    if (from > first) first = from; /* a partial backward: nothing below layer `from` */
    const float *gr = dout;
    float *bufs[2] = {g->grad_a, g->grad_b};
    int nb = 0;
    g->prof_first = first;
    for (int i = m->nlayers - 1; i >= first; i--) {
        dc_layer *l = &m->layers[i];
        if (g->prof) CU(cudaEventRecord(g->evb[i], g->s));
        if (l->kind == DC_LAYER_FLATTEN) continue;
        if (l->kind == DC_LAYER_RELU && i > 0 && fused_bn(m, i - 1)) continue;
        if (l->kind == DC_LAYER_DROPOUT && m->train == DC_FORWARD_FROZEN) continue; /* ran as the identity */
        const float *x = i == 0 ? g->input : g->out[i - 1];
        float *d = i > first ? bufs[nb] : NULL;
        int64_t insize = (int64_t)l->c * l->h * l->w;
        switch (l->kind) {
        case DC_LAYER_PAD:
            if (d) return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: padding inside the trained stack", l->name);
            break;
        case DC_LAYER_CONV: TRY(conv_backward(g, m, i, d, gr, x, N)); break;
        case DC_LAYER_BN: TRY(bn_backward(g, m, i, d, gr, x, N)); break;
        case DC_LAYER_RELU:
            if (d) K(dcg_relu_bwd(d, gr, g->out[i], N * insize, g->s));
            break;
        case DC_LAYER_MAXPOOL:
            if (l->k != l->stride)
                return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: overlapping pooling windows on the GPU", l->name);
            if (d)
                K(dcg_maxpool_bwd(d, gr, g->args + l->cache_off, (int64_t)N * l->c, l->h, l->w, l->oh, l->ow,
                                  l->stride, g->s));
            break;
        case DC_LAYER_LINEAR:
            TRY(dcg_linear_bwd(g, d, g->grads + l->w_off, g->grads + l->b_off, gr, x, g->params + l->w_off, N, l->c, l->oc,
                           1.0f, 1.0f));
            break;
        case DC_LAYER_DROPOUT:
            if (d) K(dcg_dropout_bwd(d, gr, g->masks + l->cache_off, N * insize, l->p, g->s));
            break;
        default: return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: no GPU backward", l->name);
        }
        if (d) {
            gr = d;
            nb ^= 1;
        }
    }
    if (g->prof) {
        CU(cudaEventRecord(g->evb[m->nlayers], g->s));
        g->prof_pending_b = 1;
    }
    return DC_OK;
}

dc_status dc_gpu_backward_host(dc_gpu_model *g, dc_model *m, const float *dout, int from)
{
    dcg_clear_stale("a backward");
    /* into grad_b: the first layer's backward writes grad_a, reading it */
    CU(cudaMemcpyAsync(g->grad_b, dout, 4 * (size_t)m->batch * m->feat_dim, cudaMemcpyHostToDevice, g->s));
    return dcg_backward(g, m, g->grad_b, from);
}

/* ------------------------------------------------------------------------ */
/* Fine-tuning's optimiser                                                  */
/* ------------------------------------------------------------------------ */

enum { OPT_PARTS = 256 }; /* dcg_chan_parts' ceiling: the reduction's blocks */

static dc_status opt_buffers(dc_gpu_model *g, const dc_model *m)
{
    if (g->opt_mom) return DC_OK;
    TRY(dcg_dmalloc(&g->opt_red, 8 * (size_t)(2 * OPT_PARTS + 2), &g->bytes));
    TRY(dcg_dmalloc(&g->opt_mom, 4 * (size_t)m->nparams, &g->bytes));
    CU(cudaMemsetAsync(g->opt_mom, 0, 4 * (size_t)m->nparams, g->s));
    return DC_OK;
}

static void check_range(const dc_model *m, int64_t off, int64_t n)
{
    DC_ASSERT(off >= 0 && n >= 0 && off + n <= m->nparams && n <= INT32_MAX);
}

dc_status dc_gpu_grad_sumsq(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, double *out)
{
    check_range(m, off, n);
    *out = 0;
    if (n == 0) return DC_OK;
    TRY(opt_buffers(g, m));
    /* one "channel" of n values: Σx and Σx² in double, blocks in a fixed order */
    double *sums = g->opt_red + 2 * OPT_PARTS, h[2];
    K(dcg_chan_reduce(sums, g->opt_red, g->grads + off, NULL, NULL, NULL, DCG_RED_MOMENTS, 1, 1, (int)n, g->s));
    CU(cudaMemcpyAsync(h, sums, sizeof h, cudaMemcpyDeviceToHost, g->s));
    CU(cudaStreamSynchronize(g->s));
    *out = h[1];
    return DC_OK;
}

dc_status dc_gpu_grad_scale(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float a)
{
    check_range(m, off, n);
    if (n) K(dcg_scale(g->grads + off, n, a, g->s));
    return DC_OK;
}

dc_status dc_gpu_sgd(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float lr, float momentum, float wd,
                     int first)
{
    check_range(m, off, n);
    TRY(opt_buffers(g, m));
    K(dcg_sgd(g->params + off, g->grads + off, g->opt_mom + off, n, lr, momentum, wd, first, g->s));
    return DC_OK;
}

dc_status dc_gpu_momentum_sync(dc_gpu_model *g, const dc_model *m, float *host, int to_host)
{
    TRY(opt_buffers(g, m));
    size_t bytes = 4 * (size_t)m->nparams;
    if (to_host)
        CU(cudaMemcpyAsync(host, g->opt_mom, bytes, cudaMemcpyDeviceToHost, g->s));
    else
        CU(cudaMemcpyAsync(g->opt_mom, host, bytes, cudaMemcpyHostToDevice, g->s));
    CU(cudaStreamSynchronize(g->s));
    return DC_OK;
}
