/* features.c — the network's output for every image of a dataset under the
 * evaluation (clustering) transform, in dataset order, batch by batch; the
 * transform runs on all cores, one image per iteration.
 * Includes: dc/train.h, dc/data.h, dc/io.h, dc/nn.h. */
#include "dc/data.h"
#include "dc/io.h"
#include "dc/train.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

int64_t dc_feature_dim(const dc_model *m, int layer, int pool_side)
{
    const dc_layer *l = &m->layers[layer];
    if (pool_side > 0 && l->oh > 1) return (int64_t)l->oc * pool_side * pool_side;
    return (int64_t)l->oc * l->oh * l->ow;
}

int dc_feature_pool_side(const dc_model *m, int layer, int64_t max_dim)
{
    const dc_layer *l = &m->layers[layer];
    if ((int64_t)l->oc * l->oh * l->ow <= max_dim || l->oh <= 1) return 0;
    int s = (int)floor(sqrt((double)max_dim / l->oc));
    if (s < 1) s = 1;
    if (s > l->oh) s = l->oh;
    return s;
}

dc_status dc_feature_layer(const dc_model *m, const char *name, int *index, int *pool_side, int64_t *dim)
{
    int i = dc_model_layer_find(m, name);
    if (i < 0) return DC_STATUS_ARG; /* "layer X: expected …", set by the lookup */
    *index = i;
    *pool_side = dc_feature_pool_side(m, i, 10000);
    *dim = dc_feature_dim(m, i, *pool_side);
    return DC_OK;
}

/* PyTorch's AdaptiveAvgPool2d to s×s: bin i spans [⌊iH/s⌋, ⌈(i+1)H/s⌉). */
static void adaptive_pool(float *out, const float *in, int C, int H, int W, int s)
{
    for (int c = 0; c < C; c++)
        for (int i = 0; i < s; i++) {
            int h0 = i * H / s, h1 = ((i + 1) * H + s - 1) / s;
            for (int j = 0; j < s; j++) {
                int w0 = j * W / s, w1 = ((j + 1) * W + s - 1) / s;
                double acc = 0;
                for (int y = h0; y < h1; y++)
                    for (int x = w0; x < w1; x++) acc += in[((size_t)c * H + y) * W + x];
                out[((size_t)c * s + i) * s + j] = (float)(acc / ((h1 - h0) * (w1 - w0)));
            }
        }
}

dc_status dc_extract_features(float *out, dc_model *m, const dc_dataset *d, int64_t n, int layer, int pool_side,
                              const char *label)
{
    return dc_extract_features_range(out, m, d, 0, n, layer, pool_side, label);
}

dc_status dc_extract_features_range(float *out, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                                    int layer, int pool_side, const char *label)
{
    return dc_extract_features_layers(&out, m, d, first, n, 1, &layer, &pool_side, label);
}

/* What one extraction reuses from batch to batch: the network's input
 * batch, and per thread the transform's scratch and a decoding buffer.
 * Allocated once per call, however many chunks it writes. */
typedef struct {
    float *batch, *tmp;
    size_t tmpn;
    dc_image_buf *bufs;
    int nth;
} scratch;

static void scratch_free(scratch *w)
{
    for (int t = 0; t < w->nth; t++) dc_image_buf_free(&w->bufs[t]);
    dc_free(w->bufs);
    dc_free(w->batch);
    dc_free(w->tmp);
}

static dc_status scratch_alloc(scratch *w, const dc_model *m, const dc_dataset *d)
{
    int S = m->in_size, resize = m->preset->eval_resize, c = dc_dataset_channels(d);
    w->nth = 1;
#ifdef _OPENMP
    w->nth = omp_get_max_threads();
#endif
    w->tmpn = dc_transform_tmp_size(S, resize, dc_dataset_max_side(d) * 2 + resize, c);
    w->batch = dc_malloc((size_t)m->max_batch * c * S * S * sizeof(float), "feature batch");
    w->tmp = dc_malloc((size_t)w->nth * w->tmpn * sizeof(float), "transform scratch");
    w->bufs = dc_xcalloc((size_t)w->nth, sizeof *w->bufs);
    if (w->batch && w->tmp) return DC_OK;
    scratch_free(w);
    return DC_STATUS_NOMEM;
}

/* Images [first, first + n) of d through the network, layer layers[q]
 * pooled to pool_sides[q] into out[q]; progress reported to `bar` (may be
 * NULL) as done + the images finished. */
static dc_status extract(scratch *w, float **out, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                         int nl, const int *layers, const int *pool_sides, dc_progress *bar, int64_t done)
{
    int S = m->in_size, resize = m->preset->eval_resize, c = dc_dataset_channels(d), B = m->max_batch;
    float *batch = w->batch, *tmp = w->tmp;
    size_t tmpn = w->tmpn;
    dc_image_buf *bufs = w->bufs;
    dc_status st = DC_OK;
    for (int64_t b0 = 0; b0 < n && st == DC_OK; b0 += B) {
        int nb = (int)(n - b0 < B ? n - b0 : B);
#pragma omp parallel for schedule(dynamic, 4)
        for (int j = 0; j < nb; j++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            dc_image img;
            if (dc_dataset_get(d, first + b0 + j, &bufs[t], &img) != DC_OK) {
#pragma omp critical(dc_features_error)
                if (st == DC_OK) st = dc_set_error(DC_STATUS_FORMAT, "%s", dc_last_error());
                continue;
            }
            dc_transform_eval(batch + (size_t)j * c * S * S, &img, resize, S, tmp + (size_t)t * tmpn);
        }
        if (st) break;
        dc_model_forward(m, batch, nb, 0);
        if ((st = dc_model_status(m))) break; /* a GPU failure */
        /* one layer at a time: dc_model_layer_output's view is shared */
        for (int q = 0; q < nl; q++) {
            const dc_layer *ly = &m->layers[layers[q]];
            int64_t raw = (int64_t)ly->oc * ly->oh * ly->ow, dim = dc_feature_dim(m, layers[q], pool_sides[q]);
            const float *y = dc_model_layer_output(m, layers[q]);
            float *o = out[q] + b0 * dim;
            if (dim != raw) {
                int ps = pool_sides[q];
#pragma omp parallel for schedule(static)
                for (int j = 0; j < nb; j++) adaptive_pool(o + j * dim, y + (size_t)j * raw, ly->oc, ly->oh, ly->ow, ps);
            } else {
                memcpy(o, y, (size_t)nb * dim * sizeof(float));
            }
        }
        if ((st = dc_model_status(m))) break;
        if (bar) dc_progress_update(bar, (uint64_t)(done + b0 + nb));
    }
    return st;
}

/* A progress bar over n images titled `label`, or NULL without a label. */
static dc_progress *images_bar(const char *label, int64_t n)
{
    dc_progress_opts po = dc_progress_opts_default();
    po.unit = "img";
    return label ? dc_progress_start(label, (uint64_t)n, &po) : NULL;
}

dc_status dc_extract_features_layers(float **out, dc_model *m, const dc_dataset *d, int64_t first, int64_t n,
                                     int nl, const int *layers, const int *pool_sides, const char *label)
{
    scratch w;
    dc_status s = scratch_alloc(&w, m, d);
    if (s) return s;
    dc_progress *bar = images_bar(label, n);
    s = extract(&w, out, m, d, first, n, nl, layers, pool_sides, bar, 0);
    dc_progress_finish(bar);
    scratch_free(&w);
    return s;
}

dc_status dc_extract_features_npy(const char *path, dc_model *m, const dc_dataset *d, int64_t n, int layer,
                                  int pool_side, int64_t chunk, const char *label)
{
    return dc_extract_features_npy_range(path, m, d, 0, n, layer, pool_side, chunk, label);
}

dc_status dc_extract_features_npy_range(const char *path, dc_model *m, const dc_dataset *d, int64_t first0, int64_t n,
                                        int layer, int pool_side, int64_t chunk, const char *label)
{
    int64_t dim = dc_feature_dim(m, layer, pool_side), B = m->max_batch;
    if (chunk <= 0) { /* about 8 MB, one to eight batches */
        chunk = ((int64_t)8 << 20) / (dim * (int64_t)sizeof(float));
        chunk = chunk < B ? B : chunk > 8 * B ? 8 * B : chunk;
    }
    chunk = (chunk + B - 1) / B * B; /* whole batches: the same batches, so the same bits, as all at once */
    if (chunk > n) chunk = n > 0 ? n : 1;
    scratch sc;
    dc_status s = scratch_alloc(&sc, m, d);
    if (s) return s;
    float *buf = dc_malloc((size_t)(chunk * dim) * sizeof(float), "features");
    if (!buf) {
        scratch_free(&sc);
        return DC_STATUS_NOMEM;
    }
    dc_npy_writer w;
    s = dc_npy_writer_open(&w, path, DC_DTYPE_F32, 2, (int64_t[]){n, dim});
    dc_progress *bar = s == DC_OK ? images_bar(label, n) : NULL;
    for (int64_t first = 0; first < n && s == DC_OK; first += chunk) {
        int64_t cnt = n - first < chunk ? n - first : chunk;
        s = extract(&sc, &buf, m, d, first0 + first, cnt, 1, &layer, &pool_side, bar, first);
        if (s == DC_OK) s = dc_npy_writer_write(&w, buf, (size_t)(cnt * dim) * sizeof(float));
    }
    dc_progress_finish(bar);
    if (s == DC_OK) s = dc_npy_writer_commit(&w);
    else dc_npy_writer_abort(&w);
    dc_free(buf);
    scratch_free(&sc);
    return s;
}
