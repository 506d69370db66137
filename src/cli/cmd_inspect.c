/* cmd_inspect.c — `deepercluster inspect FILE`: what a .npy, .safetensors or
 * JSON file holds (kind detected from its first bytes, not its name): dtype,
 * shape, value range, metadata; the first rows with --rows.
 * Includes: cli, dc/io.h. */
#include "cli/cli.h"
#include "dc/io.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void print_shape(int ndim, const int64_t *shape)
{
    printf("(");
    for (int i = 0; i < ndim; i++) printf("%s%lld", i ? ", " : "", (long long)shape[i]);
    printf("%s)", ndim == 1 ? "," : "");
}

static double value_at(dc_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case DC_DTYPE_F32: { float v; memcpy(&v, (const char *)data + 4 * i, 4); return v; }
    case DC_DTYPE_I32: { int32_t v; memcpy(&v, (const char *)data + 4 * i, 4); return v; }
    case DC_DTYPE_I64: { int64_t v; memcpy(&v, (const char *)data + 8 * i, 8); return (double)v; }
    case DC_DTYPE_U8: return ((const uint8_t *)data)[i];
    }
    return 0;
}

/* min / max / mean, and the count of non-finite values for floats. */
static void print_stats(dc_dtype t, const void *data, int64_t n)
{
    if (n == 0) {
        printf("  (empty)\n");
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = value_at(t, data, i);
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        sum += v;
    }
    if (bad == n) printf("  min -  max -  mean -");
    else printf("  min %.6g  max %.6g  mean %.6g", lo, hi, sum / (double)(n - bad));
    if (t == DC_DTYPE_F32) printf("  non-finite %lld", (long long)bad);
    printf("\n");
}

static uint64_t fnv1a(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void print_rows(dc_dtype t, const void *data, int ndim,
                       const int64_t *shape, int rows)
{
    if (rows <= 0 || ndim == 0) return;
    int64_t per = 1;
    for (int i = 1; i < ndim; i++) per *= shape[i];
    for (int64_t r = 0; r < shape[0] && r < rows; r++) {
        printf("  [%lld]", (long long)r);
        for (int64_t j = 0; j < per && j < 16; j++) printf(" %.6g", value_at(t, data, r * per + j));
        if (per > 16) printf(" ...");
        printf("\n");
    }
}

static float f32_at(const void *p, int64_t i)
{
    float v;
    memcpy(&v, (const char *)p + i * 4, 4); /* tensors need not be aligned */
    return v;
}

/* Per tensor of a: ||a − b|| / ||a|| for floats, equality for the rest. */
static int compare_st(const dc_st_file *a, const char *bpath)
{
    dc_st_file *b;
    if (dc_st_open(bpath, &b)) return dc_cli_fail();
    double worst = 0;
    const char *wname = "-";
    int missing = 0;
    for (int i = 0; i < dc_st_count(a); i++) {
        const dc_st_tensor *t = dc_st_at(a, i), *u = dc_st_find(b, t->name);
        if (!u || u->dtype != t->dtype || u->nbytes != t->nbytes) {
            printf("  %-40s absent or of another dtype/shape in %s\n", t->name, bpath);
            missing++;
            continue;
        }
        if (t->dtype != DC_DTYPE_F32) {
            printf("  %-40s %s\n", t->name, memcmp(t->data, u->data, t->nbytes) == 0 ? "equal" : "DIFFERENT");
            if (memcmp(t->data, u->data, t->nbytes) != 0) missing++;
            continue;
        }
        int64_t n = (int64_t)(t->nbytes / 4);
        double dd = 0, aa = 0, mx = 0;
        for (int64_t k = 0; k < n; k++) {
            double x = f32_at(t->data, k), y = f32_at(u->data, k);
            dd += (x - y) * (x - y);
            aa += x * x;
            if (fabs(x - y) > mx) mx = fabs(x - y);
        }
        double rel = aa > 0 ? sqrt(dd / aa) : sqrt(dd);
        printf("  %-40s rel_l2 %.3e  max_abs %.3e\n", t->name, rel, mx);
        if (rel > worst) {
            worst = rel;
            wname = t->name;
        }
    }
    printf("compare: worst rel_l2 %.3e (%s), %d tensors absent or different\n", worst, wname, missing);
    dc_st_close(b);
    return DC_EXIT_OK;
}

static int inspect_npy(const char *path, int hash, int rows)
{
    dc_array arr;
    if (dc_npy_map(path, &arr)) return dc_cli_fail();
    printf("%s: npy %s ", path, dc_dtype_name(arr.dtype));
    print_shape(arr.ndim, arr.shape);
    printf("\n");
    print_stats(arr.dtype, arr.data, dc_array_numel(&arr));
    if (hash) printf("  hash %016llx\n", (unsigned long long)fnv1a(arr.data, arr.nbytes));
    print_rows(arr.dtype, arr.data, arr.ndim, arr.shape, rows);
    dc_array_free(&arr);
    return DC_EXIT_OK;
}

static int inspect_st(const char *path, int hash, int rows, const char *compare)
{
    dc_st_file *st;
    if (dc_st_open(path, &st)) return dc_cli_fail();
    if (compare) {
        int rc = compare_st(st, compare);
        dc_st_close(st);
        return rc;
    }
    printf("%s: safetensors, %d tensors\n", path, dc_st_count(st));
    for (int i = 0; i < dc_st_meta_count(st); i++) {
        const char *k, *v;
        dc_st_meta_at(st, i, &k, &v);
        printf("  meta %s = %s\n", k, v);
    }
    for (int i = 0; i < dc_st_count(st); i++) {
        const dc_st_tensor *t = dc_st_at(st, i);
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        printf("  %-40s %-3s ", t->name, dc_dtype_name(t->dtype));
        print_shape(t->ndim, t->shape);
        print_stats(t->dtype, t->data, n);
        if (hash) printf("  %-40s hash %016llx\n", t->name, (unsigned long long)fnv1a(t->data, t->nbytes));
        print_rows(t->dtype, t->data, t->ndim, t->shape, rows);
    }
    dc_st_close(st);
    return DC_EXIT_OK;
}

static int inspect_json(const char *path)
{
    cJSON *j;
    if (dc_json_read(path, &j)) {
        dc_set_error(DC_STATUS_FORMAT, "%s: not a .npy, safetensors or JSON file (%s)", path,
                     dc_last_error());
        return dc_cli_fail();
    }
    char *text = cJSON_Print(j);
    printf("%s: json\n%s\n", path, text ? text : "");
    cJSON_free(text);
    cJSON_Delete(j);
    return DC_EXIT_OK;
}

int dc_cmd_inspect(int argc, char **argv)
{
    int rows = 0, hash = 0;
    const char *compare = NULL;
    const dc_opt opts[] = {
        {"rows", NULL, DC_OPT_INT, &rows, 0, 1e6, NULL, 0, "N", "print the first N rows of each array"},
        {"hash", NULL, DC_OPT_FLAG, &hash, 0, 0, NULL, 0, NULL,
         "print a 64-bit FNV-1a hash of each array's bytes (to compare weights exactly)"},
        {"compare", NULL, DC_OPT_STRING, &compare, 0, 0, NULL, 0, "OTHER",
         "safetensors: each tensor's relative L2 distance to OTHER's (to compare weights within rounding)"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "inspect", "FILE [--rows N] [--hash] [--compare OTHER]",
                      "Describes a .npy array, a safetensors file (tensors and metadata) or a\n"
                      "JSON document; the kind is detected from the file's first bytes.",
                      opts, 3, 1, argc, argv, &code))
        return code;
    if (a.npos != 1) {
        fprintf(stderr, "deepercluster inspect: expected one FILE (see --help)\n");
        return DC_EXIT_USAGE;
    }
    const char *path = a.pos[0];
    FILE *f = fopen(path, "rb");
    unsigned char head[9] = {0};
    size_t got = 0;
    if (f) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    } else {
        dc_set_error(DC_STATUS_IO, "%s: cannot open", path);
        return dc_cli_fail();
    }
    if (got >= 6 && memcmp(head, "\x93NUMPY", 6) == 0) return inspect_npy(path, hash, rows);
    if (got == 9 && head[8] == '{') return inspect_st(path, hash, rows, compare);
    return inspect_json(path);
}
