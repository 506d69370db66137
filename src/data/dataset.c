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
#include "pack_format.h"

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
    int h, w, c;          /* common size (0 when the images vary)     */
    uint8_t *pixels;      /* in memory: (n, h, w, c); NULL for files   */
    char **paths;         /* image files (n), decoded on demand        */
    int32_t *labels;      /* (n) or NULL                               */
    int nclasses;
    int max_side;         /* largest side among the images             */
    int decode_min_side;  /* DCT down-scaling hint for JPEGs           */
    char **skip_path, **skip_why;
    int64_t nskip;
    dc_mapped pack_index;  /* a pack: its index and shards, mapped       */
    dc_mapped *shards;
    uint32_t nshards;
    char *pack_dir;
    char desc[600];
    int borrowed;          /* pixels and labels belong to the caller     */
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

void dc_dataset_close(dc_dataset *d)
{
    if (!d) return;
    if (d->borrowed) d->pixels = NULL, d->labels = NULL;
    dc_free(d->pixels);
    for (int64_t i = 0; d->paths && i < d->n; i++) dc_free(d->paths[i]);
    dc_free(d->paths);
    for (int64_t i = 0; i < d->nskip; i++) {
        dc_free(d->skip_path[i]);
        dc_free(d->skip_why[i]);
    }
    dc_free(d->skip_path);
    dc_free(d->skip_why);
    dc_free(d->labels);
    for (uint32_t i = 0; d->shards && i < d->nshards; i++) dc_unmap_file(&d->shards[i]);
    dc_free(d->shards);
    dc_unmap_file(&d->pack_index);
    dc_free(d->pack_dir);
    dc_free(d);
}

int64_t dc_dataset_nskipped(const dc_dataset *d) { return d->nskip; }

void dc_dataset_skipped(const dc_dataset *d, int64_t i, const char **path, const char **why)
{
    DC_ASSERT(i >= 0 && i < d->nskip);
    *path = d->skip_path[i];
    *why = d->skip_why[i];
}

int dc_dataset_max_side(const dc_dataset *d) { return d->max_side; }
void dc_dataset_set_decode_hint(dc_dataset *d, int min_side) { d->decode_min_side = min_side; }
const char *dc_dataset_path(const dc_dataset *d, int64_t i) { return d->paths ? d->paths[i] : NULL; }

dc_status dc_dataset_get(const dc_dataset *d, int64_t i, dc_image_buf *buf, dc_image *out)
{
    DC_ASSERT(i >= 0 && i < d->n);
    if (d->pixels) {
        out->data = d->pixels + (size_t)i * d->h * d->w * d->c;
        out->h = d->h;
        out->w = d->w;
        out->c = d->c;
        return DC_OK;
    }
    if (d->pack_index.data) {
        const uint8_t *e = d->pack_index.data + DC_PACK_HEADER + (size_t)i * DC_PACK_ENTRY;
        uint64_t off = le64(e);
        uint32_t len = le32(e + 8), shard = le32(e + 12);
        const uint8_t *bytes = d->shards[shard].data + off; /* bounds checked at open */
        if (e[21] == DC_PACK_FILE) {
            char name[64];
            snprintf(name, sizeof name, "pack image %lld", (long long)i);
            return dc_decode_image_mem(name, bytes, len, d->decode_min_side, buf, out);
        }
        out->data = bytes;
        out->h = le16(e + 16);
        out->w = le16(e + 18);
        out->c = e[20];
        return DC_OK;
    }
    return dc_decode_image(d->paths[i], d->decode_min_side, buf, out);
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
    DC_ASSERT(i >= 0 && i < d->n && d->pixels);
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

dc_status dc_dataset_wrap(const uint8_t *pixels, int64_t n, int h, int w, int c, const int32_t *labels,
                          dc_dataset **out)
{
    *out = NULL;
    if (n < 1) return dc_set_error(DC_STATUS_ARG, "images: an array of %lld images (need at least 1)", (long long)n);
    if (h < 1 || w < 1 || h > 65536 || w > 65536)
        return dc_set_error(DC_STATUS_ARG, "images: bad image size %dx%d", h, w);
    if (c != 1 && c != 3)
        return dc_set_error(DC_STATUS_ARG, "images: %d channels (1, grey, or 3, RGB)", c);
    int maxl = -1;
    for (int64_t i = 0; labels && i < n; i++) {
        if (labels[i] < 0)
            return dc_set_error(DC_STATUS_ARG, "labels: label %lld is %d (labels are non-negative)", (long long)i,
                                labels[i]);
        if (labels[i] > maxl) maxl = labels[i];
    }
    dc_dataset *d = dc_xcalloc(1, sizeof *d);
    d->borrowed = 1;
    d->pixels = (uint8_t *)pixels;
    d->labels = (int32_t *)labels;
    d->nclasses = maxl + 1;
    d->n = n;
    d->h = h;
    d->w = w;
    d->c = c;
    d->max_side = h > w ? h : w;
    snprintf(d->desc, sizeof d->desc, "array: %lld %s %dx%d images%s", (long long)n, c == 1 ? "grey" : "RGB", h, w,
             labels ? ", labelled" : "");
    *out = d;
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

/* ---- image folders and list files ------------------------------------- */

typedef struct {
    char **v;
    int64_t n, cap;
} strvec;

static void sv_push(strvec *s, char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = dc_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = x;
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char e[8];
    size_t n = strlen(dot + 1);
    if (n >= sizeof e) return 0;
    for (size_t i = 0; i <= n; i++) e[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] + 32 : dot[1 + i]);
    return !strcmp(e, "jpg") || !strcmp(e, "jpeg") || !strcmp(e, "png");
}

/* Every image file under dir, recursively (sorted later). */
/* The entries of dir, hidden ones left out: its sub-folders' paths into
 * dirs and its JPEG/PNG files' into images (either may be NULL). -1 (errno
 * set) when dir cannot be opened. */
static int read_dir(const char *dir, strvec *dirs, strvec *images)
{
    DIR *dp = opendir(dir);
    if (!dp) return -1;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = dc_xmalloc(n);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (dirs) sv_push(dirs, p);
            else dc_free(p);
        } else if (images && has_image_ext(e->d_name)) {
            sv_push(images, p);
        } else {
            dc_free(p);
        }
    }
    closedir(dp);
    return 0;
}

static void scan(const char *dir, strvec *files, int depth)
{
    strvec subs = {0};
    if (depth > 64 || read_dir(dir, &subs, files) != 0) return;
    for (int64_t i = 0; i < subs.n; i++) {
        scan(subs.v[i], files, depth + 1);
        dc_free(subs.v[i]);
    }
    dc_free(subs.v);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Decodes every file once (all cores): the good ones are kept with their
 * sizes, the broken ones listed with the reason. */
static dc_status validate_files(dc_dataset *d, strvec *files, const int32_t *labels_in, const char *src)
{
    int64_t n = files->n;
    char **why = dc_xcalloc((size_t)(n ? n : 1), sizeof *why);
    int *hh = dc_xcalloc((size_t)(n ? n : 1), sizeof *hh), *ww = dc_xcalloc((size_t)(n ? n : 1), sizeof *ww);
#pragma omp parallel
    {
        dc_image_buf b = {0};
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < n; i++) {
            dc_image im;
            if (dc_decode_image(files->v[i], 0, &b, &im) == DC_OK) {
                hh[i] = im.h;
                ww[i] = im.w;
            } else {
                const char *msg = dc_last_error();
                const char *colon = strstr(msg, ": ");
                why[i] = dc_xstrdup(colon ? colon + 2 : msg);
            }
        }
        dc_image_buf_free(&b);
    }
    d->paths = dc_xmalloc((size_t)(n ? n : 1) * sizeof *d->paths);
    if (labels_in) d->labels = dc_xmalloc((size_t)(n ? n : 1) * sizeof *d->labels);
    int same = 1;
    for (int64_t i = 0; i < n; i++) {
        if (why[i]) {
            d->skip_path = dc_xrealloc(d->skip_path, (size_t)(d->nskip + 1) * sizeof *d->skip_path);
            d->skip_why = dc_xrealloc(d->skip_why, (size_t)(d->nskip + 1) * sizeof *d->skip_why);
            d->skip_path[d->nskip] = files->v[i];
            d->skip_why[d->nskip] = why[i];
            d->nskip++;
            dc_log_debug("skipping %s: %s", files->v[i], why[i]);
            continue;
        }
        if (d->n == 0) {
            d->h = hh[i];
            d->w = ww[i];
        } else if (hh[i] != d->h || ww[i] != d->w) {
            same = 0;
        }
        if (hh[i] > d->max_side) d->max_side = hh[i];
        if (ww[i] > d->max_side) d->max_side = ww[i];
        if (labels_in) d->labels[d->n] = labels_in[i];
        d->paths[d->n++] = files->v[i];
    }
    if (!same) d->h = d->w = 0;
    d->c = 3;
    if (d->nskip)
        dc_log_warn("%s: %lld broken file%s skipped (first: %s: %s)", src, (long long)d->nskip, d->nskip == 1 ? "" : "s",
                    d->skip_path[0], d->skip_why[0]);
    dc_free(why);
    dc_free(hh);
    dc_free(ww);
    dc_free(files->v);
    files->v = NULL;
    if (d->n == 0)
        return dc_set_error(DC_STATUS_FORMAT, "%s: no usable images (%lld file%s skipped as broken)", src,
                            (long long)d->nskip, d->nskip == 1 ? "" : "s");
    return DC_OK;
}

static dc_status open_folder(dc_dataset *d, const char *dir)
{
    /* first-level sub-folders, sorted, are the classes */
    strvec classes = {0}, files = {0};
    if (read_dir(dir, &classes, NULL) != 0)
        return dc_set_error(DC_STATUS_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int32_t *labels = NULL;
    if (classes.n > 0) {
        qsort(classes.v, (size_t)classes.n, sizeof *classes.v, cmp_cstr);
        int64_t cap = 0;
        for (int64_t c = 0; c < classes.n; c++) {
            int64_t before = files.n;
            scan(classes.v[c], &files, 0);
            if (files.n > before) qsort(files.v + before, (size_t)(files.n - before), sizeof *files.v, cmp_cstr);
            if (files.n > cap) {
                cap = files.n;
                labels = dc_xrealloc(labels, (size_t)cap * sizeof *labels);
            }
            for (int64_t i = before; i < files.n; i++) labels[i] = (int32_t)c;
            dc_free(classes.v[c]);
        }
        d->nclasses = (int)classes.n;
        dc_free(classes.v);
    } else {
        scan(dir, &files, 0);
        if (files.n) qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_cstr);
    }
    if (files.n == 0) {
        dc_free(labels);
        dc_free(files.v);
        return dc_set_error(DC_STATUS_FORMAT, "%s: no JPEG or PNG files in this folder", dir);
    }
    dc_status s = validate_files(d, &files, labels, dir);
    dc_free(labels);
    if (s == DC_OK)
        snprintf(d->desc, sizeof d->desc, "image folder: %lld images%s%s, %lld skipped (%s)", (long long)d->n,
                 d->labels ? " in " : "", d->labels ? "classes" : "", (long long)d->nskip, dir);
    return s;
}

/* One image path per line; relative paths are relative to the list file. */
static dc_status open_list(dc_dataset *d, const char *path, const char *text, size_t len)
{
    strvec files = {0};
    char base[4096];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash) slash[1] = '\0';
    else base[0] = '\0';
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' ')) n--;
        if (n && p[0] != '#') {
            size_t m = n + strlen(base) + 1;
            char *f = dc_xmalloc(m);
            if (p[0] == '/') snprintf(f, m, "%.*s", (int)n, p);
            else snprintf(f, m, "%s%.*s", base, (int)n, p);
            sv_push(&files, f);
        }
        p = nl ? nl + 1 : end;
    }
    if (files.n == 0) return dc_set_error(DC_STATUS_FORMAT, "%s: the list names no files", path);
    dc_status s = validate_files(d, &files, NULL, path);
    if (s == DC_OK)
        snprintf(d->desc, sizeof d->desc, "image list: %lld images, %lld skipped (%s)", (long long)d->n,
                 (long long)d->nskip, path);
    return s;
}

static int is_list_name(const char *p)
{
    const char *dot = strrchr(p, '.');
    return dot && (!strcmp(dot, ".txt") || !strcmp(dot, ".lst") || !strcmp(dot, ".list"));
}

/* ------------------------------------------------------------------------ */
/* Packs (pack_format.h)                                                    */
/* ------------------------------------------------------------------------ */


static dc_status open_pack(dc_dataset *d, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, DC_PACK_INDEX);
    dc_status s = dc_map_file(path, &d->pack_index);
    if (s) return s;
    const uint8_t *h = d->pack_index.data;
    size_t len = d->pack_index.size;
    if (len < DC_PACK_HEADER || memcmp(h, DC_PACK_MAGIC, 8) != 0)
        return dc_set_error(DC_STATUS_FORMAT, "%s: not a deepercluster pack index", path);
    if (le32(h + 8) != DC_PACK_VERSION)
        return dc_set_error(DC_STATUS_FORMAT, "%s: pack version %u; this program reads version %u", path, le32(h + 8),
                            DC_PACK_VERSION);
    uint32_t nshards = le32(h + 12);
    uint64_t n = le64(h + 16);
    int32_t ncls = (int32_t)le32(h + 24);
    if (n == 0) return dc_set_error(DC_STATUS_FORMAT, "%s: the pack holds no images", path);
    if (n > (len - DC_PACK_HEADER) / DC_PACK_ENTRY || (len - DC_PACK_HEADER) != n * DC_PACK_ENTRY)
        return dc_set_error(DC_STATUS_FORMAT, "%s: %llu images announced, the index holds %llu", path,
                            (unsigned long long)n, (unsigned long long)((len - DC_PACK_HEADER) / DC_PACK_ENTRY));
    if (nshards == 0 || nshards > 1000000 || ncls < 0 || ncls > 1000000 || (le32(h + 36) != 1 && le32(h + 36) != 3) ||
        le32(h + 40) == 0 || le32(h + 40) > 65535)
        return dc_set_error(DC_STATUS_FORMAT, "%s: malformed header (%u shards, %d classes)", path, nshards, ncls);
    d->shards = dc_xcalloc(nshards, sizeof *d->shards);
    d->nshards = nshards;
    for (uint32_t k = 0; k < nshards; k++) {
        snprintf(path, sizeof path, "%s/shard-%05u.bin", dir, k);
        if ((s = dc_map_file(path, &d->shards[k]))) return s;
    }
    snprintf(path, sizeof path, "%s/%s", dir, DC_PACK_INDEX);
    d->n = (int64_t)n;
    d->h = (int)le32(h + 28);
    d->w = (int)le32(h + 32);
    d->c = (int)le32(h + 36);
    d->max_side = (int)le32(h + 40);
    d->nclasses = ncls;
    if (ncls > 0) d->labels = dc_xmalloc((size_t)n * sizeof *d->labels);
    /* every entry checked once here, so that reading needs no checks */
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = h + DC_PACK_HEADER + i * DC_PACK_ENTRY;
        uint64_t off = le64(e);
        uint32_t bytes = le32(e + 8), shard = le32(e + 12);
        int eh = le16(e + 16), ew = le16(e + 18), ec = e[20], fmt = e[21];
        int32_t lab = (int32_t)le32(e + 24);
        const char *why = NULL;
        if (shard >= nshards) why = "shard out of range";
        else if (off > d->shards[shard].size || bytes > d->shards[shard].size - off) why = "bytes past the shard's end";
        else if (fmt != DC_PACK_RAW && fmt != DC_PACK_FILE) why = "unknown format";
        else if (fmt == DC_PACK_RAW && (eh < 1 || ew < 1 || (ec != 1 && ec != 3) || (uint64_t)eh * ew * ec != bytes))
            why = "raw size does not match its shape";
        else if (ncls > 0 && (lab < 0 || lab >= ncls)) why = "label out of range";
        else if ((d->h && (eh != d->h || ew != d->w)) || (d->c && ec != d->c)) why = "shape differs from the header's";
        else if (eh > d->max_side || ew > d->max_side) why = "larger than the header's largest side";
        if (why)
            return dc_set_error(DC_STATUS_FORMAT, "%s: image %llu: %s", path, (unsigned long long)i, why);
        if (ncls > 0) d->labels[i] = lab;
    }
    d->pack_dir = dc_xstrdup(dir);
    snprintf(d->desc, sizeof d->desc, "pack: %lld images%s (%s, %u shard%s)", (long long)d->n,
             ncls > 0 ? ", labelled" : ", unlabelled", dir, nshards, nshards == 1 ? "" : "s");
    return DC_OK;
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
        /* a CIFAR directory (data_batch_*.bin), else an image folder */
        char probe[4096];
        struct stat ps;
        snprintf(probe, sizeof probe, "%s/data_batch_1.bin", src);
        int cifar = stat(probe, &ps) == 0;
        snprintf(probe, sizeof probe, "%s/train.bin", src);
        cifar |= stat(probe, &ps) == 0;
        snprintf(probe, sizeof probe, "%s/%s", src, DC_PACK_INDEX);
        int pack = stat(probe, &ps) == 0;
        s = pack ? open_pack(d, src) : cifar ? open_cifar_dir(d, src) : open_folder(d, src);
        if (s == DC_OK && cifar) {
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
            if (is_list_name(src)) {
                s = open_list(d, src, (const char *)buf, len);
            } else if (len >= 4 && be32(buf) == 0x00000803) {
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
                s = dc_set_error(DC_STATUS_FORMAT,
                                 "%s: not a dataset deepercluster reads (IDX images, CIFAR binary batches, an image "
                                 "folder, or a .txt list of image paths)",
                                 src);
            }
            dc_free(buf);
        }
    }
    if (s == DC_OK && d->max_side == 0) d->max_side = d->h > d->w ? d->h : d->w;
    if (s == DC_OK && labels && d->labels == NULL)
        s = dc_set_error(DC_STATUS_ARG, "%s: --labels applies to IDX image files only", src);
    if (s) {
        dc_dataset_close(d);
        return s;
    }
    *out = d;
    return DC_OK;
}
