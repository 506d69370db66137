/* dc/nn.h — the convnet as data: VGG-style presets turned into a layer
 * list over flat buffers (parameters, gradients, running statistics,
 * activations), forward and backward passes, the classification heads and
 * SGD with PyTorch's semantics, and weights exchange as safetensors with
 * the original's state_dict names.
 * Includes: dc/core.h, dc/io.h, dc/kernels.h. */
#ifndef DC_NN_H
#define DC_NN_H

#include "dc/core.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_layer_kind {
    DC_LAYER_PAD,     /* constant zero padding (ConstantPad2d)        */
    DC_LAYER_CONV,    /* Conv2d with bias                              */
    DC_LAYER_BN,      /* BatchNorm2d                                   */
    DC_LAYER_RELU,
    DC_LAYER_MAXPOOL,
    DC_LAYER_AVGPOOL,
    DC_LAYER_FLATTEN, /* a view: output aliases input                  */
    DC_LAYER_LINEAR,
    DC_LAYER_DROPOUT,
} dc_layer_kind;

typedef struct dc_layer {
    dc_layer_kind kind;
    char name[40];          /* state_dict prefix: "body.features.0"       */
    int c, h, w;            /* input, per sample                           */
    int oc, oh, ow;         /* output, per sample                          */
    int k, stride, pad;
    float p;                /* dropout probability                         */
    int fixed;              /* parameters never trained (the Sobel stage)  */
    int conv_index;         /* 1-based index of the conv this ReLU follows */
    int64_t w_off, b_off;   /* into params (or `fixed`); -1 when none      */
    int64_t rm_off, rv_off; /* BN running mean / var into `stats`          */
    int bn_index;           /* BN: index into num_batches_tracked          */
    int64_t act_off;        /* output activations (max_batch · out size)   */
    int64_t cache_off;      /* BN: mean/rstd in `cache`; max-pool: arg-max
                               in `args`; dropout: mask in `masks`         */
    int blocked, in_blocked; /* output / input in the channel-blocked
                                layout when the model runs blocked (the
                                conv stack: first trained conv to flatten) */
} dc_layer;

/// Presets: "vgg16" (224 px), "vgg-s32" (28/32 px), "vgg-s64" (64 px).
typedef struct dc_preset {
    const char *name;
    int input;            /* crop size the network expects                 */
    const char *features; /* VGG cfg: channel counts and 'M'               */
    int hidden;           /* classifier width: Linear→ReLU→Dropout→Linear  */
    float dropout;
    int eval_resize;      /* evaluation transform: resize to, then crop    */
    float crop_min_scale; /* training crop's smallest area (0: 0.08)       */
    int batch;            /* default batch, training's global one and
                             evaluation's images per pass (0: 128)         */
    int epochs;           /* default training epochs                       */
} dc_preset;

/// The preset of that name, or NULL.
const dc_preset *dc_preset_find(const char *name);
/// "vgg16, vgg-s32, vgg-s64" (for messages).
const char *dc_preset_names(void);
/// The preset's default batch (its `batch`, or 128).
int dc_preset_batch(const dc_preset *p);
/// The clustering's default PCA dimension for the preset's feature vector:
/// all of it for VGG-16 (the original DeeperCluster's 4096), a sixteenth
/// for the small presets (DeepCluster's 256 of 4096; 32 for vgg-s32, whose
/// trained features are nearly low-rank — docs/results.md).
int dc_preset_dim_pca(const dc_preset *p);

/* ------------------------------------------------------------------------ */
/* Devices: where a model computes                                          */
/* ------------------------------------------------------------------------ */

/// The GPU's arithmetic: IEEE fp32 (what the parity tests use) or TF32
/// tensor cores for convolutions and GEMMs (the GPU default, as PyTorch's
/// cuDNN default). Room for bf16.
typedef enum dc_precision { DC_PRECISION_FP32 = 0, DC_PRECISION_TF32 = 1 } dc_precision;

typedef struct dc_device {
    int gpu;                /* -1: the CPU; else the CUDA device ordinal     */
    dc_precision precision; /* on a GPU                                      */
    int autotune;           /* GPU: choose each convolution's algorithm by
                               timing the deterministic ones (faster; the
                               choice, so the bits, may differ from run to
                               run) instead of cuDNN's heuristic order   */
} dc_device;

/// Parses a device ("auto" or NULL: the GPU of local_rank modulo the GPUs
/// visible, else the CPU; "cpu"; "cuda": the GPU of local_rank; "cuda:N")
/// and a precision ("fp32", "tf32"; NULL: tf32). A GPU asked for but
/// absent, or a build without CUDA, is an error saying what to do.
dc_status dc_device_parse(dc_device *d, const char *device, const char *precision, int local_rank);
/// CUDA devices visible to this build (0 without CUDA).
int dc_device_gpu_count(void);
/// "cpu", or "cuda:0: NVIDIA H200 (sm_90, …; cuDNN 9.14.0, …)".
const char *dc_device_describe(const dc_device *d, char *buf, size_t n);
/// This process's rank among those of its node under mpirun or srun
/// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID), else 0.
int dc_device_local_rank(void);
/// "fp32" or "tf32".
const char *dc_precision_name(dc_precision p);

struct dc_gpu_model;

typedef struct dc_model {
    const dc_preset *preset;
    int sobel, in_c, in_size, feat_dim, max_batch;
    int nlayers;
    dc_layer *layers;
    float *params, *grads;   /* trainable, one flat layout              */
    int64_t nparams;
    float *fixed;            /* Sobel weights and biases                */
    int64_t nfixed;
    float *stats;            /* BN running mean and var                 */
    int64_t nstats;
    int64_t *nbt;            /* BN num_batches_tracked, per BN layer    */
    int nbn;
    float *acts;             /* every layer's output                    */
    int64_t nacts;
    float *cache;            /* BN batch mean and rstd                  */
    int64_t ncache;
    int32_t *args;           /* max-pool arg-max indices                */
    int64_t nargs;
    uint8_t *masks;          /* dropout masks                           */
    int64_t nmasks;
    float *grad_a, *grad_b;  /* ping-pong activation gradients          */
    int64_t ngrad;
    float *work;             /* convolution workspace                   */
    int64_t nwork;
    float *dwork;            /* chunked weight-gradient scratch         */
    int64_t ndwork;
    double *bn_tmp;          /* 2·max channels of double sums           */
    /* The conv stack on oneDNN's primitives over channel-blocked
     * activations (see dc/kernels.h); blocked = 0: NCHW kernels. */
    int blocked;
    struct dc_dnnl_conv **convs; /* per layer, NULL but for trained convs */
    float *view;             /* NCHW copy for dc_model_layer_output     */
    int64_t nview;
    int batch;               /* N of the last forward                   */
    int train;               /* mode of the last forward                */
    const float *input;      /* borrowed input of the last forward      */
    uint64_t dropout_seed;
    uint64_t step;           /* advanced by each training forward       */
    /* Data parallelism (NULL / 0 on one process): `reduce` sums n doubles
     * over every process sharing the global batch, in place; training-mode
     * batch norm then uses the global batch's statistics (forward) and
     * their gradients (backward), and dropout keys its masks by the global
     * index of each sample, sample_offset being that of this process's
     * first. Parameter gradients stay local (the caller sums them). */
    void (*reduce)(void *ctx, double *buf, int n);
    void *reduce_ctx;
    /* Called (when set) during the CPU backward each time the gradients of
     * the parameters [first, nparams) are final — after each layer with
     * parameters, first decreasing — so that a caller can start summing them
     * over the processes while the rest of the backward runs. */
    void (*grad_ready)(void *ctx, int64_t first);
    void *grad_ctx;
    int64_t sample_offset;
    int64_t global_batch;    /* N over all processes, last forward      */
    /* The GPU engine (NULL: the CPU). Then the device owns the parameters
     * and statistics while it trains (dc_model_sync), activations live on
     * it only, and the host's activation buffers are not allocated. */
    struct dc_gpu_model *gpu;
    dc_device device;
    dc_status gpu_status;    /* the first GPU failure (sticky), or DC_OK */
} dc_model;

/// Builds a model for `preset`, input channels `in_c` (1 or 3) and batches
/// up to max_batch (0: the preset's default, dc_preset_batch); every buffer
/// is allocated here, none in a step.
/// Parameters are initialised as SPEC §2 from (seed, DC_RNG_STREAM_INIT).
dc_status dc_model_init(dc_model *m, const char *preset, int sobel, int in_c, int max_batch,
                        uint64_t seed);
/// As dc_model_init from a spec that need not be a preset (tests, experiments).
dc_status dc_model_init_spec(dc_model *m, const dc_preset *spec, int sobel, int in_c, int max_batch,
                             uint64_t seed);
void dc_model_free(dc_model *m);
/// As dc_model_init_spec on device d (NULL or the CPU: the same): on a GPU
/// only the parameters and statistics are allocated on the host, and a
/// batch larger than the GPU's free memory is refused naming the largest
/// that fits.
dc_status dc_model_init_device(dc_model *m, const dc_preset *spec, int sobel, int in_c, int max_batch, uint64_t seed,
                               const dc_device *d);
/// Whether (p, sobel, in_c) for batches of max_batch fits the free memory
/// of d's GPU (DC_OK on the CPU): checked before anything is allocated or
/// written; DC_STATUS_NOMEM names the largest batch that fits. Building the
/// model checks again, the convolution workspace included.
dc_status dc_model_device_fit(const dc_preset *p, int sobel, int in_c, int max_batch, const dc_device *d);
/// Moves a model (e.g. from dc_model_load_file) onto device d: its
/// parameters uploaded, its host activation buffers freed. d on the CPU: no
/// change.
dc_status dc_model_use_device(dc_model *m, const dc_device *d);
/// On a GPU: parameters, Sobel weights and running statistics copied to
/// the host (to_host nonzero; gradients too), or the host's copied to the
/// device. No-op on the CPU.
dc_status dc_model_sync(dc_model *m, int to_host);
/// On a GPU: page-locks host memory that feeds the model (a batch buffer)
/// so its copies run at full speed; unpin before freeing it. No-op on the
/// CPU; a failure to pin only leaves copies slower.
void dc_model_pin_host(const dc_model *m, void *p, size_t bytes);
void dc_model_unpin_host(const dc_model *m, void *p);
/// Bytes of GPU memory the model holds (0 on the CPU).
int64_t dc_model_device_bytes(const dc_model *m);
/// DC_OK, or the first GPU failure since the model was made (the forward
/// and backward calls cannot return one), with the error message set.
dc_status dc_model_status(const dc_model *m);
/* Both refuse, with DC_STATUS_NOMEM and a message naming the batch that
 * fits, a model whose buffers exceed dc_memory_total(): every buffer is
 * filled at once, and an over-large one would get the process killed. */

/// The memory a model of (p, sobel, in_c) fills, as `fixed` bytes plus
/// `per_image` bytes per image of max_batch; nothing allocated.
dc_status dc_model_memory(const dc_preset *p, int sobel, int in_c, int64_t *fixed, int64_t *per_image);
/// The largest max_batch whose model fits in `budget` bytes (0: none).
int dc_model_fit_batch(int64_t fixed, int64_t per_image, int64_t budget);

/// Forward modes beyond 0 (evaluation: running statistics, no dropout) and
/// 1 (training: batch statistics, dropout): dropout over a body whose batch
/// norms use their running statistics (fine-tuning the classifier of a
/// frozen body), and neither with a backward still allowed (parity tests).
/// Both are CPU-only and back-propagate only above the last batch norm.
#define DC_FORWARD_DROPOUT 2
#define DC_FORWARD_FROZEN 3

/// Forward of N ≤ max_batch inputs (N, in_c, input, input); `train`
/// selects batch statistics and dropout (0, 1 or a mode above). Returns the
/// body's output (N, feat_dim), owned by the model, valid until the next
/// forward.
const float *dc_model_forward(dc_model *m, const float *in, int N, int train);
/// Backward of the last (training) forward: dout (N, feat_dim); gradients
/// accumulate into m->grads.
void dc_model_backward(dc_model *m, const float *dout);
/// As dc_model_backward through layers from … nlayers−1 only: no gradient
/// below layer `from` (the parameters of layers before it get none).
void dc_model_backward_from(dc_model *m, const float *dout, int from);
void dc_model_zero_grad(dc_model *m);
/// Output of layer i for the last forward (N, oc, oh, ow), always NCHW
/// (converted into a model-owned buffer, valid until the next call).
const float *dc_model_layer_output(dc_model *m, int i);
/// Runs the conv stack on the NCHW kernels (on = 0) or, when built with
/// oneDNN, on its primitives (on = 1, the default). Returns the mode in use.
int dc_model_set_blocked(dc_model *m, int on);
/// Index of the ReLU after the j-th conv (1-based, Sobel excluded), or -1.
int dc_model_conv_relu(const dc_model *m, int j);
/// Number of trainable convs.
int dc_model_nconv(const dc_model *m);

/// Named tensors of the model in state_dict order (weights, biases, BN
/// running stats and num_batches_tracked, Sobel): written to / read from a
/// safetensors writer or file. Load checks every name and shape.
typedef struct dc_st_writer dc_st_writer;
typedef struct dc_st_file dc_st_file;
void dc_model_add_tensors(const dc_model *m, dc_st_writer *w);
dc_status dc_model_load_tensors(dc_model *m, const dc_st_file *f);
/// A model built from a weights file (safetensors, as `train` writes or
/// tools/convert_pytorch.py converts): the architecture from its "arch"
/// metadata, else the preset whose names and shapes the tensors match;
/// Sobel when the file has the Sobel stage. Input channels in_c, batches
/// up to max_batch (0: the preset's default).
dc_status dc_model_load_file(dc_model *m, const char *path, int in_c, int max_batch);
/// A model from what `weights` names: a run directory (its
/// checkpoint.safetensors; the directory's path to run_dir when non-NULL,
/// else run_dir[0] = 0), a safetensors file, or random:<preset> (then
/// sobel_random and seed apply); input channels in_c, batches up to batch
/// (0: the preset's); then on `device` (auto, cpu, cuda, cuda:N; NULL:
/// auto) with `precision` (NULL: tf32). Free with dc_model_free.
dc_status dc_model_open(dc_model *m, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                        const char *device, const char *precision, char *run_dir, size_t run_len);
/// Index of the layer named `name` — "final" (the body's output) or "convN"
/// (the ReLU after the N-th trained conv) — or -1 with the error set.
int dc_model_layer_find(const dc_model *m, const char *name);

/* ------------------------------------------------------------------------ */
/* Heads and SGD                                                            */
/* ------------------------------------------------------------------------ */

/// A linear layer with its own gradients and optimiser state.
typedef struct dc_head {
    int in, out;
    float *w, *b;       /* (out, in), (out)                      */
    float *dw, *db;
    float *mw, *mb;     /* momentum buffers                      */
    int has_momentum;   /* 0 until the first step                */
} dc_head;

/// PyTorch Linear default initialisation: U(±1/sqrt(in)) for w and b,
/// drawn from (seed, DC_RNG_STREAM_INIT, a, b).
dc_status dc_head_init(dc_head *h, int in, int out, uint64_t seed, uint32_t a, uint32_t b);
/// Re-initialises weights and clears momentum (SPEC §4.7).
void dc_head_reset(dc_head *h, uint64_t seed, uint32_t a, uint32_t b);
void dc_head_free(dc_head *h);

/// SGD step, PyTorch semantics: g += wd·p; v = g on the first step, else
/// v = momentum·v + g; p −= lr·v.
void dc_sgd_step(float *p, const float *g, float *v, int64_t n, float lr, float momentum,
                 float wd, int first);

#ifdef __cplusplus
}
#endif
#endif
