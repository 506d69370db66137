/* dc/kernels.h — dense math on float arrays: no allocation, no I/O, cannot
 * fail (bad shapes are programmer errors caught by DC_ASSERT).
 * Includes: dc/core.h. BLAS/oneDNN are implementation details. */
#ifndef DC_KERNELS_H
#define DC_KERNELS_H

#include "dc/core.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or Xᵀ
/// (trans_a/trans_b nonzero). A is M×K (K×M when transposed), B is K×N
/// (N×K when transposed), C is M×N; lda/ldb/ldc are row strides.
/// Uses oneDNN's sgemm (AVX-512 JIT) when built with it, else OpenBLAS.
/// Must not be called from inside an OpenMP parallel region.
void dc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B,
              int64_t ldb, float beta, float *C, int64_t ldc);

/// The reference: plain loops with double accumulation (tests only).
void dc_sgemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc);

/// Name of the GEMM backend in use ("onednn" or "openblas").
const char *dc_sgemm_backend(void);

/// Squared L2 norm of each of the n rows of x (n×d) into out[n].
void dc_row_sqnorms(float *out, const float *x, int64_t n, int d);

/// Divides each row of x (n×d) by its L2 norm, in place; zero rows stay 0.
void dc_l2_normalize_rows(float *x, int64_t n, int d);

/// Index of the first row or element that is NaN or infinite, or -1.
int64_t dc_find_nonfinite(const float *x, int64_t count);

/* ------------------------------------------------------------------------ */
/* Layers, NCHW float32. Forward writes its output; backward accumulates    */
/* (+=) into every d* buffer (NULL: not wanted). Shapes in comments.       */
/* ------------------------------------------------------------------------ */

/// Output extent of a convolution or pooling: (in + 2·pad − k)/stride + 1.
int dc_conv_out_size(int in, int k, int stride, int pad);

/// out (N, OC, OH, OW) = conv(in (N, C, H, W), w (OC, C, K, K)) + b (OC).
void dc_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b, int N,
                           int C, int H, int W, int OC, int K, int stride, int pad);
void dc_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int N, int C, int H, int W, int OC, int K, int stride,
                            int pad);
/// Floats of workspace (`col`) the fast convolution needs per call.
size_t dc_conv2d_workspace(int C, int H, int W, int K, int stride, int pad);
void dc_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int N, int C, int H, int W, int OC, int K, int stride, int pad);
/// Floats of `dwtmp` the backward needs (0 when the output plane is small).
size_t dc_conv2d_workspace_dw(int C, int OC, int K, int OH, int OW);
void dc_conv2d_backward(float *din, float *dw, float *db, float *col, float *dwtmp,
                        const float *dout, const float *in, const float *w, int N, int C, int H, int W,
                        int OC, int K, int stride, int pad);

/* Batch-norm 2-D in building blocks (a distributed caller all-reduces the
 * double sums between them). Training: sums → mean = sum/count → centred
 * sums of squares → finalize → apply; backward: sums → apply.
 * count = N·HW over the whole (global) batch. */
/// sum[c] over (N, HW) of in (N, C, HW), in double.
void dc_bn_sums(double *sum, const float *in, int N, int C, int HW);
/// sumsq[c] = Σ (in − mean[c])², in double.
void dc_bn_centered_sumsq(double *sumsq, const float *in, const float *mean, int N, int C, int HW);
/// rstd = 1/sqrt(var + eps) with the biased var = sumsq/count; running
/// stats updated with `momentum` and the unbiased variance when
/// running_mean is not NULL.
void dc_bn_finalize(float *mean, float *rstd, float *running_mean, float *running_var,
                    const double *sumsq, int C, int64_t count, float eps, float momentum);
/// out = (in − mean)·rstd·gamma + beta, per channel.
void dc_bn_apply(float *out, const float *in, const float *gamma, const float *beta,
                 const float *mean, const float *rstd, int N, int C, int HW);
void dc_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, int N, int C, int HW, float eps);
/// sum_dy[c] = Σ dout, sum_dy_xhat[c] = Σ dout·x̂.
void dc_bn_backward_sums(double *sum_dy, double *sum_dy_xhat, const float *dout, const float *in,
                         const float *mean, const float *rstd, int N, int C, int HW);
/// dgamma += sum_dy_xhat, dbeta += sum_dy, din += γ·rstd·(dy − mean dy − x̂·mean(dy·x̂)).
void dc_bn_backward_apply(float *din, float *dgamma, float *dbeta, const float *dout,
                          const float *in, const float *gamma, const float *mean,
                          const float *rstd, const double *sum_dy, const double *sum_dy_xhat,
                          int N, int C, int HW, int64_t count);

void dc_relu_forward(float *out, const float *in, int64_t n);
/// din += dout where out > 0 (out: the forward output).
void dc_relu_backward(float *din, const float *dout, const float *out, int64_t n);

/// Max-pool over NC planes (H, W), window K, stride; arg: flat index in the
/// plane of each maximum (first in scan order; NaN propagates as PyTorch).
void dc_maxpool_forward(float *out, int32_t *arg, const float *in, int NC, int H, int W, int K,
                        int stride);
void dc_maxpool_backward(float *din, const float *dout, const int32_t *arg, int NC, int H, int W,
                         int OH, int OW);
void dc_avgpool_forward(float *out, const float *in, int NC, int H, int W, int K, int stride);
void dc_avgpool_backward(float *din, const float *dout, int NC, int H, int W, int K, int stride);

/// Constant zero padding by `pad` on each side of NC planes (H, W).
void dc_pad_forward(float *out, const float *in, int NC, int H, int W, int pad);
void dc_pad_backward(float *din, const float *dout, int NC, int H, int W, int pad);

/// Dropout with probability p (inverted: kept values scaled by 1/(1−p));
/// the mask is a function of (seed, a, b, first + element index) only, so
/// a batch split across processes (first: the global index of in[0]) draws
/// what the whole batch would.
void dc_dropout_forward(float *out, uint8_t *mask, const float *in, int64_t n, int64_t first, float p,
                        uint64_t seed, uint32_t a, uint32_t b);
void dc_dropout_backward(float *din, const float *dout, const uint8_t *mask, int64_t n, float p);

/// out (N, OUT) = in (N, IN) · wᵀ + b, w (OUT, IN) as PyTorch's Linear.
void dc_linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                       int OUT);
void dc_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int N, int IN, int OUT);

/// Softmax of logits (N, C) into probs; returns the *sum* of cross-entropy
/// losses over the N rows; *correct = rows whose arg-max is the target.
double dc_softmax_xent_forward(float *probs, int *correct, const float *logits,
                               const int32_t *target, int N, int C);
/// dlogits += scale · (probs − onehot(target)); scale = 1/N for a mean.
void dc_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *target, int N,
                              int C, float scale);

/* ------------------------------------------------------------------------ */
/* Channel-blocked layout (nChw16c): element (n, c, p) of an (N, C, HW)     */
/* tensor at ((n·CB + c/16)·HW + p)·16 + c%16, CB = ⌈C/16⌉, lanes of        */
/* channels ≥ C zero. Elementwise kernels (ReLU, dropout) work unchanged.  */
/* ------------------------------------------------------------------------ */

#define DC_BLK 16
/// Floats of one sample's (C, HW) tensor in the blocked layout.
int64_t dc_blk_size(int C, int64_t HW);
void dc_blk_from_nchw(float *out, const float *in, int N, int C, int HW);
void dc_blk_to_nchw(float *out, const float *in, int N, int C, int HW);
/// The batch-norm building blocks above, on blocked tensors (the moments
/// by dc_bn_moments_blk below). A ReLU that
/// follows can be fused: apply with relu nonzero writes ReLU(BN(x)); the
/// backward kernels given that output (relu_out, else NULL) take dout as
/// the gradient of the ReLU's output.
/// Both moments in one pass over memory: sum[c] and m2[c], the sum of
/// squares about this tensor's own mean (sample by sample, merged). About
/// another mean μ: m2 + count·(sum/count − μ)².
void dc_bn_moments_blk(double *sum, double *m2, const float *in, int N, int C, int HW);
void dc_bn_apply_blk(float *out, const float *in, const float *gamma, const float *beta, const float *mean,
                     const float *rstd, int N, int C, int HW, int relu);
void dc_batchnorm_forward_eval_blk(float *out, const float *in, const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var, int N, int C, int HW,
                                   float eps, int relu);
void dc_bn_backward_sums_blk(double *sum_dy, double *sum_dy_xhat, const float *dout, const float *in,
                             const float *mean, const float *rstd, const float *relu_out, int N, int C, int HW);
void dc_bn_backward_apply_blk(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *gamma, const float *mean, const float *rstd, const float *relu_out,
                              const double *sum_dy, const double *sum_dy_xhat, int N, int C, int HW, int64_t count);
/// Max-pool on blocked tensors; arg holds, per output element, the flat
/// index in the input plane of its maximum. Unlike the NCHW kernels, the
/// blocked backward kernels (BN apply, max-pool) overwrite din.
void dc_maxpool_forward_blk(float *out, int32_t *arg, const float *in, int N, int C, int H, int W, int K,
                            int stride);
void dc_maxpool_backward_blk(float *din, const float *dout, const int32_t *arg, int N, int C, int H, int W,
                             int OH, int OW);

/* ------------------------------------------------------------------------ */
/* Convolution by oneDNN primitives (allocates at creation, can fail there;  */
/* execution allocates nothing). Output and input gradient blocked; input   */
/* blocked or NCHW (src_blocked); weights and their gradient OIHW.          */
/* ------------------------------------------------------------------------ */

typedef struct dc_dnnl_conv dc_dnnl_conv;
/// Builds the primitives for batch size N (others are built on first use).
/// bwd_data: the input gradient will be wanted. DC_STATUS_UNSUPPORTED when
/// built without oneDNN.
dc_status dc_dnnl_conv_create(dc_dnnl_conv **out, int C, int H, int W, int OC, int K, int stride, int pad,
                              int src_blocked, int bwd_data, int N);
void dc_dnnl_conv_free(dc_dnnl_conv *c);
void dc_dnnl_conv_forward(dc_dnnl_conv *c, float *out, const float *in, const float *w, const float *b, int N);
/// dw += ∂/∂w, db += ∂/∂b (dwtmp: OC·C·K·K floats of scratch); din = ∂/∂in
/// (overwritten; NULL: not wanted). Of the forward just run on the same
/// batch size and weights: w must not have changed in between.
void dc_dnnl_conv_backward(dc_dnnl_conv *c, float *din, float *dw, float *db, float *dwtmp, const float *dout,
                           const float *in, const float *w, int N);
/// oneDNN's name for the forward implementation in use (e.g. "jit:avx512_core").
const char *dc_dnnl_conv_impl(const dc_dnnl_conv *c);

#ifdef __cplusplus
}
#endif
#endif
