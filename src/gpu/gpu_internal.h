/* gpu_internal.h — what the GPU engine's host files share (private to
 * src/gpu): the device model's structure, the checking macros, and the
 * helpers gpu.c lends step.c. Includes: gpu/gpu.h, gpu/gpu_kernels.h,
 * dc/comm.h, cuda_runtime_api.h, cudnn.h, cublas_v2.h. */
#ifndef DC_GPU_INTERNAL_H
#define DC_GPU_INTERNAL_H

#include "gpu/gpu.h"
#include "dc/comm.h"
#include "gpu/gpu_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MOMENTUM 0.9f

/// A CUDA runtime error as dc_status and one line saying what to do.
dc_status dcg_cuda_error(cudaError_t e, const char *what);
/// Reads (and logs at debug level) an error a library left behind.
void dcg_clear_stale(const char *where);
/// cudaMalloc, the bytes added to *total.
dc_status dcg_dmalloc(void *pp, size_t bytes, int64_t *total);

#define CU(call)                                                                                                  \
    do {                                                                                                          \
        cudaError_t e_ = (call);                                                                                  \
        if (e_ != cudaSuccess) return dcg_cuda_error(e_, #call);                                                      \
    } while (0)
#define DNN(call)                                                                                                 \
    do {                                                                                                          \
        cudnnStatus_t e_ = (call);                                                                                \
        if (e_ != CUDNN_STATUS_SUCCESS)                                                                           \
            return dc_set_error(e_ == CUDNN_STATUS_ALLOC_FAILED ? DC_STATUS_NOMEM : DC_STATUS_INTERNAL,           \
                                "cuDNN error in %s: %s", #call, cudnnGetErrorString(e_));                         \
    } while (0)
#define BLAS(call)                                                                                                \
    do {                                                                                                          \
        cublasStatus_t e_ = (call);                                                                               \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                                          \
            return dc_set_error(e_ == CUBLAS_STATUS_ALLOC_FAILED ? DC_STATUS_NOMEM : DC_STATUS_INTERNAL,          \
                                "cuBLAS error in %s: %s", #call, cublasGetStatusString(e_));                      \
    } while (0)
#define K(call) CU((cudaError_t)(call))
#define TRY(call)                                                                                                 \
    do {                                                                                                          \
        dc_status s_ = (call);                                                                                    \
        if (s_ != DC_OK) return s_;                                                                               \
    } while (0)

typedef struct {
    int n; /* batch the descriptors and algorithms are for (0: none) */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t cf, cd, cw; /* one per direction: math types */
    cudnnConvolutionFwdAlgo_t af;
    cudnnConvolutionBwdDataAlgo_t ad;
    cudnnConvolutionBwdFilterAlgo_t aw;
    size_t wf, wd, ww; /* workspace bytes of each */
    int has_bwd;       /* the backward algorithms were chosen */
} conv_plan;

struct dc_gpu_model {
    dc_device dev;
    cudaStream_t s;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    float *params, *grads, *fixed, *stats, *acts, *cache, *grad_a, *grad_b, *input;
    int32_t *args;
    uint8_t *masks;
    double *part, *sums; /* channel-reduction scratch; 2·C (+1) sums */
    int64_t nsums;       /* doubles in sums */
    double *hsums;       /* pinned host copy of sums (distributed BN) */
    void *work;
    size_t nwork;
    int64_t npart, bytes;
    float **out; /* per layer: its output on the device (flatten aliases) */
    conv_plan *conv;
    int nlayers;
    /* DC_GPU_PROFILE=1: CUDA events around every layer, summed at each
     * synchronisation, printed when the model is freed */
    int prof, prof_pending_f, prof_pending_b, prof_first;
    char **names;
    cudaEvent_t *evf, *evb; /* nlayers + 1 each */
    double *tf, *tb;        /* ms per layer, summed */
    int64_t nf, nb;         /* passes summed */
    /* fine-tuning's optimiser (dc_gpu_sgd …), made on first use: the
     * momentum of every parameter, and a reduction's scratch */
    float *opt_mom;
    double *opt_red;
};

/// Row-major out (N, OUT) = in (N, IN) · wᵀ + b.
dc_status dcg_linear_fwd(dc_gpu_model *g, float *out, const float *in, const float *w, const float *b, int N, int IN,
                         int OUT);
/// dw = wscale·doutᵀ·in + wbeta·dw; db += wscale·Σ dout; din = dout·w (each when not NULL).
dc_status dcg_linear_bwd(dc_gpu_model *g, float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int N, int IN, int OUT, float wscale, float wbeta);
/// The body's backward from the device gradient of its output.
dc_status dcg_backward(dc_gpu_model *g, dc_model *m, const float *dout, int from);

#endif
