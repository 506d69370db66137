/* blocked.c — batch norm, max-pool and layout conversion on channel-blocked
 * activations (nChw16c, the layout oneDNN's convolutions read and write):
 * element (n, c, p) of a (N, C, HW) tensor sits at
 * ((n·CB + c/16)·HW + p)·16 + c%16, CB = ⌈C/16⌉; the lanes of channels
 * ≥ C in the last block are zero and every kernel here keeps them zero.
 * Same arithmetic as the NCHW kernels (double sums, one channel's sum in
 * one fixed order, so results do not depend on the thread count); the 16
 * channels of a block are processed side by side in vector registers.
 * Includes: dc/kernels.h, libm. */
#include "dc/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define L DC_BLK

static int nblocks(int C) { return (C + L - 1) / L; }

int64_t dc_blk_size(int C, int64_t HW) { return (int64_t)nblocks(C) * L * HW; }

void dc_blk_from_nchw(float *out, const float *in, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)N * C * HW > 32768)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float *y = out + ((size_t)n * CB + cb) * HW * L;
            for (int j = 0; j < L; j++) {
                int c = cb * L + j;
                if (c < C) {
                    const float *x = in + ((size_t)n * C + c) * HW;
                    for (int p = 0; p < HW; p++) y[(size_t)p * L + j] = x[p];
                } else {
                    for (int p = 0; p < HW; p++) y[(size_t)p * L + j] = 0.0f;
                }
            }
        }
}

void dc_blk_to_nchw(float *out, const float *in, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)N * C * HW > 32768)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            const float *x = in + ((size_t)n * CB + cb) * HW * L;
            for (int j = 0; j < L && cb * L + j < C; j++) {
                float *y = out + ((size_t)n * C + cb * L + j) * HW;
                for (int p = 0; p < HW; p++) y[p] = x[(size_t)p * L + j];
            }
        }
}

void dc_bn_sums_blk(double *sum, const float *in, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        double s[L] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = in + ((size_t)n * CB + cb) * HW * L;
            for (int p = 0; p < HW; p++)
#pragma omp simd
                for (int j = 0; j < L; j++) s[j] += x[(size_t)p * L + j];
        }
        for (int j = 0; j < L && cb * L + j < C; j++) sum[cb * L + j] = s[j];
    }
}

/* mean, rstd, gamma, beta of block cb in 16 lanes (0 beyond C) */
static void lanes(float *dst, const float *src, int cb, int C)
{
    for (int j = 0; j < L; j++) dst[j] = cb * L + j < C && src ? src[cb * L + j] : 0.0f;
}

void dc_bn_centered_sumsq_blk(double *sumsq, const float *in, const float *mean, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        double q[L] = {0}, m[L];
        float mf[L];
        lanes(mf, mean, cb, C);
        for (int j = 0; j < L; j++) m[j] = mf[j];
        for (int n = 0; n < N; n++) {
            const float *x = in + ((size_t)n * CB + cb) * HW * L;
            for (int p = 0; p < HW; p++)
#pragma omp simd
                for (int j = 0; j < L; j++) {
                    double e = x[(size_t)p * L + j] - m[j];
                    q[j] += e * e;
                }
        }
        for (int j = 0; j < L && cb * L + j < C; j++) sumsq[cb * L + j] = q[j];
    }
}

void dc_bn_apply_blk(float *out, const float *in, const float *gamma, const float *beta, const float *mean,
                     const float *rstd, int N, int C, int HW, int relu)
{
    int CB = nblocks(C);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float s[L], m[L], b[L], g[L], r[L];
            lanes(g, gamma, cb, C);
            lanes(r, rstd, cb, C);
            lanes(m, mean, cb, C);
            lanes(b, beta, cb, C);
            for (int j = 0; j < L; j++) s[j] = g[j] * r[j];
            const float *x = in + ((size_t)n * CB + cb) * HW * L;
            float *y = out + ((size_t)n * CB + cb) * HW * L;
            if (relu) {
                for (int p = 0; p < HW; p++)
#pragma omp simd
                    for (int j = 0; j < L; j++) {
                        float v = (x[(size_t)p * L + j] - m[j]) * s[j] + b[j];
                        y[(size_t)p * L + j] = v > 0.0f ? v : 0.0f;
                    }
            } else {
                for (int p = 0; p < HW; p++)
#pragma omp simd
                    for (int j = 0; j < L; j++) y[(size_t)p * L + j] = (x[(size_t)p * L + j] - m[j]) * s[j] + b[j];
            }
        }
}

void dc_batchnorm_forward_eval_blk(float *out, const float *in, const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var, int N, int C, int HW,
                                   float eps)
{
    float rstd[4096];
    DC_ASSERT(C <= 4096);
    for (int c = 0; c < C; c++) rstd[c] = (float)(1.0 / sqrt((double)running_var[c] + eps));
    dc_bn_apply_blk(out, in, gamma, beta, running_mean, rstd, N, C, HW, 0);
}

void dc_bn_backward_sums_blk(double *sum_dy, double *sum_dy_xhat, const float *dout, const float *in,
                             const float *mean, const float *rstd, const float *relu_out, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        double s[L] = {0}, q[L] = {0};
        float m[L];
        lanes(m, mean, cb, C);
        for (int n = 0; n < N; n++) {
            size_t o = ((size_t)n * CB + cb) * HW * L;
            const float *g = dout + o, *x = in + o, *r = relu_out ? relu_out + o : NULL;
            for (int p = 0; p < HW; p++)
#pragma omp simd
                for (int j = 0; j < L; j++) {
                    size_t i = (size_t)p * L + j;
                    float gv = r && !(r[i] > 0.0f) ? 0.0f : g[i];
                    s[j] += gv;
                    q[j] += (double)gv * (x[i] - m[j]);
                }
        }
        for (int j = 0; j < L && cb * L + j < C; j++) {
            sum_dy[cb * L + j] = s[j];
            sum_dy_xhat[cb * L + j] = q[j] * rstd[cb * L + j];
        }
    }
}

void dc_bn_backward_apply_blk(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *gamma, const float *mean, const float *rstd, const float *relu_out,
                              const double *sum_dy, const double *sum_dy_xhat, int N, int C, int HW, int64_t count)
{
    if (dgamma)
        for (int c = 0; c < C; c++) {
            dgamma[c] += (float)sum_dy_xhat[c];
            dbeta[c] += (float)sum_dy[c];
        }
    if (!din) return;
    int CB = nblocks(C);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float k[L], mdy[L], mdx[L], m[L], r[L], gm[L];
            lanes(gm, gamma, cb, C);
            lanes(r, rstd, cb, C);
            lanes(m, mean, cb, C);
            for (int j = 0; j < L; j++) {
                int c = cb * L + j;
                k[j] = gm[j] * r[j];
                mdy[j] = c < C ? (float)(sum_dy[c] / (double)count) : 0.0f;
                mdx[j] = c < C ? (float)(sum_dy_xhat[c] / (double)count) : 0.0f;
            }
            size_t o = ((size_t)n * CB + cb) * HW * L;
            const float *g = dout + o, *x = in + o, *ro = relu_out ? relu_out + o : NULL;
            float *d = din + o;
            for (int p = 0; p < HW; p++)
#pragma omp simd
                for (int j = 0; j < L; j++) {
                    size_t i = (size_t)p * L + j;
                    float gv = ro && !(ro[i] > 0.0f) ? 0.0f : g[i];
                    float xhat = (x[i] - m[j]) * r[j];
                    d[i] += k[j] * (gv - mdy[j] - xhat * mdx[j]);
                }
        }
}

void dc_maxpool_forward_blk(float *out, int32_t *arg, const float *in, int N, int C, int H, int W, int K,
                            int stride)
{
    int CB = nblocks(C), OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            const float *x = in + ((size_t)n * CB + cb) * H * W * L;
            float *y = out + ((size_t)n * CB + cb) * OH * OW * L;
            int32_t *a = arg + ((size_t)n * CB + cb) * OH * OW * L;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float best[L];
                    int32_t bi[L];
                    for (int j = 0; j < L; j++) {
                        best[j] = -FLT_MAX;
                        bi[j] = (oh * stride) * W + ow * stride;
                    }
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int32_t idx = (oh * stride + kh) * W + ow * stride + kw;
                            const float *v = x + (size_t)idx * L;
                            /* as PyTorch: first maximum in scan order; NaN wins */
#pragma omp simd
                            for (int j = 0; j < L; j++) {
                                int take = v[j] > best[j] || v[j] != v[j];
                                best[j] = take ? v[j] : best[j];
                                bi[j] = take ? idx : bi[j];
                            }
                        }
                    size_t o = ((size_t)oh * OW + ow) * L;
                    memcpy(y + o, best, sizeof best);
                    memcpy(a + o, bi, sizeof bi);
                }
        }
}

void dc_maxpool_backward_blk(float *din, const float *dout, const int32_t *arg, int N, int C, int H, int W,
                             int OH, int OW)
{
    int CB = nblocks(C);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float *d = din + ((size_t)n * CB + cb) * H * W * L;
            const float *g = dout + ((size_t)n * CB + cb) * OH * OW * L;
            const int32_t *a = arg + ((size_t)n * CB + cb) * OH * OW * L;
            for (int o = 0; o < OH * OW; o++)
                for (int j = 0; j < L; j++) d[(size_t)a[(size_t)o * L + j] * L + j] += g[(size_t)o * L + j];
        }
}
