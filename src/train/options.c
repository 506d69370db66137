/* options.c — the options of `deepercluster train`, in the library: one
 * table, read by the program (its parsing and --help) and by
 * dc_train_config_parse / dc_train_main (the Python package's train()), so
 * that both accept the same names, ranges and messages.
 * Includes: core/args.h, dc/train.h. */
#include "train/options.h"

#include <stdlib.h>
#include <string.h>

int dc_train_option_table(dc_train_config *c, dc_opt *opts)
{
    const dc_opt t[] = {
        {"data", "data-path", DC_OPT_STRING, &c->data, 0, 0, NULL, 1, "SRC",
         "training images: IDX, CIFAR batches, image folder or .txt list, pack"},
        {"labels", NULL, DC_OPT_STRING, &c->labels, 0, 0, NULL, 0, "FILE",
         "IDX labels (found beside the images by default); used only to report cluster quality"},
        {"out", "dump-path", DC_OPT_STRING, &c->out, 0, 0, NULL, 1, "RUN", "run directory (resumed if it holds a checkpoint)"},
        {"method", NULL, DC_OPT_CHOICE, &c->method, 0, 0, "deepercluster|deepcluster|rotnet", 0, "M",
         "defaults of a method"},
        {"arch", NULL, DC_OPT_CHOICE, &c->arch, 0, 0, "vgg16|vgg-s32|vgg-s64", 0, "A",
         "network preset (default: from the image size)"},
        {"k", "nmb-cluster", DC_OPT_INT, &c->k, 0, 1e9, NULL, 0, "K",
         "clusters in all (0: a power of two giving about 150 or more images per cluster, 256 for 60,000)"},
        {"super-classes", NULL, DC_OPT_INT, &c->super_classes, 1, 1e6, NULL, 0, "S",
         "super-classes (super-clusters x 4 rotations with --rotnet 1)"},
        {"rotnet", NULL, DC_OPT_INT, &c->rotnet, 0, 1, NULL, 0, "0|1", "rotation as part of the super-class"},
        {"sobel", NULL, DC_OPT_INT, &c->sobel, 0, 1, NULL, 0, "0|1", "fixed Sobel filtering of the input"},
        {"crop-min-scale", NULL, DC_OPT_DOUBLE, &c->crop_min_scale, 0, 1, NULL, 0, "A",
         "smallest crop area of the training augmentation, as a share of the image (0: the preset's, "
         "0.5 for vgg-s32, else the original's 0.08)"},
        {"reassignment", NULL, DC_OPT_INT, &c->reassignment, 1, 1e6, NULL, 0, "R", "cluster again every R epochs"},
        {"dim-pca", NULL, DC_OPT_INT, &c->dim_pca, 0, 1e6, NULL, 0, "D", "PCA dimension (0: from the preset: 4096 for vgg16, 32 for vgg-s32, 64 for vgg-s64)"},
        {"niter", NULL, DC_OPT_INT, &c->niter, 0, 1e6, NULL, 0, "I", "k-means update passes"},
        {"warm-restart", NULL, DC_OPT_INT, &c->warm_restart, 0, 1, NULL, 0, "0|1",
         "k-means from the previous centroids"},
        {"lr", NULL, DC_OPT_DOUBLE, &c->lr, 1e-12, 100, NULL, 0, "LR", "learning rate"},
        {"lr-schedule", NULL, DC_OPT_CHOICE, &c->lr_schedule, 0, 0, "constant|cosine", 0, "SCHED",
         "learning rate over the run: constant (the original's) or cosine (a half cosine from LR down to 0 after "
         "the warm-up)"},
        {"warmup-epochs", NULL, DC_OPT_DOUBLE, &c->warmup_epochs, 0, 1e6, NULL, 0, "W",
         "raise the rate linearly from 0 to LR over the first W epochs (fractions allowed; 0: no warm-up)"},
        {"wd", NULL, DC_OPT_DOUBLE, &c->wd, 0, 1, NULL, 0, "WD", "weight decay"},
        {"epochs", "nepochs", DC_OPT_INT, &c->epochs, 0, 1e6, NULL, 0, "E",
         "epochs (0: the preset's, 6 for vgg-s32, 10 for the others)"},
        {"batch-size", NULL, DC_OPT_INT, &c->batch_size, 0, 1e5, NULL, 0, "B",
         "images per super-class in each step, the original's per-process batch (0: the method's, "
         "16 DeeperCluster, 32 RotNet, 128 DeepCluster; a quarter of those for vgg16)"},
        {"epoch-size", "size-dataset", DC_OPT_I64, &c->epoch_size, 0, 1e12, NULL, 0, "N",
         "images per super-class per epoch (0: N/(4m), the original's)"},
        {"workers", NULL, DC_OPT_INT, &c->workers, 0, 256, NULL, 0, "N",
         "loader threads preparing the next batch during each step (0: between steps, on all threads)"},
        {"threads", NULL, DC_OPT_INT, &c->threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"seed", NULL, DC_OPT_I64, &c->seed, 0, 9.2e18, NULL, 0, "S", "random seed"},
        {"checkpoint-freq", NULL, DC_OPT_INT, &c->checkpoint_freq, 0, 1e6, NULL, 0, "F",
         "keep checkpoints/epoch-NNN every F epochs (0: never)"},
        {"pretrained", NULL, DC_OPT_STRING, &c->pretrained, 0, 0, NULL, 0, "FILE", "start from these weights (safetensors)"},
        {"max-images", NULL, DC_OPT_INT, &c->max_images, 0, 2e9, NULL, 0, "N", "use the first N images only (0: all)"},
        {"device", NULL, DC_OPT_STRING, &c->device, 0, 0, NULL, 0, "D",
         "auto (a GPU when one is visible, else the CPU), cpu, cuda (under MPI: the local rank's) or cuda:N"},
        {"precision", NULL, DC_OPT_CHOICE, &c->precision, 0, 0, "fp32|tf32", 0, "P",
         "GPU arithmetic: IEEE fp32, or TF32 tensor cores (default)"},
        {"memory-mb", NULL, DC_OPT_I64, &c->memory_mb, 0, 1e12, NULL, 0, "MB",
         "clustering: features a process holds in memory at once (0: half the available memory); larger ones are "
         "written to a scratch file and read a block at a time, with the same result"},
        {"scratch", NULL, DC_OPT_STRING, &c->scratch, 0, 0, NULL, 0, "DIR",
         "folder for the clustering's scratch files (default: the run directory); removed after"},
        {"grad-overlap", NULL, DC_OPT_INT, &c->grad_overlap, 0, 1, NULL, 0, "0|1",
         "several processes: sum the gradients while the backward runs (1) or after it (0); the same result"},
        {"gpu-kmeans", NULL, DC_OPT_INT, &c->gpu_kmeans, 0, 1, NULL, 0, "0|1",
         "GPU runs: k-means's assignments and sums on the training's GPU too (1) or on the CPU (0, the default "
         "until the GPU suite has checked it on a card)"},
        {"autotune", NULL, DC_OPT_INT, &c->autotune, 0, 1, NULL, 0, "0|1",
         "GPU: choose convolution algorithms by timing them (faster; a resumed run may choose others, so its bits "
         "may differ)"},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    DC_ASSERT(n <= DC_TRAIN_MAX_OPTS);
    memcpy(opts, t, sizeof t);
    return n;
}

const char *dc_train_method_arg(int argc, char **argv)
{
    const char *method = "deepercluster";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--method") == 0 && i + 1 < argc) method = argv[i + 1];
        else if (strncmp(argv[i], "--method=", 9) == 0) method = argv[i] + 9;
    }
    return method;
}

dc_status dc_train_config_parse(dc_train_config *c, int argc, char **argv)
{
    const char *method = dc_train_method_arg(argc, argv);
    if (strcmp(method, "deepercluster") && strcmp(method, "deepcluster") && strcmp(method, "rotnet"))
        return dc_set_error(DC_STATUS_ARG, "--method: '%s' is not one of deepercluster|deepcluster|rotnet", method);
    dc_train_config_defaults(c, method);
    dc_opt opts[DC_TRAIN_MAX_OPTS];
    int n = dc_train_option_table(c, opts);
    dc_args *a = dc_xmalloc(sizeof *a);
    int r = dc_args_parse(a, "train", opts, n, 0, argc, argv);
    dc_status s = DC_OK;
    if (r == DC_ARGS_HELP) s = dc_set_error(DC_STATUS_ARG, "train: --help is the program's (deepercluster train --help)");
    else if (r == DC_ARGS_ERROR) s = dc_set_error(DC_STATUS_ARG, "%s", a->err);
    dc_free(a);
    return s;
}

dc_status dc_train_main(int argc, char **argv, dc_stop_flag *stop)
{
    dc_train_config c;
    dc_status s = dc_train_config_parse(&c, argc, argv);
    if (s) return s;
    c.stop = stop;
    return dc_train_run(&c);
}

dc_stop_flag *dc_stop_flag_new(void)
{
    dc_stop_flag *f = dc_xmalloc(sizeof *f);
    atomic_init(f, 0);
    return f;
}

void dc_stop_flag_raise(dc_stop_flag *f, int why) { atomic_store(f, why); }

void dc_stop_flag_free(dc_stop_flag *f) { dc_free(f); }
