/* array.c — dtypes and the dc_array container shared by the file formats.
 * Includes: dc/io.h, libc. */
#include "dc/io.h"

#include <string.h>

size_t dc_dtype_size(dc_dtype t)
{
    switch (t) {
    case DC_DTYPE_F32: return 4;
    case DC_DTYPE_I32: return 4;
    case DC_DTYPE_I64: return 8;
    case DC_DTYPE_U8: return 1;
    }
    DC_ASSERT(!"unknown dtype");
    return 0;
}

const char *dc_dtype_name(dc_dtype t)
{
    switch (t) {
    case DC_DTYPE_F32: return "F32";
    case DC_DTYPE_I32: return "I32";
    case DC_DTYPE_I64: return "I64";
    case DC_DTYPE_U8: return "U8";
    }
    return "?";
}

int64_t dc_array_numel(const dc_array *a)
{
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

void dc_array_free(dc_array *a)
{
    if (!a) return;
    dc_free(a->owned_);
    dc_unmap_file(&a->map_);
    memset(a, 0, sizeof *a);
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && off < n; i++) {
        if (shape[i] < 0)
            off += (size_t)snprintf(buf + off, n - off, "%s*", i ? ", " : "");
        else
            off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "",
                                    (long long)shape[i]);
    }
    if (off < n) snprintf(buf + off, n - off, "%s)", ndim == 1 ? "," : "");
}

dc_status dc_array_expect(const dc_array *a, const char *what, dc_dtype dtype,
                          int ndim, const int64_t *shape)
{
    if (a->dtype != dtype)
        return dc_set_error(DC_STATUS_FORMAT, "%s: wrong dtype %s, expected %s",
                            what, dc_dtype_name(a->dtype), dc_dtype_name(dtype));
    int ok = a->ndim == ndim;
    for (int i = 0; ok && shape && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != a->shape[i]) ok = 0;
    if (!ok) {
        char got[160], want[160];
        shape_str(got, sizeof got, a->ndim, a->shape);
        if (shape) {
            shape_str(want, sizeof want, ndim, shape);
        } else {
            snprintf(want, sizeof want, "%d dimensions", ndim);
        }
        return dc_set_error(DC_STATUS_FORMAT, "%s: wrong shape %s, expected %s",
                            what, got, want);
    }
    return DC_OK;
}
