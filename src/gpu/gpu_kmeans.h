/* gpu_kmeans.h — k-means's E-step on an NVIDIA GPU, as the clustering sees
 * it: an opaque handle, host arrays and dc_status, no CUDA type. The
 * points live on the device (all of them when they fit, else a chunk at a
 * time from the row source each pass); per pass the centroids go up and
 * the assignments, the per-point distances and the per-cluster sums and
 * counts come back, so the M-step, the empty-cluster splits and the
 * bookkeeping stay the CPU's code (kmeans.c).
 *
 * The sums are the CPU's bits for the same assignments: each cluster's
 * members are added in double, one after another in index order (the
 * points stable-sorted by cluster; no atomics). The products are fp32
 * (cuBLAS without TF32), so a near-tie may go the other way than on the
 * CPU; on a given GPU and software stack the result is a function of the
 * inputs. Built from kmeans_gpu.c and kmeans.cu with `make CUDA=1`; without
 * it, stub.c answers DC_STATUS_UNSUPPORTED saying how to build it.
 * Includes: dc/io.h. */
#ifndef DC_GPU_KMEANS_H
#define DC_GPU_KMEANS_H

#include "dc/io.h"

typedef struct dc_gpu_kmeans dc_gpu_kmeans;

/// A k-means E-step on CUDA device `gpu` for the n × d points of x and k
/// clusters. max_rows > 0 caps the points held on the device at once
/// (tests: the chunked path); 0: as many as fit in 3/4 of its free memory.
dc_status dc_gpu_kmeans_create(dc_gpu_kmeans **out, int gpu, dc_rows *x, int k, int64_t max_rows);
void dc_gpu_kmeans_free(dc_gpu_kmeans *g);
/// dc_kmeans_assign_rows on the device: assign (n), sums (k × d) and counts
/// (k) overwritten, *obj the objective (the distances summed in double in
/// index order on the host).
dc_status dc_gpu_kmeans_assign(dc_gpu_kmeans *g, double *obj, int32_t *assign, double *sums, int64_t *counts,
                               const float *centroids);
/// Points held on the device at once (== n when all of them fit).
int64_t dc_gpu_kmeans_resident(const dc_gpu_kmeans *g);

#endif
