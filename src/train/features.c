/* features.c — the network's output for every image of a dataset under the
 * evaluation (clustering) transform, in dataset order, batch by batch; the
 * transform runs on all cores, one image per iteration.
 * Includes: dc/train.h, dc/data.h, dc/nn.h. */
#include "dc/data.h"
#include "dc/train.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

dc_status dc_extract_features(float *out, dc_model *m, const dc_dataset *d, int64_t n, int layer,
                              const char *label)
{
    int S = m->in_size, resize = m->preset->eval_resize, c = dc_dataset_channels(d), B = m->max_batch;
    int64_t dim = (int64_t)m->layers[layer].oc * m->layers[layer].oh * m->layers[layer].ow;
    int side = dc_dataset_height(d) > dc_dataset_width(d) ? dc_dataset_height(d) : dc_dataset_width(d);
    size_t tmpn = dc_transform_tmp_size(S, resize, side * 2 + resize, c);
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    float *batch = dc_malloc((size_t)B * c * S * S * sizeof(float), "feature batch");
    float *tmp = dc_malloc((size_t)nth * tmpn * sizeof(float), "transform scratch");
    if (!batch || !tmp) {
        dc_free(batch);
        dc_free(tmp);
        return DC_STATUS_NOMEM;
    }
    dc_progress_opts po = dc_progress_opts_default();
    po.unit = "img";
    dc_progress *bar = label ? dc_progress_start(label, (uint64_t)n, &po) : NULL;
    for (int64_t b0 = 0; b0 < n; b0 += B) {
        int nb = (int)(n - b0 < B ? n - b0 : B);
#pragma omp parallel for schedule(static)
        for (int j = 0; j < nb; j++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            dc_image img = dc_dataset_image(d, b0 + j);
            dc_transform_eval(batch + (size_t)j * c * S * S, &img, resize, S, tmp + (size_t)t * tmpn);
        }
        dc_model_forward(m, batch, nb, 0);
        memcpy(out + b0 * dim, dc_model_layer_output(m, layer), (size_t)nb * dim * sizeof(float));
        if (bar) dc_progress_update(bar, (uint64_t)(b0 + nb));
    }
    dc_progress_finish(bar);
    dc_free(batch);
    dc_free(tmp);
    return DC_OK;
}
