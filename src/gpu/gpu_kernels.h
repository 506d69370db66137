/* gpu_kernels.h — the extern "C" launchers of kernels.cu, callable from
 * C11: device pointers as plain pointers, the stream as void *. Each
 * returns 0 or the launch's cudaError_t. Internal to src/gpu.
 * Includes: stdint.h. */
#ifndef DC_GPU_KERNELS_H
#define DC_GPU_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { DCG_RED_MOMENTS = 0, DCG_RED_BNBWD = 1, DCG_RED_SUM = 2 };

int dcg_pad_fwd(float *y, const float *x, int64_t NC, int H, int W, int pad, void *s);
int dcg_relu_fwd(float *y, const float *x, int64_t n, void *s);
/// d = g where y > 0, else 0 (assigns).
int dcg_relu_bwd(float *d, const float *g, const float *y, int64_t n, void *s);
int dcg_maxpool_fwd(float *y, int32_t *arg, const float *x, int64_t NC, int H, int W, int OH, int OW, int K,
                    int stride, void *s);
/// Non-overlapping windows only (K == stride); assigns every element of d.
int dcg_maxpool_bwd(float *d, const float *g, const int32_t *arg, int64_t NC, int H, int W, int OH, int OW,
                    int stride, void *s);
int dcg_dropout_fwd(float *y, uint8_t *mask, const float *x, int64_t n, int64_t first, float p, uint32_t key0,
                    uint32_t key1, uint32_t a, uint32_t b, void *s);
int dcg_dropout_bwd(float *d, const float *g, const uint8_t *mask, int64_t n, float p, void *s);
/// y (N, C, HW) += b[c], or = b[c] when fill.
int dcg_bias(float *y, const float *b, int N, int C, int HW, int fill, void *s);
int dcg_scale(float *y, int64_t n, float a, void *s);
/// Chunks per channel of dcg_chan_reduce (its scratch: 2·C·parts doubles).
int dcg_chan_parts(int N, int C, int HW);
/// out[0..C) and out[C..2C): the per-channel sums of the mode (see kernels.cu).
int dcg_chan_reduce(double *out, double *part, const float *x, const float *g, const float *y, const float *mean,
                    int mode, int N, int C, int HW, void *s);
int dcg_bn_finalize(float *mean, float *rstd, float *rm, float *rv, const double *sums, int C, int64_t count,
                    float eps, float momentum, void *s);
int dcg_bn_eval_stats(float *rstd, const float *rv, int C, float eps, void *s);
int dcg_bn_apply(float *y, const float *x, const float *gamma, const float *beta, const float *mean,
                 const float *rstd, int N, int C, int HW, int relu, void *s);
int dcg_bn_bwd_params(float *dgamma, float *dbeta, const double *sums, const float *rstd, int C, void *s);
int dcg_bn_bwd_data(float *d, const float *g, const float *x, const float *y, const float *gamma, const float *mean,
                    const float *rstd, const double *sums, int N, int C, int HW, int64_t count, void *s);
/// dst[c] += scale · sums[c].
int dcg_add_sums(float *dst, const double *sums, int C, float scale, void *s);
int dcg_xent(float *dl, double *loss, int32_t *hit, const float *z, const int32_t *target, int rows, int C,
             float scale, void *s);
int dcg_step_stats(double *out, const double *lsup, const int32_t *hsup, const double *lsub, const int32_t *hsub,
                   const int32_t *rows, int N, void *s);
int dcg_gather_rows(float *dst, const float *src, const int32_t *rows, int n, int D, void *s);
int dcg_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int n, int D, void *s);
int dcg_sgd(float *p, const float *g, float *v, int64_t n, float lr, float momentum, float wd, int first, void *s);

/* kmeans.cu: the k-means E-step (kmeans_gpu.c) */
int dcg_km_sqnorms(float *out, const float *x, int64_t n, int d, void *s);
/// assign[i], dist[i] of each of nb points from dots (nb, k), cn (k), xn (nb).
int dcg_km_argmin(int32_t *assign, float *dist, const float *dots, const float *cn, const float *xn, int nb, int k,
                  void *s);
/// Scratch bytes of dcg_km_sort for n points (into *bytes).
int dcg_km_sort_bytes(size_t *bytes, int n, int k);
int dcg_km_sort(int32_t *keys_out, int32_t *order, int32_t *iota, const int32_t *assign, int n, int k, void *temp,
                size_t temp_bytes, void *s);
int dcg_km_runs(int32_t *start, int32_t *end, const int32_t *keys, int n, int k, void *s);
int dcg_km_segsums(double *sums, int64_t *counts, const float *x, const int32_t *order, const int32_t *start,
                   const int32_t *end, int k, int d, void *s);

#ifdef __cplusplus
}
#endif
#endif
