/* bench_nn.c — training and inference throughput of a preset: images/s of
 * a full training step (forward, two-level loss, backward, SGD) and of an
 * evaluation forward, achieved GFLOP/s, peak resident memory; one JSON line.
 * Usage: bench_nn PRESET BATCH [SOBEL] [STEPS] [DEVICE] [PRECISION] [AUTOTUNE]
 * (run by bench/nn_vs_torch.py). On a GPU the training step includes the
 * input's upload from pinned host memory (as in `train`); the evaluation
 * forward runs on an input already on the device, as PyTorch's does. */
#define _POSIX_C_SOURCE 200809L
#include "dc/kernels.h"
#include "bench.h"
#include "dc/nn.h"
#include "dc/train.h"
#include "gpu/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Forward multiply-adds ×2 of the trainable convs and linears, per image. */
static double forward_flops(const dc_model *m)
{
    double f = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const dc_layer *l = &m->layers[i];
        if (l->kind == DC_LAYER_CONV) f += 2.0 * l->oc * l->oh * l->ow * l->c * l->k * l->k;
        if (l->kind == DC_LAYER_LINEAR) f += 2.0 * l->oc * l->c;
    }
    return f;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_nn: %s: %s\n", what, dc_last_error());
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_nn PRESET BATCH [SOBEL] [STEPS] [DEVICE] [PRECISION] [AUTOTUNE]\n");
        return 2;
    }
    const char *preset = argv[1];
    int B = atoi(argv[2]), sobel = argc > 3 ? atoi(argv[3]) : 1, steps = argc > 4 ? atoi(argv[4]) : 5;
    dc_device dev;
    if (dc_device_parse(&dev, argc > 5 ? argv[5] : "cpu", argc > 6 ? argv[6] : NULL, 0)) die("device");
    dev.autotune = argc > 7 ? atoi(argv[7]) : 0;
    int S = 4, K = 10;
    dc_model m;
    const dc_preset *p = dc_preset_find(preset);
    if (!p) die(preset);
    double tb = dc_time_now();
    if (dc_model_init_device(&m, p, sobel, 3, B, 1, &dev)) die("model");
    double t_build = dc_time_now() - tb;
    dc_head sup, *subs = calloc((size_t)S, sizeof *subs);
    dc_head_init(&sup, m.feat_dim, S, 1, 1, 0);
    for (int s = 0; s < S; s++) dc_head_init(&subs[s], m.feat_dim, K, 1, 2, (uint32_t)s);
    dc_stepper st;
    if (dc_stepper_init(&st, &m, S, K, B)) die("stepper");
    int64_t nin = (int64_t)B * 3 * m.in_size * m.in_size;
    float *x = malloc((size_t)nin * sizeof *x);
    dc_rng r;
    dc_rng_init(&r, 1, DC_RNG_STREAM_TEST, 0, 0);
    for (int64_t i = 0; i < nin; i++) x[i] = (float)dc_rng_normal(&r);
    dc_model_pin_host(&m, x, (size_t)nin * sizeof *x);
    int32_t *sp = malloc((size_t)B * 4), *sb = malloc((size_t)B * 4);
    for (int i = 0; i < B; i++) {
        sp[i] = i % S;
        sb[i] = i % K;
    }
    dc_step_stats ss;
    /* warm-up: page in every buffer, JIT the GEMM kernels, load the GPU's modules */
    for (int w = 0; w < (m.gpu ? 3 : 1); w++) {
        dc_step_compute(&st, &m, &sup, subs, x, sp, sb, B, &ss);
        dc_step_sgd(&st, &m, &sup, subs, 0.01f, 1e-5f);
    }
    if (m.gpu && dc_gpu_sync(m.gpu)) die("sync");
    double t0 = dc_time_now();
    for (int i = 0; i < steps; i++) {
        dc_step_compute(&st, &m, &sup, subs, x, sp, sb, B, &ss);
        dc_step_sgd(&st, &m, &sup, subs, 0.01f, 1e-5f);
    }
    if (m.gpu && dc_gpu_sync(m.gpu)) die("sync");
    double tt = (dc_time_now() - t0) / steps;
    if (dc_step_status(&st)) die("step");
    double ti;
    if (m.gpu) {
        dc_model_forward(&m, x, B, 0); /* uploads the input */
        for (int w = 0; w < 2; w++) dc_gpu_forward_resident(m.gpu, &m, B, 0);
        if (dc_gpu_sync(m.gpu)) die("sync");
        t0 = dc_time_now();
        for (int i = 0; i < steps; i++) dc_gpu_forward_resident(m.gpu, &m, B, 0);
        if (dc_gpu_sync(m.gpu)) die("sync");
        ti = (dc_time_now() - t0) / steps;
    } else {
        dc_model_forward(&m, x, B, 0);
        t0 = dc_time_now();
        for (int i = 0; i < steps; i++) dc_model_forward(&m, x, B, 0);
        ti = (dc_time_now() - t0) / steps;
    }
    if (dc_model_status(&m)) die("forward");
    double ff = forward_flops(&m);
    printf("{\"train_img_s\": %.2f, \"infer_img_s\": %.2f, \"train_gflops\": %.1f, \"infer_gflops\": %.1f, "
           "\"peak_rss_mb\": %.1f, \"loss\": %.4f, \"device_mb\": %.1f, \"build_s\": %.2f}\n",
           B / tt, B / ti, 3 * ff * B / tt / 1e9, ff * B / ti / 1e9, peak_rss_mb(), ss.loss,
           dc_model_device_bytes(&m) / 1048576.0, t_build);
    dc_model_unpin_host(&m, x);
    dc_stepper_free(&st);
    dc_head_free(&sup);
    for (int s = 0; s < S; s++) dc_head_free(&subs[s]);
    free(subs);
    dc_model_free(&m); /* DC_GPU_PROFILE=1: prints the per-layer times */
    free(x);
    free(sp);
    free(sb);
    return 0;
}
