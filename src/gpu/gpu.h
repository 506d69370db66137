/* gpu.h — the GPU engine behind the model and the training step, as seen
 * from nn/ and train/: opaque handles, host pointers and dc_status, no CUDA
 * type. Built from gpu.c (cuDNN, cuBLAS, the CUDA runtime) and kernels.cu
 * with `make CUDA=1`; without it, stub.c answers every call with
 * DC_STATUS_UNSUPPORTED and a message saying how to build it.
 *
 * The device mirrors the host model's flat buffers (parameters, gradients,
 * running statistics, activations at the host's offsets) in NCHW, so a
 * synchronisation is one copy each way. The device owns the parameters
 * while it trains: dc_model_sync copies them back (checkpoints, weights),
 * and the host's edits go the other way with the same call.
 * Includes: dc/nn.h, dc/train.h. */
#ifndef DC_GPU_GPU_H
#define DC_GPU_GPU_H

#include "dc/nn.h"
#include "dc/train.h"

typedef struct dc_gpu_model dc_gpu_model;
typedef struct dc_gpu_step dc_gpu_step;

/// CUDA devices visible (0 without CUDA or a driver; never fails).
int dc_gpu_count(void);
/// "NVIDIA H200 (sm_90, 139.8 GiB; driver 13.0, runtime 13.0, cuDNN 9.14.0,
/// cuBLAS 13.1.0)" into buf, or the reason there is none (returns status).
dc_status dc_gpu_describe(int device, char *buf, size_t n);

/// The device model of m on d (d->gpu ≥ 0): plans every buffer, refuses a
/// batch that does not fit (naming the largest that does), chooses the
/// convolution algorithms and uploads m's parameters and statistics.
dc_status dc_gpu_model_create(dc_gpu_model **out, dc_model *m, const dc_device *d);
void dc_gpu_model_free(dc_gpu_model *g);
/// Whether a model planned for m->max_batch (its layers; no buffers) fits
/// the free memory of d's GPU, the convolution workspace aside: DC_OK, or
/// DC_STATUS_NOMEM naming the largest batch that does.
dc_status dc_gpu_check_fit(const dc_model *m, const dc_device *d);
/// Parameters, fixed weights and running statistics: host → device
/// (to_host 0) or device → host (1; the gradients too).
dc_status dc_gpu_model_sync(dc_gpu_model *g, dc_model *m, int to_host);
/// Forward of N host images (m's semantics; train as dc_model_forward's:
/// 0, 1, DC_FORWARD_DROPOUT or DC_FORWARD_FROZEN); the output stays on the
/// device.
dc_status dc_gpu_forward(dc_gpu_model *g, dc_model *m, const float *in, int N, int train);
/// Forward again on the input already on the device (benchmarks).
dc_status dc_gpu_forward_resident(dc_gpu_model *g, dc_model *m, int N, int train);
/// Layer i's output of the last forward, (N, oc, oh, ow) NCHW, into host out.
dc_status dc_gpu_layer_output(dc_gpu_model *g, const dc_model *m, int i, float *out);
/// Backward from host dout, the gradient of the body's output, down to
/// layer `from` (0: the first trained layer; the first Linear: the
/// classifier alone, as fine-tuning's classifier mode): gradients added
/// into the device's `grads`.
dc_status dc_gpu_backward_host(dc_gpu_model *g, dc_model *m, const float *dout, int from);
dc_status dc_gpu_zero_grad(dc_gpu_model *g, const dc_model *m);
/// Waits for the device's queued work (timing).
dc_status dc_gpu_sync(dc_gpu_model *g);
/// Page-locks host memory for fast, asynchronous copies (the loader's
/// batches), and undoes it.
dc_status dc_gpu_pin(void *p, size_t bytes);
void dc_gpu_unpin(void *p);
/// Bytes of device memory the model holds; the convolution algorithms
/// chosen, one line per conv ("conv body.features.0: fwd 1 bwd-data 1 …").
int64_t dc_gpu_model_bytes(const dc_gpu_model *g);
void dc_gpu_model_log_algos(const dc_gpu_model *g, const dc_model *m);

/* Fine-tuning's optimiser on the device (eval/finetune.c): ranges [off,
 * off + n) of the flat parameters and gradients; the momentum of every
 * parameter in a device buffer made (zeroed) on first use. */
/// Σ grads² over the range in double, into *out (waits for the device).
dc_status dc_gpu_grad_sumsq(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, double *out);
/// grads[range] *= a.
dc_status dc_gpu_grad_scale(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float a);
/// Momentum SGD with weight decay on the range, as dc_sgd_step (first: the
/// momentum starts as the gradient).
dc_status dc_gpu_sgd(dc_gpu_model *g, const dc_model *m, int64_t off, int64_t n, float lr, float momentum, float wd,
                     int first);
/// The momentum (m->nparams floats): host → device (to_host 0) or back.
dc_status dc_gpu_momentum_sync(dc_gpu_model *g, const dc_model *m, float *host, int to_host);

/// The training step on the device: heads, momentum and the two-level loss.
dc_status dc_gpu_step_create(dc_gpu_step **out, dc_gpu_model *g, const dc_stepper *st);
void dc_gpu_step_free(dc_gpu_step *gs);
/// What dc_gpu_step_sync copies: the heads (weights and momentum; back to
/// the host their gradients too) and the body's momentum.
enum { DC_GPU_HEADS = 1, DC_GPU_MOMENTUM = 2 };
/// host → device (to_host 0) or back (1).
dc_status dc_gpu_step_sync(dc_gpu_step *gs, dc_stepper *st, dc_head *sup, dc_head *subs, int to_host, int what);
/// dc_step_compute on the device (st's grouping computed on the host).
dc_status dc_gpu_step_compute(dc_gpu_step *gs, dc_stepper *st, dc_model *m, const dc_head *sup, const dc_head *subs,
                              const float *x, const int32_t *sup_t, const int32_t *sub_t, int N, dc_step_stats *stats);
/// dc_step_sgd on the device.
dc_status dc_gpu_step_sgd(dc_gpu_step *gs, dc_stepper *st, dc_model *m, dc_head *sup, dc_head *subs, float lr,
                          float wd);

#endif
