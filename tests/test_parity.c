/* test_parity.c — the network, the two-level loss and SGD against PyTorch
 * (tools/gen_nn_fixtures.py, torch 1.13): same weights, inputs and dropout
 * masks (recreated here from the shared Philox generator), three training
 * steps. Every tensor is compared and its largest error relative to its
 * largest value printed: body output, both heads' logits, the losses and
 * precisions, every gradient, the batch-norm running statistics after the
 * first step and every parameter after the third. */
#include "dc/io.h"
#include "dc/nn.h"
#include "dc/train.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

#define STREAM 100 /* DC_RNG_STREAM_TEST, as tools/philox.py */

static double worst_all, worst_torch;
static const char *current;

static void uniform_fill(float *v, int64_t n, uint64_t seed, uint32_t a, int kind, double arg)
{
    dc_rng r;
    dc_rng_init(&r, seed, STREAM, a, 0);
    for (int64_t i = 0; i < n; i++) {
        float s = 2.0f * dc_rng_uniform(&r) - 1.0f;
        switch (kind) {
        case 0: v[i] = s * (float)sqrt(3.0) * (float)sqrt(2.0 / (9.0 * arg)); break; /* conv */
        case 1: v[i] = s * 0.1f; break;                                           /* small */
        case 2: v[i] = 1.0f + 0.2f * s; break;                                    /* gamma */
        default: v[i] = s / (float)sqrt(arg); break;                              /* linear */
        }
    }
}

static int64_t stride_of(int64_t n) { return n <= 4096 ? 1 : n / 2048 + 1; }

/* Compares got[i·stride] (C, float32) with the fixture's PyTorch float64
 * result for `name`, and PyTorch's own float32 result with the same: C
 * passes when its error is within 3x PyTorch's (or under 2e-5), errors
 * taken relative to the float64 tensor's largest magnitude (or `floor`,
 * for tensors that are zero up to round-off). Returns C's error. */
static double compare_floor(const dc_st_file *f, const char *name, const float *got, int64_t n,
                            int64_t stride, double floor)
{
    char name64[160];
    snprintf(name64, sizeof name64, "f64/%s", name);
    const dc_st_tensor *t = dc_st_find(f, name), *t64 = dc_st_find(f, name64);
    CHECK_MSG(t && t64, "fixture has no tensor %s", name);
    if (!t || !t64) return 1;
    int64_t cnt = (n + stride - 1) / stride;
    CHECK_MSG((int64_t)t->nbytes == cnt * 4 && t64->nbytes == t->nbytes, "%s: %lld values in fixture, %lld here",
              name, (long long)(t->nbytes / 4), (long long)cnt);
    if ((int64_t)t->nbytes != cnt * 4 || t64->nbytes != t->nbytes) return 1;
    float *w32 = dc_xmalloc(t->nbytes), *w64 = dc_xmalloc(t->nbytes);
    memcpy(w32, t->data, t->nbytes);
    memcpy(w64, t64->data, t->nbytes);
    double ec = 0, et = 0, vmax = floor > 1e-30 ? floor : 1e-30;
    for (int64_t i = 0; i < cnt; i++) {
        double c = fabs((double)got[i * stride] - w64[i]), tt = fabs((double)w32[i] - w64[i]);
        if (c > ec) ec = c;
        if (tt > et) et = tt;
        if (fabs(w64[i]) > vmax) vmax = fabs(w64[i]);
    }
    dc_free(w32);
    dc_free(w64);
    /* 1e-3: a single ReLU input within round-off of 0 may switch sides in
     * one float32 run and not the other (seen: 4.5e-4 in vgg16-slim). */
    double rc = ec / vmax, rt = et / vmax, tol = 3 * rt > 1e-3 ? 3 * rt : 1e-3;
    if (rc > worst_all) worst_all = rc;
    if (rt > worst_torch) worst_torch = rt;
    CHECK_MSG(rc <= tol, "%s %s: error %.3g vs float64 (PyTorch float32: %.3g)", current, name, rc, rt);
    if (getenv("DC_PARITY_VERBOSE")) printf("  %-48s C %.3g  PyTorch %.3g\n", name, rc, rt);
    return vmax;
}

static double compare(const dc_st_file *f, const char *name, const float *got, int64_t n, int64_t stride,
                      double tol_unused)
{
    (void)tol_unused;
    return compare_floor(f, name, got, n, stride, 0);
}

static double norm_of(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

static int meta_int(const dc_st_file *f, const char *k) { return atoi(dc_st_meta(f, k)); }

/* engine: 1 oneDNN blocked, 0 NCHW kernels, 2 the GPU engine (fp32) */
static void run_fixture(const char *file, int blocked)
{
    int gpu = blocked == 2;
    const char *root = getenv("DC_TEST_ROOT");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/%s", root ? root : ".", file);
    dc_st_file *f;
    dc_status s = dc_st_open(path, &f);
    CHECK_MSG(s == DC_OK, "%s", dc_last_error());
    if (s) return;
    worst_all = worst_torch = 0;
    current = file;
    dc_preset spec = {"fixture", meta_int(f, "input"), dc_st_meta(f, "features"), meta_int(f, "hidden"),
                      (float)atof(dc_st_meta(f, "dropout")), meta_int(f, "input")};
    int sobel = meta_int(f, "sobel"), in_c = meta_int(f, "in_c"), N = meta_int(f, "N");
    int S = meta_int(f, "S"), K = meta_int(f, "k_sub");
    uint64_t seed = (uint64_t)meta_int(f, "seed");
    float lr = (float)atof(dc_st_meta(f, "lr")), wd = (float)atof(dc_st_meta(f, "wd"));
    dc_model m;
    CHECK(dc_model_init_spec(&m, &spec, sobel, in_c, N, 1) == DC_OK);
    m.dropout_seed = seed;
    if (!gpu && dc_model_set_blocked(&m, blocked) != blocked) {
        printf("%s: SKIP the blocked engine (built without oneDNN)\n", file);
        dc_model_free(&m);
        dc_st_close(f);
        return;
    }
    int drop = -1;
    for (int i = 0; i < m.nlayers; i++)
        if (m.layers[i].kind == DC_LAYER_DROPOUT) drop = i;
    CHECK_EQ_INT(drop, meta_int(f, "dropout_layer"));

    /* Weights in the generator's order: per module, weight then bias. */
    uint32_t j = 0;
    for (int i = 0; i < m.nlayers; i++) {
        dc_layer *l = &m.layers[i];
        if (l->fixed) continue;
        if (l->kind == DC_LAYER_CONV) {
            uniform_fill(m.params + l->w_off, (int64_t)l->oc * l->c * l->k * l->k, seed, j++, 0, l->oc);
            uniform_fill(m.params + l->b_off, l->oc, seed, j++, 1, 0);
        } else if (l->kind == DC_LAYER_BN) {
            uniform_fill(m.params + l->w_off, l->oc, seed, j++, 2, 0);
            uniform_fill(m.params + l->b_off, l->oc, seed, j++, 1, 0);
        } else if (l->kind == DC_LAYER_LINEAR) {
            uniform_fill(m.params + l->w_off, (int64_t)l->oc * l->c, seed, j++, 3, l->c);
            uniform_fill(m.params + l->b_off, l->oc, seed, j++, 3, l->c);
        }
    }
    int D = m.feat_dim;
    dc_head sup_head, *subs = dc_xcalloc((size_t)S, sizeof *subs);
    CHECK(dc_head_init(&sup_head, D, S, 0, 0, 0) == DC_OK);
    uniform_fill(sup_head.w, (int64_t)S * D, seed, 500, 3, D);
    uniform_fill(sup_head.b, S, seed, 501, 3, D);
    for (int c = 0; c < S; c++) {
        CHECK(dc_head_init(&subs[c], D, K, 0, 0, 0) == DC_OK);
        uniform_fill(subs[c].w, (int64_t)K * D, seed, 600 + 2 * (uint32_t)c, 3, D);
        uniform_fill(subs[c].b, K, seed, 601 + 2 * (uint32_t)c, 3, D);
    }
    int64_t nin = (int64_t)N * in_c * spec.input * spec.input;
    float *x = dc_xmalloc((size_t)nin * sizeof *x);
    {
        dc_rng r;
        dc_rng_init(&r, seed, STREAM, 900, 0);
        for (int64_t i = 0; i < nin; i++) x[i] = dc_rng_uniform(&r) * 4.0f - 2.0f;
    }
    int32_t *sup = dc_xmalloc((size_t)N * 4), *sub = dc_xmalloc((size_t)N * 4);
    for (int i = 0; i < N; i++) {
        sup[i] = i % S;
        sub[i] = (3 * i + 1) % K;
    }
    if (gpu) {
        dc_device dev;
        CHECK(dc_device_parse(&dev, "cuda", "fp32", 0) == DC_OK);
        s = dc_model_use_device(&m, &dev);
        CHECK_MSG(s == DC_OK, "%s", dc_last_error());
    }
    dc_stepper st;
    CHECK(dc_stepper_init(&st, &m, S, K, N) == DC_OK);
    const dc_st_tensor *lt = dc_st_find(f, "losses"), *lt64 = dc_st_find(f, "f64/losses");
    float losses[3][6], losses64[3][6];
    CHECK(lt && lt->nbytes == sizeof losses && lt64 && lt64->nbytes == sizeof losses);
    if (lt) memcpy(losses, lt->data, sizeof losses);
    if (lt64) memcpy(losses64, lt64->data, sizeof losses);
    char name[128];
    for (int step = 0; step < 3; step++) {
        dc_step_stats ss;
        dc_step_compute(&st, &m, &sup_head, subs, x, sup, sub, N, &ss);
        if (gpu) { /* the gradients and heads to the host */
            CHECK(dc_step_status(&st) == DC_OK);
            CHECK(dc_step_sync(&st, &m, &sup_head, subs, 1) == DC_OK);
        }
        double got[6] = {ss.loss, ss.loss_super, ss.loss_sub, (double)ss.correct_super / N,
                         (double)ss.correct_sub / N, (double)ss.correct_both / N};
        for (int q = 0; q < 6 && (step == 0 || meta_int(f, "params_after_steps")); q++) {
            double ec = fabs(got[q] - losses64[step][q]), et = fabs(losses[step][q] - losses64[step][q]);
            CHECK_MSG(ec <= 3 * et + 2e-5 * (1 + fabs(losses64[step][q])),
                      "%s step %d value %d: %.7g, PyTorch float64 %.7g, float32 %.7g", file, step, q, got[q],
                      losses64[step][q], losses[step][q]);
        }
        if (step == 0) {
            compare(f, "features", dc_model_layer_output(&m, m.nlayers - 1), (int64_t)N * D, 1, 1e-4);
            if (!gpu) { /* the GPU keeps its logits (the gradients below follow from them) */
                compare(f, "logits_super", st.ls, (int64_t)N * S, 1, 1e-4);
                /* sub logits are stored grouped by super-class: back to batch order */
                float *lsub = dc_xmalloc((size_t)N * K * sizeof *lsub);
                for (int r = 0; r < N; r++)
                    memcpy(lsub + (size_t)st.rows[r] * K, st.lsub + (size_t)r * K, (size_t)K * 4);
                compare(f, "logits_sub", lsub, (int64_t)N * K, 1, 1e-4);
                dc_free(lsub);
            }
            for (int i = 0; i < m.nlayers; i++) {
                dc_layer *l = &m.layers[i];
                if (l->fixed || !(l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_BN || l->kind == DC_LAYER_LINEAR))
                    continue;
                int64_t nb = l->oc, nw = l->kind == DC_LAYER_CONV ? (int64_t)l->oc * l->c * l->k * l->k
                                         : l->kind == DC_LAYER_LINEAR ? (int64_t)l->oc * l->c
                                                                      : l->oc;
                const char *suffix[2] = {"weight", "bias"};
                int64_t off[2] = {l->w_off, l->b_off}, cnt[2] = {nw, nb};
                double wmax = 0;
                for (int q = 0; q < 2; q++) {
                    snprintf(name, sizeof name, "grad:%s.%s", l->name, suffix[q]);
                    /* a conv bias before batch-norm has a zero gradient
                     * up to round-off: measure it against the weights' */
                    double floor = q == 1 && l->kind == DC_LAYER_CONV ? wmax : 0;
                    double v = compare_floor(f, name, m.grads + off[q], cnt[q], stride_of(cnt[q]), floor);
                    if (q == 0) wmax = v;
                    snprintf(name, sizeof name, "gnorm:%s.%s", l->name, suffix[q]);
                    float nrm = (float)norm_of(m.grads + off[q], cnt[q]);
                    compare_floor(f, name, &nrm, 1, 1, floor);
                }
            }
            compare(f, "grad:super.weight", sup_head.dw, (int64_t)S * D, 1, 1e-3);
            compare(f, "grad:super.bias", sup_head.db, S, 1, 1e-3);
            for (int c = 0; c < S; c++) {
                snprintf(name, sizeof name, "grad:sub%d.weight", c);
                compare(f, name, subs[c].dw, (int64_t)K * D, 1, 1e-3);
                snprintf(name, sizeof name, "grad:sub%d.bias", c);
                compare(f, name, subs[c].db, K, 1, 1e-3);
            }
        }
        dc_step_sgd(&st, &m, &sup_head, subs, lr, wd);
        if (gpu) CHECK(dc_step_sync(&st, &m, &sup_head, subs, 1) == DC_OK);
        if (step == 0)
            for (int i = 0; i < m.nlayers; i++) {
                dc_layer *l = &m.layers[i];
                if (l->kind != DC_LAYER_BN) continue;
                snprintf(name, sizeof name, "%s.running_mean", l->name);
                compare(f, name, m.stats + l->rm_off, l->oc, 1, 1e-4);
                snprintf(name, sizeof name, "%s.running_var", l->name);
                compare(f, name, m.stats + l->rv_off, l->oc, 1, 1e-4);
            }
    }
    for (int i = 0; i < m.nlayers && meta_int(f, "params_after_steps"); i++) {
        dc_layer *l = &m.layers[i];
        if (l->fixed || !(l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_BN || l->kind == DC_LAYER_LINEAR))
            continue;
        int64_t nw = l->kind == DC_LAYER_CONV ? (int64_t)l->oc * l->c * l->k * l->k
                     : l->kind == DC_LAYER_LINEAR ? (int64_t)l->oc * l->c
                                                  : l->oc;
        snprintf(name, sizeof name, "param:%s.weight", l->name);
        compare(f, name, m.params + l->w_off, nw, stride_of(nw), 1e-4);
        snprintf(name, sizeof name, "param:%s.bias", l->name);
        compare(f, name, m.params + l->b_off, l->oc, 1, 1e-4);
    }
    if (meta_int(f, "params_after_steps")) compare(f, "param:super.weight", sup_head.w, (int64_t)S * D, 1, 1e-4);
    for (int c = 0; c < S && meta_int(f, "params_after_steps"); c++) {
        snprintf(name, sizeof name, "param:sub%d.weight", c);
        compare(f, name, subs[c].w, (int64_t)K * D, 1, 1e-4);
    }
    printf("%s (%s): %s, largest error against PyTorch float64 over all tensors: C %.3g, PyTorch float32 %.3g\n",
           file, gpu ? "GPU engine, fp32" : blocked ? "oneDNN, blocked" : "NCHW kernels", meta_int(f, "params_after_steps") ? "3 steps" : "first step", worst_all, worst_torch);
    dc_stepper_free(&st);
    dc_head_free(&sup_head);
    for (int c = 0; c < S; c++) dc_head_free(&subs[c]);
    dc_free(subs);
    dc_free(x);
    dc_free(sup);
    dc_free(sub);
    dc_model_free(&m);
    dc_st_close(f);
}

int main(void)
{
    /* DC_TEST_DEVICE=cuda (make check-gpu): the GPU engine alone */
    const char *dev = getenv("DC_TEST_DEVICE");
    if (dev && strcmp(dev, "cuda") == 0) {
        if (dc_device_gpu_count() == 0) {
            printf("SKIP: no CUDA GPU visible (or a build without CUDA): the GPU parity did not run\n");
            return TEST_SUMMARY();
        }
        run_fixture("vgg-s32.safetensors", 2);
        run_fixture("vgg-s32-grey.safetensors", 2);
        run_fixture("vgg16-slim.safetensors", 2);
        return TEST_SUMMARY();
    }
    for (int blocked = 1; blocked >= 0; blocked--) {
        run_fixture("vgg-s32.safetensors", blocked);
        run_fixture("vgg-s32-grey.safetensors", blocked);
        run_fixture("vgg16-slim.safetensors", blocked);
    }
    return TEST_SUMMARY();
}
