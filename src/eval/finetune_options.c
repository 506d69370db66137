/* finetune_options.c — the options of `deepercluster eval finetune`, in
 * the library: one table, read by the program (its parsing and --help) and
 * by dc_finetune_main (the Python package's finetune()), so both accept
 * the same names, ranges and messages.
 * Includes: eval/finetune_options.h. */
#include "eval/finetune_options.h"

#include <string.h>

void dc_finetune_args_defaults(dc_finetune_args *a)
{
    memset(a, 0, sizeof *a);
    dc_finetune_config_defaults(&a->c);
    a->mode = "classifier";
}

int dc_finetune_option_table(dc_finetune_args *a, dc_opt *opts, int cli)
{
    const dc_opt lib[] = {
        {"weights", NULL, DC_OPT_STRING, &a->c.weights, 0, 0, NULL, 1, "W", "RUN directory, weights .safetensors, or random:<preset> (the scratch baseline)"},
        {"train", NULL, DC_OPT_STRING, &a->c.train, 0, 0, NULL, 1, "SRC", "labelled training images (IDX with labels, CIFAR, class folders, pack)"},
        {"test", NULL, DC_OPT_STRING, &a->c.test, 0, 0, NULL, 1, "SRC", "labelled test images (as --train)"},
        {"train-labels", NULL, DC_OPT_STRING, &a->c.train_labels, 0, 0, NULL, 0, "Y.npy",
         "multi-label data: (N, C) targets of --train's images, 1 present, 0 absent, -1 or 255 ignored; the loss is "
         "then binary cross-entropy and the score mAP (with --test-labels)"},
        {"test-labels", NULL, DC_OPT_STRING, &a->c.test_labels, 0, 0, NULL, 0, "Y.npy", "the same for --test's images"},
        {"mode", NULL, DC_OPT_CHOICE, &a->mode, 0, 0, "classifier|all", 0, "M",
         "classifier: the body frozen, the classifier MLP re-initialised and trained (eval_voc_classif.py --fc6_8); "
         "all: every layer (eval_pretrain.py)"},
        {"head-first", NULL, DC_OPT_INT, &a->c.head_first, 0, 1, NULL, 0, "0|1",
         "--mode all: first train the classifier over the frozen body as --mode classifier does (its rate chosen, or "
         "--head-lr), then every layer from there (LP-FT); with --out, that stage is the classifier job of OUT/head"},
        {"head-lr", NULL, DC_OPT_DOUBLE, &a->c.head_lr, 0, 100, NULL, 0, "LR",
         "--head-first's rate (0: chosen on the held-out images as --mode classifier chooses)"},
        {"labels-per-class", NULL, DC_OPT_INT, &a->c.labels_per_class, 0, 1e9, NULL, 0, "N",
         "train on N labelled images per class, a seeded balanced subset (0: all)"},
        {"label-fraction", NULL, DC_OPT_DOUBLE, &a->c.label_fraction, 0, 1, NULL, 0, "F", "or on that share of each class"},
        {"epochs", NULL, DC_OPT_INT, &a->c.epochs, 0, 1e6, NULL, 0, "E",
         "passes over the labelled set (0: 50,000 images' worth, 10 to 200 epochs)"},
        {"lr", NULL, DC_OPT_DOUBLE, &a->c.lr, 0, 100, NULL, 0, "LR",
         "learning rate (0: the mode's, 0.003 or 0.05, times 0.1, 1 or 10 and, while the best is at an edge, a decade past it (6 rates at most), chosen on 10% of the labelled images held out)"},
        {"crops", NULL, DC_OPT_INT, &a->c.crops, 1, 10, NULL, 0, "1|10", "test views averaged: TenCrop, or the centre crop"},
        {"out", NULL, DC_OPT_STRING, &a->c.out, 0, 0, NULL, 0, "DIR",
         "write the state after every epoch (finetune.safetensors, finetune.jsonl); the same command resumes (with "
         "other --crops, a finished job is scored again without training)"},
        {"sobel", NULL, DC_OPT_INT, &a->c.sobel, 0, 1, NULL, 0, "0|1", "Sobel stage for random:<preset>"},
        {"seed", NULL, DC_OPT_I64, &a->seed, 0, 9.2e18, NULL, 0, "S", "seed (labelled subset, initialisation, crops, dropout)"},
        {"batch-size", NULL, DC_OPT_INT, &a->c.batch, 0, 4096, NULL, 0, "B", "images per step (0: 128, or the labelled set when smaller)"},
        {"device", NULL, DC_OPT_STRING, &a->c.device, 0, 0, NULL, 0, "D",
         "auto (a GPU when one is visible, else the CPU), cpu, cuda or cuda:N"},
        {"precision", NULL, DC_OPT_CHOICE, &a->c.precision, 0, 0, "fp32|tf32", 0, "P",
         "GPU arithmetic: fp32 (IEEE) or tf32 (tensor cores, the default)"},
    };
    const dc_opt prog[] = {
        {"json", NULL, DC_OPT_STRING, &a->json, 0, 0, NULL, 0, "F.json", "also write the results as JSON"},
        {"record", NULL, DC_OPT_STRING, &a->record, 0, 0, NULL, 0, "RUN", "also append the results to RUN/eval.jsonl"},
        {"threads", NULL, DC_OPT_INT, &a->threads, 0, 4096, NULL, 0, "T", "threads (0: all cores)"},
    };
    int n = (int)(sizeof lib / sizeof lib[0]), m = cli ? (int)(sizeof prog / sizeof prog[0]) : 0;
    DC_ASSERT(n + m <= DC_FINETUNE_MAX_OPTS);
    memcpy(opts, lib, sizeof lib);
    if (m) memcpy(opts + n, prog, sizeof prog);
    return n + m;
}

void dc_finetune_args_finish(dc_finetune_args *a)
{
    a->c.mode = strcmp(a->mode, "all") == 0 ? DC_FINETUNE_ALL : DC_FINETUNE_CLASSIFIER;
    a->c.seed = (uint64_t)a->seed;
}

dc_status dc_finetune_main(int argc, char **argv, dc_stop_flag *stop, dc_finetune_result *r)
{
    dc_finetune_args fa;
    dc_finetune_args_defaults(&fa);
    dc_opt opts[DC_FINETUNE_MAX_OPTS];
    int n = dc_finetune_option_table(&fa, opts, 0);
    dc_args *a = dc_xmalloc(sizeof *a);
    int rc = dc_args_parse(a, "eval finetune", opts, n, 0, argc, argv);
    dc_status s = DC_OK;
    if (rc == DC_ARGS_HELP)
        s = dc_set_error(DC_STATUS_ARG, "finetune: --help is the program's (deepercluster eval finetune --help)");
    else if (rc == DC_ARGS_ERROR)
        s = dc_set_error(DC_STATUS_ARG, "%s", a->err);
    dc_free(a);
    if (s) return s;
    dc_finetune_args_finish(&fa);
    fa.c.stop = stop;
    return dc_finetune_run(&fa.c, r);
}
