/* loop.c — the DeeperCluster training loop (SPEC §1, §4, §5; the original's
 * main.py): every R epochs, features of every image under the clustering
 * transform, PCA-whitening + L2, two-level k-means, heads reset; between
 * them, epochs of uniform sampling over pseudo-labels per super-class and
 * SGD on the two-level loss. This file: the run's buffers, the memory it
 * needs (refused before anything is written), the network on its device,
 * the epochs and checkpoints in order. A run resumes from its checkpoint,
 * mid-epoch included, and SIGINT/SIGTERM write one before stopping; every
 * random draw is keyed by (seed, epoch, position), so a resumed run
 * computes what an uninterrupted one does. The other concerns: run.h.
 * Includes: train/run.h (dc/train.h, dc/cluster.h, dc/comm.h, dc/io.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static void run_free(run_state *r)
{
    dc_loader_stop(r->loader);
    dc_model_unpin_host(&r->model, r->batch);
    dc_model_free(&r->model);
    dc_head_free(&r->sup);
    for (int s = 0; s < r->S && r->subs; s++) dc_head_free(&r->subs[s]);
    dc_free(r->subs);
    dc_stepper_free(&r->st);
    dc_free(r->assign);
    dc_free(r->members);
    dc_free(r->mstart);
    for (int s = 0; s < r->S && r->lists; s++) dc_free(r->lists[s]);
    dc_free(r->lists);
    dc_free(r->batch);
    dc_free(r->tsup);
    dc_free(r->tsub);
    dc_free(r->tmp);
    for (int t = 0; t < r->nth && r->bufs; t++) dc_image_buf_free(&r->bufs[t]);
    dc_free(r->bufs);
    dc_free(r->cent_super);
    dc_free(r->cent_sub);
}

/* The run's buffers, allocated once: scratch per thread or loader worker,
 * assignments and cluster lists, the two batch slots, centroids. */
static dc_status run_buffers(run_state *r, int GB, int max_side)
{
    const dc_train_config *c = r->c;
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    if (c->workers > nth) nth = c->workers;
    r->tmpn = dc_transform_tmp_size(r->size, r->model.preset->eval_resize, 2 * max_side + 64, r->C);
    r->nth = nth;
    r->bufs = dc_xcalloc((size_t)nth, sizeof *r->bufs);
    r->assign = dc_calloc((size_t)r->n * 2, sizeof(int32_t), "assignments");
    r->members = dc_malloc((size_t)r->n * sizeof(int64_t), "cluster members");
    r->mstart = dc_calloc((size_t)c->k + 1, sizeof(int64_t), "cluster bounds");
    r->lists = dc_xcalloc((size_t)r->S, sizeof *r->lists);
    for (int q = 0; q < r->S; q++) r->lists[q] = dc_xmalloc((size_t)c->epoch_size * sizeof(int32_t));
    r->slot_floats = (size_t)GB * r->C * r->size * r->size;
    r->batch = dc_malloc(2 * r->slot_floats * sizeof(float), "batch");
    r->tsup = dc_malloc(2 * (size_t)GB * sizeof(int32_t), "targets");
    r->tsub = dc_malloc(2 * (size_t)GB * sizeof(int32_t), "targets");
    r->tmp = dc_malloc((size_t)nth * r->tmpn * sizeof(float), "transform scratch");
    r->cent_super = dc_calloc((size_t)r->m * c->dim_pca, sizeof(float), "centroids");
    r->cent_sub = dc_calloc((size_t)c->k * c->dim_pca, sizeof(float), "centroids");
    if (!r->assign || !r->members || !r->mstart || !r->batch || !r->tsup || !r->tsub || !r->tmp || !r->cent_super ||
        !r->cent_sub)
        return DC_STATUS_NOMEM;
    return DC_OK;
}

/* The run's shape from the resolved options: super-classes, clusters,
 * this rank's rows of each global batch. */
static dc_status run_init(run_state *r, dc_train_config *c, dc_dataset *d, int64_t n)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    r->d = d;
    r->n = n;
    r->S = c->super_classes;
    r->m = c->rotnet ? r->S / 4 : r->S;
    r->k_sub = c->k / r->m;
    r->B = c->batch_size;
    r->C = dc_dataset_channels(d);
    r->assign_epoch = -1;
    r->nmi_prev = NAN;
    r->W = c->comm ? dc_comm_size(c->comm) : 1;
    r->rank = c->comm ? dc_comm_rank(c->comm) : 0;
    if (r->W > r->S * r->B)
        return dc_set_error(DC_STATUS_ARG, "%d processes for a global batch of %d images: use at most %d", r->W,
                            r->S * r->B, r->S * r->B);
    r->lo = (int)((int64_t)r->S * r->B * r->rank / r->W);
    r->hi = (int)((int64_t)r->S * r->B * (r->rank + 1) / r->W);
    return DC_OK;
}

/* Refuses, before any buffer is filled, a run this machine cannot hold:
 * the network for this rank's share of the global batch, and the
 * clustering's features (raw and whitened) of this rank's images that it
 * keeps in memory (on one process, those over dc_run_feature_budget go to
 * scratch files). */
static dc_status check_memory(const run_state *r)
{
    const dc_train_config *c = r->c;
    int64_t have = dc_memory_budget(), fixed, per;
    const dc_preset *p = dc_preset_find(c->arch);
    int rows = r->hi - r->lo;
    dc_status s = dc_model_device_fit(p, c->sobel, r->C, rows, &r->dev);
    if (s) {
        char why[600];
        snprintf(why, sizeof why, "%s", dc_last_error());
        return dc_set_error(s, "%s (each step holds --batch-size %d x %d super-classes%s)", why, r->B, r->S,
                            r->W > 1 ? ", shared by the processes" : "");
    }
    s = dc_model_memory(p, c->sobel, r->C, &fixed, &per);
    if (s || have <= 0) return s;
    /* each process holds its own images' features only */
    int64_t mine = r->n * (r->rank + 1) / r->W - r->n * r->rank / r->W;
    int64_t raw = mine * (int64_t)p->hidden * (int64_t)sizeof(float), white = mine * (int64_t)c->dim_pca * 4;
    if (r->W == 1) { /* over the budget, they go through scratch files */
        int64_t b = dc_run_feature_budget(c);
        if (raw > b) raw = 0;
        if (white > b) white = 0;
    }
    int64_t feats = raw + white;
    int64_t net = r->dev.gpu >= 0 ? 0 : fixed + per * rows; /* on a GPU, its memory: just checked */
    if (net + feats <= have) return DC_OK;
    int64_t fit = (int64_t)dc_model_fit_batch(fixed + feats, per, have) * r->W / r->S;
    char advice[160];
    if (fit >= 1)
        snprintf(advice, sizeof advice, "use --batch-size %lld or less", (long long)fit);
    else
        snprintf(advice, sizeof advice, "not even --batch-size 1 fits: use fewer images (--max-images)%s",
                 strcmp(c->arch, "vgg-s32") ? " or a smaller --arch" : "");
    const double G = 1073741824.0;
    return dc_set_error(DC_STATUS_ARG,
                        "%s with --batch-size %d (%d images per step%s) needs about %.1f GiB of memory (%.1f for "
                        "the network, %.1f for the clustering's features of %lld images), more than the %.1f GiB "
                        "this machine allows: %s",
                        c->arch, r->B, rows, r->W > 1 ? " in this process" : "", (net + feats) / G, net / G,
                        feats / G, (long long)mine, have / G, advice);
}

/* Network, heads, optimiser and the step's buffers, sized for this rank's
 * share of the global batch; d (the run's dataset) learns the decode size. */
static dc_status build_network(run_state *r, dc_dataset *d)
{
    dc_train_config *c = r->c;
    int GB = r->hi - r->lo;
    r->dev.autotune = c->autotune;
    dc_status s = dc_model_init_device(&r->model, dc_preset_find(c->arch), c->sobel, r->C, GB, (uint64_t)c->seed,
                                       &r->dev);
    if (s == DC_OK && r->dev.gpu >= 0) {
        char buf[512];
        dc_log_info("device %s, %s, %s convolution algorithms; %.2f GiB of GPU memory for the network",
                    dc_device_describe(&r->dev, buf, sizeof buf), dc_precision_name(r->dev.precision),
                    r->dev.autotune ? "timed" : "heuristic (deterministic)",
                    dc_model_device_bytes(&r->model) / 1073741824.0);
    }
    r->size = r->model.in_size;
    int D = r->model.feat_dim;
    if (s == DC_OK) s = dc_head_init(&r->sup, D, r->S, (uint64_t)c->seed, 999, 0);
    r->subs = dc_xcalloc((size_t)r->S, sizeof *r->subs);
    for (int q = 0; q < r->S && s == DC_OK; q++)
        s = dc_head_init(&r->subs[q], D, r->k_sub, (uint64_t)c->seed, 999, 1u + (uint32_t)q);
    if (s == DC_OK) s = dc_stepper_init(&r->st, &r->model, r->S, r->k_sub, GB);
    if (s == DC_OK) dc_step_use_comm(&r->st, &r->model, c->comm, r->lo);
    if (s == DC_OK) dc_step_set_overlap(&r->st, c->grad_overlap);
    if (r->W > 1 && s == DC_OK) {
        int64_t bn, all = dc_step_comm_bytes(&r->st, &r->model, &bn);
        dc_log_info("%d processes: this one takes rows %d..%d of each global batch of %d", r->W, r->lo, r->hi - 1,
                    r->S * r->B);
        dc_log_info("each step all-reduces %.2f MB per process (batch norm %.1f KB in %d small reductions)",
                    all / 1e6, bn / 1e3, 3 * r->model.nbn);
        dc_cluster_volume v;
        dc_cluster_volume_compute(&v, r->n, r->W, D, c->dim_pca, c->k, r->m);
        dc_log_info("each clustering holds per process: features %.1f MB, whitened %.1f MB, level-2 members %.1f MB, "
                    "labels %.1f MB, centroids %.1f MB; receives %.1f MB of PCA sample rows per pass over them, "
                    "sends at most %.1f MB in the level-2 all-to-all; each k-means pass all-reduces %.1f KB "
                    "(level 1) / %.1f KB (level 2)",
                    v.features / 1e6, v.whitened / 1e6, v.level2 / 1e6, v.labels / 1e6, v.centroids / 1e6,
                    v.pca_in / 1e6, v.alltoall / 1e6, v.pass1 / 1e3, v.pass2 / 1e3);
    }
    if (s == DC_OK) {
        dc_dataset_set_decode_hint(d, r->model.preset->eval_resize);
        s = run_buffers(r, GB, dc_dataset_max_side(d));
        if (s == DC_OK) dc_model_pin_host(&r->model, r->batch, 2 * r->slot_floats * sizeof(float));
    }
    return s;
}

/* Clustering every R epochs, training, checkpoints: from ps to the last
 * epoch, or until an error or a stop signal. */
static dc_status run_epochs(run_state *r, progress_state *ps)
{
    dc_train_config *c = r->c;
    dc_status s = DC_OK;
    while (s == DC_OK && ps->epoch < c->epochs) {
        int epoch = ps->epoch;
        if (ps->step == 0 && (r->assign_epoch < 0 || epoch % c->reassignment == 0) && r->assign_epoch != epoch) {
            s = dc_run_cluster_step(r, epoch);
            /* a checkpoint after clustering: a kill during the epoch keeps it */
            if (s == DC_OK) s = dc_run_write_checkpoint(r, ps);
            if (s) break;
            int sig = dc_run_stop_agreed(c);
            if (sig)
                return dc_set_error(DC_STATUS_INTERRUPTED, "stopped by signal %d; run the same command to resume",
                                    sig);
        }
        s = dc_run_train_epoch(r, ps);
        if (s) break;
        ps->epoch++;
        ps->step = 0;
        memset(ps->sums, 0, sizeof ps->sums);
        ps->seconds = 0;
        s = dc_run_write_checkpoint(r, ps);
        if (s == DC_OK && c->checkpoint_freq > 0 && ps->epoch % c->checkpoint_freq == 0) {
            char name[64];
            snprintf(name, sizeof name, "checkpoints/epoch-%03d.safetensors", ps->epoch);
            s = dc_run_save_checkpoint(r, ps, dc_run_path(r, name));
        }
    }
    return s;
}

static dc_status train_run(dc_train_config *c)
{
    if (!c->data || !c->out)
        return dc_set_error(DC_STATUS_ARG, "the images (data) and the run directory (out) are both needed");
    char why[512];
    if (dc_run_check_ranges(c, why, sizeof why)) return dc_set_error(DC_STATUS_ARG, "%s", why);
    dc_dataset *d;
    dc_status s = dc_dataset_open(c->data, c->labels, &d);
    if (s) return s;
    int64_t n = dc_dataset_size(d);
    if (c->max_images > 0 && c->max_images < n) n = c->max_images;
    int side = dc_dataset_height(d) > dc_dataset_width(d) ? dc_dataset_height(d) : dc_dataset_width(d);
    if (dc_train_config_resolve(c, n, side, why, sizeof why)) {
        dc_dataset_close(d);
        return dc_set_error(DC_STATUS_ARG, "%s", why);
    }
    run_state r;
    FILE *log = NULL;
    if ((s = run_init(&r, c, d, n)) || (s = dc_device_parse(&r.dev, c->device, c->precision, dc_device_local_rank())) ||
        (s = check_memory(&r)) || (s = dc_run_ensure_dir(c->out)) ||
        (s = dc_run_ensure_dir(dc_run_path(&r, "assignments"))) || (s = dc_run_ensure_dir(dc_run_path(&r, "checkpoints")))) {
        dc_dataset_close(d);
        return s;
    }
    log = r.rank == 0 ? fopen(dc_run_path(&r, "log.txt"), "a") : NULL;
    if (r.rank == 0 && !log) {
        dc_dataset_close(d);
        return dc_set_error(DC_STATUS_IO, "%s: cannot write: %s", r.path, strerror(errno));
    }
    dc_log_set_tee(log);
    dc_log_info("deepercluster %s: %s", DC_VERSION_STRING, dc_dataset_describe(d));
    dc_log_info("%s: %s, %d super-classes (%d super-clusters%s), k = %d, %d epochs of %lld images per super-class, "
                "batch %d per super-class",
                c->method, c->arch, r.S, r.m, c->rotnet ? " x 4 rotations" : "", c->k, c->epochs,
                (long long)c->epoch_size, r.B);
    s = build_network(&r, d);
    /* a GPU should not wait for batches made between its steps: by default
     * loader threads prepare the next batch during each step (the same
     * batches, so the same bits) */
    int workers = c->workers;
#ifdef _OPENMP
    if (workers == 0 && r.dev.gpu >= 0) workers = omp_get_max_threads() > 2 ? omp_get_max_threads() - 1 : 1;
#else
    if (workers == 0 && r.dev.gpu >= 0) workers = 1;
#endif
    if (s == DC_OK && workers > 0) s = dc_loader_start(&r.loader, workers, 2, dc_run_loader_row, &r);
    progress_state ps = {0};
    int resumed = 0;
    if (s == DC_OK) s = dc_run_start_state(&r, &ps, &resumed);
    if (s == DC_OK && !resumed && r.rank == 0) s = dc_run_write_config(&r);
    if (s == DC_OK && resumed && r.rank == 0) s = dc_run_note_resume(&r, &ps);
    if (s == DC_OK && !resumed && r.rank == 0) s = dc_run_write_skipped(&r);
    if (s == DC_OK) s = run_epochs(&r, &ps);
    if (s == DC_OK) dc_log_info("done: %d epochs; weights in %s", c->epochs, dc_run_path(&r, "checkpoint.safetensors"));
    else if (s != DC_STATUS_INTERRUPTED) dc_log_error("%s", dc_last_error());
    dc_log_set_tee(NULL);
    if (log) fclose(log);
    run_free(&r);
    dc_dataset_close(d);
    return s;
}

dc_status dc_train_run(dc_train_config *c)
{
#ifdef _OPENMP
    /* c->threads for this run only: the caller's OpenMP setting comes back */
    int saved = omp_get_max_threads();
    if (c->threads > 0) omp_set_num_threads(c->threads);
#endif
    dc_status s = train_run(c);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    return s;
}
