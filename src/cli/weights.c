/* weights.c — what --weights names, turned into a model: a run directory
 * (its checkpoint.safetensors), a safetensors file (architecture from its
 * metadata, or found by matching the tensors' shapes against the presets),
 * or random:<preset> (a freshly initialised network, the baseline).
 * Includes: cli, dc/nn.h, dc/io.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"
#include "dc/io.h"
#include "dc/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* dc_model_init with batch 0 meaning the preset's default; a model too
 * large for the machine is refused with the option to change. */
static dc_status init_model(dc_model *m, const char *arch, int sobel, int in_c, int batch, uint64_t seed)
{
    const dc_preset *p = dc_preset_find(arch);
    if (batch <= 0 && p) batch = dc_preset_batch(p);
    dc_status s = dc_model_init(m, arch, sobel, in_c, batch, seed);
    if (s == DC_STATUS_NOMEM) {
        char why[512];
        snprintf(why, sizeof why, "%s", dc_last_error());
        dc_set_error(s, "%s (--batch-size)", why);
    }
    return s;
}

dc_status dc_cli_load_model(dc_model *m, const char *weights, int in_c, int sobel_random, uint64_t seed, int batch,
                            char *run_dir, size_t run_len)
{
    if (run_dir) run_dir[0] = '\0';
    if (strncmp(weights, "random:", 7) == 0) {
        dc_status s = init_model(m, weights + 7, sobel_random, in_c, batch, seed);
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
    dc_st_file *f;
    dc_status s = dc_st_open(path, &f);
    if (s) return s;
    int sobel = dc_st_find(f, "sobel.0.weight") != NULL;
    const char *arch = dc_st_meta(f, "arch");
    static const char *presets[] = {"vgg-s32", "vgg-s64", "vgg16"};
    s = DC_STATUS_FORMAT;
    for (int i = 0; i < 3 && s; i++) {
        const char *a = arch ? arch : presets[i];
        dc_status si = init_model(m, a, sobel, in_c, batch, seed);
        if (si == DC_STATUS_NOMEM) {
            dc_st_close(f);
            return si;
        }
        if (si != DC_OK) {
            if (arch) break;
            continue;
        }
        s = dc_model_load_tensors(m, f);
        if (s) dc_model_free(m);
        if (arch) break;
    }
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", dc_last_error());
        dc_st_close(f);
        return dc_set_error(DC_STATUS_FORMAT, "%s: weights do not fit %s with %d-channel input (%s)", path,
                            arch ? arch : "any preset", in_c, why);
    }
    dc_log_info("weights: %s (%s, sobel %d)", path, m->preset->name, sobel);
    dc_st_close(f);
    return DC_OK;
}

int dc_cli_layer_index(const dc_model *m, const char *name, char *err, size_t n)
{
    if (strcmp(name, "final") == 0) return m->nlayers - 1;
    if (strncmp(name, "conv", 4) == 0) {
        char *end;
        long j = strtol(name + 4, &end, 10);
        if (*end == '\0' && j >= 1 && j <= dc_model_nconv(m)) return dc_model_conv_relu(m, (int)j);
    }
    snprintf(err, n, "--layer %s: expected final or conv1 ... conv%d", name, dc_model_nconv(m));
    return -1;
}
