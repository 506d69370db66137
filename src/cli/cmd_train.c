/* cmd_train.c — `deepercluster train`: learn features from unlabelled
 * images by alternating hierarchical clustering and training (SPEC §1).
 * --method picks the defaults (deepercluster, deepcluster, rotnet); every
 * option can then override them; everything is validated against the data
 * before any work starts.
 * Includes: cli, dc/train.h. */
#include "cli/cli.h"
#include "dc/comm.h"
#include "dc/train.h"

#include <stdio.h>
#include <string.h>

int dc_cmd_train(int argc, char **argv)
{
    /* --method first: it decides the defaults the other options override */
    const char *method = "deepercluster";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--method") == 0 && i + 1 < argc) method = argv[i + 1];
        else if (strncmp(argv[i], "--method=", 9) == 0) method = argv[i] + 9;
    }
    if (strcmp(method, "deepercluster") && strcmp(method, "deepcluster") && strcmp(method, "rotnet")) {
        fprintf(stderr, "deepercluster train: --method: '%s' is not one of deepercluster|deepcluster|rotnet\n", method);
        return DC_EXIT_USAGE;
    }
    dc_train_config c;
    dc_train_config_defaults(&c, method);
    const dc_opt opts[] = {
        {"data", "data-path", DC_OPT_STRING, &c.data, 0, 0, NULL, 1, "SRC",
         "training images: IDX, CIFAR batches, image folder or .txt list, pack"},
        {"labels", NULL, DC_OPT_STRING, &c.labels, 0, 0, NULL, 0, "FILE",
         "IDX labels (found beside the images by default); used only to report cluster quality"},
        {"out", "dump-path", DC_OPT_STRING, &c.out, 0, 0, NULL, 1, "RUN", "run directory (resumed if it holds a checkpoint)"},
        {"method", NULL, DC_OPT_CHOICE, &c.method, 0, 0, "deepercluster|deepcluster|rotnet", 0, "M",
         "defaults of a method"},
        {"arch", NULL, DC_OPT_CHOICE, &c.arch, 0, 0, "vgg16|vgg-s32|vgg-s64", 0, "A",
         "network preset (default: from the image size)"},
        {"k", "nmb-cluster", DC_OPT_INT, &c.k, 0, 1e9, NULL, 0, "K",
         "clusters in all (0: a power of two giving about 150 or more images per cluster, 256 for 60,000)"},
        {"super-classes", NULL, DC_OPT_INT, &c.super_classes, 1, 1e6, NULL, 0, "S",
         "super-classes (super-clusters x 4 rotations with --rotnet 1)"},
        {"rotnet", NULL, DC_OPT_INT, &c.rotnet, 0, 1, NULL, 0, "0|1", "rotation as part of the super-class"},
        {"sobel", NULL, DC_OPT_INT, &c.sobel, 0, 1, NULL, 0, "0|1", "fixed Sobel filtering of the input"},
        {"crop-min-scale", NULL, DC_OPT_DOUBLE, &c.crop_min_scale, 0, 1, NULL, 0, "A",
         "smallest crop area of the training augmentation, as a share of the image (0: the preset's, "
         "0.5 for vgg-s32, else the original's 0.08)"},
        {"reassignment", NULL, DC_OPT_INT, &c.reassignment, 1, 1e6, NULL, 0, "R", "cluster again every R epochs"},
        {"dim-pca", NULL, DC_OPT_INT, &c.dim_pca, 0, 1e6, NULL, 0, "D", "PCA dimension (0: from the preset: 4096 for vgg16, 32 for vgg-s32, 64 for vgg-s64)"},
        {"niter", NULL, DC_OPT_INT, &c.niter, 0, 1e6, NULL, 0, "I", "k-means update passes"},
        {"warm-restart", NULL, DC_OPT_INT, &c.warm_restart, 0, 1, NULL, 0, "0|1",
         "k-means from the previous centroids"},
        {"lr", NULL, DC_OPT_DOUBLE, &c.lr, 1e-12, 100, NULL, 0, "LR", "learning rate"},
        {"wd", NULL, DC_OPT_DOUBLE, &c.wd, 0, 1, NULL, 0, "WD", "weight decay"},
        {"epochs", "nepochs", DC_OPT_INT, &c.epochs, 0, 1e6, NULL, 0, "E",
         "epochs (0: the preset's, 6 for vgg-s32, 10 for the others)"},
        {"batch-size", NULL, DC_OPT_INT, &c.batch_size, 0, 1e5, NULL, 0, "B",
         "images per super-class in each step, the original's per-process batch (0: the method's, "
         "16 DeeperCluster, 32 RotNet, 128 DeepCluster; a quarter of those for vgg16)"},
        {"epoch-size", "size-dataset", DC_OPT_I64, &c.epoch_size, 0, 1e12, NULL, 0, "N",
         "images per super-class per epoch (0: N/(4m), the original's)"},
        {"workers", NULL, DC_OPT_INT, &c.workers, 0, 256, NULL, 0, "N",
         "loader threads preparing the next batch during each step (0: between steps, on all threads)"},
        {"threads", NULL, DC_OPT_INT, &c.threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
        {"seed", NULL, DC_OPT_I64, &c.seed, 0, 9.2e18, NULL, 0, "S", "random seed"},
        {"checkpoint-freq", NULL, DC_OPT_INT, &c.checkpoint_freq, 0, 1e6, NULL, 0, "F",
         "keep checkpoints/epoch-NNN every F epochs (0: never)"},
        {"pretrained", NULL, DC_OPT_STRING, &c.pretrained, 0, 0, NULL, 0, "FILE", "start from these weights (safetensors)"},
        {"max-images", NULL, DC_OPT_INT, &c.max_images, 0, 2e9, NULL, 0, "N", "use the first N images only (0: all)"},
        {"device", NULL, DC_OPT_STRING, &c.device, 0, 0, NULL, 0, "D",
         "auto (a GPU when one is visible, else the CPU), cpu, cuda (under MPI: the local rank's) or cuda:N"},
        {"precision", NULL, DC_OPT_CHOICE, &c.precision, 0, 0, "fp32|tf32", 0, "P",
         "GPU arithmetic: IEEE fp32, or TF32 tensor cores (default)"},
        {"autotune", NULL, DC_OPT_INT, &c.autotune, 0, 1, NULL, 0, "0|1",
         "GPU: choose convolution algorithms by timing them (faster; a resumed run may choose others, so its bits "
         "may differ)"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "train", "--data SRC --out RUN [options]",
                      "Learns image features without labels: every R epochs the images' features are\n"
                      "PCA-whitened and clustered in two levels; in between, the network learns to\n"
                      "predict (super-cluster x rotation, sub-cluster). Re-running the same command on\n"
                      "a run directory resumes it; SIGINT/SIGTERM checkpoint before stopping.",
                      opts, (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    dc_cli_set_threads(c.threads);
    c.stop = dc_cli_stop_flag();
    /* under mpirun/srun: one process of several (a single one otherwise) */
    dc_comm *world;
    dc_status s = dc_comm_init(NULL, NULL, &world);
    if (s) return dc_cli_fail();
    c.comm = world;
    s = dc_train_run(&c);
    if (dc_comm_size(world) > 1) {
        /* a rank that fails takes the others down, with its message, rather
         * than leave them waiting in a collective */
        if (s != DC_OK && s != DC_STATUS_INTERRUPTED) dc_comm_abort(world, dc_last_error());
    }
    dc_comm_finalize(world);
    if (s == DC_OK) return DC_EXIT_OK;
    if (s == DC_STATUS_ARG) {
        fprintf(stderr, "deepercluster train: %s\n", dc_last_error());
        return DC_EXIT_USAGE;
    }
    if (s == DC_STATUS_INTERRUPTED) {
        fprintf(stderr, "deepercluster train: %s\n", dc_last_error());
        return 130;
    }
    return dc_cli_fail();
}
