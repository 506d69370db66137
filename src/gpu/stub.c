/* stub.c — the GPU engine's entry points in a build without CUDA: no
 * device is visible, and asking for one says how to build it.
 * Includes: gpu/gpu.h. */
#include "gpu/gpu.h"
#include "gpu/gpu_kmeans.h"

/* the stubs take the real signatures and use none of them */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static dc_status no_cuda(void)
{
    return dc_set_error(DC_STATUS_UNSUPPORTED,
                        "this build has no GPU engine: rebuild with `make CUDA=1` (CUDA 12 or later with cuDNN 9 and "
                        "cuBLAS), or run with --device cpu");
}

int dc_gpu_count(void) { return 0; }

dc_status dc_gpu_describe(int device, char *buf, size_t n)
{
    (void)device;
    if (n) buf[0] = '\0';
    return no_cuda();
}

dc_status dc_gpu_model_create(dc_gpu_model **out, dc_model *m, const dc_device *d)
{
    (void)m;
    (void)d;
    *out = NULL;
    return no_cuda();
}

void dc_gpu_model_free(dc_gpu_model *g) { DC_ASSERT(g == NULL); }

dc_status dc_gpu_check_fit(const dc_model *m, const dc_device *d) { return no_cuda(); }

/* The rest need a model that only dc_gpu_model_create makes. */
#define NEVER(...)                                                                                                \
    {                                                                                                             \
        DC_ASSERT(!"GPU engine call without a GPU model");                                                        \
        return DC_STATUS_INTERNAL;                                                                                \
    }

dc_status dc_gpu_model_sync(dc_gpu_model *g, dc_model *m, int to_host) NEVER()
dc_status dc_gpu_forward(dc_gpu_model *g, dc_model *m, const float *in, int N, int train) NEVER()
dc_status dc_gpu_layer_output(dc_gpu_model *g, const dc_model *m, int i, float *out) NEVER()
dc_status dc_gpu_backward_host(dc_gpu_model *g, dc_model *m, const float *dout, int from) NEVER()
dc_status dc_gpu_zero_grad(dc_gpu_model *g, const dc_model *m) NEVER()
dc_status dc_gpu_grad_sumsq(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, double *out) NEVER()
dc_status dc_gpu_grad_scale(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float a) NEVER()
dc_status dc_gpu_sgd(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float lr, float momentum, float wd,
                     int first) NEVER()
dc_status dc_gpu_momentum_sync(dc_gpu_model *g, const dc_model *m, float *host, int to_host) NEVER()
int64_t dc_gpu_model_bytes(const dc_gpu_model *g) NEVER()
void dc_gpu_model_log_algos(const dc_gpu_model *g, const dc_model *m) { DC_ASSERT(!"no GPU model"); (void)g; (void)m; }
dc_status dc_gpu_step_create(dc_gpu_step **out, dc_gpu_model *g, const dc_stepper *st) NEVER()
void dc_gpu_step_free(dc_gpu_step *gs) { DC_ASSERT(gs == NULL); }
dc_status dc_gpu_step_sync(dc_gpu_step *gs, dc_stepper *st, dc_head *sup, dc_head *subs, int to_host, int what) NEVER()
dc_status dc_gpu_step_compute(dc_gpu_step *gs, dc_stepper *st, dc_model *m, const dc_head *sup, const dc_head *subs,
                              const float *x, const int32_t *sup_t, const int32_t *sub_t, int N,
                              dc_step_stats *stats) NEVER()
dc_status dc_gpu_step_sgd(dc_gpu_step *gs, dc_stepper *st, dc_model *m, dc_head *sup, dc_head *subs, float lr,
                          float wd) NEVER()
dc_status dc_gpu_sync(dc_gpu_model *g) NEVER()
dc_status dc_gpu_pin(void *p, size_t bytes) { return DC_OK; }
void dc_gpu_unpin(void *p) {}
dc_status dc_gpu_forward_resident(dc_gpu_model *g, dc_model *m, int N, int train) NEVER()

/* gpu_kmeans.h */
dc_status dc_gpu_kmeans_create(dc_gpu_kmeans **out, int gpu, dc_rows *x, int k, int64_t max_rows)
{
    *out = NULL;
    return no_cuda();
}
void dc_gpu_kmeans_free(dc_gpu_kmeans *g) { DC_ASSERT(g == NULL); }
dc_status dc_gpu_kmeans_assign(dc_gpu_kmeans *g, double *obj, int32_t *assign, double *sums, int64_t *counts,
                               const float *centroids) NEVER()
int64_t dc_gpu_kmeans_resident(const dc_gpu_kmeans *g) NEVER()
