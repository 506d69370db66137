/* open.c — a network from what a user names: a run directory (its
 * checkpoint.safetensors), a safetensors file (architecture from its
 * metadata, or found by matching the tensors' shapes against the presets),
 * or random:<preset> (a freshly initialised network, the baseline); then
 * moved to the device asked for. The program's --weights and the Python
 * package's weights= both come here.
 * Includes: dc/nn.h, dc/core.h. */
#define _POSIX_C_SOURCE 200809L
#include "dc/core.h"
#include "dc/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Names --batch-size in a refusal for want of memory. */
static dc_status name_batch_option(dc_status s)
{
    if (s == DC_STATUS_NOMEM) {
        char why[512];
        snprintf(why, sizeof why, "%s", dc_last_error());
        dc_set_error(s, "%s (--batch-size)", why);
    }
    return s;
}

static dc_status load(dc_model *m, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                      char *run_dir, size_t run_len)
{
    if (run_dir) run_dir[0] = '\0';
    if (strncmp(weights, "random:", 7) == 0) {
        dc_status s = name_batch_option(dc_model_init(m, weights + 7, sobel_random, in_c, batch, seed));
        if (s) return s;
        dc_log_info("weights: a randomly initialised %s (seed %llu, sobel %d)", weights + 7, (unsigned long long)seed,
                    sobel_random);
        return DC_OK;
    }
    char path[4096];
    struct stat st;
    if (stat(weights, &st) != 0) return dc_set_error(DC_STATUS_IO, "%s: no such run directory or weights file", weights);
    if (S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", weights);
        if (run_dir) snprintf(run_dir, run_len, "%s", weights);
    } else {
        snprintf(path, sizeof path, "%s", weights);
    }
    dc_status s = name_batch_option(dc_model_load_file(m, path, in_c, batch));
    if (s) return s;
    dc_log_info("weights: %s (%s, sobel %d)", path, m->preset->name, m->sobel);
    return DC_OK;
}

dc_status dc_model_open(dc_model *m, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                        const char *device, const char *precision, char *run_dir, size_t run_len)
{
    dc_device dev;
    dc_status s = dc_device_parse(&dev, device, precision, dc_device_local_rank());
    if (s == DC_OK) s = load(m, weights, in_c, sobel_random, seed, batch, run_dir, run_len);
    if (s == DC_OK && dev.gpu >= 0) {
        s = dc_model_use_device(m, &dev);
        if (s) dc_model_free(m);
    }
    char buf[512];
    if (s == DC_OK && dev.gpu >= 0)
        dc_log_info("device %s, %s", dc_device_describe(&dev, buf, sizeof buf), dc_precision_name(dev.precision));
    return s;
}
