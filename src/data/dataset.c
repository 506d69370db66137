/* dataset.c — datasets held in memory as 8-bit HWC images: IDX files (the
 * MNIST / Fashion-MNIST format: big-endian magic 0x00000803 for images,
 * 0x00000801 for labels, then the dimensions; gzipped or not, read through
 * zlib) and CIFAR-10/100 binary batches (records of label byte(s) and a
 * 3072-byte R, G, B plane image). Every header and size is checked before
 * use; a malformed file gives an error naming it.
 * Includes: dc/data.h, dc/io.h, zlib, POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"
#include "dc/io.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MAX_FILE (4ull << 30)

struct dc_dataset {
    int64_t n;
    int h, w, c;
    uint8_t *pixels;  /* (n, h, w, c) */
    int32_t *labels;  /* (n) or NULL  */
    int nclasses;
    char desc[600];
};

void dc_dataset_close(dc_dataset *d)
{
    if (!d) return;
    dc_free(d->pixels);
    dc_free(d->labels);
    dc_free(d);
}

int64_t dc_dataset_size(const dc_dataset *d) { return d->n; }
int dc_dataset_channels(const dc_dataset *d) { return d->c; }
int dc_dataset_height(const dc_dataset *d) { return d->h; }
int dc_dataset_width(const dc_dataset *d) { return d->w; }
const int32_t *dc_dataset_labels(const dc_dataset *d) { return d->labels; }
int dc_dataset_nclasses(const dc_dataset *d) { return d->nclasses; }
const char *dc_dataset_describe(const dc_dataset *d) { return d->desc; }

dc_image dc_dataset_image(const dc_dataset *d, int64_t i)
{
    DC_ASSERT(i >= 0 && i < d->n);
    dc_image im = {d->pixels + (size_t)i * d->h * d->w * d->c, d->h, d->w, d->c};
    return im;
}

/* Whole file through zlib (transparent for uncompressed files). */
static dc_status read_gz(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0) return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return dc_set_error(DC_STATUS_IO, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = (size_t)st.st_size + 1024, n = 0;
    uint8_t *buf = dc_malloc(cap, path);
    if (!buf) {
        gzclose(f);
        return DC_STATUS_NOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE) {
                dc_free(buf);
                gzclose(f);
                return dc_set_error(DC_STATUS_FORMAT, "%s: more than %llu bytes once decompressed", path,
                                    (unsigned long long)MAX_FILE);
            }
            cap *= 2;
            uint8_t *nb = dc_malloc(cap, path);
            if (!nb) {
                dc_free(buf);
                gzclose(f);
                return DC_STATUS_NOMEM;
            }
            memcpy(nb, buf, n);
            dc_free(buf);
            buf = nb;
        }
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int got = gzread(f, buf + n, (unsigned)want);
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            dc_status s = dc_set_error(DC_STATUS_FORMAT, "%s: corrupt compressed data (%s)", path, msg);
            dc_free(buf);
            gzclose(f);
            return s;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    *out = buf;
    *len = n;
    return DC_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The labels file beside an images file: "…images-idx3-ubyte…" → "…labels-idx1-ubyte…". */
static int labels_beside(const char *images, char *out, size_t n)
{
    const char *at = strstr(images, "images-idx3-ubyte");
    if (!at) return 0;
    snprintf(out, n, "%.*slabels-idx1-ubyte%s", (int)(at - images), images, at + strlen("images-idx3-ubyte"));
    struct stat st;
    return stat(out, &st) == 0;
}

static dc_status open_idx(dc_dataset *d, const char *path, const char *labels, const uint8_t *buf, size_t len)
{
    if (len < 16 || be32(buf) != 0x00000803)
        return dc_set_error(DC_STATUS_FORMAT, "%s: not an IDX image file (expected magic 0x00000803, unsigned bytes, 3 dimensions)",
                            path);
    uint32_t n = be32(buf + 4), h = be32(buf + 8), w = be32(buf + 12);
    if (n == 0) return dc_set_error(DC_STATUS_FORMAT, "%s: holds no images", path);
    if (h == 0 || w == 0 || h > 65536 || w > 65536)
        return dc_set_error(DC_STATUS_FORMAT, "%s: bad image size %ux%u", path, h, w);
    size_t need = (size_t)n * h * w;
    if (len - 16 < need)
        return dc_set_error(DC_STATUS_FORMAT, "%s: truncated: %u images of %ux%u need %zu bytes, file has %zu", path,
                            n, h, w, need, len - 16);
    d->n = n;
    d->h = (int)h;
    d->w = (int)w;
    d->c = 1;
    d->pixels = dc_malloc(need, path);
    if (!d->pixels) return DC_STATUS_NOMEM;
    memcpy(d->pixels, buf + 16, need);
    char found[1024];
    const char *lp = labels;
    if (!lp && labels_beside(path, found, sizeof found)) lp = found;
    if (lp) {
        uint8_t *lb;
        size_t ll;
        dc_status s = read_gz(lp, &lb, &ll);
        if (s) return s;
        if (ll < 8 || be32(lb) != 0x00000801) {
            dc_free(lb);
            return dc_set_error(DC_STATUS_FORMAT, "%s: not an IDX label file (expected magic 0x00000801)", lp);
        }
        uint32_t nl = be32(lb + 4);
        if (nl != n || ll - 8 < n) {
            dc_free(lb);
            return dc_set_error(DC_STATUS_FORMAT, "%s: %u labels for %u images in %s", lp, nl, n, path);
        }
        d->labels = dc_malloc((size_t)n * sizeof(int32_t), lp);
        if (!d->labels) {
            dc_free(lb);
            return DC_STATUS_NOMEM;
        }
        int maxl = 0;
        for (uint32_t i = 0; i < n; i++) {
            d->labels[i] = lb[8 + i];
            if (lb[8 + i] > maxl) maxl = lb[8 + i];
        }
        d->nclasses = maxl + 1;
        dc_free(lb);
    }
    snprintf(d->desc, sizeof d->desc, "IDX: %lld grey %dx%d images%s (%s)", (long long)d->n, d->h, d->w,
             d->labels ? ", labelled" : "", path);
    return DC_OK;
}

/* Appends the records of one CIFAR batch file. */
static dc_status add_cifar(dc_dataset *d, const char *path, size_t *cap)
{
    uint8_t *buf;
    size_t len;
    dc_status s = read_gz(path, &buf, &len);
    if (s) return s;
    int rec = len % 3073 == 0 ? 3073 : len % 3074 == 0 ? 3074 : 0;
    if (len == 0 || rec == 0) {
        dc_free(buf);
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: not a CIFAR binary batch (%zu bytes is not a whole number of 3073- or 3074-byte records)",
                            path, len);
    }
    if (d->n && rec - 3072 != (d->nclasses > 10 ? 2 : 1)) {
        dc_free(buf);
        return dc_set_error(DC_STATUS_FORMAT, "%s: mixes CIFAR-10 and CIFAR-100 records", path);
    }
    int64_t m = (int64_t)(len / (size_t)rec);
    if ((size_t)(d->n + m) > *cap) {
        size_t nc = (size_t)(d->n + m) * 2;
        uint8_t *np = dc_malloc(nc * 3072, path);
        int32_t *nl = dc_malloc(nc * sizeof(int32_t), path);
        if (!np || !nl) {
            dc_free(np);
            dc_free(nl);
            dc_free(buf);
            return DC_STATUS_NOMEM;
        }
        if (d->n) {
            memcpy(np, d->pixels, (size_t)d->n * 3072);
            memcpy(nl, d->labels, (size_t)d->n * sizeof(int32_t));
        }
        dc_free(d->pixels);
        dc_free(d->labels);
        d->pixels = np;
        d->labels = nl;
        *cap = nc;
    }
    int ncls = rec == 3073 ? 10 : 100;
    for (int64_t i = 0; i < m; i++) {
        const uint8_t *r = buf + (size_t)i * rec;
        int label = r[rec - 3073]; /* CIFAR-100: [coarse, fine]; the fine label */
        if (label >= ncls) {
            dc_status e = dc_set_error(DC_STATUS_FORMAT, "%s: record %lld has label %d, beyond %d classes", path,
                                       (long long)i, label, ncls);
            dc_free(buf);
            return e;
        }
        const uint8_t *img = r + rec - 3072;
        uint8_t *dst = d->pixels + (size_t)(d->n + i) * 3072;
        for (int p = 0; p < 1024; p++) {
            dst[3 * p] = img[p];
            dst[3 * p + 1] = img[1024 + p];
            dst[3 * p + 2] = img[2048 + p];
        }
        d->labels[d->n + i] = label;
    }
    d->n += m;
    d->nclasses = ncls;
    dc_free(buf);
    return DC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static dc_status open_cifar_dir(dc_dataset *d, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) return dc_set_error(DC_STATUS_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && nn < 64) {
        const char *s = e->d_name;
        if ((strncmp(s, "data_batch_", 11) == 0 && strstr(s, ".bin")) || strcmp(s, "train.bin") == 0)
            names[nn++] = dc_xstrdup(s);
    }
    closedir(dp);
    if (nn == 0)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: no CIFAR training batches (data_batch_*.bin or train.bin) in this directory", dir);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    size_t cap = 0;
    dc_status s = DC_OK;
    for (int i = 0; i < nn; i++) {
        if (s == DC_OK) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            s = add_cifar(d, path, &cap);
        }
        dc_free(names[i]);
    }
    return s;
}

dc_status dc_dataset_open(const char *src, const char *labels, dc_dataset **out)
{
    *out = NULL;
    dc_dataset *d = dc_xcalloc(1, sizeof *d);
    struct stat st;
    dc_status s;
    if (stat(src, &st) != 0) {
        s = dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", src, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        s = open_cifar_dir(d, src);
        if (s == DC_OK) {
            d->h = d->w = 32;
            d->c = 3;
            snprintf(d->desc, sizeof d->desc, "CIFAR-%d: %lld RGB 32x32 images, labelled (%s)", d->nclasses,
                     (long long)d->n, src);
        }
    } else {
        uint8_t *buf;
        size_t len;
        s = read_gz(src, &buf, &len);
        if (s == DC_OK) {
            if (len >= 4 && be32(buf) == 0x00000803) {
                s = open_idx(d, src, labels, buf, len);
            } else if (len > 0 && (len % 3073 == 0 || len % 3074 == 0)) {
                size_t cap = 0;
                dc_free(buf);
                buf = NULL;
                s = add_cifar(d, src, &cap);
                if (s == DC_OK) {
                    d->h = d->w = 32;
                    d->c = 3;
                    snprintf(d->desc, sizeof d->desc, "CIFAR-%d: %lld RGB 32x32 images, labelled (%s)", d->nclasses,
                             (long long)d->n, src);
                }
            } else if (len == 0) {
                s = dc_set_error(DC_STATUS_FORMAT, "%s: empty file", src);
            } else {
                s = dc_set_error(DC_STATUS_FORMAT, "%s: not a dataset deepercluster reads (IDX images or CIFAR binary batches)",
                                 src);
            }
            dc_free(buf);
        }
    }
    if (s == DC_OK && labels && d->labels == NULL)
        s = dc_set_error(DC_STATUS_ARG, "%s: --labels applies to IDX image files only", src);
    if (s) {
        dc_dataset_close(d);
        return s;
    }
    *out = d;
    return DC_OK;
}
