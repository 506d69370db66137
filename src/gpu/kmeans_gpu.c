/* kmeans_gpu.c — k-means's E-step on the GPU (gpu_kmeans.h): the points
 * uploaded once when they fit (else a chunk at a time each pass), per pass
 * the centroids up; on the device one fp32 GEMM per block of points, the
 * nearest centroid of each point, the points stable-sorted by cluster and
 * each cluster's members summed in double in index order; back to the host
 * the assignments, the distances (summed there in index order), the sums
 * and the counts. Includes: gpu/gpu_kmeans.h, gpu/gpu_internal.h. */
#include "gpu/gpu_kmeans.h"
#include "gpu/gpu_internal.h"

#include <string.h>

#define DOTS_BYTES ((size_t)256 << 20) /* bound on one block of products */
#define MAX_BLOCK 8192                 /* rows per product block at most */

struct dc_gpu_kmeans {
    int gpu, k, d;
    int64_t n, cap, block; /* points: in all, on the device at once, per GEMM */
    int uploaded;          /* all n points are on the device */
    dc_rows *x;
    cudaStream_t s;
    cublasHandle_t blas;
    float *x_d, *xn_d, *dots_d, *c_d, *cn_d, *dist_d, *dist_h;
    int32_t *assign_d, *keys_d, *order_d, *iota_d, *start_d, *end_d;
    double *sums_d;
    int64_t *counts_d;
    void *temp_d;
    size_t temp_bytes;
    int64_t bytes;
};

int64_t dc_gpu_kmeans_resident(const dc_gpu_kmeans *g) { return g->cap; }

void dc_gpu_kmeans_free(dc_gpu_kmeans *g)
{
    if (!g) return;
    void *dev[] = {g->x_d,    g->xn_d,    g->dots_d,  g->c_d,     g->cn_d,   g->dist_d, g->assign_d, g->keys_d,
                   g->order_d, g->iota_d, g->start_d, g->end_d, g->sums_d, g->counts_d, g->temp_d};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) cudaFree(dev[i]);
    if (g->blas) cublasDestroy(g->blas);
    if (g->s) cudaStreamDestroy(g->s);
    dc_free(g->dist_h);
    dc_free(g);
}

/* Bytes on the device per point held (the points, their norms, distances,
 * clusters, sort keys, order, iota) and the sort's scratch per point. */
static size_t per_row_bytes(int d) { return (size_t)d * 4 + 4 + 4 + 4 * 4 + 16; }

static dc_status create(dc_gpu_kmeans *g, int64_t max_rows)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return dcg_cuda_error(e, "cudaGetDeviceCount");
    if (g->gpu < 0 || g->gpu >= count)
        return dc_set_error(DC_STATUS_ARG, "k-means: cuda:%d: %d CUDA device%s visible", g->gpu, count,
                            count == 1 ? " is" : "s are");
    CU(cudaSetDevice(g->gpu));
    CU(cudaStreamCreateWithFlags(&g->s, cudaStreamNonBlocking));
    BLAS(cublasCreate(&g->blas));
    BLAS(cublasSetStream(g->blas, g->s));
    BLAS(cublasSetMathMode(g->blas, CUBLAS_PEDANTIC_MATH)); /* IEEE fp32 products, no TF32 */
    size_t freeb = 0, total = 0;
    CU(cudaMemGetInfo(&freeb, &total));
    int k = g->k, d = g->d;
    size_t fixed = (size_t)k * d * (4 + 8) + (size_t)k * (4 + 8 + 4 + 4);
    size_t budget = freeb / 4 * 3;
    /* Blocks of rows by k alone (not by n or the chunk), so that a chunked
     * pass makes the products of the same shapes over the same rows as a
     * resident one — cuBLAS picks its kernel by shape — and gives its bits. */
    int64_t block = (int64_t)(DOTS_BYTES / ((size_t)k * 4));
    if (block > MAX_BLOCK) block = MAX_BLOCK;
    block = block / 32 * 32;
    if (block < 32) block = 32;
    size_t dots = (size_t)block * k * 4;
    if (fixed + dots + per_row_bytes(d) * (size_t)block >= budget)
        return dc_set_error(DC_STATUS_NOMEM,
                            "k-means on cuda:%d: %d centroids of dimension %d need %.1f GiB of its %.1f GiB free: "
                            "use fewer clusters or --device cpu",
                            g->gpu, k, d, (double)(fixed + dots) / (1 << 30), (double)freeb / (1 << 30));
    int64_t cap = (int64_t)((budget - fixed - dots) / per_row_bytes(d));
    if (cap > g->n) cap = g->n;
    if (max_rows > 0 && cap > max_rows) cap = max_rows;
    if (cap > INT32_MAX / 2) cap = INT32_MAX / 2;
    if (cap < g->n && cap >= block) cap = cap / block * block; /* chunks of whole blocks */
    if (block > cap) block = cap;
    g->cap = cap;
    g->block = block;
    K(dcg_km_sort_bytes(&g->temp_bytes, (int)cap, k));
    TRY(dcg_dmalloc(&g->x_d, (size_t)cap * d * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->xn_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->dist_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->assign_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->keys_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->order_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->iota_d, (size_t)cap * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->temp_d, g->temp_bytes, &g->bytes));
    TRY(dcg_dmalloc(&g->dots_d, (size_t)(block < g->n ? block : g->n) * k * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->c_d, (size_t)k * d * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->cn_d, (size_t)k * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->start_d, (size_t)k * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->end_d, (size_t)k * 4, &g->bytes));
    TRY(dcg_dmalloc(&g->sums_d, (size_t)k * d * 8, &g->bytes));
    TRY(dcg_dmalloc(&g->counts_d, (size_t)k * 8, &g->bytes));
    g->dist_h = dc_malloc((size_t)g->n * sizeof *g->dist_h, "k-means distances");
    if (!g->dist_h) return DC_STATUS_NOMEM;
    dc_log_debug("k-means on cuda:%d: %lld of %lld points on the device at once, %lld per product block, %.1f MiB",
                 g->gpu, (long long)cap, (long long)g->n, (long long)block, (double)g->bytes / (1 << 20));
    return DC_OK;
}

dc_status dc_gpu_kmeans_create(dc_gpu_kmeans **out, int gpu, dc_rows *x, int k, int64_t max_rows)
{
    *out = NULL;
    if (x->n < 1 || k < 1 || x->d < 1) return dc_set_error(DC_STATUS_ARG, "k-means: no points or no clusters");
    if (x->n > INT32_MAX) return dc_set_error(DC_STATUS_ARG, "k-means: more than 2^31 points per call");
    dc_gpu_kmeans *g = dc_calloc(1, sizeof *g, "GPU k-means");
    if (!g) return DC_STATUS_NOMEM;
    g->gpu = gpu;
    g->k = k;
    g->d = x->d;
    g->n = x->n;
    g->x = x;
    dc_status s = create(g, max_rows);
    if (s) {
        dc_gpu_kmeans_free(g);
        return s;
    }
    *out = g;
    return DC_OK;
}

/* Points [c0, c0 + nc) onto the device, and their squared norms. */
static dc_status upload(dc_gpu_kmeans *g, int64_t c0, int64_t nc)
{
    int d = g->d;
    if (!dc_rows_streamed(g->x)) {
        CU(cudaMemcpyAsync(g->x_d, g->x->mem + c0 * d, (size_t)nc * d * 4, cudaMemcpyHostToDevice, g->s));
    } else {
        int64_t piece = g->x->cap > 0 ? g->x->cap : nc;
        for (int64_t o = 0; o < nc; o += piece) {
            int64_t m = nc - o < piece ? nc - o : piece;
            const float *p;
            TRY(dc_rows_read(g->x, c0 + o, m, &p));
            /* the source's buffer is reused by the next read: wait for the copy */
            CU(cudaMemcpyAsync(g->x_d + (size_t)o * d, p, (size_t)m * d * 4, cudaMemcpyHostToDevice, g->s));
            CU(cudaStreamSynchronize(g->s));
        }
    }
    K(dcg_km_sqnorms(g->xn_d, g->x_d, nc, d, g->s));
    return DC_OK;
}

dc_status dc_gpu_kmeans_assign(dc_gpu_kmeans *g, double *obj, int32_t *assign, double *sums, int64_t *counts,
                               const float *centroids)
{
    int k = g->k, d = g->d;
    CU(cudaSetDevice(g->gpu));
    CU(cudaMemcpyAsync(g->c_d, centroids, (size_t)k * d * 4, cudaMemcpyHostToDevice, g->s));
    K(dcg_km_sqnorms(g->cn_d, g->c_d, k, d, g->s));
    CU(cudaMemsetAsync(g->sums_d, 0, (size_t)k * d * 8, g->s));
    CU(cudaMemsetAsync(g->counts_d, 0, (size_t)k * 8, g->s));
    const float one = 1.0f, zero = 0.0f;
    for (int64_t c0 = 0; c0 < g->n; c0 += g->cap) {
        int64_t nc = g->n - c0 < g->cap ? g->n - c0 : g->cap;
        if (!g->uploaded) {
            TRY(upload(g, c0, nc));
            g->uploaded = g->cap == g->n;
        }
        for (int64_t b0 = 0; b0 < nc; b0 += g->block) {
            int nb = (int)(nc - b0 < g->block ? nc - b0 : g->block);
            /* dots (nb, k) row-major = x_b · cᵀ: column-major (k, nb) = cᵀ(k×d) · x_b(d×nb) */
            BLAS(cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, k, nb, d, &one, g->c_d, d, g->x_d + (size_t)b0 * d,
                             d, &zero, g->dots_d, k));
            K(dcg_km_argmin(g->assign_d + b0, g->dist_d + b0, g->dots_d, g->cn_d, g->xn_d + b0, nb, k, g->s));
        }
        K(dcg_km_sort(g->keys_d, g->order_d, g->iota_d, g->assign_d, (int)nc, k, g->temp_d, g->temp_bytes, g->s));
        K(dcg_km_runs(g->start_d, g->end_d, g->keys_d, (int)nc, k, g->s));
        K(dcg_km_segsums(g->sums_d, g->counts_d, g->x_d, g->order_d, g->start_d, g->end_d, k, d, g->s));
        CU(cudaMemcpyAsync(assign + c0, g->assign_d, (size_t)nc * 4, cudaMemcpyDeviceToHost, g->s));
        CU(cudaMemcpyAsync(g->dist_h + c0, g->dist_d, (size_t)nc * 4, cudaMemcpyDeviceToHost, g->s));
    }
    CU(cudaMemcpyAsync(sums, g->sums_d, (size_t)k * d * 8, cudaMemcpyDeviceToHost, g->s));
    CU(cudaMemcpyAsync(counts, g->counts_d, (size_t)k * 8, cudaMemcpyDeviceToHost, g->s));
    CU(cudaStreamSynchronize(g->s));
    double o = 0;
    for (int64_t i = 0; i < g->n; i++) o += g->dist_h[i];
    *obj = o;
    return DC_OK;
}
