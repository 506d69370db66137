/* safetensors.c — the safetensors weight format (huggingface/safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON describing each
 * tensor's dtype, shape and [begin, end) byte range in the data section that
 * follows, and an optional "__metadata__" map of strings. Reading maps the
 * file and validates every entry (known dtype, sizes consistent with the
 * shape, ranges inside the file and not overlapping) before any tensor is
 * handed out.
 * Includes: dc/io.h, cJSON, libc. */
#include "dc/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20) /* as the reference implementation */

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *name;
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_entry;

struct dc_st_writer {
    st_entry *t;
    int n, cap;
    cJSON *meta; /* object of strings */
};

dc_st_writer *dc_st_writer_new(void)
{
    dc_st_writer *w = dc_xcalloc(1, sizeof *w);
    w->meta = cJSON_CreateObject();
    DC_ASSERT(w->meta);
    return w;
}

void dc_st_writer_add(dc_st_writer *w, const char *name, dc_dtype dtype,
                      int ndim, const int64_t *shape, const void *data)
{
    DC_ASSERT(ndim >= 0 && ndim <= DC_MAX_DIMS);
    DC_ASSERT(strcmp(name, "__metadata__") != 0);
    for (int i = 0; i < w->n; i++) DC_ASSERT(strcmp(w->t[i].name, name) != 0);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = dc_xrealloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    st_entry *e = &w->t[w->n++];
    memset(e, 0, sizeof *e);
    e->name = dc_xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        DC_ASSERT(shape[i] >= 0);
        e->shape[i] = shape[i];
        DC_ASSERT(dc_mul_size(count, (size_t)shape[i], &count) == 0);
    }
    DC_ASSERT(dc_mul_size(count, dc_dtype_size(dtype), &e->nbytes) == 0);
    e->data = data;
}

void dc_st_writer_set_meta(dc_st_writer *w, const char *key, const char *value)
{
    cJSON *v = cJSON_CreateString(value);
    DC_ASSERT(v);
    if (cJSON_GetObjectItemCaseSensitive(w->meta, key))
        cJSON_ReplaceItemInObjectCaseSensitive(w->meta, key, v);
    else
        cJSON_AddItemToObject(w->meta, key, v);
}

dc_status dc_st_writer_write(const dc_st_writer *w, const char *path)
{
    cJSON *h = cJSON_CreateObject();
    DC_ASSERT(h);
    if (cJSON_GetArraySize(w->meta) > 0)
        cJSON_AddItemToObject(h, "__metadata__", cJSON_Duplicate(w->meta, 1));
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = &w->t[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", dc_dtype_name(e->dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < e->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + e->nbytes)));
        cJSON_AddItemToObject(h, e->name, o);
        off += e->nbytes;
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    DC_ASSERT(text);
    size_t len = strlen(text);
    size_t padded = (len + 7) / 8 * 8; /* keeps the data 8-byte aligned */
    uint8_t pre[8];
    for (int i = 0; i < 8; i++) pre[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    dc_afile a;
    dc_status s = dc_afile_open(&a, path);
    if (s) {
        cJSON_free(text);
        return s;
    }
    dc_afile_write(&a, pre, 8);
    dc_afile_write(&a, text, len);
    dc_afile_write(&a, "        ", padded - len);
    cJSON_free(text);
    for (int i = 0; i < w->n; i++)
        dc_afile_write(&a, w->t[i].data, w->t[i].nbytes);
    return dc_afile_commit(&a);
}

void dc_st_writer_free(dc_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) dc_free(w->t[i].name);
    dc_free(w->t);
    cJSON_Delete(w->meta);
    dc_free(w);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

struct dc_st_file {
    char *path;
    dc_mapped map;
    cJSON *header;
    dc_st_tensor *t;
    int n;
    const cJSON *meta; /* inside header, or NULL */
};

static int dtype_from_name(const char *s, dc_dtype *out)
{
    static const char *names[] = {"F32", "I32", "I64", "U8"};
    static const dc_dtype types[] = {DC_DTYPE_F32, DC_DTYPE_I32, DC_DTYPE_I64,
                                     DC_DTYPE_U8};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = types[i];
            return 1;
        }
    return 0;
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int cmp_begin(const void *a, const void *b)
{
    const dc_st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int cmp_name(const void *a, const void *b)
{
    const dc_st_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* One tensor's header entry e (named `name`), checked against the data
 * section [data, data + dsize), into t. */
static dc_status st_parse_entry(const char *path, const char *name, const cJSON *e, const uint8_t *data, size_t dsize,
                                dc_st_tensor *t)
{
    if (!cJSON_IsObject(e))
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
    t->name = name;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': missing 'dtype'", path, name);
    if (!dtype_from_name(dt->valuestring, &t->dtype))
        return dc_set_error(DC_STATUS_UNSUPPORTED,
                            "%s: tensor '%s': dtype %s is not supported (F32, I32, I64, U8 are)",
                            path, name, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': missing 'shape'", path, name);
    if (cJSON_GetArraySize(sh) > DC_MAX_DIMS)
        return dc_set_error(DC_STATUS_UNSUPPORTED, "%s: tensor '%s': more than %d dimensions",
                            path, name, DC_MAX_DIMS);
    size_t numel = 1, nbytes;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh)
    {
        uint64_t v;
        if (!json_uint(d, &v) || v > (uint64_t)INT64_MAX)
            return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': bad dimension in 'shape'", path, name);
        t->shape[t->ndim++] = (int64_t)v;
        if (dc_mul_size(numel, (size_t)v, &numel) != 0)
            return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': shape overflows", path, name);
    }
    if (dc_mul_size(numel, dc_dtype_size(t->dtype), &nbytes) != 0)
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': shape overflows", path, name);
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !json_uint(cJSON_GetArrayItem(of, 0), &b) ||
        !json_uint(cJSON_GetArrayItem(of, 1), &en) || b > en)
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s': bad 'data_offsets'", path, name);
    if (en > dsize)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: truncated: tensor '%s' ends at byte %llu of a %zu-byte data section",
                            path, name, (unsigned long long)en, dsize);
    if (en - b != nbytes)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: tensor '%s': shape needs %zu bytes but data_offsets span %llu",
                            path, name, nbytes, (unsigned long long)(en - b));
    t->data = data + b;
    t->nbytes = nbytes;
    return DC_OK;
}

/* Names must be unique and ranges must not overlap: sorts a copy by name,
 * then by start, and compares neighbours. */
static dc_status st_check_layout(dc_st_file *f)
{
    const char *path = f->path;
    dc_status s = DC_OK;
    if (f->n > 1) {
        dc_st_tensor *sorted = dc_xmalloc((size_t)f->n * sizeof *sorted);
        memcpy(sorted, f->t, (size_t)f->n * sizeof *sorted);
        qsort(sorted, (size_t)f->n, sizeof *sorted, cmp_name);
        for (int i = 1; i < f->n && s == DC_OK; i++)
            if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
                s = dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s' appears twice", path, sorted[i].name);
        qsort(sorted, (size_t)f->n, sizeof *sorted, cmp_begin);
        for (int i = 1; i < f->n && s == DC_OK; i++) {
            const uint8_t *prev_end = (const uint8_t *)sorted[i - 1].data + sorted[i - 1].nbytes;
            if ((const uint8_t *)sorted[i].data < prev_end) {
                s = dc_set_error(DC_STATUS_FORMAT, "%s: tensors '%s' and '%s' overlap",
                                 path, sorted[i - 1].name, sorted[i].name);
            }
        }
        dc_free(sorted);
    }
    return s;
}

static dc_status st_parse(dc_st_file *f)
{
    const char *path = f->path;
    const uint8_t *buf = f->map.data;
    size_t size = f->map.size;
    if (size == 0) return dc_set_error(DC_STATUS_FORMAT, "%s: empty file", path);
    if (size < 8)
        return dc_set_error(DC_STATUS_FORMAT, "%s: truncated: %zu bytes, too short for a safetensors header",
                            path, size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > ST_MAX_HEADER)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                            path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > size - 8)
        return dc_set_error(DC_STATUS_FORMAT,
                            "%s: truncated: header needs %llu bytes, file has %zu",
                            path, (unsigned long long)hlen, size - 8);
    if (hlen < 2 || buf[8] != '{')
        return dc_set_error(DC_STATUS_FORMAT, "%s: header is not a JSON object (not a safetensors file?)", path);
    /* cJSON gets its own NUL-terminated copy: the map has no terminator. */
    char *text = dc_malloc((size_t)hlen + 1, path);
    if (!text) return DC_STATUS_NOMEM;
    memcpy(text, buf + 8, (size_t)hlen);
    text[hlen] = '\0';
    dc_status s = dc_json_parse(text, (size_t)hlen, path, &f->header);
    dc_free(text);
    if (s) return s;
    if (!cJSON_IsObject(f->header))
        return dc_set_error(DC_STATUS_FORMAT, "%s: header is not a JSON object", path);

    const uint8_t *data = buf + 8 + hlen;
    size_t dsize = size - 8 - (size_t)hlen;
    int count = cJSON_GetArraySize(f->header);
    f->t = dc_xcalloc((size_t)count + 1, sizeof *f->t);
    const cJSON *e;
    cJSON_ArrayForEach(e, f->header)
    {
        const char *name = e->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(e))
                return dc_set_error(DC_STATUS_FORMAT, "%s: __metadata__ is not an object", path);
            const cJSON *m;
            cJSON_ArrayForEach(m, e) if (!cJSON_IsString(m)) return dc_set_error(
                DC_STATUS_FORMAT, "%s: metadata value '%s' is not a string", path, m->string);
            f->meta = e;
            continue;
        }
        if ((s = st_parse_entry(path, name, e, data, dsize, &f->t[f->n]))) return s;
        f->n++;
    }
    return st_check_layout(f);
}

dc_status dc_st_open(const char *path, dc_st_file **out)
{
    *out = NULL;
    dc_st_file *f = dc_xcalloc(1, sizeof *f);
    f->path = dc_xstrdup(path);
    dc_status s = dc_map_file(path, &f->map);
    if (s == DC_OK) s = st_parse(f);
    if (s) {
        dc_st_close(f);
        return s;
    }
    *out = f;
    return DC_OK;
}

void dc_st_close(dc_st_file *f)
{
    if (!f) return;
    cJSON_Delete(f->header);
    dc_unmap_file(&f->map);
    dc_free(f->t);
    dc_free(f->path);
    dc_free(f);
}

const char *dc_st_path(const dc_st_file *f) { return f->path; }
int dc_st_count(const dc_st_file *f) { return f->n; }

const dc_st_tensor *dc_st_at(const dc_st_file *f, int i)
{
    DC_ASSERT(i >= 0 && i < f->n);
    return &f->t[i];
}

const dc_st_tensor *dc_st_find(const dc_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *dc_st_meta(const dc_st_file *f, const char *key)
{
    if (!f->meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int dc_st_meta_count(const dc_st_file *f)
{
    return f->meta ? cJSON_GetArraySize(f->meta) : 0;
}

void dc_st_meta_at(const dc_st_file *f, int i, const char **key,
                   const char **value)
{
    const cJSON *v = f->meta ? cJSON_GetArrayItem(f->meta, i) : NULL;
    DC_ASSERT(v);
    *key = v->string;
    *value = v->valuestring;
}

dc_status dc_st_read(const dc_st_file *f, const char *name, dc_dtype dtype,
                     int ndim, const int64_t *shape, void *dst)
{
    const dc_st_tensor *t = dc_st_find(f, name);
    if (!t)
        return dc_set_error(DC_STATUS_FORMAT, "%s: tensor '%s' is missing", f->path, name);
    dc_array view = {0};
    view.dtype = t->dtype;
    view.ndim = t->ndim;
    memcpy(view.shape, t->shape, sizeof view.shape);
    char what[512];
    snprintf(what, sizeof what, "%s: tensor '%s'", f->path, name);
    dc_status s = dc_array_expect(&view, what, dtype, ndim, shape);
    if (s) return s;
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    return DC_OK;
}
