/* npy.c — NumPy .npy files, format versions 1.0, 2.0 and 3.0 (read), 1.0
 * and 2.0 (write), as specified in numpy.lib.format: magic "\x93NUMPY", two
 * version bytes, a little-endian header length (u16 in 1.0, u32 after), an
 * ASCII Python-dict header padded to a multiple of 64, then the raw data in
 * C order. Only float32, int32, int64 and uint8 little-endian are accepted.
 * The header parser is strict and bounded: every read is checked against the
 * file size, so a malformed file gives an error, never an out-of-bounds read.
 * Includes: dc/io.h, libc, POSIX (the header read by pread). */
#define _POSIX_C_SOURCE 200809L
#include "dc/io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536 /* larger headers are refused as malformed */

/* ------------------------------------------------------------------------ */
/* Header parsing                                                           */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
    const char *path;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static int expect_char(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string literal without escapes; copies into buf. */
static int parse_str(cursor *c, char *buf, size_t n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t len = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || len + 1 >= n) return 0;
        buf[len++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    buf[len] = '\0';
    return 1;
}

static int parse_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* A non-negative decimal integer (optionally with Python 2's 'L'). */
static int parse_dim(cursor *c, int64_t *out)
{
    skip_ws(c);
    int64_t v = 0;
    int digits = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        if (v > (INT64_MAX - 9) / 10) return 0;
        v = v * 10 + (*c->p++ - '0');
        digits++;
    }
    if (!digits) return 0;
    if (c->p < c->end && *c->p == 'L') c->p++;
    *out = v;
    return 1;
}

static dc_status bad_header(const char *path, const char *why)
{
    return dc_set_error(DC_STATUS_FORMAT, "%s: malformed .npy header: %s", path,
                        why);
}

static dc_status parse_descr(const char *path, const char *d, dc_dtype *out)
{
    static const struct {
        const char *descr;
        dc_dtype t;
    } ok[] = {{"<f4", DC_DTYPE_F32}, {"=f4", DC_DTYPE_F32},
              {"<i4", DC_DTYPE_I32}, {"=i4", DC_DTYPE_I32},
              {"<i8", DC_DTYPE_I64}, {"=i8", DC_DTYPE_I64},
              {"|u1", DC_DTYPE_U8},  {"<u1", DC_DTYPE_U8},
              {"=u1", DC_DTYPE_U8}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(d, ok[i].descr) == 0) {
            *out = ok[i].t;
            return DC_OK;
        }
    if (d[0] == '>')
        return dc_set_error(DC_STATUS_UNSUPPORTED,
                            "%s: big-endian dtype '%s' is not supported (save "
                            "it little-endian, e.g. x.astype('<f4'))",
                            path, d);
    return dc_set_error(DC_STATUS_UNSUPPORTED,
                        "%s: dtype '%s' is not supported; deepercluster reads "
                        "float32, int32, int64 and uint8 (convert with "
                        "x.astype(np.float32) or similar)",
                        path, d);
}

/* Parses the dict text [h, h+len). */
static dc_status parse_header(const char *path, const char *h, size_t len,
                              dc_dtype *dtype, int *ndim, int64_t *shape)
{
    cursor c = {h, h + len, path};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!expect_char(&c, '{')) return bad_header(path, "does not start with '{'");
    for (;;) {
        if (expect_char(&c, '}')) break;
        char key[32];
        if (!parse_str(&c, key, sizeof key)) return bad_header(path, "expected a quoted key");
        if (!expect_char(&c, ':')) return bad_header(path, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            char d[32];
            if (!parse_str(&c, d, sizeof d))
                return bad_header(path, "'descr' is not a simple dtype string (structured arrays are not supported)");
            dc_status s = parse_descr(path, d, dtype);
            if (s) return s;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&c, "True"))
                return dc_set_error(DC_STATUS_UNSUPPORTED,
                                    "%s: Fortran-ordered arrays are not supported "
                                    "(save with np.ascontiguousarray)", path);
            if (!parse_word(&c, "False")) return bad_header(path, "'fortran_order' is not True/False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!expect_char(&c, '(')) return bad_header(path, "'shape' is not a tuple");
            int n = 0;
            for (;;) {
                if (expect_char(&c, ')')) break;
                if (n == DC_MAX_DIMS)
                    return dc_set_error(DC_STATUS_UNSUPPORTED,
                                        "%s: more than %d dimensions", path, DC_MAX_DIMS);
                if (!parse_dim(&c, &shape[n])) return bad_header(path, "bad dimension in 'shape'");
                n++;
                if (!expect_char(&c, ',')) {
                    if (!expect_char(&c, ')')) return bad_header(path, "unterminated 'shape'");
                    break;
                }
            }
            *ndim = n;
            have_shape = 1;
        } else {
            return bad_header(path, "unknown key");
        }
        if (!expect_char(&c, ',')) {
            if (!expect_char(&c, '}')) return bad_header(path, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(&c);
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\n')) c.p++;
    if (c.p != c.end) return bad_header(path, "unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape)
        return bad_header(path, "missing one of 'descr', 'fortran_order', 'shape'");
    return DC_OK;
}

/* Validates the preamble and header of a file of `size` bytes starting at
 * `buf` (at least the first min(size, header) bytes must be readable).
 * On success sets the array's metadata and *data_off, and checks the size. */
static dc_status parse_file(const char *path, const uint8_t *buf, size_t size,
                            dc_array *a, size_t *data_off)
{
    if (size == 0) return dc_set_error(DC_STATUS_FORMAT, "%s: empty file", path);
    if (size < NPY_MAGIC_LEN + 2 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return dc_set_error(DC_STATUS_FORMAT, "%s: not a .npy file (bad magic)", path);
    int major = buf[6];
    size_t hlen, pre;
    if (major == 1) {
        pre = 10;
        if (size < pre) return dc_set_error(DC_STATUS_FORMAT, "%s: truncated .npy preamble", path);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        pre = 12;
        if (size < pre) return dc_set_error(DC_STATUS_FORMAT, "%s: truncated .npy preamble", path);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
    } else {
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: .npy format version %d.%d is not supported",
                            path, major, buf[7]);
    }
    if (hlen > NPY_MAX_HEADER)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: .npy header of %zu bytes exceeds the %d-byte limit",
                            path, hlen, NPY_MAX_HEADER);
    if (hlen > size - pre)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: truncated: header needs %zu bytes, file has %zu",
                            path, pre + hlen, size);
    memset(a, 0, sizeof *a);
    dc_status s = parse_header(path, (const char *)buf + pre, hlen, &a->dtype,
                               &a->ndim, a->shape);
    if (s) return s;
    size_t count = 1, nbytes;
    for (int i = 0; i < a->ndim; i++)
        if (dc_mul_size(count, (size_t)a->shape[i], &count) != 0)
            return dc_set_error(DC_STATUS_FORMAT, "%s: shape overflows", path);
    if (dc_mul_size(count, dc_dtype_size(a->dtype), &nbytes) != 0)
        return dc_set_error(DC_STATUS_FORMAT, "%s: shape overflows", path);
    size_t off = pre + hlen;
    if (nbytes > size - off)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: truncated: shape needs %zu data bytes, file has %zu",
                            path, nbytes, size - off);
    if (nbytes < size - off)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: %zu unexpected bytes after the data (shape needs %zu)",
                            path, size - off - nbytes, nbytes);
    a->nbytes = nbytes;
    *data_off = off;
    return DC_OK;
}

dc_status dc_npy_map(const char *path, dc_array *out)
{
    memset(out, 0, sizeof *out);
    dc_mapped m;
    dc_status s = dc_map_file(path, &m);
    if (s) return s;
    size_t off = 0;
    s = parse_file(path, m.data, m.size, out, &off);
    if (s) {
        dc_unmap_file(&m);
        return s;
    }
    if (off % dc_dtype_size(out->dtype) != 0) {
        /* Data not aligned for its type (unusual writer): copy it. */
        out->owned_ = dc_malloc(out->nbytes, path);
        if (!out->owned_) {
            dc_unmap_file(&m);
            return DC_STATUS_NOMEM;
        }
        memcpy(out->owned_, m.data + off, out->nbytes);
        out->data = out->owned_;
        dc_unmap_file(&m);
        return DC_OK;
    }
    out->map_ = m;
    out->data = (void *)(m.data + off);
    return DC_OK;
}

dc_status dc_npy_header(const char *path, dc_array *meta, size_t *data_off)
{
    memset(meta, 0, sizeof *meta);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    uint8_t *head = NULL;
    dc_status s = DC_OK;
    if (fstat(fd, &st) != 0) {
        s = dc_set_error(DC_STATUS_IO, "%s: %s", path, strerror(errno));
    } else {
        size_t size = (size_t)st.st_size, want = size < 12 + NPY_MAX_HEADER ? size : 12 + NPY_MAX_HEADER;
        head = dc_malloc(want ? want : 1, "npy header");
        if (!head) s = DC_STATUS_NOMEM;
        size_t got = 0;
        while (s == DC_OK && got < want) {
            ssize_t k = pread(fd, head + got, want - got, (off_t)got);
            if (k <= 0) s = dc_set_error(DC_STATUS_IO, "%s: %s", path, k < 0 ? strerror(errno) : "short read");
            else got += (size_t)k;
        }
        if (s == DC_OK) s = parse_file(path, head, size, meta, data_off);
    }
    dc_free(head);
    close(fd);
    return s;
}

dc_status dc_npy_read(const char *path, dc_array *out)
{
    memset(out, 0, sizeof *out);
    dc_array view;
    dc_status s = dc_npy_map(path, &view);
    if (s) return s;
    *out = view;
    if (view.owned_) return DC_OK;
    out->map_.data = NULL;
    out->map_.size = 0;
    out->owned_ = dc_malloc(view.nbytes, path);
    if (!out->owned_) {
        dc_array_free(&view);
        memset(out, 0, sizeof *out);
        return DC_STATUS_NOMEM;
    }
    if (view.nbytes) memcpy(out->owned_, view.data, view.nbytes);
    out->data = out->owned_;
    dc_unmap_file(&view.map_);
    return DC_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static const char *descr_of(dc_dtype t)
{
    switch (t) {
    case DC_DTYPE_F32: return "<f4";
    case DC_DTYPE_I32: return "<i4";
    case DC_DTYPE_I64: return "<i8";
    case DC_DTYPE_U8: return "|u1";
    }
    return "?";
}

/* The header of an .npy of (dtype, shape) into head (at most 640 bytes):
 * its length to *total, the data's size to *nbytes. */
static dc_status npy_header(const char *path, dc_dtype dtype, int ndim, const int64_t *shape, int version,
                            uint8_t *head, size_t *total, size_t *nbytes)
{
    DC_ASSERT(ndim >= 0 && ndim <= DC_MAX_DIMS);
    DC_ASSERT(version >= 0 && version <= 2);
    char dict[512];
    size_t n = (size_t)snprintf(dict, sizeof dict,
                                "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr_of(dtype));
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        DC_ASSERT(shape[i] >= 0);
        if (dc_mul_size(count, (size_t)shape[i], &count) != 0)
            return dc_set_error(DC_STATUS_ARG, "%s: shape overflows", path);
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    }
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    if (dc_mul_size(count, dc_dtype_size(dtype), nbytes) != 0)
        return dc_set_error(DC_STATUS_ARG, "%s: shape overflows", path);

    if (version == 0) version = 1; /* our headers always fit in 1.0's u16 */
    size_t pre = version == 1 ? 10 : 12;
    /* Pad with spaces so that preamble + header + '\n' is a multiple of 64. */
    *total = (pre + n + 1 + 63) / 64 * 64;
    size_t hlen = *total - pre;
    DC_ASSERT(*total <= 640);
    memcpy(head, NPY_MAGIC, NPY_MAGIC_LEN);
    head[6] = (uint8_t)version;
    head[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) head[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(head + pre, dict, n);
    memset(head + pre + n, ' ', hlen - n - 1);
    head[*total - 1] = '\n';
    return DC_OK;
}

static dc_status writer_open(dc_npy_writer *w, const char *path, dc_dtype dtype, int ndim, const int64_t *shape,
                             int version)
{
    memset(w, 0, sizeof *w);
    uint8_t head[640];
    size_t total = 0;
    dc_status s = npy_header(path, dtype, ndim, shape, version, head, &total, &w->left);
    if (s == DC_OK) s = dc_afile_open(&w->a, path);
    if (s == DC_OK) s = dc_afile_write(&w->a, head, total);
    return s;
}

dc_status dc_npy_writer_open(dc_npy_writer *w, const char *path, dc_dtype dtype, int ndim, const int64_t *shape)
{
    return writer_open(w, path, dtype, ndim, shape, 0);
}

dc_status dc_npy_writer_write(dc_npy_writer *w, const void *data, size_t nbytes)
{
    if (nbytes > w->left) {
        w->a.failed = 1;
        return dc_set_error(DC_STATUS_ARG, "%s: %zu bytes more than its shape holds", w->a.path, nbytes - w->left);
    }
    w->left -= nbytes;
    return dc_afile_write(&w->a, data, nbytes);
}

dc_status dc_npy_writer_commit(dc_npy_writer *w)
{
    if (w->left) {
        dc_status s = dc_set_error(DC_STATUS_ARG, "%s: %zu bytes short of its shape", w->a.path, w->left);
        dc_afile_abort(&w->a);
        return s;
    }
    return dc_afile_commit(&w->a);
}

void dc_npy_writer_abort(dc_npy_writer *w) { dc_afile_abort(&w->a); }

dc_status dc_npy_write_version(const char *path, dc_dtype dtype, int ndim,
                               const int64_t *shape, const void *data,
                               int version)
{
    dc_npy_writer w;
    dc_status s = writer_open(&w, path, dtype, ndim, shape, version);
    if (s == DC_OK) s = dc_npy_writer_write(&w, data, w.left);
    if (s == DC_OK) return dc_npy_writer_commit(&w);
    dc_npy_writer_abort(&w);
    return s;
}

dc_status dc_npy_write(const char *path, dc_dtype dtype, int ndim,
                       const int64_t *shape, const void *data)
{
    return dc_npy_write_version(path, dtype, ndim, shape, data, 0);
}
