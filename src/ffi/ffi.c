/* ffi.c — the handle-and-array face of the library (dc/ffi.h) for callers
 * without the C structs: each function a few lines over the library's own
 * (dc_model_open, dc_feature_layer, dc_extract_features, dc_kmeans_train,
 * dc_hkmeans_train, dc_linear_probe), so that what they compute is what
 * the program computes.
 * Includes: every public header but comm.h. */
#include "dc/ffi.h"
#include "dc/cluster.h"
#include "dc/eval.h"
#include "dc/nn.h"
#include "dc/train.h"

#include <stdio.h>
#include <string.h>

struct dc_net {
    dc_model m;
    char run[4096];
};

dc_status dc_net_open(dc_net **out, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                      const char *device, const char *precision)
{
    *out = NULL;
    if (!weights) return dc_set_error(DC_STATUS_ARG, "weights: none given");
    if (in_c != 1 && in_c != 3) return dc_set_error(DC_STATUS_ARG, "images of %d channels (1 or 3)", in_c);
    dc_net *n = dc_xcalloc(1, sizeof *n);
    dc_status s = dc_model_open(&n->m, weights, in_c, sobel_random, seed, batch, device, precision, n->run,
                                sizeof n->run);
    if (s) {
        dc_free(n);
        return s;
    }
    *out = n;
    return DC_OK;
}

void dc_net_close(dc_net *n)
{
    if (!n) return;
    dc_model_free(&n->m);
    dc_free(n);
}

const char *dc_net_preset(const dc_net *n) { return n->m.preset->name; }
const char *dc_net_run_dir(const dc_net *n) { return n->run; }
int dc_net_preset_dim_pca(const dc_net *n) { return dc_preset_dim_pca(n->m.preset); }
int dc_net_nconv(const dc_net *n) { return dc_model_nconv(&n->m); }

int64_t dc_net_feature_dim(const dc_net *n, const char *name)
{
    int index, side;
    int64_t dim;
    return dc_feature_layer(&n->m, name, &index, &side, &dim) == DC_OK ? dim : 0;
}

dc_status dc_net_features(dc_net *n, dc_dataset *d, int64_t count, const char *name, float *out)
{
    int index, side;
    int64_t dim;
    dc_status s = dc_feature_layer(&n->m, name, &index, &side, &dim);
    if (s) return s;
    if (count < 1 || count > dc_dataset_size(d))
        return dc_set_error(DC_STATUS_ARG, "%lld images asked of a set of %lld", (long long)count,
                            (long long)dc_dataset_size(d));
    if (dc_dataset_channels(d) != n->m.in_c)
        return dc_set_error(DC_STATUS_ARG, "the network was opened for %d-channel images, these have %d",
                            n->m.in_c, dc_dataset_channels(d));
    dc_dataset_set_decode_hint(d, n->m.preset->eval_resize);
    return dc_extract_features(out, &n->m, d, count, index, side, "features");
}

int dc_net_input_size(const dc_net *n) { return n->m.in_size; }

dc_status dc_net_inputs(dc_net *n, dc_dataset *d, int64_t count, float *out)
{
    if (count < 1 || count > dc_dataset_size(d))
        return dc_set_error(DC_STATUS_ARG, "%lld images asked of a set of %lld", (long long)count,
                            (long long)dc_dataset_size(d));
    int S = n->m.in_size, resize = n->m.preset->eval_resize, c = dc_dataset_channels(d);
    dc_dataset_set_decode_hint(d, resize);
    float *tmp = dc_malloc(dc_transform_tmp_size(S, resize, dc_dataset_max_side(d) * 2 + resize, c) * sizeof(float),
                           "transform scratch");
    if (!tmp) return DC_STATUS_NOMEM;
    dc_image_buf b = {0};
    dc_status s = DC_OK;
    for (int64_t i = 0; i < count && s == DC_OK; i++) {
        dc_image img;
        s = dc_dataset_get(d, i, &b, &img);
        if (s == DC_OK) dc_transform_eval(out + (size_t)i * c * S * S, &img, resize, S, tmp);
    }
    dc_image_buf_free(&b);
    dc_free(tmp);
    return s;
}

dc_status dc_kmeans_flat_or_two_level(int32_t *assign, float *centroids, double *obj, const float *x, int64_t n,
                                      int d, int k, int m, int niter, uint64_t seed, int verbose)
{
    if (m < 1 || k < 1 || k % m != 0)
        return dc_set_error(DC_STATUS_ARG, "k = %d is not a multiple of %d super-clusters", k, m);
    dc_kmeans_params kp = dc_kmeans_params_default();
    kp.k = k;
    kp.niter = niter;
    kp.seed = seed;
    kp.verbose = verbose;
    kp.progress = 1;
    dc_status s;
    if (m == 1) {
        dc_kmeans_result r;
        s = dc_kmeans_train(&r, x, n, d, &kp, NULL);
        if (s) return s;
        memcpy(assign, r.assign, (size_t)n * sizeof *assign);
        memcpy(centroids, r.centroids, (size_t)k * d * sizeof *centroids);
        *obj = r.passes[r.npasses - 1].obj;
        dc_kmeans_result_free(&r);
        return DC_OK;
    }
    dc_hkmeans_result h;
    s = dc_hkmeans_train(&h, x, n, d, m, &kp, NULL, NULL);
    if (s) return s;
    for (int64_t i = 0; i < n; i++) {
        assign[2 * i] = h.super[i];
        assign[2 * i + 1] = h.sub[i];
    }
    memcpy(centroids, h.sub_centroids, (size_t)k * d * sizeof *centroids);
    *obj = h.obj2;
    dc_hkmeans_result_free(&h);
    return DC_OK;
}

dc_status dc_linear_probe_default(double out[4], float *xtr, const int32_t *ytr, int64_t ntr, float *xte,
                                  const int32_t *yte, int64_t nte, int d, int nclasses, int epochs, uint64_t seed)
{
    dc_probe_params pp = dc_probe_params_default();
    pp.epochs = epochs;
    pp.seed = seed;
    dc_probe_result r;
    dc_status s = dc_linear_probe(&r, xtr, ytr, ntr, xte, yte, nte, d, nclasses, &pp);
    if (s) return s;
    out[0] = r.top1;
    out[1] = r.top5;
    out[2] = r.lr;
    out[3] = r.val_top1;
    return DC_OK;
}
