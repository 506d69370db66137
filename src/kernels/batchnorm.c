/* batchnorm.c — 2-D batch normalisation as PyTorch's BatchNorm2d: training
 * mode normalises with the batch's mean and biased variance and updates the
 * running statistics with momentum and the *unbiased* variance; eval mode
 * uses the running statistics. The training pass is split in building
 * blocks (moments, then apply; backward sums, then apply) so that a
 * distributed caller can all-reduce the sums in between (synchronised BN).
 * Includes: dc/kernels.h, libm. */
#include "dc/kernels.h"

#include <math.h>

void dc_bn_sums(double *sum, const float *in, int N, int C, int HW)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *x = in + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) s += x[i];
        }
        sum[c] = s;
    }
}

void dc_bn_centered_sumsq(double *sumsq, const float *in, const float *mean, int N, int C, int HW)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double q = 0, m = mean[c];
        for (int n = 0; n < N; n++) {
            const float *x = in + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                double e = x[i] - m;
                q += e * e;
            }
        }
        sumsq[c] = q;
    }
}

void dc_bn_finalize(float *mean, float *rstd, float *running_mean, float *running_var,
                    const double *sumsq, int C, int64_t count, float eps, float momentum)
{
    for (int c = 0; c < C; c++) {
        double v = sumsq[c] / (double)count;
        rstd[c] = (float)(1.0 / sqrt(v + eps));
        if (running_mean) {
            double unbiased = count > 1 ? v * (double)count / (double)(count - 1) : v;
            running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean[c]);
            running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * unbiased);
        }
    }
}

void dc_bn_apply(float *out, const float *in, const float *gamma, const float *beta,
                 const float *mean, const float *rstd, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            /* (x − mean)·s + β: no cancellation when the mean is large */
            float s = gamma[c] * rstd[c], m = mean[c], b = beta[c];
            const float *x = in + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) y[i] = (x[i] - m) * s + b;
        }
}

void dc_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, int N, int C, int HW, float eps)
{
    float rstd[4096];
    DC_ASSERT(C <= 4096);
    for (int c = 0; c < C; c++) rstd[c] = (float)(1.0 / sqrt((double)running_var[c] + eps));
    dc_bn_apply(out, in, gamma, beta, running_mean, rstd, N, C, HW);
}

void dc_bn_backward_sums(double *sum_dy, double *sum_dy_xhat, const float *dout, const float *in,
                         const float *mean, const float *rstd, int N, int C, int HW)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0, m = mean[c];
        for (int n = 0; n < N; n++) {
            const float *g = dout + ((size_t)n * C + c) * HW;
            const float *x = in + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                s += g[i];
                q += (double)g[i] * (x[i] - m);
            }
        }
        sum_dy[c] = s;
        sum_dy_xhat[c] = q * rstd[c];
    }
}

void dc_bn_backward_apply(float *din, float *dgamma, float *dbeta, const float *dout,
                          const float *in, const float *gamma, const float *mean,
                          const float *rstd, const double *sum_dy, const double *sum_dy_xhat,
                          int N, int C, int HW, int64_t count)
{
    if (dgamma)
        for (int c = 0; c < C; c++) {
            dgamma[c] += (float)sum_dy_xhat[c];
            dbeta[c] += (float)sum_dy[c];
        }
    if (!din) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            /* din = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)) */
            float k = gamma[c] * rstd[c];
            float mdy = (float)(sum_dy[c] / (double)count);
            float mdx = (float)(sum_dy_xhat[c] / (double)count);
            const float *g = dout + ((size_t)n * C + c) * HW;
            const float *x = in + ((size_t)n * C + c) * HW;
            float *d = din + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                float xhat = (x[i] - mean[c]) * rstd[c];
                d[i] += k * (g[i] - mdy - xhat * mdx);
            }
        }
}
