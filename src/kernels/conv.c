/* conv.c — 2-D convolution (NCHW, cross-correlation as PyTorch's Conv2d,
 * any kernel size, stride and zero padding, with bias), forward and
 * backward. The reference is plain loops; the fast path lowers each image to
 * a column matrix (im2col) and runs one GEMM per image: forward
 * W (OC, C·K·K) · col (C·K·K, OH·OW); backward dW += dout · colᵀ and
 * dcol = Wᵀ · dout folded back by col2im.
 * Includes: dc/kernels.h. */
#include "dc/kernels.h"

#include <string.h>

int dc_conv_out_size(int in, int k, int stride, int pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* ------------------------------------------------------------------------ */
/* Reference                                                                */
/* ------------------------------------------------------------------------ */

void dc_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b, int N, int C,
                           int H, int W, int OC, int K, int stride, int pad)
{
    int OH = dc_conv_out_size(H, K, stride, pad), OW = dc_conv_out_size(W, K, stride, pad);
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < K; kh++)
                            for (int kw = 0; kw < K; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)in[((size_t)(n * C + c) * H + ih) * W + iw] *
                                       w[((size_t)(oc * C + c) * K + kh) * K + kw];
                            }
                    out[((size_t)(n * OC + oc) * OH + oh) * OW + ow] = (float)acc;
                }
}

void dc_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int N, int C, int H, int W, int OC, int K, int stride,
                            int pad)
{
    int OH = dc_conv_out_size(H, K, stride, pad), OW = dc_conv_out_size(W, K, stride, pad);
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float g = dout[((size_t)(n * OC + oc) * OH + oh) * OW + ow];
                    if (db) db[oc] += g;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < K; kh++)
                            for (int kw = 0; kw < K; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t ii = ((size_t)(n * C + c) * H + ih) * W + iw;
                                size_t wi = ((size_t)(oc * C + c) * K + kh) * K + kw;
                                if (dw) dw[wi] += g * in[ii];
                                if (din) din[ii] += g * w[wi];
                            }
                }
}

/* ------------------------------------------------------------------------ */
/* im2col + GEMM                                                            */
/* ------------------------------------------------------------------------ */

/* col (C·K·K, OH·OW) from one image (C, H, W). */
static void im2col(float *col, const float *im, int C, int H, int W, int K, int stride, int pad, int OH,
                   int OW)
{
#pragma omp parallel for collapse(2) schedule(static) if (C * K * K * OH * OW > 32768)
    for (int c = 0; c < C; c++)
        for (int kk = 0; kk < K * K; kk++) {
            int kh = kk / K, kw = kk % K;
            float *dst = col + ((size_t)c * K * K + kk) * OH * OW;
            const float *src = im + (size_t)c * H * W;
            for (int oh = 0; oh < OH; oh++) {
                int ih = oh * stride - pad + kh;
                float *d = dst + (size_t)oh * OW;
                if (ih < 0 || ih >= H) {
                    memset(d, 0, (size_t)OW * sizeof *d);
                    continue;
                }
                const float *s = src + (size_t)ih * W;
                if (stride == 1) {
                    /* ow - pad + kw in [0, W) for ow in [lo, hi) */
                    int lo = pad - kw > 0 ? pad - kw : 0;
                    int hi = W + pad - kw < OW ? W + pad - kw : OW;
                    if (hi < lo) hi = lo;
                    for (int ow = 0; ow < lo; ow++) d[ow] = 0;
                    if (hi > lo) memcpy(d + lo, s + lo - pad + kw, (size_t)(hi - lo) * sizeof *d);
                    for (int ow = hi; ow < OW; ow++) d[ow] = 0;
                } else {
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * stride - pad + kw;
                        d[ow] = iw >= 0 && iw < W ? s[iw] : 0.0f;
                    }
                }
            }
        }
}

/* im (C, H, W) += fold of col (C·K·K, OH·OW); channels are independent. */
static void col2im_add(float *im, const float *col, int C, int H, int W, int K, int stride, int pad,
                       int OH, int OW)
{
#pragma omp parallel for schedule(static) if (C * K * K * OH * OW > 32768)
    for (int c = 0; c < C; c++)
        for (int kk = 0; kk < K * K; kk++) {
            int kh = kk / K, kw = kk % K;
            const float *src = col + ((size_t)c * K * K + kk) * OH * OW;
            float *dst = im + (size_t)c * H * W;
            for (int oh = 0; oh < OH; oh++) {
                int ih = oh * stride - pad + kh;
                if (ih < 0 || ih >= H) continue;
                const float *s = src + (size_t)oh * OW;
                float *d = dst + (size_t)ih * W;
                for (int ow = 0; ow < OW; ow++) {
                    int iw = ow * stride - pad + kw;
                    if (iw >= 0 && iw < W) d[iw] += s[ow];
                }
            }
        }
}

/* The weight gradient sums over every output position: a single GEMM with
 * a reduction that long (51,076 for a 226x226 plane) loses about 1e-4 of
 * relative precision in float. Above DW_CHUNK positions the sum is taken
 * chunk by chunk into a scratch block and added up, which keeps the error
 * at the level PyTorch reaches. */
#define DW_CHUNK 4096

size_t dc_conv2d_workspace(int C, int H, int W, int K, int stride, int pad)
{
    int OH = dc_conv_out_size(H, K, stride, pad), OW = dc_conv_out_size(W, K, stride, pad);
    return (size_t)C * K * K * OH * OW;
}

size_t dc_conv2d_workspace_dw(int C, int OC, int K, int OH, int OW)
{
    return (int64_t)OH * OW > DW_CHUNK ? (size_t)OC * C * K * K : 0;
}

void dc_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int N, int C, int H, int W, int OC, int K, int stride, int pad)
{
    int OH = dc_conv_out_size(H, K, stride, pad), OW = dc_conv_out_size(W, K, stride, pad);
    int64_t P = (int64_t)OH * OW, CKK = (int64_t)C * K * K;
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C * H * W;
        float *y = out + (size_t)n * OC * P;
        const float *B = x;
        if (!(K == 1 && stride == 1 && pad == 0)) {
            im2col(col, x, C, H, W, K, stride, pad, OH, OW);
            B = col;
        }
        if (b) {
#pragma omp parallel for schedule(static) if (OC * P > 32768)
            for (int oc = 0; oc < OC; oc++)
                for (int64_t p = 0; p < P; p++) y[oc * P + p] = b[oc];
        }
        dc_sgemm(0, 0, OC, P, CKK, 1.0f, w, CKK, B, P, b ? 1.0f : 0.0f, y, P);
    }
}

void dc_conv2d_backward(float *din, float *dw, float *db, float *col, float *dwtmp,
                        const float *dout, const float *in, const float *w, int N, int C, int H, int W,
                        int OC, int K, int stride, int pad)
{
    int OH = dc_conv_out_size(H, K, stride, pad), OW = dc_conv_out_size(W, K, stride, pad);
    int64_t P = (int64_t)OH * OW, CKK = (int64_t)C * K * K;
    int direct = K == 1 && stride == 1 && pad == 0;
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C * H * W;
        const float *g = dout + (size_t)n * OC * P;
        if (db) {
#pragma omp parallel for schedule(static) if (OC * P > 32768)
            for (int oc = 0; oc < OC; oc++) {
                double s = 0;
                for (int64_t p = 0; p < P; p++) s += g[oc * P + p];
                db[oc] += (float)s;
            }
        }
        if (dw) {
            const float *B = x;
            if (!direct) {
                im2col(col, x, C, H, W, K, stride, pad, OH, OW);
                B = col;
            }
            /* dw (OC, CKK) += g (OC, P) · Bᵀ (P, CKK), chunked over P */
            if (P <= DW_CHUNK) {
                dc_sgemm(0, 1, OC, CKK, P, 1.0f, g, P, B, P, 1.0f, dw, CKK);
            } else {
                DC_ASSERT(dwtmp != NULL);
                for (int64_t p0 = 0; p0 < P; p0 += DW_CHUNK) {
                    int64_t np = P - p0 < DW_CHUNK ? P - p0 : DW_CHUNK;
                    dc_sgemm(0, 1, OC, CKK, np, 1.0f, g + p0, P, B + p0, P, 0.0f, dwtmp, CKK);
                    int64_t nw = (int64_t)OC * CKK;
#pragma omp parallel for schedule(static) if (nw > 65536)
                    for (int64_t i = 0; i < nw; i++) dw[i] += dwtmp[i];
                }
            }
        }
        if (din) {
            float *dx = din + (size_t)n * C * H * W;
            if (direct) {
                dc_sgemm(1, 0, CKK, P, OC, 1.0f, w, CKK, g, P, 1.0f, dx, P);
            } else {
                /* col (CKK, P) = wᵀ (CKK, OC) · g (OC, P), then folded */
                dc_sgemm(1, 0, CKK, P, OC, 1.0f, w, CKK, g, P, 0.0f, col, P);
                col2im_add(dx, col, C, H, W, K, stride, pad, OH, OW);
            }
        }
    }
}
