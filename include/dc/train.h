/* dc/train.h — DeeperCluster training (SPEC §5). This part: one
 * optimisation step of the two-level loss on a global batch, with the
 * original's distributed gradient semantics reproduced on one process:
 *   body and super-class head: gradient of the mean over the whole batch of
 *     CE(super-class) + CE(sub-class);
 *   sub-class head s: gradient of the mean of CE(sub-class) over the
 *     samples of super-class s only.
 * Includes: dc/core.h, dc/nn.h. */
#ifndef DC_TRAIN_H
#define DC_TRAIN_H

#include "dc/cluster.h"
#include "dc/core.h"
#include "dc/data.h"
#include "dc/nn.h"

#include <stdint.h>

/* The stop flag's type, the same object seen from C and from C++. */
#ifdef __cplusplus
#include <atomic>
typedef std::atomic<int> dc_stop_flag;
#else
#include <stdatomic.h>
typedef atomic_int dc_stop_flag;
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_step_stats {
    double loss, loss_super, loss_sub; /* means over the batch            */
    int correct_super, correct_sub;    /* top-1 hits                      */
    int correct_both;                  /* both right (the original's prec) */
    int n;
} dc_step_stats;

/// Scratch of the step, allocated once for batches up to max_batch.
typedef struct dc_stepper {
    int S, k_sub, D, max_batch;
    float *h, *dh;           /* ReLU(features) and its gradient (N, D)   */
    float *ls, *ps, *dls;    /* super-class logits, probs, grad (N, S)   */
    float *lsub, *psub;      /* sub-class logits, probs (N, k_sub)       */
    float *dlsub;            /* (N, k_sub)                               */
    float *hs, *dhs;         /* one super-class's rows gathered (N, D)   */
    float *tmp;              /* (N, k_sub)                               */
    int32_t *rows;           /* sample indices grouped by super-class    */
    int32_t *start;          /* (S + 1) group boundaries in rows         */
    int32_t *tsub;           /* gathered sub targets (max(N, S))         */
    float *momentum;         /* body momentum buffer (nparams)           */
    int64_t nparams;
    int body_first;          /* body optimiser not stepped yet           */
    /* Data parallelism: NULL, or the ranks sharing each global batch (each
     * passes its own rows; losses are means over the global batch, every
     * gradient is summed over the ranks, statistics are global). */
    const struct dc_comm *comm;
    int64_t *gcount;         /* (S + 1) samples per super-class, then N, global */
    dc_status comm_status;   /* first communication failure, or DC_OK    */
    /* The gradient sums, non-blocking, in buckets of about
     * DC_GRAD_BUCKET_FLOATS: the heads', then the body's from its last
     * layer down — started as the backward finishes them (overlap = 1, the
     * default) or all after it (0); the same reductions either way, so the
     * same bits. */
    int overlap;
    struct dc_comm_req **reqs;
    int nreq, maxreq;
    int64_t issued;          /* the body's gradients [issued, nparams) started */
    float *body_grads;       /* the model's gradients, this step           */
    int in_backward;
    int64_t early;           /* buckets started inside a backward, in all  */
    /* The GPU engine's step when the model is on a GPU (else NULL): the
     * heads' weights and momentum and the body's momentum live there; the
     * host's copies are current after dc_step_sync(…, 1) only. */
    struct dc_gpu_step *gpu;
    int gpu_heads_stale;     /* the heads not uploaded yet                */
    dc_status gpu_status;    /* the first GPU failure of a step, or DC_OK */
} dc_stepper;

dc_status dc_stepper_init(dc_stepper *st, const dc_model *m, int S, int k_sub, int max_batch);
/// Makes m and st compute over a global batch split across the ranks of
/// comm (batch norm synchronised, gradients summed); this rank's rows start
/// at global index sample_offset. comm NULL or of one rank: no effect.
void dc_step_use_comm(dc_stepper *st, dc_model *m, const struct dc_comm *comm, int64_t sample_offset);
/// Gradients summed while the backward runs (1, the default) or after it
/// (0): the same sums; for measuring what the overlap hides.
void dc_step_set_overlap(dc_stepper *st, int overlap);
enum { DC_GRAD_BUCKET_FLOATS = 1 << 20 };
/// Bytes one distributed step all-reduces (each rank's payload: gradients
/// of body and heads, batch-norm sums — also to *bn_bytes when non-NULL —
/// class counts, statistics and the stop vote).
int64_t dc_step_comm_bytes(const dc_stepper *st, const dc_model *m, int64_t *bn_bytes);
void dc_stepper_free(dc_stepper *st);
/// On a GPU: the body's parameters and statistics, the heads and every
/// momentum copied to the host (to_host nonzero) — before a checkpoint or
/// reading the weights — or from it (0) — after loading them or resetting a
/// head. No-op on the CPU.
dc_status dc_step_sync(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, int to_host);
/// The host's heads were changed (re-initialised): the next step uploads
/// them (the body and its momentum stay where they are). No-op on the CPU.
void dc_step_heads_changed(dc_stepper *st);
/// DC_OK or the first failure of a step (GPU, or communication).
dc_status dc_step_status(const dc_stepper *st);

/// Forward and backward of the two-level loss on x (N inputs) with
/// super-class targets sup[i] in [0, S) and sub-class targets sub[i] in
/// [0, k_sub). Zeroes, then fills, the gradients of the body, the super
/// head and every sub head. The body runs in training mode.
void dc_step_compute(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, const float *x,
                     const int32_t *sup, const int32_t *sub, int N, dc_step_stats *stats);

/// SGD (momentum 0.9, weight decay wd, PyTorch semantics) on the body, the
/// super head and the sub heads that had samples in the last step.
void dc_step_sgd(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, float lr, float wd);

/// Output of layer `layer` (e.g. the last: the body's output) for the first
/// n images of d, in order, under the evaluation transform, into out (n,
/// dc_feature_dim); spatial outputs average-pooled to pool_side×pool_side
/// (PyTorch's adaptive pooling) when pool_side > 0; batches of
/// m->max_batch; a progress bar titled `label` (NULL: none).
dc_status dc_extract_features(float *out, dc_model *m, const dc_dataset *d, int64_t n, int layer, int pool_side,
                              const char *label);
/// As dc_extract_features for images [first, first + n) of d, into out (n rows).
dc_status dc_extract_features_range(float *out, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                                    int layer, int pool_side, const char *label);
/// As dc_extract_features_range for nl layers from one forward pass: layer
/// layers[q], pooled to pool_sides[q], into out[q].
dc_status dc_extract_features_layers(float **out, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                                     int nl, const int *layers, const int *pool_sides, const char *label);
/// As dc_extract_features for the first n images, streamed into the .npy
/// file `path` (float32, (n, dim)) `chunk` rows at a time (0: about 8 MB;
/// rounded up to whole batches, so the bits are those of one call), so the
/// features need not fit in memory. The file appears once complete
/// (atomically); on any error nothing is left.
dc_status dc_extract_features_npy(const char *path, dc_model *m, const dc_dataset *d, int64_t n, int layer,
                                  int pool_side, int64_t chunk, const char *label);
/// As dc_extract_features_npy for images [first, first + n) of d.
dc_status dc_extract_features_npy_range(const char *path, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                                        int layer, int pool_side, int64_t chunk, const char *label);
/// Values per image that dc_extract_features writes.
int64_t dc_feature_dim(const dc_model *m, int layer, int pool_side);
/// The pooling side that keeps a layer's output under max_dim values (the
/// linear-probe protocol: about 10,000), or 0 when it already fits.
int dc_feature_pool_side(const dc_model *m, int layer, int64_t max_dim);
/// The layer `name` ("final" or "convN") of m as the evaluations take it:
/// its index, the pooling side that keeps it under 10,000 values and the
/// values per image; DC_STATUS_ARG naming the layers there are otherwise.
dc_status dc_feature_layer(const dc_model *m, const char *name, int *index, int *pool_side, int64_t *dim);

/// k-means over points split across the ranks of `comm`: this rank holds
/// rows [offset, offset + n_local) of n_total. The same computation as
/// dc_kmeans_train on the concatenation (sums and counts all-reduced each
/// pass, splits decided identically everywhere, split members moved by
/// global rank). r->assign is local (n_local); centroids, counts and pass
/// statistics are global.
typedef struct dc_comm dc_comm;
dc_status dc_kmeans_train_dist(dc_kmeans_result *r, const dc_comm *comm, const float *x, int64_t n_local,
                               int64_t offset, int64_t n_total, int d, const dc_kmeans_params *p,
                               const float *init);
/// As dc_kmeans_train_dist on this rank's rows as a row source (x->n of
/// them, from global row offset): from a file a block at a time, the same
/// result.
dc_status dc_kmeans_train_dist_rows(dc_kmeans_result *r, const dc_comm *comm, dc_rows *x, int64_t offset,
                                    int64_t n_total, const dc_kmeans_params *p, const float *init);

/// Two-level k-means (as dc_hkmeans_train) across the ranks of `comm`, the
/// n rows sharded: this rank holds rows [lo, hi) in x (rank r: n·r/W to
/// n·(r+1)/W), never the others'. Level 1 runs across the ranks on their
/// rows. Level 2: with W ≥ m, in m clustering groups (ranks ≡ c mod m for
/// super-cluster c), each group rank receiving its slice of c's members by
/// an all-to-all (in rounds of at most `chunk_bytes` per rank, 0: 16 MB) and
/// the group's k-means running across them; with W < m, the super-clusters
/// c ≡ r (mod W) on rank r alone, their members sent there. Only the labels
/// come back (n × 2 int32). Every rank gets the whole result, equal to
/// dc_hkmeans_train's on the concatenation.
dc_status dc_hkmeans_train_dist(dc_hkmeans_result *r, const dc_comm *comm, const float *x, int64_t n,
                                int64_t lo, int64_t hi, int d, int m, const dc_kmeans_params *p,
                                const float *warm_super, const float *warm_sub, int64_t chunk_bytes);
/// As dc_hkmeans_train_dist with this rank's rows [lo, lo + x->n) as a row
/// source (memory or a file, read a block at a time; the members a process
/// receives at level 2 are held in memory).
dc_status dc_hkmeans_train_dist_rows(dc_hkmeans_result *r, const dc_comm *comm, dc_rows *x, int64_t n, int64_t lo,
                                     int m, const dc_kmeans_params *p, const float *warm_super, const float *warm_sub,
                                     int64_t chunk_bytes);

/// What one process of W holds and moves in a clustering of n images
/// (features of D values, whitened to dim_pca, k clusters in m
/// super-clusters), in bytes, by the code's own layout, super-clusters
/// taken as equal in size.
typedef struct dc_cluster_volume {
    int64_t features;   /* its images' features: n/W × D floats               */
    int64_t whitened;   /* their whitened rows: n/W × dim_pca                  */
    int64_t level2;     /* the members it clusters at level 2: n/W rows (W ≥ m)
                           or a super-cluster, n/m rows (W < m)                */
    int64_t labels;     /* every image's (super, sub) and k-means labels: 3n int32 */
    int64_t centroids;  /* centroids and the pass's sums: k × dim_pca × 12     */
    int64_t pca_in;     /* the PCA's sample rows it receives per pass over them
                           (min(n, D(D−1)/2) × D floats, a block at a time; 3 passes) */
    int64_t alltoall;   /* level 2: rows it sends (≤ its whitened rows)         */
    int64_t pass1, pass2; /* all-reduced per k-means pass at level 1 (all
                           processes) and level 2 (a clustering group)     */
} dc_cluster_volume;
void dc_cluster_volume_compute(dc_cluster_volume *v, int64_t n, int W, int D, int dim_pca, int k, int m);

/// A matrix of n rows sharded over `comm` as above (local: this rank's rows)
/// as a row source (dc/io.h) that hands every rank the same rows, gathered
/// from their owners: a collective — every rank reads the same rows in the
/// same order (idx ascending). What the PCA fit and exact means read.
typedef struct dc_shard {
    const dc_comm *comm;
    dc_rows *local;          /* this rank's rows: memory or a file */
    int64_t n;
    int d;
} dc_shard;
dc_status dc_rows_shard(dc_rows *r, dc_shard *s, int64_t cap);

/// The epoch's E samples of one super-class (SPEC §5): ⌊E/nonempty⌋ + 1
/// from every non-empty sub-cluster (without replacement unless it is
/// smaller than that), shuffled, cut to E. Sub-cluster j's members are
/// members[bounds[j] … bounds[j+1]); out[t] = image · k_sub + sub-cluster.
/// A function of (seed, epoch, super) only.
void dc_sample_uniform(int32_t *out, int64_t E, const int64_t *members, const int64_t *bounds, int k_sub, int64_t n,
                       uint64_t seed, uint32_t epoch, uint32_t super);

/* ------------------------------------------------------------------------ */
/* The DeeperCluster loop (SPEC §1, §4, §5)                                 */
/* ------------------------------------------------------------------------ */

typedef struct dc_train_config {
    const char *data, *labels, *out;
    const char *arch;        /* preset; NULL: from the image size           */
    const char *method;      /* deepercluster | deepcluster | rotnet        */
    int k;                   /* clusters in all (k/m per super-cluster)     */
    int super_classes;       /* S                                           */
    int rotnet;              /* rotation part of the super-class            */
    int sobel;
    double crop_min_scale;   /* RandomResizedCrop's smallest area (0: the
                                preset's; 0.08 as the original but 0.5 for
                                vgg-s32)                                     */
    int reassignment;        /* R: cluster every R epochs                   */
    int dim_pca;
    int niter;               /* k-means update passes                       */
    int warm_restart;        /* k-means from the previous centroids         */
    double lr, wd;
    const char *lr_schedule; /* constant (NULL, the original's) | cosine:
                                the rate falls as a half cosine from lr to
                                0 over the steps after the warm-up        */
    double warmup_epochs;    /* the rate rises linearly from lr/steps to lr
                                over this many epochs (0: none)           */
    int epochs;              /* 0: the preset's (6 for vgg-s32, else 10)    */
    int batch_size;          /* per super-class; 0: dc_train_default_batch  */
    int64_t epoch_size;      /* per super-class; 0: the original's N/(4m)   */
    int threads;             /* OpenMP threads for the run (0: the caller's
                                setting, by default all cores); restored
                                on return                                  */
    int workers;             /* loader threads preparing the next batch
                                during each step (0: none, batches made on
                                the --threads pool between steps)         */
    int64_t seed;
    int checkpoint_freq;     /* keep checkpoints/epoch-NNN every F epochs   */
    const char *pretrained;  /* safetensors weights to start from           */
    int max_images;          /* use the first N images only (0: all)        */
    const char *device;      /* auto (NULL), cpu, cuda, cuda:N: where the
                                network computes (dc_device_parse)       */
    const char *precision;   /* fp32 | tf32 (NULL: tf32) on a GPU         */
    int autotune;            /* GPU: time the convolution algorithms       */
    int gpu_kmeans;          /* GPU runs: the clustering's k-means E-step
                                on the training's GPU too (0: the CPU's)   */
    int64_t memory_mb;       /* the clustering's features a process holds
                                in memory at once (0: half the available
                                memory); larger ones go through scratch
                                files, with the same result                */
    const char *scratch;     /* folder for those files (NULL: the run's)   */
    int grad_overlap;        /* several processes: gradients summed while
                                the backward runs (1) or after it (0); the
                                same result                                 */
    const struct dc_comm *comm; /* the processes sharing the run (NULL:
                                this one alone): each takes a share of every
                                global batch and of the feature extraction;
                                rank 0 writes the run directory          */
    dc_stop_flag *stop;      /* polled after each step and clustering: when
                                nonzero (e.g. the signal number), a
                                checkpoint is written and the run stops with
                                DC_STATUS_INTERRUPTED; NULL: never           */
} dc_train_config;

/// Defaults for `method` (NULL: deepercluster): S, k, rotation as SPEC §1.
void dc_train_config_defaults(dc_train_config *c, const char *method);
/// The method's images per super-class in a step (DeeperCluster 16,
/// RotNet 32, DeepCluster 128: a global batch of 128) scaled to the
/// preset's default batch (vgg16: 32, so a quarter of those).
int dc_train_default_batch(const char *method, const dc_preset *p);
/// Checks every option's range (those of the program's options: epochs ≥ 0,
/// 0 < lr ≤ 100, …), fills what depends on the data (arch, batch size from
/// the preset, epoch size) and checks the options against the data: NULL,
/// or a message that says what to change. n: images; side: their size (0
/// if mixed). dc_train_run does this first.
const char *dc_train_config_resolve(dc_train_config *c, int64_t n, int side, char *buf, size_t len);

/// The learning rate of step `step` (of `steps`) of epoch `epoch`: lr,
/// after the warm-up and under the schedule (c resolved). A function of
/// the position alone, so a resumed run continues the same curve.
double dc_train_lr_at(const dc_train_config *c, int epoch, int step, int steps);

/// Runs (or resumes, when `out` holds a checkpoint) training. Returns
/// DC_STATUS_INTERRUPTED, with a checkpoint written, once *c->stop is set.
/// Installs no signal handlers: that is the program's business.
dc_status dc_train_run(dc_train_config *c);

/// Parses `deepercluster train`'s options (argv[0] is the first option,
/// e.g. "--data") into c: the defaults of --method, then every option,
/// checked as the program checks them (names, ranges, choices). A bad
/// option: DC_STATUS_ARG with the program's message. c's strings point
/// into argv.
dc_status dc_train_config_parse(dc_train_config *c, int argc, char **argv);
/// dc_train_config_parse, then dc_train_run on this process alone, stopping
/// with a checkpoint once *stop is nonzero (NULL: never). For callers that
/// do not see the C structs (the Python package's train()): the same run,
/// the same bytes, as `deepercluster train` with these options.
dc_status dc_train_main(int argc, char **argv, dc_stop_flag *stop);
/// A stop flag for dc_train_main (0), raised from any thread with the
/// reason (e.g. SIGINT's number). Free with dc_stop_flag_free.
dc_stop_flag *dc_stop_flag_new(void);
void dc_stop_flag_raise(dc_stop_flag *f, int why);
void dc_stop_flag_free(dc_stop_flag *f);

#ifdef __cplusplus
}
#endif
#endif
