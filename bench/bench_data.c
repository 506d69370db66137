/* bench_data.c — decode + training augmentation throughput on one core:
 * each JPEG/PNG file decoded, then RandomResizedCrop to SIZE, flip, to
 * [0,1], normalised (dc_transform_train), over the files again and again
 * for about SECONDS; prints one JSON line. Buffers are allocated once.
 * Usage: bench_data SIZE SECONDS FILE...   (run by bench/data_vs_pil.py) */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_data SIZE SECONDS FILE...\n");
        return 2;
    }
    int size = atoi(argv[1]);
    double secs = atof(argv[2]);
    int nf = argc - 3;
    dc_image_buf b = {0};
    float *out = dc_xmalloc((size_t)3 * size * size * sizeof(float));
    float *tmp = NULL;
    int64_t done = 0;
    double t0 = dc_time_now(), tdec = 0;
    while (dc_time_now() - t0 < secs) {
        for (int i = 0; i < nf; i++) {
            double a = dc_time_now();
            dc_image im;
            if (dc_decode_image(argv[3 + i], 0, &b, &im)) {
                fprintf(stderr, "%s\n", dc_last_error());
                return 1;
            }
            tdec += dc_time_now() - a;
            if (!tmp) tmp = dc_xmalloc(dc_transform_tmp_size(size, size, 2 * (im.h > im.w ? im.h : im.w) + 64, 3) *
                                       sizeof(float));
            dc_rng r;
            dc_rng_init(&r, 1, DC_RNG_STREAM_AUGMENT, 0, (uint32_t)done);
            dc_transform_train(out, &im, size, 0, &r, tmp);
            done++;
        }
    }
    double t = dc_time_now() - t0;
    printf("{\"images\": %lld, \"seconds\": %.3f, \"images_per_s\": %.1f, \"decode_share\": %.3f, \"peak_rss_mb\": %.1f}\n",
           (long long)done, t, done / t, tdec / t, peak_rss_mb());
    dc_image_buf_free(&b);
    dc_free(out);
    dc_free(tmp);
    return 0;
}
