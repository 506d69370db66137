/* dc/finetune.h — transfer by fine-tuning (the original's
 * eval_voc_classif.py and eval_pretrain.py): a network, pre-trained here or
 * random, trained with labels on a classification task — its classifier
 * MLP re-initialised, either alone over the frozen body (`classifier`) or
 * with every layer (`all`) — on a seeded, class-balanced labelled subset,
 * the learning rate chosen on a held-out part of that subset, and scored
 * on a test set over ten crops. Resumable from a directory.
 * Includes: dc/core.h, dc/nn.h, dc/train.h (the stop flag). */
#ifndef DC_FINETUNE_H
#define DC_FINETUNE_H

#include "dc/core.h"
#include "dc/nn.h"
#include "dc/train.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_finetune_mode {
    DC_FINETUNE_CLASSIFIER = 0, /* body frozen, batch norm on running stats,
                                   the classifier MLP and the top layer
                                   trained with dropout (eval_voc_classif.py
                                   --fc6_8): lr 0.003, wd 1e-6, halved 15
                                   times over the run, gradients clipped at
                                   norm 10                                  */
    DC_FINETUNE_ALL = 1,        /* every layer, batch norm in training mode
                                   (eval_pretrain.py): lr 0.05, wd 1e-5,
                                   divided by 10 at 30%, 60%, 90% of the
                                   epochs                                   */
} dc_finetune_mode;

typedef struct dc_finetune_config {
    const char *weights;     /* a run, a .safetensors, or random:<preset>  */
    const char *train;       /* labelled training images                    */
    const char *test;        /* labelled test images                        */
    const char *train_labels, *test_labels; /* multi-label data (both or
                                neither): .npy arrays (N, C) aligned with the
                                sets' images, 1 present, 0 absent, -1 or 255
                                ignored (VOC's "difficult"); then the loss
                                is the binary cross-entropy summed over the
                                classes and the score the mean average
                                precision, as eval_voc_classif.py       */
    const char *out;         /* NULL: no checkpoints; else a directory where
                                the state is written after every epoch and
                                a rerun of the same job resumes            */
    dc_finetune_mode mode;
    int labels_per_class;    /* > 0: that many labelled images per class
                                (single-label data only)                   */
    double label_fraction;   /* > 0: that share of each class (multi-label:
                                of the images; else all)                   */
    int epochs;              /* 0: scaled to the labelled set (stated)     */
    double lr;               /* 0: chosen on the held-out part from the
                                mode's rate × {0.1, 1, 10}, widened by a
                                decade past an edge while the best score
                                sits there (6 rates at most)               */
    double holdout;          /* share of each class held out to choose the
                                rate (default 0.1, at least one image)     */
    int crops;               /* 10 (TenCrop, the default) or 1 (centre)    */
    int batch;               /* 0: 128, or the labelled set when smaller   */
    int sobel;               /* the Sobel stage of random:<preset>         */
    int head_first;          /* mode all only: first train the classifier
                                MLP and the top layer over the frozen body,
                                as the classifier mode does (its recipe, its
                                rate chosen unless head_lr > 0, `epochs`),
                                then every layer from there (LP-FT, Kumar
                                et al., ICLR 2022). With `out`, that first
                                stage is the classifier-mode job of
                                out/head (the same directory as the
                                classifier mode's own)                     */
    double head_lr;          /* the first stage's rate (0: chosen)         */
    uint64_t seed;
    const char *device;      /* auto (NULL), cpu, cuda or cuda:N: on a GPU
                                the body's forward and backward run on the
                                device, the top layer, clipping and SGD on
                                the host                                   */
    const char *precision;   /* the GPU's arithmetic: fp32 or tf32 (NULL:
                                tf32, the GPU engine's default)            */
    dc_stop_flag *stop;      /* polled after each step; NULL: never        */
} dc_finetune_config;

void dc_finetune_config_defaults(dc_finetune_config *c);

typedef struct dc_finetune_result {
    double top1, top5;       /* test set, averaged over the crops (top5 -1
                                with 5 classes or fewer; both -1 for
                                multi-label data)                          */
    double map;              /* multi-label: mean average precision over the
                                classes (-1 for single-label data)         */
    double lr, val_top1;     /* the rate used and its held-out accuracy
                                (mAP for multi-label data; -1 when --lr was
                                given)                                     */
    double loss;             /* the last epoch's mean training loss        */
    int epochs, nclasses, batch;
    int64_t labelled, trained, held_out, tested;
    char device[256];        /* where it ran: "cpu" or "cuda:N: <card>"   */
    double head_lr, head_val_top1; /* head_first: the first stage's rate and
                                its held-out accuracy (-1: not chosen, or
                                no first stage)                            */
} dc_finetune_result;

/// Runs the job of c; per-epoch lines in the log (and, with c->out, in
/// out/finetune.jsonl). With c->out, re-running the same job on the same
/// directory resumes it to the same bytes; DC_STATUS_INTERRUPTED once
/// *c->stop is set (state saved when c->out is given).
dc_status dc_finetune_run(const dc_finetune_config *c, dc_finetune_result *r);

/// `deepercluster eval finetune`'s options as argv (without the command:
/// "--weights", "W", "--train", …), parsed by the program's table (a bad
/// value: DC_STATUS_ARG with its message), then dc_finetune_run, stopping
/// once *stop is nonzero (NULL: never; dc_stop_flag_new makes one). For
/// callers without the C structs (the Python package).
dc_status dc_finetune_main(int argc, char **argv, dc_stop_flag *stop, dc_finetune_result *r);

/* ------------------------------------------------------------------------ */
/* The fine-tuning step, for callers that bring their own batches (tests)   */
/* ------------------------------------------------------------------------ */

typedef struct dc_finetuner {
    dc_model *m;             /* borrowed                                    */
    dc_finetune_mode mode;
    int nclasses, from;      /* from: the first layer trained              */
    float *hw, *hb, *hdw, *hdb;  /* the top layer (nclasses, feat_dim)      */
    float *mom, *hmw, *hmb;  /* momentum of m->params and of the top layer */
    int has_momentum;
    float *feat, *logits, *probs, *dlogits, *dfeat, *dbody; /* per batch   */
    double wd, momentum, clip;
} dc_finetuner;

/// A fine-tuner of m for nclasses classes in `mode`, the classifier MLP
/// and the top layer re-initialised (weights N(0, 0.01) from (seed,
/// DC_RNG_STREAM_INIT), biases 0.1), momentum cleared. m may be on the GPU
/// engine (dc_model_use_device): then its parameters, statistics and
/// momentum live on the device while it trains (dc_finetuner_sync), and a
/// GPU failure in a step is in dc_model_status(m).
dc_status dc_finetuner_init(dc_finetuner *f, dc_model *m, int nclasses, dc_finetune_mode mode, uint64_t seed);
void dc_finetuner_reset(dc_finetuner *f, uint64_t seed);
void dc_finetuner_free(dc_finetuner *f);
/// On the GPU engine: m's parameters, statistics (gradients too) and the
/// momentum f->mom to the host (to_host nonzero: before reading or writing
/// them there), or the host's to the device (after editing them). No-op on
/// the CPU.
dc_status dc_finetuner_sync(dc_finetuner *f, int to_host);
/// One SGD step on the batch x (N, in_c, input, input) with labels y:
/// forward (the mode's batch norm; in classifier mode dropout unless
/// dropout = 0, the whole network always with dropout), ReLU, the
/// top layer, mean cross-entropy, backward, gradient-norm clipping
/// (f->clip > 0), momentum SGD with weight decay. *loss: the batch's mean
/// loss; *correct: top-1 hits.
void dc_finetuner_step(dc_finetuner *f, const float *x, const int32_t *y, int N, float lr, int dropout,
                       double *loss, int *correct);
/// As dc_finetuner_step for multi-label targets t (N, nclasses): 1
/// present, 0 absent, -1 ignored; the loss is the binary cross-entropy with
/// logits summed over the classes not ignored, divided by N (the
/// original's), *loss that value.
void dc_finetuner_step_multi(dc_finetuner *f, const float *x, const int8_t *t, int N, float lr, int dropout,
                             double *loss);
/// Average precision of `score` (n) for the binary targets t (1, 0; -1
/// ignored), as scikit-learn's average_precision_score: tied scores form
/// one threshold. -1 when no target is positive.
double dc_average_precision(const float *score, const int8_t *t, int64_t n, int64_t stride);
/// Logits (N, nclasses) of x in evaluation mode into out.
void dc_finetuner_logits(dc_finetuner *f, const float *x, int N, float *out);

#ifdef __cplusplus
}
#endif
#endif
