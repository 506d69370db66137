/* philox.h — the Philox4x32-10 block function (Salmon et al., SC 2011), one
 * definition for the CPU (rng.c) and the GPU's kernels (kernels.cu), so
 * that a dropout mask drawn on either is the same bit for bit. Output
 * block = a keyed bijection of the 128-bit counter (c0..c3) under key
 * (k0, k1). Includes: stdint.h only; compiles as C11 and as CUDA. */
#ifndef DC_CORE_PHILOX_H
#define DC_CORE_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define DC_PHILOX_FN __host__ __device__ __forceinline__
#else
#define DC_PHILOX_FN static inline
#endif

DC_PHILOX_FN void dc_philox_block(uint32_t out[4], uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                  uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u; /* golden ratio */
            k1 += 0xBB67AE85u; /* sqrt(3) - 1  */
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#endif
