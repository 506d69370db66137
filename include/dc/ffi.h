/* dc/ffi.h — the library for callers that cannot see its C structs (the
 * Python package, through ctypes): opaque handles and flat arrays only.
 * Each call maps onto the library's own functions, so its results are the
 * program's bit for bit; each returns a dc_status and leaves the message
 * in dc_last_error() (thread-local: read it on the calling thread).
 * Also for such callers: dc_train_main and the stop flag (dc/train.h),
 * dc_dataset_wrap (dc/data.h), dc_pca_whiten, dc_eval_clusters(_runs),
 * dc_cluster_scores_compute (dc/cluster.h, dc/eval.h), dc_knn_eval.
 * Includes: dc/core.h, dc/data.h. */
#ifndef DC_FFI_H
#define DC_FFI_H

#include "dc/core.h"
#include "dc/data.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A network opened for feature extraction.
typedef struct dc_net dc_net;

/// Opens what `weights` names (dc_model_open: a run directory, a
/// .safetensors file, random:<preset>) for images of in_c channels, batches
/// of `batch` (0: the preset's), on `device` (NULL: auto) in `precision`
/// (NULL: tf32). Free with dc_net_close.
dc_status dc_net_open(dc_net **out, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                      const char *device, const char *precision);
void dc_net_close(dc_net *n);
/// The preset's name ("vgg-s32", …).
const char *dc_net_preset(const dc_net *n);
/// The run directory when the weights were one, else "".
const char *dc_net_run_dir(const dc_net *n);
/// The preset's default clustering dimension (dc_preset_dim_pca).
int dc_net_preset_dim_pca(const dc_net *n);
/// Trainable convolutions (conv1 … convN).
int dc_net_nconv(const dc_net *n);
/// Values per image of the layer `name` as the evaluations take it
/// (dc_feature_layer): 0 with the error set when there is no such layer.
int64_t dc_net_feature_dim(const dc_net *n, const char *name);
/// The first `count` images of d through the network under the evaluation
/// transform: the layer `name`'s features, pooled as dc_feature_layer
/// says, into out (count × dc_net_feature_dim), in order — the bytes
/// `deepercluster features` writes.
dc_status dc_net_features(dc_net *n, dc_dataset *d, int64_t count, const char *name, float *out);

/// The side of the network's square input (32 for vgg-s32, 224 for vgg16).
int dc_net_input_size(const dc_net *n);
/// The first `count` images of d under the evaluation transform (shorter
/// side resized to the preset's, centre crop, normalised): what the
/// network is fed, into out (count × channels × S × S, S =
/// dc_net_input_size), so that another implementation can be compared on
/// the same input.
dc_status dc_net_inputs(dc_net *n, dc_dataset *d, int64_t count, float *out);

/// k-means as `deepercluster kmeans` (without --pca; whiten first with
/// dc_pca_whiten): m == 1, flat, assign (n) and centroids (k × d);
/// m > 1, two-level, assign (n × 2: super, sub) and centroids
/// (m × k/m × d). *obj: the final objective (two-level: level 2's).
dc_status dc_kmeans_flat_or_two_level(int32_t *assign, float *centroids, double *obj, const float *x, int64_t n,
                                      int d, int k, int m, int niter, uint64_t seed, int verbose);

/// The linear probe of `deepercluster eval linear` (dc_linear_probe with the
/// default parameters, `epochs` passes and `seed`; both arrays standardised
/// in place): out = {top1, top5 (-1 with ≤ 5 classes), lr, val_top1}.
dc_status dc_linear_probe_default(double out[4], float *xtr, const int32_t *ytr, int64_t ntr, float *xte,
                                  const int32_t *yte, int64_t nte, int d, int nclasses, int epochs, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
