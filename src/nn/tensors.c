/* tensors.c — the model's named tensors in PyTorch's state_dict order and
 * names (weights, biases, batch-norm running statistics and counters, the
 * Sobel stage) to and from safetensors, and a model built from a weights
 * file (its architecture from the "arch" metadata or from the tensors).
 * Includes: dc/nn.h, dc/io.h. */
#include "dc/nn.h"
#include "dc/io.h"
#include "dc/kernels.h"
#include "gpu/gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Named tensors                                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    char name[64];
    dc_dtype dtype;
    int ndim;
    int64_t shape[4];
    void *data;
} named;

/* The model's tensors in state_dict order; returns the count (≤ cap). */
static int list_tensors(const dc_model *m, named *t, int cap)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const dc_layer *l = &m->layers[i];
        float *base = l->fixed ? m->fixed : m->params;
        if (l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_LINEAR || l->kind == DC_LAYER_BN) {
            DC_ASSERT(n + 5 <= cap);
            named *w = &t[n++], *b = &t[n++];
            snprintf(w->name, sizeof w->name, "%s.weight", l->name);
            snprintf(b->name, sizeof b->name, "%s.bias", l->name);
            w->dtype = b->dtype = DC_DTYPE_F32;
            w->data = base + l->w_off;
            b->data = base + l->b_off;
            b->ndim = 1;
            b->shape[0] = l->oc;
            if (l->kind == DC_LAYER_CONV) {
                w->ndim = 4;
                w->shape[0] = l->oc;
                w->shape[1] = l->c;
                w->shape[2] = w->shape[3] = l->k;
            } else if (l->kind == DC_LAYER_LINEAR) {
                w->ndim = 2;
                w->shape[0] = l->oc;
                w->shape[1] = l->c;
            } else {
                w->ndim = 1;
                w->shape[0] = l->oc;
                named *rm = &t[n++], *rv = &t[n++], *nb = &t[n++];
                snprintf(rm->name, sizeof rm->name, "%s.running_mean", l->name);
                snprintf(rv->name, sizeof rv->name, "%s.running_var", l->name);
                snprintf(nb->name, sizeof nb->name, "%s.num_batches_tracked", l->name);
                rm->dtype = rv->dtype = DC_DTYPE_F32;
                rm->ndim = rv->ndim = 1;
                rm->shape[0] = rv->shape[0] = l->oc;
                rm->data = m->stats + l->rm_off;
                rv->data = m->stats + l->rv_off;
                nb->dtype = DC_DTYPE_I64;
                nb->ndim = 0;
                nb->data = m->nbt + l->bn_index;
            }
        }
    }
    return n;
}

void dc_model_add_tensors(const dc_model *m, dc_st_writer *w)
{
    named *t = dc_xmalloc((size_t)(5 * m->nlayers + 1) * sizeof *t);
    int n = list_tensors(m, t, 5 * m->nlayers + 1);
    for (int i = 0; i < n; i++) dc_st_writer_add(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, t[i].data);
    dc_free(t);
}

dc_status dc_model_load_tensors(dc_model *m, const dc_st_file *f)
{
    named *t = dc_xmalloc((size_t)(5 * m->nlayers + 1) * sizeof *t);
    int n = list_tensors(m, t, 5 * m->nlayers + 1);
    dc_status s = DC_OK;
    for (int i = 0; i < n && s == DC_OK; i++)
        s = dc_st_read(f, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, t[i].data);
    dc_free(t);
    return s;
}

dc_status dc_model_load_file(dc_model *m, const char *path, int in_c, int max_batch)
{
    dc_st_file *f;
    dc_status s = dc_st_open(path, &f);
    if (s) return s;
    int sobel = dc_st_find(f, "sobel.0.weight") != NULL;
    const char *arch = dc_st_meta(f, "arch");
    static const char *const tried[] = {"vgg-s32", "vgg-s64", "vgg16"};
    int ntry = arch ? 1 : (int)(sizeof tried / sizeof tried[0]);
    s = DC_STATUS_FORMAT;
    for (int i = 0; i < ntry && s; i++) {
        dc_status si = dc_model_init(m, arch ? arch : tried[i], sobel, in_c, max_batch, 0);
        if (si == DC_STATUS_NOMEM) {
            dc_st_close(f);
            return si;
        }
        if (si != DC_OK) continue;
        s = dc_model_load_tensors(m, f);
        if (s) dc_model_free(m);
    }
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", dc_last_error());
        /* before the close: arch points into the file's header */
        dc_set_error(DC_STATUS_FORMAT, "%s: weights do not fit %s with %d-channel input (%s)", path,
                     arch ? arch : "any preset", in_c, why);
    }
    dc_st_close(f);
    return s ? DC_STATUS_FORMAT : DC_OK;
}
