/* dc/cluster.h — turning features into pseudo-labels (SPEC §4): PCA with
 * whitening, k-means with empty-cluster splitting, hierarchical k-means, and
 * the metrics that judge clusterings (NMI, ARI, accuracy, purity).
 *
 * No MPI here: the E-step (local sums and counts) and the M-step are exposed
 * separately so that a distributed caller can all-reduce between them.
 * Includes: dc/core.h, dc/io.h, dc/kernels.h.
 */
#ifndef DC_CLUSTER_H
#define DC_CLUSTER_H

#include "dc/core.h"
#include "dc/io.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* PCA with whitening                                                        */
/* ------------------------------------------------------------------------ */

/* x ↦ diag(λ^-1/2) Vᵀ (x − mean), λ the covariance's eigenvalues floored at
 * 1e-5 × the largest, V their eigenvectors, the d_out largest kept. */
typedef struct dc_pca {
    int d_in, d_out;
    float *mean;      /* (d_in)                                   */
    float *proj;      /* (d_out, d_in): diag(λ^-1/2) Vᵀ, row-major */
    float *eigvals;   /* (d_out) floored eigenvalues, descending   */
    double energy;    /* fraction of the total variance kept       */
} dc_pca;

/// Fits on the n rows of x (n×d). Covariance is accumulated in blocks of
/// rows, so x may be a memory map larger than RAM. Fails on NaN/Inf, n < 2,
/// or d_out outside [1, d]. Allocates p's arrays (dc_pca_free).
dc_status dc_pca_fit(dc_pca *p, const float *x, int64_t n, int d, int d_out);
/// As dc_pca_fit on at most `max_rows` rows drawn at random (seeded)
/// when n is larger: the original fits on d(d−1)/2 images at most.
dc_status dc_pca_fit_sample(dc_pca *p, const float *x, int64_t n, int d,
                            int d_out, int64_t max_rows, uint64_t seed);
/// out (n×d_out) = whitened projection of x (n×d_in); then, if `l2`, each
/// row L2-normalised. Processes blocks; out must not alias x.
void dc_pca_apply(const dc_pca *p, float *out, const float *x, int64_t n,
                  int l2);
/// dc_pca_fit_sample on a row source (dc/io.h): from a file, the sampled
/// rows are read a block at a time (never all at once, but for the Gram
/// path: fewer rows than columns), giving the in-memory fit bit for bit.
dc_status dc_pca_fit_rows(dc_pca *p, dc_rows *x, int d_out, int64_t max_rows, uint64_t seed);
/// dc_pca_apply on a row source, a block at a time, into out (x->n ×
/// d_out) or, when out is NULL, appended to the open writer w.
dc_status dc_pca_apply_rows(const dc_pca *p, dc_rows *x, float *out, dc_npy_writer *w, int l2);
/// The rows of x whitened by p and L2-normalised, as a row source out:
/// into memory (*owned, the caller's to free) when scratch is NULL, else
/// into the .npy file `scratch`, which out reads a block at a time (the
/// caller removes it after closing out).
dc_status dc_pca_whitened_rows(const dc_pca *p, dc_rows *x, const char *scratch, float **owned, dc_rows *out);
/// dc_pca_apply in place, a block of rows at a time: x (n × d_in) then
/// holds the n × d_out results from its start (d_out ≤ d_in; the same
/// values as dc_pca_apply), so features need no second buffer.
dc_status dc_pca_apply_inplace(const dc_pca *p, float *x, int64_t n, int l2);
/// safetensors with tensors "mean", "proj", "eigvals" and metadata.
dc_status dc_pca_save(const dc_pca *p, const char *path);
dc_status dc_pca_load(dc_pca *p, const char *path);
void dc_pca_free(dc_pca *p);
/// PCA-whitening + L2 as `deepercluster kmeans --pca` does it: fitted on
/// at most `sample` rows of x (n×d) drawn with `seed` (-1: d(d−1)/2, the
/// original's; at least 2), the n rows projected to dim dimensions and
/// L2-normalised into out (n×dim); the fitted PCA saved to save_path
/// when non-NULL.
dc_status dc_pca_whiten(float *out, const float *x, int64_t n, int d, int dim, int64_t sample, uint64_t seed,
                        const char *save_path);

/* ------------------------------------------------------------------------ */
/* k-means                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct dc_kmeans_params {
    int k;            /* number of clusters                              */
    int niter;        /* update passes; one assignment pass follows      */
    uint64_t seed;
    uint32_t group;   /* RNG coordinate: distinct runs with one seed     */
    int verbose;      /* log every pass (else only the last)             */
    int progress;     /* progress bar over passes                        */
    const char *label;/* name in logs, e.g. "level 1"                    */
    int gpu;          /* the E-step on this CUDA device (-1: the CPU, the
                         default; needs a CUDA build, gpu/gpu_kmeans.h)  */
    int64_t device_rows; /* GPU: points held on it at once (0: as many as
                         fit; fewer: streamed through it each pass)      */
} dc_kmeans_params;

dc_kmeans_params dc_kmeans_params_default(void);

/// Checks the parameters for n points: NULL if fine, else a message.
const char *dc_kmeans_params_check(const dc_kmeans_params *p, int64_t n);

typedef struct dc_kmeans_pass {
    double obj;        /* sum of squared distances to the centroids     */
    int nsplit;        /* empty clusters split after this pass          */
    double imbalance;  /* k · Σ count² / n²  (1 = perfectly balanced)    */
    double seconds;
} dc_kmeans_pass;

typedef struct dc_kmeans_result {
    int k, d;
    int64_t n;
    float *centroids;        /* (k, d)                                   */
    int32_t *assign;         /* (n) cluster of each point                */
    int64_t *counts;         /* (k)                                      */
    dc_kmeans_pass *passes;  /* (npasses = niter + 1)                    */
    int npasses;
    int total_splits;
} dc_kmeans_result;

/// Lloyd's k-means on x (n×d) as the original computes it (SPEC §4.3–4.5):
/// `niter` passes of assignment + centroid update, then a final assignment
/// pass; empty clusters are split after every pass. Initial centroids are
/// `init` (k×d, warm restart) or, when NULL, k distinct random rows (with
/// replacement when n < k). Rejects NaN/Inf input.
dc_status dc_kmeans_train(dc_kmeans_result *r, const float *x, int64_t n,
                          int d, const dc_kmeans_params *p,
                          const float *init);
/// As dc_kmeans_train on a row source (dc/io.h): a file is read chunk by
/// chunk of whole E-step blocks, so the result equals the in-memory one bit
/// for bit whatever the source's buffer size.
dc_status dc_kmeans_train_rows(dc_kmeans_result *r, dc_rows *x, const dc_kmeans_params *p,
                               const float *init);
/// An error naming `label`, the row and the column of the first NaN or
/// infinity of x; DC_OK when there is none.
dc_status dc_rows_check_finite(dc_rows *x, const char *label);
/// out (x->n) = each row's squared norm.
dc_status dc_rows_sqnorms(float *out, dc_rows *x);
/// The first row of x with a NaN or infinity (its column in *col), or -1;
/// a read error in *s.
int64_t dc_rows_find_nonfinite(dc_rows *x, int *col, dc_status *s);
void dc_kmeans_result_free(dc_kmeans_result *r);
/// Sets r's sizes and allocates its arrays (centroids zeroed) for k
/// clusters of dimension d, n points and niter + 1 passes; on failure r is
/// left empty. (Shared by dc_kmeans_train and its distributed version.)
dc_status dc_kmeans_result_alloc(dc_kmeans_result *r, int k, int d, int64_t n, int niter);
/// Records pass `pass` of r: objective, splits, the imbalance of r->counts
/// over n_total points and the seconds since t0; returns the record.
dc_kmeans_pass *dc_kmeans_record_pass(dc_kmeans_result *r, int pass, double obj, int nsplit, int64_t n_total,
                                      double t0);

/// Picks initial centroids into c (k×d): k distinct random rows of x, or
/// with replacement when n < k; the draw depends on (seed, group) only.
void dc_kmeans_init_centroids(float *c, const float *x, int64_t n, int d,
                              int k, uint64_t seed, uint32_t group);

/// The row indices dc_kmeans_init_centroids picks (k of them, from n).
void dc_kmeans_init_rows(int64_t *rows, int64_t n, int k, uint64_t seed, uint32_t group);

/* The building blocks, for distributed callers. */

/// Scratch for the E-step: the block of point–centroid products.
typedef struct dc_kmeans_work {
    float *dots;   /* (block, k)  */
    float *cnorm;  /* (k)         */
    float *xnorm;  /* (block)     */
    int64_t block;
    int k;
} dc_kmeans_work;

dc_status dc_kmeans_work_init(dc_kmeans_work *w, int k, int d);
void dc_kmeans_work_free(dc_kmeans_work *w);

/// E-step over n local points: assign[i] = nearest centroid (ties to the
/// lower index); sums (k×d, double) and counts (k) are *overwritten* with
/// this slice's totals. `xnorm` (n): the points' squared norms, computed
/// once by the caller (NULL: computed here). Returns the objective.
double dc_kmeans_assign(int32_t *assign, double *sums, int64_t *counts,
                        const float *x, const float *xnorm, int64_t n, int d,
                        const float *centroids, int k, dc_kmeans_work *w);

/// dc_kmeans_assign on a row source (*obj: the objective): from memory, the
/// same call; else chunk by chunk of whole E-step blocks, the same bits.
dc_status dc_kmeans_assign_rows(double *obj, int32_t *assign, double *sums, int64_t *counts, dc_rows *x,
                                const float *xnorm, const float *centroids, int k, dc_kmeans_work *w);
/// M-step from global sums and counts: centroid j = sums_j / counts_j for
/// every non-empty j (empty ones keep their value until split).
void dc_kmeans_update(float *centroids, const double *sums,
                      const int64_t *counts, int k, int d);

/// One split of SPEC §4.4: cluster `empty` took `moved` members of `donor`.
typedef struct dc_kmeans_split {
    int32_t empty, donor;
    int64_t moved;
} dc_kmeans_split;

/// Splits every empty cluster (SPEC §4.4): donor drawn uniformly among the
/// clusters that were non-empty with at least 2 members; centroid copied and
/// the pair moved apart by ±1e-7 alternating over dimensions; the donor's
/// count halved. Deterministic in (seed, group, pass), so every rank of a
/// distributed run takes the same decisions. Returns the number of splits
/// written to `splits` (room for k). Clusters that cannot be split (no donor
/// with 2 members, i.e. n < k) stay empty.
int dc_kmeans_split_empty(float *centroids, int64_t *counts, int k, int d,
                          uint64_t seed, uint32_t group, int pass,
                          dc_kmeans_split *splits);

/// Applies the splits of one pass to local assignments in a single sweep:
/// the donor's members, ranked in index order, go to the splits' new
/// clusters in split order (the first `moved` to the first split, and so
/// on). `skip` (k entries, NULL = all 0) gives, per cluster, how many of its
/// members lower ranks hold, so that a distributed run moves exactly the
/// members a single process would.
void dc_kmeans_apply_splits(int32_t *assign, int64_t n, int k,
                            const dc_kmeans_split *splits, int nsplit,
                            const int64_t *skip);

/* ------------------------------------------------------------------------ */
/* Hierarchical k-means                                                     */
/* ------------------------------------------------------------------------ */

typedef struct dc_hkmeans_result {
    int m, k_sub, d;            /* k = m · k_sub                          */
    int64_t n;
    int32_t *super;             /* (n) super-cluster of each point        */
    int32_t *sub;               /* (n) sub-cluster within its super       */
    float *super_centroids;     /* (m, d)                                 */
    float *sub_centroids;       /* (m, k_sub, d)                          */
    int64_t *super_counts;      /* (m)                                    */
    int64_t *sub_counts;        /* (m, k_sub)                             */
    double obj1, obj2;          /* final objectives of the two levels     */
    int splits1, splits2;       /* empty clusters split at each level     */
} dc_hkmeans_result;

/// Level 1 into m super-clusters over all points, then level 2 into k/m
/// sub-clusters inside each super-cluster (SPEC §4.3–4.5). m == 1 skips
/// level 1; k/m == 1 skips level 2. `warm_super` (m×d) and `warm_sub`
/// (m×k/m×d) restart from previous centroids when non-NULL. p->k is the
/// total k; p->group is ignored (levels use their own RNG coordinates).
dc_status dc_hkmeans_train(dc_hkmeans_result *r, const float *x, int64_t n,
                           int d, int m, const dc_kmeans_params *p,
                           const float *warm_super, const float *warm_sub);
/// Where clustering keeps what does not fit in memory.
typedef struct dc_cluster_memory {
    int64_t budget;      /* bytes of features held at once; 0: no limit   */
    const char *scratch; /* folder for scratch files (NULL: the current)  */
} dc_cluster_memory;
/// As dc_hkmeans_train on a row source (dc/io.h). From a file, each
/// super-cluster's members are read into memory when they fit mem->budget,
/// else copied to a scratch .npy in mem->scratch that level 2 streams over
/// (removed after); the result equals the in-memory one bit for bit.
dc_status dc_hkmeans_train_rows(dc_hkmeans_result *r, dc_rows *x, int m, const dc_kmeans_params *p,
                                const float *warm_super, const float *warm_sub, const dc_cluster_memory *mem);
/// c (d) = mean of the rows idx[0 … cnt) of x (n×d) — all of the first
/// cnt rows when idx is NULL — summed in double.
void dc_mean_rows(float *c, const float *x, const int64_t *idx, int64_t cnt, int d);
/// dc_mean_rows on a row source: c (d) = the mean of rows idx[0 … cnt) of
/// x (all of its first cnt when idx is NULL), summed in double in index
/// order, read B rows at a time through blk (B × d): the same bits however
/// the rows come (memory, a file, other processes).
dc_status dc_rows_mean(float *c, dc_rows *x, const int64_t *idx, int64_t cnt, float *blk, int64_t B);
/// Level 2 of super-cluster c alone: k-means of its members (r->super[i]
/// == c, r->n rows of x) into r->k_sub sub-clusters, written to r->sub of
/// the members, r->sub_centroids and r->sub_counts of c; its objective and
/// splits to *obj and *splits. idx (r->n) and buf (members × d) are scratch.
dc_status dc_hkmeans_level2(dc_hkmeans_result *r, const float *x, int c, const dc_kmeans_params *p,
                            const float *warm_sub, int64_t *idx, float *buf, double *obj, int *splits);
/// Level 2 of super-cluster c from its members' rows already gathered
/// (members: rows idx[0 … members->n) of the data, in that order; k/m > 1):
/// their k-means into r->sub of idx, r->sub_centroids and r->sub_counts of
/// c; its objective and splits to *obj and *splits.
dc_status dc_hkmeans_level2_rows(dc_hkmeans_result *r, int c, dc_rows *members, const int64_t *idx,
                                 const dc_kmeans_params *p, const float *warm_sub, double *obj, int *splits);
/// Checks k, m and n and allocates every array of r for n points of
/// dimension d; on failure r is left empty. (The start of
/// dc_hkmeans_train, shared with the distributed version.)
dc_status dc_hkmeans_result_init(dc_hkmeans_result *r, int64_t n, int d, int m, const dc_kmeans_params *p);
/// Level 1's outcome into r: from k1 (centroids, counts, objective,
/// splits; not the assignments) or, when k1 is NULL (m = 1), one
/// super-cluster of every point with the mean of x (r->n rows) as centroid.
/// The parameters of level 1: p with k = m, RNG group 0 and its label.
dc_kmeans_params dc_hkmeans_level1_params(const dc_kmeans_params *p, int m);
void dc_hkmeans_set_level1(dc_hkmeans_result *r, const dc_kmeans_result *k1, const float *x);
void dc_hkmeans_result_free(dc_hkmeans_result *r);

/* ------------------------------------------------------------------------ */
/* Metrics (scikit-learn's definitions)                                     */
/* ------------------------------------------------------------------------ */

/* Labels are any non-negative int32 values; they need not be contiguous. */

typedef struct dc_cluster_scores {
    double nmi;      /* normalized mutual information, arithmetic mean    */
    double ari;      /* adjusted Rand index                               */
    double acc;      /* best one-to-one matching (Hungarian); -1 if skipped */
    double purity;   /* fraction in the majority label of its cluster     */
} dc_cluster_scores;

/// Scores `pred` against `truth` (n each). Accuracy needs a dense
/// matching; it is skipped (-1) when either side has over 4096 labels.
dc_status dc_cluster_scores_compute(dc_cluster_scores *s, const int32_t *pred,
                                    const int32_t *truth, int64_t n);
/// NMI alone (e.g. stability between two successive assignments).
dc_status dc_nmi(double *out, const int32_t *a, const int32_t *b, int64_t n);

/// Maximum-weight perfect matching on a rows×cols matrix of non-negative
/// weights (rows ≤ cols after internal transposition); col_of_row[r] gets
/// the column matched to row r. Returns the total weight.
double dc_hungarian_max(const double *w, int rows, int cols, int *col_of_row);

#ifdef __cplusplus
}
#endif
#endif
