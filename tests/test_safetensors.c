/* test_safetensors.c — safetensors round trips (every dtype, metadata) and
 * rejection of malformed files: truncated, oversized header, garbage,
 * unknown dtype, inconsistent offsets, overlaps, duplicate names, wrong
 * dtype or shape on read. */
#include "dc/io.h"
#include "test.h"

#include <stdint.h>

static void test_roundtrip(void)
{
    float w[3 * 4];
    for (int i = 0; i < 12; i++) w[i] = (float)i / 3.0f;
    int32_t ids[5] = {5, -4, 3, -2, 1};
    int64_t big[2] = {INT64_MIN, INT64_MAX};
    uint8_t px[3] = {0, 128, 255};
    int64_t sw[2] = {3, 4}, sid[1] = {5}, sbig[1] = {2}, spx[3] = {1, 1, 3};

    dc_st_writer *wr = dc_st_writer_new();
    dc_st_writer_add(wr, "body.features.0.weight", DC_DTYPE_F32, 2, sw, w);
    dc_st_writer_add(wr, "ids", DC_DTYPE_I32, 1, sid, ids);
    dc_st_writer_add(wr, "big", DC_DTYPE_I64, 1, sbig, big);
    dc_st_writer_add(wr, "pixels", DC_DTYPE_U8, 3, spx, px);
    dc_st_writer_add(wr, "scalar", DC_DTYPE_F32, 0, NULL, &w[5]);
    dc_st_writer_add(wr, "empty", DC_DTYPE_F32, 1, (int64_t[]){0}, NULL);
    dc_st_writer_set_meta(wr, "format", "pt");
    dc_st_writer_set_meta(wr, "epoch", "3");
    dc_st_writer_set_meta(wr, "epoch", "4"); /* replaced */
    const char *p = test_path("rt.safetensors");
    CHECK_MSG(dc_st_writer_write(wr, p) == DC_OK, "%s", dc_last_error());
    dc_st_writer_free(wr);
    dc_st_writer_free(NULL);

    dc_st_file *f;
    dc_status s = dc_st_open(p, &f);
    CHECK_MSG(s == DC_OK, "%s", dc_last_error());
    if (s) return;
    CHECK_EQ_INT(dc_st_count(f), 6);
    CHECK(strcmp(dc_st_at(f, 0)->name, "body.features.0.weight") == 0);
    CHECK(strcmp(dc_st_path(f), p) == 0);
    CHECK(dc_st_meta(f, "format") && strcmp(dc_st_meta(f, "format"), "pt") == 0);
    CHECK(dc_st_meta(f, "epoch") && strcmp(dc_st_meta(f, "epoch"), "4") == 0);
    CHECK(dc_st_meta(f, "nope") == NULL);
    CHECK_EQ_INT(dc_st_meta_count(f), 2);

    float w2[12];
    CHECK(dc_st_read(f, "body.features.0.weight", DC_DTYPE_F32, 2, sw, w2) == DC_OK);
    CHECK(memcmp(w, w2, sizeof w) == 0);
    int32_t ids2[5];
    CHECK(dc_st_read(f, "ids", DC_DTYPE_I32, 1, (int64_t[]){-1}, ids2) == DC_OK);
    CHECK(memcmp(ids, ids2, sizeof ids) == 0);
    int64_t big2[2];
    CHECK(dc_st_read(f, "big", DC_DTYPE_I64, 1, sbig, big2) == DC_OK);
    CHECK(big2[0] == INT64_MIN && big2[1] == INT64_MAX);
    uint8_t px2[3];
    CHECK(dc_st_read(f, "pixels", DC_DTYPE_U8, 3, spx, px2) == DC_OK);
    CHECK(memcmp(px, px2, 3) == 0);
    float sc;
    CHECK(dc_st_read(f, "scalar", DC_DTYPE_F32, 0, NULL, &sc) == DC_OK && sc == w[5]);
    const dc_st_tensor *e = dc_st_find(f, "empty");
    CHECK(e && e->nbytes == 0 && e->ndim == 1 && e->shape[0] == 0);

    /* Reads that do not match what the caller expects. */
    CHECK(dc_st_read(f, "missing", DC_DTYPE_F32, 1, NULL, w2) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "tensor 'missing' is missing");
    CHECK(dc_st_read(f, "ids", DC_DTYPE_F32, 1, NULL, w2) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "tensor 'ids': wrong dtype I32, expected F32");
    CHECK_STR_CONTAINS(dc_last_error(), p);
    CHECK(dc_st_read(f, "body.features.0.weight", DC_DTYPE_F32, 2, (int64_t[]){4, 3}, w2) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "wrong shape (3, 4), expected (4, 3)");
    dc_st_close(f);
    dc_st_close(NULL);

    /* The data section is 8-byte aligned. */
    uint8_t head[8];
    FILE *fp = fopen(p, "rb");
    CHECK(fp && fread(head, 1, 8, fp) == 8);
    if (fp) fclose(fp);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)head[i] << (8 * i);
    CHECK(hlen % 8 == 0);
}

/* Writes a file: 8-byte length `hlen` (or strlen(json)), the JSON, then
 * `ndata` bytes. */
static const char *make_st(const char *json, uint64_t hlen, size_t ndata)
{
    static uint8_t buf[8192];
    size_t n = strlen(json);
    if (!hlen) hlen = n;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, 0, ndata);
    const char *p = test_path("bad.safetensors");
    test_write_bytes(p, buf, 8 + n + ndata);
    return p;
}

static void expect_reject(const char *p, const char *msg)
{
    dc_st_file *f = (dc_st_file *)1;
    dc_status s = dc_st_open(p, &f);
    CHECK_MSG(s != DC_OK, "accepted, expected '%s'", msg);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(dc_last_error(), msg);
    CHECK_STR_CONTAINS(dc_last_error(), p);
}

static void test_rejects(void)
{
    const char *p = test_path("raw.safetensors");
    test_write_bytes(p, "", 0);
    expect_reject(p, "empty file");
    test_write_bytes(p, "abc", 3);
    expect_reject(p, "truncated");
    expect_reject(test_path("nope.safetensors"), "cannot open");
    /* A JPEG-like header: the length is absurd. */
    test_write_bytes(p, "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", 12);
    expect_reject(p, "exceeds");
    expect_reject(make_st("{}", 5000, 0), "truncated: header needs 5000 bytes");
    expect_reject(make_st("[1, 2]", 0, 0), "not a JSON object");
    expect_reject(make_st("{\"a\": {\"dtype\": \"F32\", ", 0, 0), "invalid JSON");
    expect_reject(make_st("{\"a\": 1}", 0, 0), "entry is not an object");

    struct {
        const char *json;
        size_t ndata;
        const char *msg;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype F16 is not supported"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing 'dtype'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing 'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "bad dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "bad dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "more than 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "bad 'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "bad 'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated: tensor 'a' ends at byte 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "shape needs 12 bytes but data_offsets span 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4000000000,4000000000,4000000000],\"data_offsets\":[0,8]}}", 8, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "appears twice"},
        {"{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "not a string"},
        {"{\"__metadata__\":[1]}", 0, "__metadata__ is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_reject(make_st(cases[i].json, 0, cases[i].ndata), cases[i].msg);

    /* A valid hand-made file is accepted (the checks are not too strict). */
    const char *ok = make_st("{\"__metadata__\":{\"k\":\"v\"},"
                             "\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 0, 8);
    dc_st_file *f;
    CHECK_MSG(dc_st_open(ok, &f) == DC_OK, "%s", dc_last_error());
    dc_st_close(f);

    /* Every truncation of a valid file is rejected cleanly. */
    float w[16] = {0};
    dc_st_writer *wr = dc_st_writer_new();
    dc_st_writer_add(wr, "w", DC_DTYPE_F32, 2, (int64_t[]){4, 4}, w);
    const char *full = test_path("full.safetensors");
    CHECK(dc_st_writer_write(wr, full) == DC_OK);
    dc_st_writer_free(wr);
    long size = test_file_size(full);
    uint8_t buf[512];
    FILE *fp = fopen(full, "rb");
    CHECK(fp && size > 0 && size < 512 && fread(buf, 1, (size_t)size, fp) == (size_t)size);
    if (fp) fclose(fp);
    int all_rejected = 1;
    for (long cut = 0; cut < size; cut++) {
        test_write_bytes(p, buf, (size_t)cut);
        dc_st_file *g;
        if (dc_st_open(p, &g) == DC_OK) {
            all_rejected = 0;
            dc_st_close(g);
        }
    }
    CHECK(all_rejected);
}

int main(void)
{
    test_roundtrip();
    test_rejects();
    return TEST_SUMMARY();
}
