/* layers.c — the memory-bound layers, forward and backward on NCHW float
 * planes: ReLU, max-pool (with arg-max indices), average pool, constant zero
 * padding, dropout (mask from the counter-based RNG), the fully connected
 * layer (GEMM) and softmax cross-entropy. Backward passes accumulate (+=)
 * into gradient buffers, which the caller zeroes once per step.
 * Includes: dc/kernels.h, libm. */
#include "dc/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

void dc_relu_forward(float *out, const float *in, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0 ? in[i] : 0.0f;
}

void dc_relu_backward(float *din, const float *dout, const float *out, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        if (out[i] > 0) din[i] += dout[i];
}

void dc_maxpool_forward(float *out, int32_t *arg, const float *in, int NC, int H, int W, int K,
                        int stride)
{
    int OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++) {
        const float *x = in + (size_t)p * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = -FLT_MAX;
                int32_t bi = (oh * stride) * W + ow * stride;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        int32_t idx = (oh * stride + kh) * W + ow * stride + kw;
                        /* as PyTorch: first maximum in scan order; NaN wins */
                        if (x[idx] > best || isnan(x[idx])) {
                            best = x[idx];
                            bi = idx;
                        }
                    }
                out[((size_t)p * OH + oh) * OW + ow] = best;
                arg[((size_t)p * OH + oh) * OW + ow] = bi;
            }
    }
}

void dc_maxpool_backward(float *din, const float *dout, const int32_t *arg, int NC, int H, int W,
                         int OH, int OW)
{
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++)
        for (int o = 0; o < OH * OW; o++)
            din[(size_t)p * H * W + arg[(size_t)p * OH * OW + o]] += dout[(size_t)p * OH * OW + o];
}

void dc_avgpool_forward(float *out, const float *in, int NC, int H, int W, int K, int stride)
{
    int OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
    float inv = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++) {
        const float *x = in + (size_t)p * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = 0;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) s += x[(oh * stride + kh) * W + ow * stride + kw];
                out[((size_t)p * OH + oh) * OW + ow] = s * inv;
            }
    }
}

void dc_avgpool_backward(float *din, const float *dout, int NC, int H, int W, int K, int stride)
{
    int OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
    float inv = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++) {
        float *d = din + (size_t)p * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float g = dout[((size_t)p * OH + oh) * OW + ow] * inv;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) d[(oh * stride + kh) * W + ow * stride + kw] += g;
            }
    }
}

void dc_pad_forward(float *out, const float *in, int NC, int H, int W, int pad)
{
    int OH = H + 2 * pad, OW = W + 2 * pad;
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++) {
        float *y = out + (size_t)p * OH * OW;
        memset(y, 0, (size_t)OW * pad * sizeof *y);
        for (int h = 0; h < H; h++) {
            float *row = y + (size_t)(h + pad) * OW;
            memset(row, 0, (size_t)pad * sizeof *row);
            memcpy(row + pad, in + ((size_t)p * H + h) * W, (size_t)W * sizeof *row);
            memset(row + pad + W, 0, (size_t)pad * sizeof *row);
        }
        memset(y + (size_t)(H + pad) * OW, 0, (size_t)OW * pad * sizeof *y);
    }
}

void dc_pad_backward(float *din, const float *dout, int NC, int H, int W, int pad)
{
    int OW = W + 2 * pad, OH = H + 2 * pad;
#pragma omp parallel for schedule(static) if ((int64_t)NC * H * W > 65536)
    for (int p = 0; p < NC; p++)
        for (int h = 0; h < H; h++) {
            const float *g = dout + ((size_t)p * OH + h + pad) * OW + pad;
            float *d = din + ((size_t)p * H + h) * W;
            for (int w = 0; w < W; w++) d[w] += g[w];
        }
}

void dc_dropout_forward(float *out, uint8_t *mask, const float *in, int64_t n, int64_t first, float p,
                        uint64_t seed, uint32_t a, uint32_t b)
{
    /* Element g (global) takes word g mod 4 of Philox block g / 4: blocks
     * of 1024 elements are drawn independently, so the mask depends on
     * neither the thread count nor how the batch is split. */
    float scale = 1.0f / (1.0f - p);
    int64_t g0 = first / 1024 * 1024, nblk = (first + n - g0 + 1023) / 1024;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t lo = g0 + blk * 1024, hi = lo + 1024;
        if (lo < first) lo = first;
        if (hi > first + n) hi = first + n;
        dc_rng r;
        dc_rng_init(&r, seed, DC_RNG_STREAM_DROPOUT, a, b);
        dc_rng_seek(&r, (uint64_t)lo / 4);
        for (int64_t k = 0; k < lo % 4; k++) (void)dc_rng_u32(&r);
        for (int64_t g = lo; g < hi; g++) {
            int64_t i = g - first;
            uint8_t keep = dc_rng_uniform(&r) >= p;
            mask[i] = keep;
            out[i] = keep ? in[i] * scale : 0.0f;
        }
    }
}

void dc_dropout_backward(float *din, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        if (mask[i]) din[i] += dout[i] * scale;
}

void dc_linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                       int OUT)
{
    if (b)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OUT, b, (size_t)OUT * sizeof *out);
    /* out (N, OUT) = in (N, IN) · wᵀ (IN, OUT) */
    dc_sgemm(0, 1, N, OUT, IN, 1.0f, in, IN, w, IN, b ? 1.0f : 0.0f, out, OUT);
}

void dc_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int N, int IN, int OUT)
{
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) db[o] += dout[(size_t)n * OUT + o];
    if (dw) dc_sgemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, in, IN, 1.0f, dw, IN);
    if (din) dc_sgemm(0, 0, N, IN, OUT, 1.0f, dout, OUT, w, IN, 1.0f, din, IN);
}

double dc_softmax_xent_forward(float *probs, int *correct, const float *logits,
                               const int32_t *target, int N, int C)
{
    double loss = 0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * C;
        float *p = probs + (size_t)n * C;
        int arg = 0;
        float zmax = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > zmax) {
                zmax = z[c];
                arg = c;
            }
        double s = 0;
        for (int c = 0; c < C; c++) s += exp((double)z[c] - zmax);
        double logs = log(s);
        for (int c = 0; c < C; c++) p[c] = (float)exp((double)z[c] - zmax - logs);
        DC_ASSERT(target[n] >= 0 && target[n] < C);
        loss += logs - ((double)z[target[n]] - zmax);
        hits += arg == target[n];
    }
    if (correct) *correct = hits;
    return loss;
}

void dc_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *target, int N,
                              int C, float scale)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            dlogits[(size_t)n * C + c] += scale * (probs[(size_t)n * C + c] - (c == target[n]));
}
