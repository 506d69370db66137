/* rows.c — row-wise helpers for feature matrices: norms, L2 normalisation,
 * the non-finite check that guards k-means and PCA.
 * Includes: dc/kernels.h, libm. */
#include "dc/kernels.h"

#include <math.h>

void dc_row_sqnorms(float *out, const float *x, int64_t n, int d)
{
#pragma omp parallel for schedule(static) if (n * d > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        float s = 0;
        for (int j = 0; j < d; j++) s += r[j] * r[j];
        out[i] = s;
    }
}

void dc_l2_normalize_rows(float *x, int64_t n, int d)
{
#pragma omp parallel for schedule(static) if (n * d > 65536)
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)r[j] * r[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int j = 0; j < d; j++) r[j] *= inv;
        }
    }
}

int64_t dc_find_nonfinite(const float *x, int64_t count)
{
    /* One pass with no early exit vectorises; the index is found after. */
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (count > 1 << 20)
    for (int64_t i = 0; i < count; i++) bad |= !isfinite(x[i]);
    if (!bad) return -1;
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}
