/* config.c — the trainer's options: the defaults of each method (SPEC §1),
 * the preset's batch and epochs, the ranges of every option, and their
 * resolution against the data (architecture from the image size, k, the
 * epoch size, PCA dimension) with messages that say what to change.
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

void dc_train_config_defaults(dc_train_config *c, const char *method)
{
    memset(c, 0, sizeof *c);
    c->method = method ? method : "deepercluster";
    c->sobel = 1;
    c->crop_min_scale = 0; /* from the preset */
    c->reassignment = 3;
    c->dim_pca = 0; /* from the preset */
    c->niter = 10;
    c->lr = 0.05;
    c->lr_schedule = "constant";
    c->wd = 1e-5;
    c->epochs = 0; /* from the preset */
    c->seed = 31;
    c->checkpoint_freq = 5;
    c->grad_overlap = 1;
    if (strcmp(c->method, "deepcluster") == 0) {
        c->super_classes = 1;
        c->rotnet = 0;
        c->k = 0; /* from the data */
    } else if (strcmp(c->method, "rotnet") == 0) {
        c->super_classes = 4;
        c->rotnet = 1;
        c->k = 1;
    } else {
        c->super_classes = 8;
        c->rotnet = 1;
        c->k = 0;
    }
    c->batch_size = 0; /* from the method and the preset */
}

int dc_train_default_batch(const char *method, const dc_preset *p)
{
    /* per super-class, for a global batch of 128: the methods' presets */
    int b = strcmp(method, "deepcluster") == 0 ? 128 : strcmp(method, "rotnet") == 0 ? 32 : 16;
    b = b * dc_preset_batch(p) / 128;
    return b > 0 ? b : 1;
}

/* A warm-up longer than the run (epochs 0 stands for the preset's, known
 * only once the data is open). */
static int warmup_too_long(const dc_train_config *c, char *buf, size_t len)
{
    if (c->epochs <= 0 || c->warmup_epochs <= c->epochs) return 0;
    snprintf(buf, len, "--warmup-epochs %g is longer than the run's %d epochs (lower it, or raise --epochs)",
             c->warmup_epochs, c->epochs);
    return 1;
}

/* What the program's options check, checked again for callers of the
 * library: NULL, or what to change. */
const char *dc_run_check_ranges(const dc_train_config *c, char *buf, size_t len)
{
    if (!c->method ||
        (strcmp(c->method, "deepercluster") && strcmp(c->method, "deepcluster") && strcmp(c->method, "rotnet"))) {
        snprintf(buf, len, "--method %s is not one of deepercluster, deepcluster, rotnet", c->method ? c->method : "(none)");
        return buf;
    }
    if (c->lr_schedule && strcmp(c->lr_schedule, "constant") && strcmp(c->lr_schedule, "cosine")) {
        snprintf(buf, len, "--lr-schedule %s is not one of constant, cosine", c->lr_schedule);
        return buf;
    }
    const struct {
        const char *name;
        double v, lo, hi;
    } r[] = {{"k", c->k, 0, 1e9}, {"super-classes", c->super_classes, 1, 1e6}, {"rotnet", c->rotnet, 0, 1},
             {"sobel", c->sobel, 0, 1}, {"crop-min-scale", c->crop_min_scale, 0, 1},
             {"reassignment", c->reassignment, 1, 1e6}, {"dim-pca", c->dim_pca, 0, 1e6}, {"niter", c->niter, 0, 1e6},
             {"warm-restart", c->warm_restart, 0, 1}, {"lr", c->lr, 1e-12, 100}, {"wd", c->wd, 0, 1},
             {"warmup-epochs", c->warmup_epochs, 0, 1e6},
             {"epochs", c->epochs, 0, 1e6}, {"batch-size", c->batch_size, 0, 1e5},
             {"epoch-size", (double)c->epoch_size, 0, 1e12}, {"workers", c->workers, 0, 256},
             {"threads", c->threads, 0, 4096}, {"seed", (double)c->seed, 0, 9.2e18},
             {"checkpoint-freq", c->checkpoint_freq, 0, 1e6}, {"max-images", c->max_images, 0, 2e9},
             {"memory-mb", (double)c->memory_mb, 0, 1e12}, {"grad-overlap", c->grad_overlap, 0, 1}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (!(r[i].v >= r[i].lo && r[i].v <= r[i].hi)) { /* NaN fails too */
            snprintf(buf, len, "--%s: %.15g is out of range (must be between %.15g and %.15g)", r[i].name, r[i].v,
                     r[i].lo, r[i].hi);
            return buf;
        }
    return warmup_too_long(c, buf, len) ? buf : NULL;
}

const char *dc_train_config_resolve(dc_train_config *c, int64_t n, int side, char *buf, size_t len)
{
    if (dc_run_check_ranges(c, buf, len)) return buf;
    if (!c->arch) c->arch = side > 0 && side <= 32 ? "vgg-s32" : side > 0 && side <= 64 ? "vgg-s64" : "vgg16";
    const dc_preset *p = dc_preset_find(c->arch);
    if (!p) {
        snprintf(buf, len, "--arch %s is not a preset (presets: %s)", c->arch, dc_preset_names());
        return buf;
    }
    if (c->dim_pca == 0) c->dim_pca = dc_preset_dim_pca(p);
    if (c->epochs == 0) c->epochs = p->epochs > 0 ? p->epochs : 10;
    if (c->batch_size == 0) c->batch_size = dc_train_default_batch(c->method, p);
    if (c->crop_min_scale == 0) c->crop_min_scale = p->crop_min_scale > 0 ? p->crop_min_scale : 0.08;
    if (warmup_too_long(c, buf, len)) return buf;
    if (c->dim_pca > p->hidden) {
        snprintf(buf, len, "--dim-pca %d is larger than the %s feature dimension %d", c->dim_pca, c->arch, p->hidden);
        return buf;
    }
    if (c->rotnet && c->super_classes % 4 != 0) {
        snprintf(buf, len, "--super-classes %d is not a multiple of 4, which rotation needs (use a multiple of 4, or --rotnet 0)",
                 c->super_classes);
        return buf;
    }
    int m = c->rotnet ? c->super_classes / 4 : c->super_classes;
    if (c->k == 0) {
        /* about 150 images or more per cluster, a power of two: 64 for
         * 12,000 images, 256 for 60,000 (measured on Fashion-MNIST, docs/results.md) */
        c->k = 2 * m;
        while ((int64_t)c->k * 2 * 150 <= n) c->k *= 2;
        if (c->k > n) c->k = (int)(n / m * m);
    }
    if (c->k < m || c->k % m != 0) {
        snprintf(buf, len, "--k %d is not a multiple of the %d super-clusters (choose k = %d x the sub-clusters per super-cluster)",
                 c->k, m, m);
        return buf;
    }
    if (c->k > n) {
        snprintf(buf, len, "--k %d is larger than the %lld images (use at most %lld clusters)", c->k, (long long)n,
                 (long long)n);
        return buf;
    }
    if (c->epoch_size == 0) {
        c->epoch_size = n / (4 * m) / c->batch_size * c->batch_size;
        if (c->epoch_size < c->batch_size) c->epoch_size = c->batch_size;
    }
    if (c->epoch_size < c->batch_size) {
        snprintf(buf, len, "--epoch-size %lld is smaller than --batch-size %d", (long long)c->epoch_size, c->batch_size);
        return buf;
    }
    return NULL;
}

double dc_train_lr_at(const dc_train_config *c, int epoch, int step, int steps)
{
    if (steps <= 0) return c->lr;
    double t = epoch + (double)step / steps, w = c->warmup_epochs; /* in epochs, at the step's start */
    if (w > 0 && t < w) {
        double f = (t + 1.0 / steps) / w;
        return c->lr * (f < 1 ? f : 1);
    }
    if (c->lr_schedule && strcmp(c->lr_schedule, "cosine") == 0 && c->epochs > w)
        return c->lr * 0.5 * (1 + cos(acos(-1.0) * (t - w) / (c->epochs - w)));
    return c->lr;
}
