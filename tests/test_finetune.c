/* test_finetune.c — the fine-tuning step (dc/finetune.h) against PyTorch
 * (tools/gen_finetune_fixture.py: eval_voc_classif.py --fc6_8's recipe,
 * two steps, the first clipped), the classifier mode leaving every
 * parameter below the classifier and every running statistic bit-identical,
 * the re-initialisation (N(0, 0.01), biases 0.1), and the whole-network
 * mode moving the convolutions and lowering the loss. With
 * DC_TEST_DEVICE=cuda (make check-gpu) the same on the GPU engine, in fp32,
 * and the GPU's steps against the CPU's in both modes, with and without
 * dropout. */
#include "dc/finetune.h"
#include "dc/io.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const dc_preset spec = {"ft", 8, "4 M", 16, 0.5f, 8};

static double maxdiff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

static const float *tensor(const dc_st_file *f, const char *name)
{
    const dc_st_tensor *t = dc_st_find(f, name);
    CHECK_MSG(t != NULL, "fixture: no tensor %s", name);
    return t ? (const float *)t->data : NULL;
}

/* On the GPU engine in fp32 when gpu is set (the model as built, its
 * parameters uploaded). */
static void place(dc_model *m, int gpu)
{
    if (!gpu) return;
    dc_device d;
    CHECK(dc_device_parse(&d, "cuda", "fp32", 0) == DC_OK);
    dc_status s = dc_model_use_device(m, &d);
    CHECK_MSG(s == DC_OK && m->gpu, "the model onto the GPU: %s", dc_last_error());
}

static void parity(int gpu)
{
    dc_st_file *f = NULL;
    CHECK(dc_st_open(test_fixture("finetune", "step.safetensors"), &f) == DC_OK);
    if (!f) return;
    dc_model m;
    CHECK(dc_model_init_spec(&m, &spec, 0, 1, 6, 1) == DC_OK);
    dc_finetuner ft;
    CHECK(dc_finetuner_init(&ft, &m, 3, DC_FINETUNE_CLASSIFIER, 7) == DC_OK);
    /* the re-initialisation: N(0, 0.01) weights, 0.1 biases */
    const dc_layer *c0 = &m.layers[ft.from];
    CHECK(c0->kind == DC_LAYER_LINEAR && strcmp(c0->name, "body.classifier.0") == 0);
    double s = 0, s2 = 0;
    int64_t nw = (int64_t)c0->c * c0->oc;
    for (int64_t i = 0; i < nw; i++) {
        s += m.params[c0->w_off + i];
        s2 += (double)m.params[c0->w_off + i] * m.params[c0->w_off + i];
    }
    double sd = sqrt(s2 / nw - (s / nw) * (s / nw));
    CHECK_MSG(fabs(sd - 0.01) < 0.001 && fabs(s / nw) < 0.001, "classifier init: mean %g, sd %g", s / nw, sd);
    CHECK(m.params[c0->b_off] == 0.1f && ft.hb[2] == 0.1f);

    CHECK(dc_model_load_tensors(&m, f) == DC_OK);
    memcpy(ft.hw, tensor(f, "top.weight"), 3 * 16 * sizeof(float));
    memcpy(ft.hb, tensor(f, "top.bias"), 3 * sizeof(float));
    place(&m, gpu);
    const double tol_loss = gpu ? 2e-5 : 1e-5, tol_param = gpu ? 1e-5 : 2e-6;
    const float *x = tensor(f, "x"), *losses = tensor(f, "losses");
    const int32_t *y = (const int32_t *)dc_st_find(f, "y")->data;
    float *before = dc_xmalloc((size_t)m.nparams * sizeof(float)), *stats = dc_xmalloc((size_t)m.nstats * sizeof(float));
    memcpy(before, m.params, (size_t)m.nparams * sizeof(float));
    memcpy(stats, m.stats, (size_t)m.nstats * sizeof(float));
    for (int step = 1; step <= 2; step++) {
        double loss;
        int hits;
        dc_finetuner_step(&ft, x, y, 6, 0.1f, 0, &loss, &hits);
        printf("step %d: loss %.7f (PyTorch %.7f)\n", step, loss, losses[step - 1]);
        CHECK_MSG(dc_model_status(&m) == DC_OK, "step %d on the GPU: %s", step, dc_last_error());
        CHECK(dc_finetuner_sync(&ft, 1) == DC_OK); /* on the GPU: what the device holds, to the host */
        CHECK_MSG(fabs(loss - losses[step - 1]) < tol_loss, "step %d: loss %g, PyTorch %g", step, loss,
                  losses[step - 1]);
        char name[96];
        double worst = 0;
        for (int i = 0; i < m.nlayers; i++) {
            const dc_layer *l = &m.layers[i];
            if (l->kind != DC_LAYER_LINEAR) continue;
            snprintf(name, sizeof name, "after%d.%s.weight", step, l->name);
            const float *w = tensor(f, name);
            if (w) worst = fmax(worst, maxdiff(m.params + l->w_off, w, (int64_t)l->c * l->oc));
            snprintf(name, sizeof name, "after%d.%s.bias", step, l->name);
            const float *b = tensor(f, name);
            if (b) worst = fmax(worst, maxdiff(m.params + l->b_off, b, l->oc));
        }
        snprintf(name, sizeof name, "after%d.top.weight", step);
        if (tensor(f, name)) worst = fmax(worst, maxdiff(ft.hw, tensor(f, name), 3 * 16));
        snprintf(name, sizeof name, "after%d.top.bias", step);
        if (tensor(f, name)) worst = fmax(worst, maxdiff(ft.hb, tensor(f, name), 3));
        printf("step %d%s: parameters within %.2g of PyTorch's\n", step, gpu ? " (GPU engine, fp32)" : "", worst);
        CHECK_MSG(worst < tol_param, "step %d: parameters differ from PyTorch's by %g", step, worst);
    }
    /* classifier mode: nothing below the classifier moved, no statistic either */
    int64_t lo = m.layers[ft.from].w_off < m.layers[ft.from].b_off ? m.layers[ft.from].w_off : m.layers[ft.from].b_off;
    int same = 1;
    for (int i = 0; i < ft.from; i++) {
        const dc_layer *l = &m.layers[i];
        if (l->w_off >= 0 && !l->fixed && l->kind != DC_LAYER_LINEAR) {
            int64_t n = l->kind == DC_LAYER_CONV ? (int64_t)l->oc * l->c * l->k * l->k : l->c;
            same &= memcmp(m.params + l->w_off, before + l->w_off, (size_t)n * sizeof(float)) == 0;
            same &= memcmp(m.params + l->b_off, before + l->b_off, (size_t)l->oc * sizeof(float)) == 0;
        }
    }
    CHECK_MSG(same && lo > 0, "classifier mode changed a parameter below the classifier");
    CHECK_MSG(memcmp(stats, m.stats, (size_t)m.nstats * sizeof(float)) == 0, "classifier mode moved a running statistic");
    dc_free(before);
    dc_free(stats);
    dc_finetuner_free(&ft);
    dc_model_free(&m);
    dc_st_close(f);
}

/* A fixed batch of 12 images of three classes that a network can tell apart. */
static void batch12(float *x, int32_t *y)
{
    dc_rng r;
    dc_rng_init(&r, 9, DC_RNG_STREAM_TEST, 0, 0);
    for (int i = 0; i < 12; i++) {
        y[i] = i % 3;
        for (int p = 0; p < 64; p++) x[i * 64 + p] = (float)dc_rng_normal(&r) + (p % 8 < 3 * y[i] + 2 ? 1.5f : -1.0f);
    }
}

/* The whole network: the convolutions move, the loss on a fixed batch falls. */
static void whole(int gpu)
{
    dc_model m;
    CHECK(dc_model_init_spec(&m, &spec, 0, 1, 12, 3) == DC_OK);
    place(&m, gpu);
    dc_finetuner ft;
    CHECK(dc_finetuner_init(&ft, &m, 3, DC_FINETUNE_ALL, 4) == DC_OK);
    float x[12 * 64];
    int32_t y[12];
    batch12(x, y);
    float conv0 = m.params[m.layers[1].w_off];
    double first = 0, last = 0;
    for (int step = 0; step < 60; step++) {
        int hits;
        dc_finetuner_step(&ft, x, y, 12, 0.2f, 1, &last, &hits);
        if (step == 0) first = last;
    }
    CHECK_MSG(dc_model_status(&m) == DC_OK, "whole network on the GPU: %s", dc_last_error());
    CHECK(dc_finetuner_sync(&ft, 1) == DC_OK);
    printf("whole network%s: loss %.4f -> %.4f over 60 steps\n", gpu ? " (GPU engine)" : "", first, last);
    CHECK_MSG(last < 0.5 * first, "whole-network loss %g -> %g", first, last);
    CHECK(m.layers[1].kind == DC_LAYER_CONV && m.params[m.layers[1].w_off] != conv0);
    dc_finetuner_free(&ft);
    dc_model_free(&m);
}

/* Average precision against scikit-learn's definition (values worked by
 * hand), and the multi-label step's loss against its closed form. */
static void multi(int gpu)
{
    const float sc[6] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.95f};
    const int8_t t[6] = {1, 0, 1, 0, 1, -1}; /* the last ignored */
    double ap = dc_average_precision(sc, t, 6, 1);
    CHECK_MSG(fabs(ap - (1.0 + 2.0 / 3 + 3.0 / 5) / 3) < 1e-12, "AP %g", ap);
    const float tie[4] = {0.9f, 0.5f, 0.5f, 0.1f};
    const int8_t tt[4] = {1, 0, 1, 0};
    ap = dc_average_precision(tie, tt, 4, 1);
    CHECK_MSG(fabs(ap - (0.5 + 0.5 * 2.0 / 3)) < 1e-12, "AP with a tie %g", ap); /* the tie is one threshold */
    const int8_t none[4] = {0, 0, -1, 0};
    CHECK(dc_average_precision(tie, none, 4, 1) == -1);
    const float strided[6] = {0.1f, 0.9f, 0.2f, 0.8f, 0.3f, 0.7f}; /* column 1 of (3, 2) */
    const int8_t st[6] = {0, 0, 0, 1, 0, 1};
    CHECK(fabs(dc_average_precision(strided + 1, st + 1, 3, 2) - (0.5 * 0.5 + 0.5 * 2.0 / 3)) < 1e-12);

    dc_model m;
    CHECK(dc_model_init_spec(&m, &spec, 0, 1, 4, 3) == DC_OK);
    place(&m, gpu);
    dc_finetuner ft;
    CHECK(dc_finetuner_init(&ft, &m, 2, DC_FINETUNE_CLASSIFIER, 4) == DC_OK);
    float x[4 * 64];
    for (int i = 0; i < 4 * 64; i++) x[i] = (float)((i * 37 % 11) - 5) * 0.3f;
    const int8_t tg[8] = {1, 0, 0, -1, 1, 1, -1, -1};
    float logits[8];
    dc_finetuner_logits(&ft, x, 4, logits); /* no dropout: the step's first forward sees these */
    double want = 0;
    for (int i = 0; i < 8; i++)
        if (tg[i] >= 0) want += log1p(exp(-logits[i])) + (tg[i] ? 0 : logits[i]);
    double loss;
    dc_finetuner_step_multi(&ft, x, tg, 4, 0.1f, 0, &loss);
    CHECK_MSG(fabs(loss - want / 4) < 1e-6, "multi-label loss %g, expected %g", loss, want / 4);
    dc_finetuner_free(&ft);
    dc_model_free(&m);
}

/* The GPU engine's steps against the CPU's from the same weights and
 * batch: both modes, dropout on and off (the masks are the same Philox
 * draws), 8 steps; losses within 1e-3 (relative) and every parameter
 * within 1e-3 of the parameters' scale (rounding differences grow from step
 * to step; a wrong gradient or update is off by far more). */
static void gpu_vs_cpu(dc_finetune_mode mode, int dropout)
{
    dc_model m[2];
    dc_finetuner ft[2];
    for (int d = 0; d < 2; d++) {
        CHECK(dc_model_init_spec(&m[d], &spec, 0, 1, 12, 3) == DC_OK);
        place(&m[d], d);
        CHECK(dc_finetuner_init(&ft[d], &m[d], 3, mode, 4) == DC_OK);
    }
    float x[12 * 64];
    int32_t y[12];
    batch12(x, y);
    double worst_loss = 0;
    for (int step = 0; step < 8; step++) {
        double loss[2];
        int hits[2];
        for (int d = 0; d < 2; d++) dc_finetuner_step(&ft[d], x, y, 12, 0.05f, dropout, &loss[d], &hits[d]);
        CHECK_MSG(dc_model_status(&m[1]) == DC_OK, "GPU step: %s", dc_last_error());
        worst_loss = fmax(worst_loss, fabs(loss[0] - loss[1]) / fmax(1e-3, fabs(loss[0])));
    }
    CHECK(dc_finetuner_sync(&ft[1], 1) == DC_OK);
    double mdiff = maxdiff(ft[0].mom, ft[1].mom, m[0].nparams);
    double scale = 0, diff = maxdiff(m[0].params, m[1].params, m[0].nparams);
    for (int64_t i = 0; i < m[0].nparams; i++) scale = fmax(scale, fabs(m[0].params[i]));
    double sdiff = maxdiff(m[0].stats, m[1].stats, m[0].nstats);
    printf("GPU against CPU, %s mode, dropout %d: losses within %.2g (relative), parameters within %.2g of %.3g, "
           "running statistics within %.2g, momentum within %.2g\n",
           mode == DC_FINETUNE_ALL ? "whole-network" : "classifier", dropout, worst_loss, diff, scale, sdiff, mdiff);
    CHECK_MSG(worst_loss < 1e-3, "GPU and CPU losses differ by %g (relative)", worst_loss);
    CHECK_MSG(diff < 1e-3 * scale, "GPU and CPU parameters differ by %g", diff);
    CHECK_MSG(sdiff < 1e-3, "GPU and CPU running statistics differ by %g", sdiff);
    CHECK_MSG(mdiff < 1e-3 * scale / 0.05, "GPU and CPU momentum differ by %g", mdiff);
    if (mode == DC_FINETUNE_CLASSIFIER)
        CHECK_MSG(memcmp(m[0].stats, m[1].stats, (size_t)m[0].nstats * sizeof(float)) == 0,
                  "classifier mode moved a running statistic on the GPU");
    for (int d = 0; d < 2; d++) {
        dc_finetuner_free(&ft[d]);
        dc_model_free(&m[d]);
    }
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    /* DC_TEST_DEVICE=cuda (make check-gpu): the GPU engine */
    const char *dev = getenv("DC_TEST_DEVICE");
    if (dev && strcmp(dev, "cuda") == 0) {
        if (dc_device_gpu_count() == 0) {
            printf("SKIP: no CUDA GPU visible (or a build without CUDA): the GPU fine-tuning tests did not run\n");
            return TEST_SUMMARY();
        }
        parity(1);
        whole(1);
        multi(1);
        gpu_vs_cpu(DC_FINETUNE_CLASSIFIER, 0);
        gpu_vs_cpu(DC_FINETUNE_CLASSIFIER, 1);
        gpu_vs_cpu(DC_FINETUNE_ALL, 1);
        return TEST_SUMMARY();
    }
    parity(0);
    whole(0);
    multi(0);
    return TEST_SUMMARY();
}
