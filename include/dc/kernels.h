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

#ifdef __cplusplus
}
#endif
#endif
