/* dc/eval.h — the evaluation protocols of SPEC §7 on frozen features:
 * k-means cluster quality against labels, the linear probe (logistic
 * regression by SGD with lr_t = lr0 / sqrt(1 + lr0·wd·t), the learning
 * rate chosen on a held-out part of the training set), and the weighted
 * k-nearest-neighbour classifier on L2-normalised features.
 * Includes: dc/core.h, dc/cluster.h. */
#ifndef DC_EVAL_H
#define DC_EVAL_H

#include "dc/cluster.h"
#include "dc/core.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// k-means (k clusters, niter passes) on x (n, d) — first PCA-whitened to
/// dim_pca dimensions and L2-normalised when dim_pca > 0, as the training's
/// clustering step — scored against labels. k-means runs `restarts` times
/// (≥ 1) from different random initialisations and the run with the lowest
/// objective is scored (labels never choose). x is modified.
dc_status dc_eval_clusters(dc_cluster_scores *out, float *x, int64_t n, int d, const int32_t *labels, int k,
                           int dim_pca, int niter, int restarts, uint64_t seed);

/// As dc_eval_clusters, `runs` (≥ 1) times on one whitening (fitted from
/// `seed`): run r is the best of `restarts` k-means runs from seed + r (so
/// run 0 is what dc_eval_clusters gives, and run r what seed + r gives
/// whenever the PCA fits every row, n ≤ d(d − 1)/2). mean gets the scores' mean over the runs
/// (runs = 1: the scores themselves), sd (may be NULL) their sample
/// standard deviation (0 when runs = 1; purity's is not computed). One
/// k-means draw moves the NMI of a network by about a point on
/// Fashion-MNIST; the mean of several is the steadier figure. x is modified.
dc_status dc_eval_clusters_runs(dc_cluster_scores *mean, dc_cluster_scores *sd, float *x, int64_t n, int d,
                                const int32_t *labels, int k, int dim_pca, int niter, int restarts, int runs,
                                uint64_t seed);

typedef struct dc_probe_params {
    int epochs;        /* passes over the training features (default 10)   */
    int batch;         /* default 256                                      */
    double wd;         /* default 1e-4                                     */
    double lrs[8];     /* learning rates tried (default 0.0003 … 1)        */
    int nlr;
    double holdout;    /* fraction of the training set held out (0.1)      */
    uint64_t seed;
    int average;       /* 1 (default): the classifier is the mean of the
                          iterates of the second half of the epochs
                          (Polyak–Ruppert), 0: the last iterate            */
} dc_probe_params;

dc_probe_params dc_probe_params_default(void);

typedef struct dc_probe_result {
    double top1, top5;     /* on the test set (top5 = -1 with ≤ 5 classes) */
    double lr;             /* the learning rate chosen                      */
    double val_top1;       /* its held-out accuracy                         */
} dc_probe_result;

/// Linear probe: features are standardised with the training set's mean and
/// deviation (both arrays are modified), each learning rate is trained on
/// the training set minus the held-out part, the best one is retrained on
/// all of it and scored on the test set. With `average` the classifier kept
/// is the running mean of the SGD iterates over the second half of the
/// epochs: on ill-conditioned features (a trained network's final layer)
/// the last iterate of a constant-ish rate keeps bouncing and reads the
/// features several points low.
dc_status dc_linear_probe(dc_probe_result *r, float *xtr, const int32_t *ytr, int64_t ntr, float *xte,
                          const int32_t *yte, int64_t nte, int d, int nclasses, const dc_probe_params *p);

/// Weighted k-NN: cosine similarity on L2-normalised features (both arrays
/// normalised in place), votes weighted by exp(sim / T) over the k nearest
/// training samples. Returns top-1 accuracy on the test set in *top1.
dc_status dc_knn_eval(double *top1, float *xtr, const int32_t *ytr, int64_t ntr, float *xte, const int32_t *yte,
                      int64_t nte, int d, int nclasses, int k, double T);

/* ------------------------------------------------------------------------ */
/* The run report                                                           */
/* ------------------------------------------------------------------------ */

typedef struct dc_report_opts {
    int max_super;       /* super-clusters in the browser (default 32)       */
    int subs_per_super;  /* sub-clusters shown per super-cluster (6)         */
    int thumbs_per_sub;  /* thumbnails per sub-cluster (8)                   */
    int thumb_side;      /* longest thumbnail side in pixels (64)            */
} dc_report_opts;

void dc_report_opts_default(dc_report_opts *o);
/// Writes the HTML report of the training run in directory `run` to `out`
/// (atomically): curves from stats.jsonl, the latest clustering's sizes and
/// members (thumbnails from the run's data, nearest the centroids first),
/// eval.jsonl beside its random baselines, config.json. opts NULL: defaults.
dc_status dc_report_write(const char *run, const char *out, const dc_report_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
