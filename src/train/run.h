/* run.h — the trainer's shared state, private to src/train: one run's
 * options, data, network, heads, clustering and batches (run_state), its
 * progress (progress_state), and the functions the trainer's files offer
 * each other. The files, by concern:
 *   config.c        defaults, resolution against the data, range checks
 *   rundir.c        the run directory: paths, config.json, checkpoints
 *                   (save, load, fingerprint), resume notes, skipped.tsv
 *   cluster_step.c  the clustering step (SPEC §4) and the sampler's groups
 *   epoch.c         batches, the loader, one epoch of steps (SPEC §5), stops
 *   loop.c          the run: buffers, memory checks, the network, epochs
 * Includes: dc/train.h, dc/cluster.h, dc/comm.h, dc/io.h, dc/kernels.h. */
#ifndef DC_TRAIN_RUN_H
#define DC_TRAIN_RUN_H

#include "dc/cluster.h"
#include "dc/comm.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "dc/train.h"

typedef struct {
    dc_train_config *c;
    const dc_dataset *d;
    int64_t n;
    int S, m, k_sub, B, C, size;
    dc_model model;
    dc_head sup;
    dc_head *subs;
    dc_stepper st;
    int32_t *assign;      /* (n, 2): super-cluster, sub-cluster          */
    int assign_epoch;     /* epoch of the clustering in use, -1: none     */
    int64_t *members;     /* image indices grouped by (super, sub)        */
    int64_t *mstart;      /* (m·k_sub + 1) group boundaries               */
    int32_t **lists;      /* per super-class: the epoch's samples          */
    float *batch;         /* 2 slots of (rows, C, size, size): the step's
                             batch and, with loader workers, the next    */
    int32_t *tsup, *tsub; /* 2 slots of (rows)                            */
    size_t slot_floats;   /* floats per batch slot                        */
    dc_loader *loader;    /* NULL: batches made between steps             */
    int cur_epoch;        /* the epoch the loader's jobs belong to        */
    float *tmp;           /* per-thread transform scratch                 */
    size_t tmpn;
    dc_image_buf *bufs;   /* per-thread decoding buffers                  */
    int nth;
    float *cent_super, *cent_sub; /* previous centroids (warm restart)    */
    int have_cent;
    double nmi_prev;      /* of the last clustering, NAN before a second */
    int rank, W;          /* this process among the run's                  */
    int lo, hi;           /* its rows of each global batch (S·B)           */
    dc_device dev;        /* where the network computes                     */
    char path[4096];
} run_state;

typedef struct {
    int epoch, step;           /* next to run                                */
    double sums[7];            /* partial epoch: loss, super, sub, hits ×3, n */
    double seconds;
} progress_state;

/* config.c */
/// NULL, or why an option is out of range (into buf).
const char *dc_run_check_ranges(const dc_train_config *c, char *buf, size_t len);

/* rundir.c */
/// RUN/name, in r->path (valid until the next call).
const char *dc_run_path(run_state *r, const char *name);
dc_status dc_run_ensure_dir(const char *p);
/// The checkpoint (weights, heads, momentum, counters) into `path` (rank 0).
dc_status dc_run_save_checkpoint(run_state *r, const progress_state *ps, const char *path);
/// RUN/checkpoint.safetensors and RUN/checkpoint.json.
dc_status dc_run_write_checkpoint(run_state *r, const progress_state *ps);
dc_status dc_run_write_config(run_state *r);
/// A resumed run's changed options: logged, in stats.jsonl, config.json.
dc_status dc_run_note_resume(run_state *r, const progress_state *ps);
/// The run's checkpoint (*resumed = 1), else --pretrained, else as it is.
dc_status dc_run_start_state(run_state *r, progress_state *ps, int *resumed);
dc_status dc_run_write_skipped(run_state *r);

/* cluster_step.c */
/// Image i's cluster as one index over all k: super · k/m + sub.
int32_t dc_run_flat_cluster(const run_state *r, int64_t i);
/// Groups images by (super, sub) cluster for the sampler.
void dc_run_build_groups(run_state *r);
/// Features, PCA-whitening, two-level k-means, assignments; heads reset.
/// What the clustering's features may hold in memory in this process (more
/// go through scratch files): --memory-mb, else half the memory available
/// now, else 4 GB.
int64_t dc_run_feature_budget(const dc_train_config *c);
dc_status dc_run_cluster_step(run_state *r, int epoch);

/* epoch.c */
/// Whether any rank was asked to stop (the signal number), agreed by all.
int dc_run_stop_agreed(const dc_train_config *c);
/// The loader's job: row `row` of batch slot `slot`.
dc_status dc_run_loader_row(void *ctx, int slot, int64_t job, int row, int worker);
/// The rest of epoch ps->epoch, from step ps->step; a stop writes a checkpoint.
dc_status dc_run_train_epoch(run_state *r, progress_state *ps);

#endif
