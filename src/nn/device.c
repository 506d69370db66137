/* device.c — choosing where a model computes: "auto", "cpu", "cuda",
 * "cuda:N" and the GPU's precision, parsed and described for logs and
 * config.json. Includes: dc/nn.h, gpu/gpu.h. */
#include "dc/nn.h"
#include "gpu/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dc_device_gpu_count(void) { return dc_gpu_count(); }

int dc_device_local_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK",
                                       "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

const char *dc_precision_name(dc_precision p) { return p == DC_PRECISION_FP32 ? "fp32" : "tf32"; }

dc_status dc_device_parse(dc_device *d, const char *device, const char *precision, int local_rank)
{
    memset(d, 0, sizeof *d);
    d->gpu = -1;
    d->precision = DC_PRECISION_TF32;
    if (precision && strcmp(precision, "fp32") == 0)
        d->precision = DC_PRECISION_FP32;
    else if (precision && strcmp(precision, "tf32") != 0)
        return dc_set_error(DC_STATUS_ARG, "--precision %s: expected fp32 or tf32", precision);
    if (local_rank < 0) local_rank = 0;
    if (!device || strcmp(device, "auto") == 0) {
        int n = dc_gpu_count();
        if (n > 0) d->gpu = local_rank % n;
        return DC_OK;
    }
    if (strcmp(device, "cpu") == 0) return DC_OK;
    int want = -1;
    if (strcmp(device, "cuda") == 0) {
        want = -2; /* the local rank's */
    } else if (strncmp(device, "cuda:", 5) == 0) {
        char *end;
        long v = strtol(device + 5, &end, 10);
        if (end == device + 5 || *end || v < 0 || v > 1024)
            return dc_set_error(DC_STATUS_ARG, "--device %s: expected auto, cpu, cuda or cuda:N", device);
        want = (int)v;
    } else {
        return dc_set_error(DC_STATUS_ARG, "--device %s: expected auto, cpu, cuda or cuda:N", device);
    }
    char buf[256];
    int n = dc_gpu_count();
    if (n == 0) {
        /* why: no CUDA in the build, no driver, or no device */
        dc_status s = dc_gpu_describe(0, buf, sizeof buf);
        return s ? s : dc_set_error(DC_STATUS_UNSUPPORTED, "--device %s: no CUDA GPU is visible", device);
    }
    if (want == -2) want = local_rank % n;
    if (want >= n)
        return dc_set_error(DC_STATUS_ARG, "--device %s: %d CUDA device%s visible (cuda:0 … cuda:%d)", device, n,
                            n == 1 ? " is" : "s are", n - 1);
    d->gpu = want;
    return DC_OK;
}

const char *dc_device_describe(const dc_device *d, char *buf, size_t n)
{
    if (!d || d->gpu < 0) {
        snprintf(buf, n, "cpu");
        return buf;
    }
    char what[384];
    if (dc_gpu_describe(d->gpu, what, sizeof what)) snprintf(what, sizeof what, "%s", dc_last_error());
    snprintf(buf, n, "cuda:%d: %s", d->gpu, what);
    return buf;
}
