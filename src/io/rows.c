/* rows.c — row sources (dc/io.h): a float32 matrix read a block of
 * consecutive rows at a time, from memory or from a .npy file by pread into
 * one buffer, for clustering features larger than memory (the scratch files
 * of kmeans --memory-mb and of train's clustering step).
 * Includes: dc/io.h, POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "dc/io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void dc_rows_memory(dc_rows *r, const float *x, int64_t n, int d)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->d = d;
    r->mem = x;
    r->fd = -1;
    r->cap = n;
}

int dc_rows_streamed(const dc_rows *r) { return r->mem == NULL && (r->fd >= 0 || r->fetch); }

dc_status dc_rows_function(dc_rows *r, int64_t n, int d, dc_rows_fetch fetch, void *ctx, int64_t cap)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->n = n;
    r->d = d;
    r->fetch = fetch;
    r->ctx = ctx;
    r->cap = cap < 1 ? 1 : cap;
    r->buf = dc_malloc((size_t)r->cap * (size_t)d * sizeof(float), "row buffer");
    return r->buf ? DC_OK : DC_STATUS_NOMEM;
}

void dc_rows_close(dc_rows *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    dc_free(r->path);
    dc_free(r->buf);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

static dc_status open_file(dc_rows *r, const char *path, int64_t off, int64_t n, int d, int64_t cap)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    r->fd = fd;
    r->n = n;
    r->d = d;
    r->off = off;
    r->cap = cap < 1 ? 1 : cap;
    r->path = dc_malloc(strlen(path) + 1, "row source name");
    r->buf = dc_malloc((size_t)r->cap * (size_t)d * sizeof(float), "row buffer");
    if (!r->path || !r->buf) {
        dc_rows_close(r);
        return DC_STATUS_NOMEM;
    }
    memcpy(r->path, path, strlen(path) + 1);
    return DC_OK;
}

dc_status dc_rows_open_npy(dc_rows *r, const char *path, int64_t cap)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    dc_array meta;
    size_t off;
    dc_status s = dc_npy_header(path, &meta, &off);
    if (s == DC_OK) s = dc_array_expect(&meta, path, DC_DTYPE_F32, 2, NULL);
    if (s == DC_OK && (meta.shape[0] < 1 || meta.shape[1] < 1 || meta.shape[1] > INT32_MAX))
        s = dc_set_error(DC_STATUS_FORMAT, "%s: empty feature matrix", path);
    if (s) return s;
    return open_file(r, path, (int64_t)off, meta.shape[0], (int)meta.shape[1], cap);
}

dc_status dc_rows_slice(dc_rows *out, const dc_rows *src, int64_t lo, int64_t hi, int64_t cap)
{
    DC_ASSERT(lo >= 0 && lo <= hi && hi <= src->n && !src->fetch);
    if (src->mem) {
        dc_rows_memory(out, src->mem + lo * src->d, hi - lo, src->d);
        return DC_OK;
    }
    return open_file(out, src->path, src->off + lo * src->d * (int64_t)sizeof(float), hi - lo, src->d, cap);
}

/* count rows from row `row` of the file into dst. */
static dc_status pread_rows(const dc_rows *r, int64_t row, int64_t count, float *dst)
{
    size_t want = (size_t)count * (size_t)r->d * sizeof(float), got = 0;
    off_t at = (off_t)(r->off + row * (int64_t)r->d * (int64_t)sizeof(float));
    while (got < want) {
        ssize_t k = pread(r->fd, (char *)dst + got, want - got, at + (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return dc_set_error(DC_STATUS_IO, "%s: reading rows %lld to %lld: %s", r->path, (long long)row,
                                (long long)(row + count), k < 0 ? strerror(errno) : "the file is shorter than its header says");
        got += (size_t)k;
    }
    return DC_OK;
}

dc_status dc_rows_read(dc_rows *r, int64_t row, int64_t count, const float **out)
{
    DC_ASSERT(row >= 0 && count >= 0 && row + count <= r->n);
    if (r->mem) {
        *out = r->mem + row * r->d;
        return DC_OK;
    }
    if (count > r->cap) {
        float *b = dc_malloc((size_t)count * (size_t)r->d * sizeof(float), "row buffer");
        if (!b) return DC_STATUS_NOMEM;
        dc_free(r->buf);
        r->buf = b;
        r->cap = count;
    }
    *out = r->buf;
    if (r->fetch) return r->fetch(r->ctx, NULL, row, count, r->buf);
    return pread_rows(r, row, count, r->buf);
}

dc_status dc_rows_gather(dc_rows *r, const int64_t *idx, int64_t cnt, float *dst)
{
    if (r->fetch) return r->fetch(r->ctx, idx, 0, cnt, dst);
    size_t row = (size_t)r->d * sizeof(float);
    for (int64_t i = 0; i < cnt;) {
        int64_t run = 1;
        while (i + run < cnt && idx[i + run] == idx[i] + run) run++;
        DC_ASSERT(idx[i] >= 0 && idx[i] + run <= r->n);
        if (r->mem) {
            memcpy(dst + i * r->d, r->mem + idx[i] * r->d, (size_t)run * row);
        } else {
            dc_status s = pread_rows(r, idx[i], run, dst + i * r->d);
            if (s) return s;
        }
        i += run;
    }
    return DC_OK;
}
