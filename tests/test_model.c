/* test_model.c — the network as data: preset shapes and state_dict names,
 * SPEC §2 initialisation, whole-model gradients against finite differences,
 * train/eval modes, SGD with PyTorch semantics, heads, and the safetensors
 * round trip of the weights. */
#include "dc/io.h"
#include "dc/kernels.h"
#include "dc/nn.h"
#include "test.h"

#include <math.h>

static const dc_preset tiny = {"tiny", 12, "4 M 6 M", 10, 0.5f, 12};

static void test_presets(void)
{
    dc_model m;
    CHECK(dc_model_init(&m, "vgg-s32", 1, 3, 2, 1) == DC_OK);
    CHECK_EQ_INT(m.feat_dim, 512);
    CHECK_EQ_INT(dc_model_nconv(&m), 6);
    const dc_layer *l0 = &m.layers[0], *s1 = &m.layers[2], *c1 = &m.layers[3];
    CHECK(l0->kind == DC_LAYER_PAD && l0->pad == 2 && l0->oh == 36);
    CHECK(s1->kind == DC_LAYER_CONV && s1->fixed && s1->oh == 34 && s1->oc == 2);
    CHECK(c1->kind == DC_LAYER_CONV && !c1->fixed && c1->c == 2 && strcmp(c1->name, "body.features.0") == 0);
    int flat = -1;
    for (int i = 0; i < m.nlayers; i++)
        if (m.layers[i].kind == DC_LAYER_FLATTEN) flat = i;
    CHECK(flat > 0 && m.layers[flat].oc == 256 * 4 * 4);
    CHECK(strcmp(m.layers[m.nlayers - 1].name, "body.classifier.3") == 0);
    int r3 = dc_model_conv_relu(&m, 3);
    CHECK(r3 > 0 && m.layers[r3].kind == DC_LAYER_RELU && m.layers[r3].oc == 128);
    /* SPEC §2 initialisation */
    const dc_layer *c2 = &m.layers[dc_model_conv_relu(&m, 2) - 2];
    int64_t nw = (int64_t)c2->oc * c2->c * 9;
    double s2 = 0;
    for (int64_t i = 0; i < nw; i++) s2 += (double)m.params[c2->w_off + i] * m.params[c2->w_off + i];
    CHECK_CLOSE(sqrt(s2 / nw), sqrt(2.0 / (9 * 64)), 0.01);
    CHECK(m.params[c2->b_off] == 0);
    CHECK(m.fixed[s1->w_off] == 1 && m.fixed[s1->w_off + 2] == -1 && m.fixed[s1->w_off + 9 + 1] == 2);
    CHECK(fabsf(m.fixed[m.layers[1].w_off] - 1.0f / 3.0f) < 1e-7f);
    dc_model_free(&m);

    CHECK(dc_model_init(&m, "vgg16", 0, 3, 1, 1) == DC_OK);
    CHECK_EQ_INT(dc_model_nconv(&m), 13);
    CHECK_EQ_INT(m.feat_dim, 4096);
    CHECK(m.layers[0].pad == 1 && m.layers[1].c == 3);
    for (int i = 0; i < m.nlayers; i++)
        if (m.layers[i].kind == DC_LAYER_FLATTEN) CHECK(m.layers[i].oc == 512 * 7 * 7);
    int64_t want = 0; /* torchvision-style count: convs + BN + classifier */
    int cfg[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512}, c = 3;
    for (int i = 0; i < 13; i++) {
        want += (int64_t)cfg[i] * c * 9 + cfg[i] + 2 * cfg[i];
        c = cfg[i];
    }
    want += 25088LL * 4096 + 4096 + 4096LL * 4096 + 4096;
    CHECK_EQ_INT(m.nparams, want);
    dc_model_free(&m);
    CHECK(dc_model_init(&m, "resnet", 1, 3, 1, 1) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "unknown architecture 'resnet'");
    CHECK(dc_model_init(&m, "vgg-s32", 1, 2, 1, 1) == DC_STATUS_ARG);
}

/* The memory plan: what a model fills, and the refusal of one too large for
 * the machine before anything is filled. */
static void test_memory_plan(void)
{
    int64_t total = dc_memory_total(), budget = dc_memory_budget();
    CHECK(total > 0);
    CHECK(budget > 0 && budget < total);
    int64_t avail = dc_memory_available();
    CHECK(avail > 0 && avail <= total);
    const dc_preset *p = dc_preset_find("vgg16");
    int64_t fixed, per;
    CHECK(dc_model_memory(p, 0, 3, &fixed, &per) == DC_OK);
    dc_model m;
    CHECK(dc_model_init(&m, "vgg16", 0, 3, 1, 1) == DC_OK);
    int64_t conv_out = 0; /* every conv's output floats per image */
    for (int i = 0; i < m.nlayers; i++)
        if (m.layers[i].kind == DC_LAYER_CONV) conv_out += (int64_t)m.layers[i].oc * m.layers[i].oh * m.layers[i].ow;
    /* parameters and their gradients are fixed; per image, each conv's
     * output is kept three times (conv, batch norm, ReLU) and more */
    CHECK(fixed >= 8 * m.nparams);
    CHECK(per >= 3 * 4 * conv_out && per <= 8 * 4 * conv_out);
    dc_model_free(&m);
    /* the largest batch that fits, and the one after it does not */
    int fit = dc_model_fit_batch(fixed, per, budget);
    CHECK(fit >= 1);
    CHECK(fixed + (int64_t)fit * per <= budget && fixed + (int64_t)(fit + 1) * per > budget);
    CHECK_EQ_INT(dc_model_fit_batch(fixed, per, fixed + per - 1), 0);
    CHECK_EQ_INT(dc_model_fit_batch(fixed, per, fixed + 3 * per), 3);
    /* refused by the plan, named with the batch that fits (a batch whose
     * allocation would fail anyway has another message) */
    CHECK(dc_model_init(&m, "vgg16", 0, 3, fit + 1, 1) == DC_STATUS_NOMEM);
    char want[64];
    snprintf(want, sizeof want, "batches of at most %d", fit);
    CHECK_STR_CONTAINS(dc_last_error(), want);
    CHECK_STR_CONTAINS(dc_last_error(), "GiB of memory");
    CHECK(m.layers == NULL && m.acts == NULL);
    /* a small model plans small */
    CHECK(dc_model_memory(&tiny, 1, 1, &fixed, &per) == DC_OK);
    CHECK(fixed > 0 && per > 0 && fixed + per < (1 << 20));
    CHECK_EQ_INT(dc_preset_batch(p), 32);
    CHECK_EQ_INT(dc_preset_batch(dc_preset_find("vgg-s32")), 128);
    CHECK_EQ_INT(dc_preset_batch(&tiny), 128);
}

/* L = Σ r·body(x) in training mode, with the dropout step pinned. */
static double model_loss(dc_model *m, const float *x, int N, const float *r, uint64_t step)
{
    m->step = step;
    const float *y = dc_model_forward(m, x, N, 1);
    double s = 0;
    for (int64_t i = 0; i < (int64_t)N * m->feat_dim; i++) s += (double)r[i] * y[i];
    return s;
}

static void test_gradients(void)
{
    for (int sobel = 0; sobel <= 1; sobel++) {
        dc_model m;
        int N = 3;
        CHECK(dc_model_init_spec(&m, &tiny, sobel, 3, N, 5) == DC_OK);
        dc_rng r;
        dc_rng_init(&r, 9, DC_RNG_STREAM_TEST, (uint32_t)sobel, 0);
        int64_t nin = (int64_t)N * 3 * 12 * 12;
        float *x = dc_xmalloc((size_t)nin * sizeof *x), *g = dc_xmalloc((size_t)N * m.feat_dim * sizeof *g);
        for (int64_t i = 0; i < nin; i++) x[i] = (float)dc_rng_normal(&r);
        for (int64_t i = 0; i < (int64_t)N * m.feat_dim; i++) g[i] = (float)dc_rng_normal(&r);
        /* double the params' scale so that BN's outputs are not tiny */
        dc_model_zero_grad(&m);
        model_loss(&m, x, N, g, 100);
        dc_model_backward(&m, g);
        int probes = 0, good = 0;
        double worst = 0;
        for (int64_t i = 0; i < m.nparams; i += m.nparams / 60 + 1) {
            /* Several step sizes: a step that straddles a ReLU kink or a
             * max-pool switch is wrong, the smaller ones are not; float
             * round-off limits how small they go. Keep the best. */
            float keep = m.params[i];
            double best = 1e9;
            for (float h = 1e-2f * (fabsf(keep) > 1 ? fabsf(keep) : 1); h > 1e-4f; h /= 4) {
                m.params[i] = keep + h;
                double lp = model_loss(&m, x, N, g, 100);
                m.params[i] = keep - h;
                double lm = model_loss(&m, x, N, g, 100);
                m.params[i] = keep;
                double num = (lp - lm) / (2 * h), ana = m.grads[i];
                double err = fabs(num - ana) / (fabs(num) + fabs(ana) + 1e-2);
                if (err < best) best = err;
            }
            if (best > worst) worst = best;
            good += best < 2e-2;
            probes++;
        }
        printf("model gradients (sobel=%d): %d of %d probes within 2%%, worst %.3g\n", sobel, good, probes, worst);
        CHECK_MSG(good == probes, "sobel=%d: %d of %d probes match (worst %.3g)", sobel, good,
                  probes, worst);
        dc_free(x);
        dc_free(g);
        dc_model_free(&m);
    }
}

static void test_modes_and_io(void)
{
    dc_model m, m2;
    int N = 4;
    CHECK(dc_model_init_spec(&m, &tiny, 1, 1, N, 3) == DC_OK);
    CHECK(dc_model_init_spec(&m2, &tiny, 1, 1, N, 4) == DC_OK);
    float x[4 * 12 * 12];
    for (int i = 0; i < 4 * 144; i++) x[i] = (float)((i * 7919) % 97) / 97.0f;
    float e1[40], e2[40];
    memcpy(e1, dc_model_forward(&m, x, N, 0), sizeof e1);
    memcpy(e2, dc_model_forward(&m, x, N, 0), sizeof e2);
    CHECK(memcmp(e1, e2, sizeof e1) == 0); /* eval: deterministic, stats unchanged */
    const dc_layer *bn = &m.layers[4]; /* pad, sobel.0, sobel.1, conv, BN */
    CHECK(bn->kind == DC_LAYER_BN && m.stats[bn->rv_off] == 1.0f && m.nbt[0] == 0);
    dc_model_forward(&m, x, N, 1);
    CHECK(m.stats[bn->rv_off] != 1.0f && m.nbt[0] == 1);
    CHECK(memcmp(dc_model_forward(&m2, x, N, 0), e1, sizeof e1) != 0);

    /* safetensors round trip: m2 becomes m */
    dc_st_writer *w = dc_st_writer_new();
    dc_model_add_tensors(&m, w);
    const char *p = test_path("model.safetensors");
    CHECK(dc_st_writer_write(w, p) == DC_OK);
    dc_st_writer_free(w);
    dc_st_file *f;
    CHECK(dc_st_open(p, &f) == DC_OK);
    const dc_st_tensor *t = dc_st_find(f, "sobel.0.weight");
    CHECK(t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 1);
    CHECK(dc_st_find(f, "body.features.1.num_batches_tracked") != NULL);
    CHECK(dc_st_find(f, "body.classifier.3.bias") != NULL);
    CHECK(dc_model_load_tensors(&m2, f) == DC_OK);
    dc_st_close(f);
    CHECK(memcmp(m.params, m2.params, (size_t)m.nparams * sizeof(float)) == 0);
    CHECK(memcmp(m.stats, m2.stats, (size_t)m.nstats * sizeof(float)) == 0);
    memcpy(e1, dc_model_forward(&m, x, N, 0), sizeof e1);
    CHECK(memcmp(dc_model_forward(&m2, x, N, 0), e1, sizeof e1) == 0);
    /* a model of another shape refuses the file, naming the tensor */
    dc_model m3;
    CHECK(dc_model_init_spec(&m3, &tiny, 0, 3, 1, 1) == DC_OK);
    CHECK(dc_st_open(p, &f) == DC_OK);
    CHECK(dc_model_load_tensors(&m3, f) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "tensor 'body.features.0.weight': wrong shape");
    dc_st_close(f);
    dc_model_free(&m3);
    dc_model_free(&m);
    dc_model_free(&m2);
}

static void test_sgd_and_heads(void)
{
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f}, v[2] = {99, 99};
    dc_sgd_step(p, g, v, 2, 0.1f, 0.9f, 0.01f, 1);
    /* d = g + wd·p; v = d; p -= lr·v */
    float d0 = 0.5f + 0.01f * 1.0f;
    CHECK(v[0] == d0 && fabsf(p[0] - (1.0f - 0.1f * d0)) < 1e-7f);
    float p0 = p[0], v0 = v[0];
    dc_sgd_step(p, g, v, 2, 0.1f, 0.9f, 0.01f, 0);
    float d1 = 0.5f + 0.01f * p0, v1 = 0.9f * v0 + d1;
    CHECK(fabsf(v[0] - v1) < 1e-7f && fabsf(p[0] - (p0 - 0.1f * v1)) < 1e-7f);

    dc_head h;
    CHECK(dc_head_init(&h, 16, 5, 1, 2, 3) == DC_OK);
    int inb = 1;
    for (int i = 0; i < 80; i++) inb &= fabsf(h.w[i]) <= 0.25f;
    CHECK(inb);
    float w0 = h.w[0];
    h.mw[0] = 5;
    h.has_momentum = 1;
    dc_head_reset(&h, 1, 2, 4);
    CHECK(h.w[0] != w0 && h.mw[0] == 0 && !h.has_momentum);
    dc_head_reset(&h, 1, 2, 3);
    CHECK(h.w[0] == w0);
    dc_head_free(&h);
    dc_head_free(&h);
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / (scale + 1e-12));
    return worst;
}

/* The conv stack on oneDNN's blocked primitives computes what the NCHW
 * kernels do: outputs of every layer, gradients, running statistics, for
 * channel counts that fill whole blocks and ones that do not, with and
 * without Sobel, at the built batch size and a smaller one. */
static void test_blocked_equals_nchw(void)
{
    static const dc_preset odd = {"odd", 12, "20 M 36 24 M", 24, 0.5f, 12, 0.08f};
    const struct {
        const dc_preset *p;
        int sobel, in_c, N;
    } cases[] = {{NULL, 1, 3, 4}, {&odd, 1, 3, 5}, {&odd, 0, 1, 5}, {&odd, 0, 3, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const dc_preset *p = cases[k].p ? cases[k].p : dc_preset_find("vgg-s32");
        int N = cases[k].N;
        dc_model a, b;
        CHECK(dc_model_init_spec(&a, p, cases[k].sobel, cases[k].in_c, N, 7) == DC_OK);
        CHECK(dc_model_init_spec(&b, p, cases[k].sobel, cases[k].in_c, N, 7) == DC_OK);
        if (dc_model_set_blocked(&a, 1) == 0) {
            printf("SKIP blocked engine: built without oneDNN\n");
            dc_model_free(&a);
            dc_model_free(&b);
            return;
        }
        CHECK(dc_model_set_blocked(&b, 0) == 0);
        int64_t nin = (int64_t)N * cases[k].in_c * p->input * p->input;
        float *x = dc_xmalloc((size_t)nin * sizeof *x), *g = dc_xmalloc((size_t)N * a.feat_dim * sizeof *g);
        dc_rng r;
        dc_rng_init(&r, 3, DC_RNG_STREAM_TEST, (uint32_t)k, 0);
        for (int64_t i = 0; i < nin; i++) x[i] = (float)dc_rng_normal(&r);
        for (int64_t i = 0; i < (int64_t)N * a.feat_dim; i++) g[i] = (float)dc_rng_normal(&r);
        for (int round = 0; round < 2; round++) {
            int n = round == 0 ? N : N - 1; /* a second batch size */
            dc_model_zero_grad(&a);
            dc_model_zero_grad(&b);
            const float *ya = dc_model_forward(&a, x, n, 1), *yb = dc_model_forward(&b, x, n, 1);
            double e = max_rel(ya, yb, (int64_t)n * a.feat_dim);
            CHECK_MSG(e < 1e-4, "case %zu round %d: features differ by %.3g", k, round, e);
            for (int i = 0; i < a.nlayers; i++) {
                const dc_layer *l = &a.layers[i];
                if (l->kind == DC_LAYER_BN && l->blocked) continue; /* fused with its ReLU: not kept */
                int64_t sz = (int64_t)n * l->oc * l->oh * l->ow;
                float *oa = dc_xmalloc((size_t)sz * sizeof *oa);
                memcpy(oa, dc_model_layer_output(&a, i), (size_t)sz * sizeof *oa);
                e = max_rel(oa, dc_model_layer_output(&b, i), sz);
                CHECK_MSG(e < 1e-4, "case %zu round %d: layer %s differs by %.3g", k, round, l->name, e);
                dc_free(oa);
            }
            dc_model_backward(&a, g);
            dc_model_backward(&b, g);
            for (int i = 0; i < a.nlayers; i++) {
                const dc_layer *l = &a.layers[i];
                if (l->w_off < 0 || l->fixed) continue;
                int64_t nw = l->kind == DC_LAYER_CONV ? (int64_t)l->oc * l->c * l->k * l->k
                             : l->kind == DC_LAYER_BN ? l->oc : (int64_t)l->oc * l->c;
                e = max_rel(a.grads + l->w_off, b.grads + l->w_off, nw);
                CHECK_MSG(e < 1e-3, "case %zu round %d: %s.weight gradient differs by %.3g", k, round, l->name, e);
                /* a conv's bias gradient before batch norm is a sum that
                 * cancels to round-off: measured against the weights' */
                int cancels = l->kind == DC_LAYER_CONV && a.layers[i + 1].kind == DC_LAYER_BN;
                double scale = 0, diff = 0;
                for (int64_t t = 0; t < (cancels ? nw : l->oc); t++)
                    scale = fmax(scale, fabs(b.grads[(cancels ? l->w_off : l->b_off) + t]));
                for (int t = 0; t < l->oc; t++) diff = fmax(diff, fabs(a.grads[l->b_off + t] - b.grads[l->b_off + t]));
                e = diff / (scale + 1e-12);
                double tol = 1e-3;
                CHECK_MSG(e < tol, "case %zu round %d: %s.bias gradient differs by %.3g", k, round, l->name, e);
            }
            e = max_rel(a.stats, b.stats, a.nstats);
            CHECK_MSG(e < 1e-5, "case %zu round %d: running statistics differ by %.3g", k, round, e);
            ya = dc_model_forward(&a, x, n, 0);
            yb = dc_model_forward(&b, x, n, 0);
            e = max_rel(ya, yb, (int64_t)n * a.feat_dim);
            CHECK_MSG(e < 1e-4, "case %zu round %d: eval features differ by %.3g", k, round, e);
        }
        dc_free(x);
        dc_free(g);
        dc_model_free(&a);
        dc_model_free(&b);
    }
}

/* A weights file back into a model: preset found from the tensors or named
 * by the metadata; layers by name. */
static void test_load_file_and_layer_names(void)
{
    dc_model a, b;
    CHECK(dc_model_init(&a, "vgg-s32", 1, 1, 0, 5) == DC_OK);
    CHECK_EQ_INT(a.max_batch, dc_preset_batch(dc_preset_find("vgg-s32"))); /* 0: the preset's batch */
    const char *p = test_path("vgg-s32.safetensors");
    dc_st_writer *w = dc_st_writer_new();
    dc_model_add_tensors(&a, w);
    CHECK(dc_st_writer_write(w, p) == DC_OK);
    CHECK(dc_model_load_file(&b, p, 1, 2) == DC_OK); /* no metadata: matched against the presets */
    CHECK(b.preset == a.preset && b.sobel == 1 && b.max_batch == 2);
    CHECK(memcmp(a.params, b.params, (size_t)a.nparams * sizeof(float)) == 0);
    CHECK(memcmp(a.stats, b.stats, (size_t)a.nstats * sizeof(float)) == 0);
    dc_model_free(&b);
    const char *q = test_path("vgg-s64.safetensors");
    dc_st_writer_set_meta(w, "arch", "vgg-s64");
    CHECK(dc_st_writer_write(w, q) == DC_OK);
    dc_st_writer_free(w);
    CHECK(dc_model_load_file(&b, q, 1, 2) == DC_STATUS_FORMAT);
    CHECK_STR_CONTAINS(dc_last_error(), "weights do not fit vgg-s64 with 1-channel input");
    CHECK(dc_model_load_file(&b, p, 3, 2) == DC_STATUS_FORMAT); /* Sobel: 2 channels reach conv1 either way, */
    CHECK_STR_CONTAINS(dc_last_error(), "any preset");           /* but the grey 1x1 conv has 3 inputs     */
    CHECK(dc_model_load_file(&b, test_path("missing.safetensors"), 1, 2) == DC_STATUS_IO);

    CHECK_EQ_INT(dc_model_layer_find(&a, "final"), a.nlayers - 1);
    CHECK_EQ_INT(dc_model_layer_find(&a, "conv1"), dc_model_conv_relu(&a, 1));
    CHECK_EQ_INT(dc_model_layer_find(&a, "conv6"), dc_model_conv_relu(&a, 6));
    CHECK(dc_model_layer_find(&a, "conv1") >= 0 && dc_model_layer_find(&a, "conv6") > dc_model_layer_find(&a, "conv1"));
    const char *badnames[] = {"conv7", "conv0", "conv", "conv2x", "fc", ""};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(dc_model_layer_find(&a, badnames[i]), -1);
        CHECK_STR_CONTAINS(dc_last_error(), "expected final or conv1 ... conv6");
    }
    dc_model_free(&a);
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    test_presets();
    test_memory_plan();
    test_gradients();
    test_blocked_equals_nchw();
    test_modes_and_io();
    test_load_file_and_layer_names();
    test_sgd_and_heads();
    return TEST_SUMMARY();
}
