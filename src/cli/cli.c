/* cli.c — helpers shared by the subcommands (see cli.h).
 * Includes: cli/cli.h, libc. */
#include "cli/cli.h"

#include "dc/io.h"

#include <stdint.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int dc_cli_fail(void)
{
    fprintf(stderr, "deepercluster: error: %s\n", dc_last_error());
    return DC_EXIT_FAIL;
}

int dc_cli_parse(dc_args *a, const char *cmd, const char *synopsis,
                 const char *description, const dc_opt *opts, int nopts,
                 int max_pos, int argc, char **argv, int *exit_code)
{
    char prog[64];
    snprintf(prog, sizeof prog, "deepercluster %s", cmd);
    int r = dc_args_parse(a, prog, opts, nopts, max_pos, argc - 1, argv + 1);
    if (r == DC_ARGS_HELP) {
        dc_args_usage(stdout, prog, synopsis, description, opts, nopts);
        *exit_code = DC_EXIT_OK;
        return 0;
    }
    if (r == DC_ARGS_ERROR) {
        fprintf(stderr, "%s\n", a->err);
        *exit_code = DC_EXIT_USAGE;
        return 0;
    }
    return 1;
}

int dc_cli_set_threads(int threads)
{
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
    return omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

dc_status dc_cli_load_labels(const char *path, int32_t **out, int64_t *n,
                             int *ncols)
{
    *out = NULL;
    dc_array a;
    dc_status s = dc_npy_map(path, &a);
    if (s) return s;
    if (a.ndim != 1 && !(a.ndim == 2 && a.shape[1] >= 1)) {
        dc_array_free(&a);
        return dc_set_error(DC_STATUS_FORMAT, "%s: labels must be a vector (N,) or a matrix (N, C), got %d dimensions",
                            path, a.ndim);
    }
    if (a.dtype == DC_DTYPE_F32) {
        dc_array_free(&a);
        return dc_set_error(DC_STATUS_FORMAT, "%s: labels must be integers (int32, int64 or uint8), got F32", path);
    }
    int64_t count = dc_array_numel(&a);
    int32_t *v = dc_malloc((size_t)(count ? count : 1) * sizeof *v, path);
    if (!v) {
        dc_array_free(&a);
        return DC_STATUS_NOMEM;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t x;
        if (a.dtype == DC_DTYPE_I32) x = ((const int32_t *)a.data)[i];
        else if (a.dtype == DC_DTYPE_I64) x = ((const int64_t *)a.data)[i];
        else x = ((const uint8_t *)a.data)[i];
        if (x < 0 || x > INT32_MAX) {
            dc_free(v);
            dc_array_free(&a);
            return dc_set_error(DC_STATUS_FORMAT, "%s: label %lld at index %lld is negative or too large", path,
                                (long long)x, (long long)i);
        }
        v[i] = (int32_t)x;
    }
    *n = a.shape[0];
    *ncols = a.ndim == 2 ? (int)a.shape[1] : 1;
    *out = v;
    dc_array_free(&a);
    return DC_OK;
}
