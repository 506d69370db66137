/* kmeans.cu — the device kernels of the GPU k-means E-step (kmeans_gpu.c):
 * squared row norms, the nearest centroid of each point from a block of
 * products (one warp per point, ties to the lower index as on the CPU),
 * the stable sort of the points by cluster (CUB's radix sort: stable and
 * deterministic), each cluster's run in the sorted order, and each
 * cluster's sum of its members in double, one member after another in
 * index order (no atomics: the CPU's bits for the same assignments).
 * Each entry point is an extern "C" launcher taking the stream as void *
 * and returning the launch's cudaError_t as an int (0: fine).
 * Includes: gpu/gpu_kernels.h, CUB, the CUDA runtime. */
#include "gpu_kernels.h"

#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>

#define THREADS 256
#define STREAM(s) ((cudaStream_t)(s))
#define LAUNCHED() ((int)cudaGetLastError())

static inline int grid_for(int64_t n, int per_block)
{
    int64_t b = (n + per_block - 1) / per_block;
    return (int)(b > 65535 * 16 ? 65535 * 16 : (b < 1 ? 1 : b));
}

/* out[i] = Σ_j x[i, j]², j in order (one thread per row). */
__global__ void k_sqnorms(float *out, const float *x, int64_t n, int d)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float *r = x + i * d;
        float s = 0.0f;
        for (int j = 0; j < d; j++) s = __fadd_rn(s, __fmul_rn(r[j], r[j]));
        out[i] = s;
    }
}

extern "C" int dcg_km_sqnorms(float *out, const float *x, int64_t n, int d, void *s)
{
    k_sqnorms<<<grid_for(n, THREADS), THREADS, 0, STREAM(s)>>>(out, x, n, d);
    return LAUNCHED();
}

/* One warp per point: the smallest cn[j] − 2·dots[i, j] (the first one on
 * ties, as the CPU's scan), the point's cluster and its squared distance
 * xn[i] + that value, floored at 0. Each lane keeps the first minimum of
 * its strided share; the lanes then reduce by (value, index). */
__global__ void k_argmin(int32_t *assign, float *dist, const float *dots, const float *cn, const float *xn, int nb,
                         int k)
{
    int warps = blockDim.x / 32, lane = threadIdx.x & 31;
    for (int64_t i = blockIdx.x * (int64_t)warps + threadIdx.x / 32; i < nb; i += (int64_t)gridDim.x * warps) {
        const float *row = dots + i * k;
        float best = FLT_MAX;
        int arg = k;
        for (int j = lane; j < k; j += 32) {
            float v = __fsub_rn(cn[j], __fmul_rn(2.0f, row[j]));
            if (v < best) {
                best = v;
                arg = j;
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_down_sync(0xffffffffu, best, off);
            int oa = __shfl_down_sync(0xffffffffu, arg, off);
            if (ov < best || (ov == best && oa < arg)) {
                best = ov;
                arg = oa;
            }
        }
        if (lane == 0) {
            assign[i] = arg < k ? arg : 0;
            float dd = __fadd_rn(xn[i], best);
            dist[i] = dd > 0.0f ? dd : 0.0f;
        }
    }
}

extern "C" int dcg_km_argmin(int32_t *assign, float *dist, const float *dots, const float *cn, const float *xn,
                             int nb, int k, void *s)
{
    k_argmin<<<grid_for(nb, THREADS / 32), THREADS, 0, STREAM(s)>>>(assign, dist, dots, cn, xn, nb, k);
    return LAUNCHED();
}

__global__ void k_iota(int32_t *v, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = i;
}

extern "C" int dcg_km_sort_bytes(size_t *bytes, int n, int k)
{
    int bits = 1;
    while ((1LL << bits) < k) bits++;
    *bytes = 0;
    return (int)cub::DeviceRadixSort::SortPairs(NULL, *bytes, (const int32_t *)NULL, (int32_t *)NULL,
                                                (const int32_t *)NULL, (int32_t *)NULL, n, 0, bits);
}

/* keys_out/order: the n points' clusters and indices, stable-sorted by
 * cluster (the indices of each cluster ascending). */
extern "C" int dcg_km_sort(int32_t *keys_out, int32_t *order, int32_t *iota, const int32_t *assign, int n, int k,
                           void *temp, size_t temp_bytes, void *s)
{
    int bits = 1;
    while ((1LL << bits) < k) bits++;
    k_iota<<<grid_for(n, THREADS), THREADS, 0, STREAM(s)>>>(iota, n);
    int e = LAUNCHED();
    if (e) return e;
    return (int)cub::DeviceRadixSort::SortPairs(temp, temp_bytes, assign, keys_out, iota, order, n, 0, bits,
                                                STREAM(s));
}

/* start[c], end[c]: cluster c's run [start, end) in the sorted keys (both
 * zeroed beforehand: an empty cluster's run is [0, 0)). */
__global__ void k_runs(int32_t *start, int32_t *end, const int32_t *keys, int n)
{
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < n; p += gridDim.x * blockDim.x) {
        int32_t c = keys[p];
        if (p == 0 || keys[p - 1] != c) start[c] = p;
        if (p == n - 1 || keys[p + 1] != c) end[c] = p + 1;
    }
}

extern "C" int dcg_km_runs(int32_t *start, int32_t *end, const int32_t *keys, int n, int k, void *s)
{
    cudaError_t e = cudaMemsetAsync(start, 0, (size_t)k * sizeof *start, STREAM(s));
    if (e == cudaSuccess) e = cudaMemsetAsync(end, 0, (size_t)k * sizeof *end, STREAM(s));
    if (e != cudaSuccess) return (int)e;
    k_runs<<<grid_for(n, THREADS), THREADS, 0, STREAM(s)>>>(start, end, keys, n);
    return LAUNCHED();
}

/* sums[c, j] += x[order[p], j] for p over cluster c's run, in order, one
 * thread per (c, j): block (c, column block), threads along j (coalesced).
 * Starting from the sums' current values, so chunks of points added one
 * after another give one pass's bits; counts[c] += the run's length. */
__global__ void k_segsums(double *sums, int64_t *counts, const float *x, const int32_t *order, const int32_t *start,
                          const int32_t *end, int d)
{
    int c = blockIdx.x;
    int j = blockIdx.y * blockDim.x + threadIdx.x;
    int32_t a = start[c], b = end[c];
    if (j < d) {
        double acc = sums[(size_t)c * d + j];
        for (int32_t p = a; p < b; p++) acc += (double)x[(size_t)order[p] * d + j];
        sums[(size_t)c * d + j] = acc;
    }
    if (blockIdx.y == 0 && threadIdx.x == 0) counts[c] += b - a;
}

extern "C" int dcg_km_segsums(double *sums, int64_t *counts, const float *x, const int32_t *order,
                              const int32_t *start, const int32_t *end, int k, int d, void *s)
{
    int t = d < 128 ? ((d + 31) / 32) * 32 : 128;
    dim3 grid((unsigned)k, (unsigned)((d + t - 1) / t));
    k_segsums<<<grid, t, 0, STREAM(s)>>>(sums, counts, x, order, start, end, d);
    return LAUNCHED();
}
