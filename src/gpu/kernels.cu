/* kernels.cu — the GPU engine's own device kernels (everything that is not
 * a convolution or a GEMM): padding, ReLU, max-pool, dropout with the CPU
 * engine's Philox draws, bias broadcast, per-channel reductions (batch
 * norm, bias gradients) in a fixed order, batch-norm apply and backward,
 * softmax cross-entropy, row gather/scatter and SGD. Every reduction is a
 * two-stage tree with a layout fixed by the shape alone: no atomics, so the
 * bits are a function of the inputs (determinism, bit-identical resume).
 * Each entry point is an extern "C" launcher taking the stream as void *
 * and returning the launch's cudaError_t as an int (0: fine).
 * Includes: gpu/gpu_kernels.h, the CUDA runtime. */
#include "core/philox.h"
#include "gpu_kernels.h"

#include <cuda_runtime.h>
#include <stdint.h>

#define THREADS 256

static inline int blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (int)(b > 65535 * 16 ? 65535 * 16 : (b < 1 ? 1 : b));
}

#define STREAM(s) ((cudaStream_t)(s))
#define LAUNCHED() ((int)cudaGetLastError())

/* grid-stride loop over [0, n) */
#define FOR_ALL(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
/* the same with 32-bit indices (the shape arithmetic: divisions and
 * remainders are far cheaper); launchers check n < 2^32 */
#define FOR_ALL32(i, n) for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (uint32_t)(n); i += gridDim.x * blockDim.x)
#define FITS32(n)                                                                                                 \
    do {                                                                                                          \
        if ((int64_t)(n) >= (int64_t)0xFFFFFFFF - 65535LL * 16 * THREADS) return (int)cudaErrorInvalidValue;       \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Elementwise                                                              */
/* ------------------------------------------------------------------------ */

__global__ void k_pad_fwd(float *y, const float *x, int64_t NC, int H, int W, int pad)
{
    uint32_t OH = H + 2 * pad, OW = W + 2 * pad;
    uint32_t n = (uint32_t)(NC * OH * OW);
    FOR_ALL32(i, n)
    {
        int ow = (int)(i % OW), oh = (int)((i / OW) % OH);
        int64_t p = i / (OH * OW);
        int h = oh - pad, w = ow - pad;
        y[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(p * H + h) * W + w] : 0.0f;
    }
}

extern "C" int dcg_pad_fwd(float *y, const float *x, int64_t NC, int H, int W, int pad, void *s)
{
    int64_t n = NC * (H + 2 * pad) * (W + 2 * pad);
    FITS32(n);
    k_pad_fwd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, x, NC, H, W, pad);
    return LAUNCHED();
}

__global__ void k_relu_fwd(float *y, const float *x, int64_t n)
{
    FOR_ALL(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

extern "C" int dcg_relu_fwd(float *y, const float *x, int64_t n, void *s)
{
    k_relu_fwd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, x, n);
    return LAUNCHED();
}

__global__ void k_relu_bwd(float *d, const float *g, const float *y, int64_t n)
{
    FOR_ALL(i, n) d[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

extern "C" int dcg_relu_bwd(float *d, const float *g, const float *y, int64_t n, void *s)
{
    k_relu_bwd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(d, g, y, n);
    return LAUNCHED();
}

/* Max-pool, window K, stride; arg = flat index in the input plane of the
 * first maximum in scan order; NaN wins as in PyTorch (and the CPU). */
__global__ void k_maxpool_fwd(float *y, int32_t *arg, const float *x, int64_t NC, int H, int W, int OH, int OW,
                              int K, int stride)
{
    uint32_t n = (uint32_t)(NC * OH * OW);
    FOR_ALL32(i, n)
    {
        int ow = (int)(i % (uint32_t)OW), oh = (int)((i / (uint32_t)OW) % (uint32_t)OH);
        int64_t p = i / (uint32_t)(OH * OW);
        const float *xp = x + p * H * W;
        int h0 = oh * stride, w0 = ow * stride;
        int best = h0 * W + w0;
        float bv = xp[best];
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++) {
                int h = h0 + a, w = w0 + b;
                if (h >= H || w >= W) continue;
                float v = xp[h * W + w];
                if (v > bv || (v != v && bv == bv)) {
                    bv = v;
                    best = h * W + w;
                }
            }
        y[i] = bv;
        arg[i] = best;
    }
}

extern "C" int dcg_maxpool_fwd(float *y, int32_t *arg, const float *x, int64_t NC, int H, int W, int OH, int OW, int K,
                               int stride, void *s)
{
    FITS32(NC * H * W);
    k_maxpool_fwd<<<blocks_for(NC * OH * OW), THREADS, 0, STREAM(s)>>>(y, arg, x, NC, H, W, OH, OW, K, stride);
    return LAUNCHED();
}

/* Non-overlapping windows (K == stride): each input element belongs to at
 * most one window, so the backward is a gather that writes every element. */
__global__ void k_maxpool_bwd(float *d, const float *g, const int32_t *arg, int64_t NC, int H, int W, int OH, int OW,
                              int stride)
{
    uint32_t n = (uint32_t)(NC * H * W);
    FOR_ALL32(i, n)
    {
        int w = (int)(i % (uint32_t)W), h = (int)((i / (uint32_t)W) % (uint32_t)H);
        int64_t p = i / (uint32_t)(H * W);
        int oh = h / stride, ow = w / stride;
        float v = 0.0f;
        if (oh < OH && ow < OW) {
            int64_t o = (p * OH + oh) * OW + ow;
            if (arg[o] == h * W + w) v = g[o];
        }
        d[i] = v;
    }
}

extern "C" int dcg_maxpool_bwd(float *d, const float *g, const int32_t *arg, int64_t NC, int H, int W, int OH, int OW,
                               int stride, void *s)
{
    FITS32(NC * H * W);
    k_maxpool_bwd<<<blocks_for(NC * H * W), THREADS, 0, STREAM(s)>>>(d, g, arg, NC, H, W, OH, OW, stride);
    return LAUNCHED();
}

/* Philox4x32-10, as src/core/rng.c. */
/* Element g (global index first + i) keeps when word g mod 4 of Philox
 * block g / 4 (counter (g/4, a, b)), as a uniform in [0, 1) with 24 bits,
 * is ≥ p: the CPU engine's mask bit for bit. */
__global__ void k_dropout_fwd(float *y, uint8_t *mask, const float *x, int64_t n, int64_t first, float p, float scale,
                              uint32_t k0, uint32_t k1, uint32_t a, uint32_t b)
{
    FOR_ALL(i, n)
    {
        uint64_t g = (uint64_t)(first + i), blk = g / 4;
        uint32_t r[4];
        dc_philox_block(r, (uint32_t)blk, (uint32_t)(blk >> 32), a, b, k0, k1);
        float u = (float)(r[g % 4] >> 8) * (1.0f / 16777216.0f);
        uint8_t keep = u >= p;
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
}

extern "C" int dcg_dropout_fwd(float *y, uint8_t *mask, const float *x, int64_t n, int64_t first, float p,
                               uint32_t key0, uint32_t key1, uint32_t a, uint32_t b, void *s)
{
    k_dropout_fwd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, mask, x, n, first, p, 1.0f / (1.0f - p), key0, key1,
                                                            a, b);
    return LAUNCHED();
}

__global__ void k_dropout_bwd(float *d, const float *g, const uint8_t *mask, int64_t n, float scale)
{
    FOR_ALL(i, n) d[i] = mask[i] ? g[i] * scale : 0.0f;
}

extern "C" int dcg_dropout_bwd(float *d, const float *g, const uint8_t *mask, int64_t n, float p, void *s)
{
    k_dropout_bwd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(d, g, mask, n, 1.0f / (1.0f - p));
    return LAUNCHED();
}

/* y (N, C, HW) += b[c] (add), or = b[c] (fill). */
__global__ void k_bias(float *y, const float *b, int64_t n, int C, int HW, int fill)
{
    FOR_ALL32(i, n)
    {
        int c = (int)((i / (uint32_t)HW) % (uint32_t)C);
        y[i] = fill ? b[c] : y[i] + b[c];
    }
}

extern "C" int dcg_bias(float *y, const float *b, int N, int C, int HW, int fill, void *s)
{
    int64_t n = (int64_t)N * C * HW;
    FITS32(n);
    k_bias<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, b, n, C, HW, fill);
    return LAUNCHED();
}

__global__ void k_scale(float *y, int64_t n, float a)
{
    FOR_ALL(i, n) y[i] *= a;
}

extern "C" int dcg_scale(float *y, int64_t n, float a, void *s)
{
    k_scale<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, n, a);
    return LAUNCHED();
}

/* ------------------------------------------------------------------------ */
/* Per-channel reductions over (N, C, HW), two values per element, double   */
/* sums. Stage 1: block (p, c) sums chunk p of channel c's N·HW elements   */
/* (a fixed tree); stage 2: one thread per channel adds the P chunks in    */
/* order. Modes:                                                            */
/*   RED_MOMENTS  v0 = x, v1 = x²                                           */
/*   RED_BNBWD    v0 = g', v1 = g'·(x − mean[c]), g' = g masked by y > 0    */
/*                when y (the fused ReLU's output) is given                 */
/*   RED_SUM      v0 = x (bias gradients)                                   */
/* ------------------------------------------------------------------------ */

__device__ __forceinline__ void block_sum2(double *a, double *b)
{
    __shared__ double sa[THREADS], sb[THREADS];
    __syncthreads(); /* a previous call's readers are done with sa[0] */
    sa[threadIdx.x] = *a;
    sb[threadIdx.x] = *b;
    __syncthreads();
    for (int w = THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) {
            sa[threadIdx.x] += sa[threadIdx.x + w];
            sb[threadIdx.x] += sb[threadIdx.x + w];
        }
        __syncthreads();
    }
    *a = sa[0];
    *b = sb[0];
}

__global__ void k_chan_partial(double *part, const float *x, const float *g, const float *y, const float *mean,
                               int mode, int N, int C, int HW, int P)
{
    int c = blockIdx.y, p = blockIdx.x;
    uint32_t M = (uint32_t)N * (uint32_t)HW, chunk = (M + P - 1) / P;
    uint32_t lo = p * chunk, hi = lo + chunk < M ? lo + chunk : M;
    double s0 = 0, s1 = 0;
    float m = mode == DCG_RED_BNBWD ? mean[c] : 0.0f;
    for (uint32_t e = lo + threadIdx.x; e < hi; e += THREADS) {
        uint32_t n = e / (uint32_t)HW, i = e - n * (uint32_t)HW;
        int64_t idx = ((int64_t)n * C + c) * HW + i;
        if (mode == DCG_RED_MOMENTS) {
            double v = x[idx];
            s0 += v;
            s1 += v * v;
        } else if (mode == DCG_RED_BNBWD) {
            float gv = g[idx];
            if (y && !(y[idx] > 0.0f)) gv = 0.0f;
            s0 += gv;
            s1 += (double)gv * (double)(x[idx] - m);
        } else {
            s0 += x[idx];
        }
    }
    block_sum2(&s0, &s1);
    if (threadIdx.x == 0) {
        part[(int64_t)c * P + p] = s0;
        part[(int64_t)C * P + (int64_t)c * P + p] = s1;
    }
}

__global__ void k_chan_final(double *out, const double *part, int C, int P)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s0 = 0, s1 = 0;
    for (int p = 0; p < P; p++) {
        s0 += part[(int64_t)c * P + p];
        s1 += part[(int64_t)C * P + (int64_t)c * P + p];
    }
    out[c] = s0;
    out[C + c] = s1;
}

extern "C" int dcg_chan_parts(int N, int C, int HW)
{
    int64_t M = (int64_t)N * HW;
    /* enough blocks to fill the card, each at least 2,048 elements */
    int64_t p = M / 2048;
    int64_t want = (1024 + C - 1) / C;
    if (p > want) p = want;
    if (p > 256) p = 256;
    return p < 1 ? 1 : (int)p;
}

extern "C" int dcg_chan_reduce(double *out, double *part, const float *x, const float *g, const float *y,
                               const float *mean, int mode, int N, int C, int HW, void *s)
{
    int P = dcg_chan_parts(N, C, HW);
    FITS32((int64_t)N * HW);
    k_chan_partial<<<dim3(P, C), THREADS, 0, STREAM(s)>>>(part, x, g, y, mean, mode, N, C, HW, P);
    k_chan_final<<<(C + 127) / 128, 128, 0, STREAM(s)>>>(out, part, C, P);
    return LAUNCHED();
}

/* ------------------------------------------------------------------------ */
/* Batch norm                                                               */
/* ------------------------------------------------------------------------ */

/* From sums (2C: Σx, Σx²) over count: mean, rstd (biased variance), running
 * statistics with momentum and the unbiased variance (running_mean NULL:
 * none). The variance from the raw moments in double, about the mean. */
__global__ void k_bn_finalize(float *mean, float *rstd, float *rm, float *rv, const double *sums, int C, int64_t count,
                              float eps, float momentum)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double mu = sums[c] / (double)count;
    float mf = (float)mu;
    /* about the float mean, as the CPU's centred sums */
    double d = mu - (double)mf;
    double v = sums[C + c] / (double)count - mu * mu + d * d;
    if (v < 0) v = 0;
    mean[c] = mf;
    rstd[c] = (float)(1.0 / sqrt(v + eps));
    if (rm) {
        double unbiased = count > 1 ? v * (double)count / (double)(count - 1) : v;
        rm[c] = (float)((1 - momentum) * rm[c] + momentum * mf);
        rv[c] = (float)((1 - momentum) * rv[c] + momentum * unbiased);
    }
}

extern "C" int dcg_bn_finalize(float *mean, float *rstd, float *rm, float *rv, const double *sums, int C,
                               int64_t count, float eps, float momentum, void *s)
{
    k_bn_finalize<<<(C + 127) / 128, 128, 0, STREAM(s)>>>(mean, rstd, rm, rv, sums, C, count, eps, momentum);
    return LAUNCHED();
}

/* Evaluation: rstd from the running variance. */
__global__ void k_bn_eval_stats(float *rstd, const float *rv, int C, float eps)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < C) rstd[c] = (float)(1.0 / sqrt((double)rv[c] + eps));
}

extern "C" int dcg_bn_eval_stats(float *rstd, const float *rv, int C, float eps, void *s)
{
    k_bn_eval_stats<<<(C + 127) / 128, 128, 0, STREAM(s)>>>(rstd, rv, C, eps);
    return LAUNCHED();
}

/* y = (x − mean)·γ·rstd + β, then ReLU when relu. */
__global__ void k_bn_apply(float *y, const float *x, const float *gamma, const float *beta, const float *mean,
                           const float *rstd, int64_t n, int C, int HW, int relu)
{
    FOR_ALL32(i, n)
    {
        int c = (int)((i / (uint32_t)HW) % (uint32_t)C);
        float v = (x[i] - mean[c]) * (gamma[c] * rstd[c]) + beta[c];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

extern "C" int dcg_bn_apply(float *y, const float *x, const float *gamma, const float *beta, const float *mean,
                            const float *rstd, int N, int C, int HW, int relu, void *s)
{
    int64_t n = (int64_t)N * C * HW;
    FITS32(n);
    k_bn_apply<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(y, x, gamma, beta, mean, rstd, n, C, HW, relu);
    return LAUNCHED();
}

/* γ and β gradients from the sums (Σg', Σg'(x − mean)), accumulated. */
__global__ void k_bn_bwd_params(float *dgamma, float *dbeta, const double *sums, const float *rstd, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    dgamma[c] += (float)(sums[C + c] * rstd[c]);
    dbeta[c] += (float)sums[c];
}

extern "C" int dcg_bn_bwd_params(float *dgamma, float *dbeta, const double *sums, const float *rstd, int C, void *s)
{
    k_bn_bwd_params<<<(C + 127) / 128, 128, 0, STREAM(s)>>>(dgamma, dbeta, sums, rstd, C);
    return LAUNCHED();
}

/* din = γ·rstd·(g' − mean(g') − x̂·mean(g'·x̂)), sums of the (global) batch. */
__global__ void k_bn_bwd_data(float *d, const float *g, const float *x, const float *y, const float *gamma,
                              const float *mean, const float *rstd, const double *sums, int64_t n, int C, int HW,
                              int64_t count)
{
    FOR_ALL32(i, n)
    {
        int c = (int)((i / (uint32_t)HW) % (uint32_t)C);
        float r = rstd[c];
        float k = gamma[c] * r;
        float mdy = (float)(sums[c] / (double)count);
        float mdx = (float)(sums[C + c] * r / (double)count);
        float gv = g[i];
        if (y && !(y[i] > 0.0f)) gv = 0.0f;
        float xhat = (x[i] - mean[c]) * r;
        d[i] = k * (gv - mdy - xhat * mdx);
    }
}

extern "C" int dcg_bn_bwd_data(float *d, const float *g, const float *x, const float *y, const float *gamma,
                               const float *mean, const float *rstd, const double *sums, int N, int C, int HW,
                               int64_t count, void *s)
{
    int64_t n = (int64_t)N * C * HW;
    FITS32(n);
    k_bn_bwd_data<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(d, g, x, y, gamma, mean, rstd, sums, n, C, HW, count);
    return LAUNCHED();
}

/* Sums as floats, accumulated (bias gradients): dst[c] += (float)sums[c]. */
__global__ void k_add_sums(float *dst, const double *sums, int C, float scale)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < C) dst[c] += (float)sums[c] * scale;
}

extern "C" int dcg_add_sums(float *dst, const double *sums, int C, float scale, void *s)
{
    k_add_sums<<<(C + 127) / 128, 128, 0, STREAM(s)>>>(dst, sums, C, scale);
    return LAUNCHED();
}

/* ------------------------------------------------------------------------ */
/* Softmax cross-entropy, one warp a row                                    */
/* ------------------------------------------------------------------------ */

/* Row j of logits (rows, C): loss[j] = log Σ exp(z − zmax) − (z_t − zmax)
 * (double), hit[j] = arg-max (first) == t; dl[j] = scale·(p − onehot(t))
 * with p as the CPU computes it. */
__global__ void k_xent(float *dl, double *loss, int32_t *hit, const float *z, const int32_t *target, int rows, int C,
                       float scale)
{
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warp >= rows) return;
    const float *zr = z + (int64_t)warp * C;
    float zmax = 0.0f;
    int arg = C; /* none yet */
    for (int c = lane; c < C; c += 32)
        if (arg == C || zr[c] > zmax) {
            zmax = zr[c];
            arg = c;
        }
    /* the largest, the first of equals: exact, so every lane agrees */
    for (int o = 16; o > 0; o /= 2) {
        float om = __shfl_xor_sync(0xffffffffu, zmax, o);
        int oa = __shfl_xor_sync(0xffffffffu, arg, o);
        if (oa < C && (arg == C || om > zmax || (om == zmax && oa < arg))) {
            zmax = om;
            arg = oa;
        }
    }
    double sum = 0;
    for (int c = lane; c < C; c += 32) sum += exp((double)zr[c] - zmax);
    /* a fixed tree over the lanes */
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    sum = __shfl_sync(0xffffffffu, sum, 0); /* lane 0's order for all */
    double logs = log(sum);
    int t = target[warp];
    for (int c = lane; c < C; c += 32) {
        float p = (float)exp((double)zr[c] - zmax - logs);
        dl[(int64_t)warp * C + c] = scale * (p - (c == t ? 1.0f : 0.0f));
    }
    if (lane == 0) {
        loss[warp] = logs - ((double)zr[t] - zmax);
        hit[warp] = arg == t;
    }
}

extern "C" int dcg_xent(float *dl, double *loss, int32_t *hit, const float *z, const int32_t *target, int rows, int C,
                        float scale, void *s)
{
    if (rows <= 0) return 0;
    int per = 8; /* warps a block */
    k_xent<<<(rows + per - 1) / per, 32 * per, 0, STREAM(s)>>>(dl, loss, hit, z, target, rows, C, scale);
    return LAUNCHED();
}

/* The step's statistics, one block: out[0] = Σ super loss, out[1] = Σ sub
 * loss, out[2] super hits, out[3] sub hits, out[4] both (row rows[j] right
 * in both heads). */
__global__ void k_step_stats(double *out, const double *lsup, const int32_t *hsup, const double *lsub,
                             const int32_t *hsub, const int32_t *rows, int N)
{
    double a = 0, b = 0, c = 0, d = 0, e = 0;
    for (int i = threadIdx.x; i < N; i += THREADS) {
        a += lsup[i];
        c += hsup[i];
        b += lsub[i];
        d += hsub[i];
        e += hsub[i] && hsup[rows[i]];
    }
    block_sum2(&a, &b);
    block_sum2(&c, &d);
    double z = 0;
    block_sum2(&e, &z);
    if (threadIdx.x == 0) {
        out[0] = a;
        out[1] = b;
        out[2] = c;
        out[3] = d;
        out[4] = e;
    }
}

extern "C" int dcg_step_stats(double *out, const double *lsup, const int32_t *hsup, const double *lsub,
                              const int32_t *hsub, const int32_t *rows, int N, void *s)
{
    k_step_stats<<<1, THREADS, 0, STREAM(s)>>>(out, lsup, hsup, lsub, hsub, rows, N);
    return LAUNCHED();
}

/* ------------------------------------------------------------------------ */
/* Rows and SGD                                                             */
/* ------------------------------------------------------------------------ */

__global__ void k_gather(float *dst, const float *src, const int32_t *rows, int n, int D)
{
    int64_t total = (int64_t)n * D;
    FOR_ALL(i, total)
    {
        int64_t j = i / D, t = i - j * D;
        dst[i] = src[(int64_t)rows[j] * D + t];
    }
}

extern "C" int dcg_gather_rows(float *dst, const float *src, const int32_t *rows, int n, int D, void *s)
{
    k_gather<<<blocks_for((int64_t)n * D), THREADS, 0, STREAM(s)>>>(dst, src, rows, n, D);
    return LAUNCHED();
}

/* dst[rows[j]] += src[j]: rows distinct, so no two threads share a target */
__global__ void k_scatter_add(float *dst, const float *src, const int32_t *rows, int n, int D)
{
    int64_t total = (int64_t)n * D;
    FOR_ALL(i, total)
    {
        int64_t j = i / D, t = i - j * D;
        dst[(int64_t)rows[j] * D + t] += src[i];
    }
}

extern "C" int dcg_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int n, int D, void *s)
{
    k_scatter_add<<<blocks_for((int64_t)n * D), THREADS, 0, STREAM(s)>>>(dst, src, rows, n, D);
    return LAUNCHED();
}

__global__ void k_sgd(float *p, const float *g, float *v, int64_t n, float lr, float momentum, float wd, int first)
{
    FOR_ALL(i, n)
    {
        float d = g[i] + wd * p[i];
        float vi = first ? d : momentum * v[i] + d;
        v[i] = vi;
        p[i] -= lr * vi;
    }
}

extern "C" int dcg_sgd(float *p, const float *g, float *v, int64_t n, float lr, float momentum, float wd, int first,
                       void *s)
{
    if (n <= 0) return 0;
    k_sgd<<<blocks_for(n), THREADS, 0, STREAM(s)>>>(p, g, v, n, lr, momentum, wd, first);
    return LAUNCHED();
}
