/* pack.c — writes a pack (pack_format.h): every image of a dataset into a
 * few large shard files plus an index, so that a corpus of millions of
 * files is opened as a handful of memory maps. JPEG and PNG files that need
 * no resizing are stored as their own bytes (decoding them gives exactly
 * what decoding the file gives); in-memory sets (IDX, CIFAR) and resized
 * images are stored as raw 8-bit pixels. Shards and index are written
 * atomically, the index last: a pack interrupted while being written has
 * no index and is not taken for one.
 * Includes: dc/data.h, dc/io.h. */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"
#include "dc/io.h"
#include "pack_format.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void dc_pack_opts_default(dc_pack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->shard_bytes = (int64_t)1 << 30;
    o->progress = 1;
}

/* Scratch for resizing, grown as needed, reused across images. */
typedef struct {
    float *f; /* the resized image, then the resize's temporary */
    uint8_t *pix;
    size_t cap;
} resize_buf;

/* im with its shorter side scaled to max_side (PIL's bilinear), rounded to
 * 8 bits; returns the pixels (in rb) and their size in *eh x *ew. */
static const uint8_t *resize_8bit(resize_buf *rb, const dc_image *im, int max_side, int *eh, int *ew)
{
    if (im->h <= im->w) {
        *eh = max_side;
        *ew = (int)lround((double)im->w * max_side / im->h);
    } else {
        *ew = max_side;
        *eh = (int)lround((double)im->h * max_side / im->w);
    }
    size_t need = (size_t)*eh * *ew * im->c, tneed = (size_t)im->h * *ew * im->c;
    if (need + tneed > rb->cap) {
        rb->cap = need + tneed;
        dc_free(rb->f);
        dc_free(rb->pix);
        rb->f = dc_xmalloc(rb->cap * sizeof *rb->f);
        rb->pix = dc_xmalloc(rb->cap);
    }
    dc_resize_region(rb->f, *eh, *ew, im, 0, 0, im->h, im->w, rb->f + need);
    for (size_t k = 0; k < need; k++) {
        float v = rb->f[k] + 0.5f;
        rb->pix[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return rb->pix;
}

/* The index's header (pack_format.h) in front of its n entries, then the
 * index file; ch x cw: the images' common size (0 x 0 when they differ). */
static dc_status write_index(const char *dir, uint8_t *index, const dc_dataset *src, int64_t n, uint32_t nshards,
                             int ch, int cw, int maxside)
{
    const int32_t *labels = dc_dataset_labels(src);
    memcpy(index, DC_PACK_MAGIC, 8);
    put32(index + 8, DC_PACK_VERSION);
    put32(index + 12, nshards);
    put64(index + 16, (uint64_t)n);
    put32(index + 24, (uint32_t)(labels ? dc_dataset_nclasses(src) : 0));
    put32(index + 28, (uint32_t)(ch > 0 ? ch : 0));
    put32(index + 32, (uint32_t)(cw > 0 ? cw : 0));
    put32(index + 36, (uint32_t)dc_dataset_channels(src));
    put32(index + 40, (uint32_t)maxside);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, DC_PACK_INDEX);
    dc_afile a;
    dc_status s = dc_afile_open(&a, path);
    if (s != DC_OK) return s;
    dc_afile_write(&a, index, (size_t)DC_PACK_HEADER + (size_t)n * DC_PACK_ENTRY);
    return dc_afile_commit(&a);
}

/* The shards being written and what the index needs to know about them. */
typedef struct {
    const char *dir;
    int64_t shard_bytes;
    dc_afile shard;
    int open;
    uint32_t nshards;
    uint64_t off;                /* within the open shard */
    int ch, cw, maxside;         /* common size (-1: none yet, 0: mixed), largest side */
} pack_writer;

/* One image's bytes where they fit: the open shard, or a new one once it
 * would exceed shard_bytes; its entry into e. */
static dc_status pack_append(pack_writer *w, uint8_t *e, const uint8_t *bytes, size_t len, int eh, int ew, int c,
                             int fmt, int32_t label)
{
    dc_status s;
    if (w->open && w->off > 0 && w->off + len > (uint64_t)w->shard_bytes) {
        w->open = 0;
        if ((s = dc_afile_commit(&w->shard))) return s;
    }
    if (!w->open) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%05u.bin", w->dir, w->nshards);
        if ((s = dc_afile_open(&w->shard, path))) return s;
        w->open = 1;
        w->nshards++;
        w->off = 0;
    }
    s = dc_afile_write(&w->shard, bytes, len);
    put64(e, w->off);
    put32(e + 8, (uint32_t)len);
    put32(e + 12, w->nshards - 1);
    put16(e + 16, (uint32_t)eh);
    put16(e + 18, (uint32_t)ew);
    e[20] = (uint8_t)c;
    e[21] = (uint8_t)fmt;
    put32(e + 24, (uint32_t)label);
    w->off += len;
    if (w->ch < 0) {
        w->ch = eh;
        w->cw = ew;
    } else if (w->ch != eh || w->cw != ew) {
        w->ch = w->cw = 0;
    }
    if (eh > w->maxside) w->maxside = eh;
    if (ew > w->maxside) w->maxside = ew;
    return s;
}

/* A pack directory that does not hold a pack yet. */
static dc_status pack_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, DC_PACK_INDEX);
    struct stat st;
    if (stat(path, &st) == 0) return dc_set_error(DC_STATUS_ARG, "%s already holds a pack; choose another --out", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return dc_set_error(DC_STATUS_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return dc_set_error(DC_STATUS_IO, "%s: not a directory", dir);
    return DC_OK;
}

dc_status dc_pack_write(const dc_dataset *src, const char *dir, const dc_pack_opts *opts, dc_pack_stats *stats)
{
    dc_pack_opts o;
    if (opts) o = *opts;
    else dc_pack_opts_default(&o);
    if (o.shard_bytes < 1) o.shard_bytes = (int64_t)1 << 30;
    if (stats) memset(stats, 0, sizeof *stats);
    dc_status s = pack_dir(dir);
    if (s) return s;

    int64_t n = dc_dataset_size(src);
    if (o.max_images > 0 && o.max_images < n) n = o.max_images;
    const int32_t *labels = dc_dataset_labels(src);
    int c = dc_dataset_channels(src);
    uint8_t *index = dc_calloc((size_t)DC_PACK_HEADER + (size_t)n * DC_PACK_ENTRY, 1, "pack index");
    if (!index) return DC_STATUS_NOMEM;
    dc_image_buf buf = {0};
    resize_buf rb = {0};
    pack_writer w = {.dir = dir, .shard_bytes = o.shard_bytes, .ch = -1, .cw = -1};
    dc_progress_opts po = dc_progress_opts_default();
    po.unit = "img";
    dc_progress *bar = o.progress ? dc_progress_start("pack", (uint64_t)n, &po) : NULL;
    for (int64_t i = 0; i < n && s == DC_OK; i++) {
        dc_image im;
        if ((s = dc_dataset_get(src, i, &buf, &im))) break;
        const char *file = dc_dataset_path(src, i);
        int shorter = im.h < im.w ? im.h : im.w;
        int resize = o.max_side > 0 && shorter > o.max_side;
        const uint8_t *bytes;
        size_t len;
        int fmt = DC_PACK_RAW, eh = im.h, ew = im.w;
        char *fbytes = NULL;
        if (file && !resize) {
            /* the file itself: decoding it again gives the same pixels */
            if ((s = dc_read_file(file, (size_t)1 << 31, &fbytes, &len))) break;
            bytes = (const uint8_t *)fbytes;
            fmt = DC_PACK_FILE;
        } else if (resize) {
            bytes = resize_8bit(&rb, &im, o.max_side, &eh, &ew);
            len = (size_t)eh * ew * im.c;
        } else {
            bytes = im.data;
            len = (size_t)im.h * im.w * im.c;
        }
        if (eh > 65535 || ew > 65535 || len > UINT32_MAX)
            s = dc_set_error(DC_STATUS_ARG, "image %lld is %dx%d: too large for a pack; use --max-side", (long long)i,
                             eh, ew);
        else
            s = pack_append(&w, index + DC_PACK_HEADER + (size_t)i * DC_PACK_ENTRY, bytes, len, eh, ew,
                            fmt == DC_PACK_FILE ? c : im.c, fmt, labels ? labels[i] : -1);
        dc_free(fbytes);
        if (s == DC_OK && stats) {
            stats->images++;
            stats->bytes += (int64_t)len;
            stats->resized += resize;
            stats->files += fmt == DC_PACK_FILE;
        }
        if (bar && (i % 256 == 255 || i == n - 1)) dc_progress_update(bar, (uint64_t)i + 1);
    }
    dc_progress_finish(bar);
    if (w.open) {
        if (s == DC_OK) s = dc_afile_commit(&w.shard);
        else dc_afile_abort(&w.shard);
    }
    if (s == DC_OK) s = write_index(dir, index, src, n, w.nshards, w.ch, w.cw, w.maxside);
    if (stats) stats->shards = (int)w.nshards;
    dc_image_buf_free(&buf);
    dc_free(rb.f);
    dc_free(rb.pix);
    dc_free(index);
    return s;
}
