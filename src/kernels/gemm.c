/* gemm.c — row-major single-precision GEMM. oneDNN's dnnl_sgemm JIT-compiles
 * AVX-512 kernels, which OpenBLAS does not use on this project's machines
 * (measured here: about 2x faster on k-means-shaped products, 8192x1000x256);
 * OpenBLAS remains the fallback when built with NO_DNNL=1.
 * Includes: dc/kernels.h, oneDNN or CBLAS. */
#include "dc/kernels.h"

#ifdef DC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#else
#include <cblas.h>
#endif

void dc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B,
              int64_t ldb, float beta, float *C, int64_t ldc)
{
    DC_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0) return;
#ifdef DC_HAVE_DNNL
    dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K,
                                 alpha, A, lda, B, ldb, beta, C, ldc);
    DC_ASSERT(s == dnnl_success);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
#endif
}

const char *dc_sgemm_backend(void)
{
#ifdef DC_HAVE_DNNL
    return "onednn";
#else
    return "openblas";
#endif
}

void dc_sgemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t p = 0; p < K; p++) {
                float a = trans_a ? A[p * lda + i] : A[i * lda + p];
                float b = trans_b ? B[j * ldb + p] : B[p * ldb + j];
                acc += (double)a * b;
            }
            float prev = beta == 0 ? 0.0f : beta * C[i * ldc + j];
            C[i * ldc + j] = (float)(alpha * acc) + prev;
        }
}
