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

/* A block's 16 lanes as vectors of 4 doubles / 8 floats (GCC/Clang vector
 * extensions, 256 bits: native with AVX2 and AVX-512 alike): the
 * double-precision sums below do not auto-vectorise otherwise. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* static helpers only: no ABI crosses */
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 16 floats as four vectors of 4 doubles */
static inline void widen(v4d *d, const float *p)
{
    for (int h = 0; h < 4; h++) {
        v4f f;
        memcpy(&f, p + 4 * h, sizeof f);
        d[h] = __builtin_convertvector(f, v4d);
    }
}

/* v where keep > 0, else 0 */
static inline v8f mask_pos(v8f v, v8f keep)
{
    v8f z = {0};
    return (v8f)((v8i)v & (v8i)(keep > z));
}

static void store16(double *dst, const v4d *a)
{
    memcpy(dst, a, 4 * sizeof *a);
}

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

/* mean, rstd, gamma, beta of block cb in 16 lanes (0 beyond C) */
static void lanes(float *dst, const float *src, int cb, int C)
{
    for (int j = 0; j < L; j++) dst[j] = cb * L + j < C && src ? src[cb * L + j] : 0.0f;
}

void dc_bn_moments_blk(double *sum, double *m2, const float *in, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        double cnt = 0, mean[L] = {0}, acc[L] = {0};
        for (int n = 0; n < N; n++) {
            /* one sample's plane (in cache): its mean, then its squares */
            const float *x = in + ((size_t)n * CB + cb) * HW * L;
            v4d a[4] = {{0}}, q[4] = {{0}}, cm[4];
            for (int p = 0; p < HW; p++) {
                v4d v[4];
                widen(v, x + (size_t)p * L);
                for (int h = 0; h < 4; h++) a[h] += v[h];
            }
            for (int h = 0; h < 4; h++) cm[h] = a[h] / (double)HW;
            for (int p = 0; p < HW; p++) {
                v4d v[4];
                widen(v, x + (size_t)p * L);
                for (int h = 0; h < 4; h++) {
                    v4d e = v[h] - cm[h];
                    q[h] += e * e;
                }
            }
            double cmean[L], cq[L];
            store16(cmean, cm);
            store16(cq, q);
            /* merged with the samples before (Chan et al.) */
            double tot = cnt + HW;
            for (int j = 0; j < L; j++) {
                double d = cmean[j] - mean[j];
                mean[j] += d * HW / tot;
                acc[j] += cq[j] + d * d * cnt * HW / tot;
            }
            cnt = tot;
        }
        for (int j = 0; j < L && cb * L + j < C; j++) {
            sum[cb * L + j] = mean[j] * cnt;
            m2[cb * L + j] = acc[j];
        }
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
                                   float eps, int relu)
{
    float rstd[4096];
    DC_ASSERT(C <= 4096);
    for (int c = 0; c < C; c++) rstd[c] = (float)(1.0 / sqrt((double)running_var[c] + eps));
    dc_bn_apply_blk(out, in, gamma, beta, running_mean, rstd, N, C, HW, relu);
}

void dc_bn_backward_sums_blk(double *sum_dy, double *sum_dy_xhat, const float *dout, const float *in,
                             const float *mean, const float *rstd, const float *relu_out, int N, int C, int HW)
{
    int CB = nblocks(C);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        float mf[L];
        lanes(mf, mean, cb, C);
        v8f m0 = ld8(mf), m1 = ld8(mf + 8);
        v4d sa[4] = {{0}}, qa[4] = {{0}};
        for (int n = 0; n < N; n++) {
            size_t o = ((size_t)n * CB + cb) * HW * L;
            const float *g = dout + o, *x = in + o, *r = relu_out ? relu_out + o : NULL;
            for (int p = 0; p < HW; p++) {
                const float *gp = g + (size_t)p * L, *xp = x + (size_t)p * L;
                v8f g0 = ld8(gp), g1 = ld8(gp + 8);
                if (r) {
                    g0 = mask_pos(g0, ld8(r + (size_t)p * L));
                    g1 = mask_pos(g1, ld8(r + (size_t)p * L + 8));
                }
                /* (x − mean)·g in float, summed in double */
                v8f e0 = (ld8(xp) - m0) * g0, e1 = (ld8(xp + 8) - m1) * g1;
                float gs[L], es[L];
                memcpy(gs, &g0, sizeof g0);
                memcpy(gs + 8, &g1, sizeof g1);
                memcpy(es, &e0, sizeof e0);
                memcpy(es + 8, &e1, sizeof e1);
                v4d gd[4], ed[4];
                widen(gd, gs);
                widen(ed, es);
                for (int h = 0; h < 4; h++) {
                    sa[h] += gd[h];
                    qa[h] += ed[h];
                }
            }
        }
        double s[L], q[L];
        store16(s, sa);
        store16(q, qa);
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
            if (ro) {
                for (int p = 0; p < HW; p++)
#pragma omp simd
                    for (int j = 0; j < L; j++) {
                        size_t i = (size_t)p * L + j;
                        float gv = ro[i] > 0.0f ? g[i] : 0.0f;
                        float xhat = (x[i] - m[j]) * r[j];
                        d[i] = k[j] * (gv - mdy[j] - xhat * mdx[j]);
                    }
            } else {
                for (int p = 0; p < HW; p++)
#pragma omp simd
                    for (int j = 0; j < L; j++) {
                        size_t i = (size_t)p * L + j;
                        float xhat = (x[i] - m[j]) * r[j];
                        d[i] = k[j] * (g[i] - mdy[j] - xhat * mdx[j]);
                    }
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
            memset(d, 0, (size_t)H * W * L * sizeof *d);
            for (int o = 0; o < OH * OW; o++)
                for (int j = 0; j < L; j++) d[(size_t)a[(size_t)o * L + j] * L + j] += g[(size_t)o * L + j];
        }
}
