/* test_npy.c — .npy round trips (every dtype, versions 1.0 and 2.0, read and
 * map), files written by NumPy itself, and rejection of malformed files with
 * a message naming the file and the problem. */
#include "dc/io.h"
#include "test.h"

#include <stdint.h>

static const char *fixture(const char *name) { return test_fixture("io", name); }

static void test_roundtrip(void)
{
    float f[2 * 3 * 4];
    for (int i = 0; i < 24; i++) f[i] = (float)i * 0.25f - 1.0f;
    int32_t i32[5] = {-7, 0, 1, INT32_MAX, INT32_MIN};
    int64_t i64[3] = {INT64_MIN, 0, INT64_MAX};
    uint8_t u8[6] = {0, 1, 127, 128, 254, 255};
    int64_t s3[3] = {2, 3, 4}, s1[1] = {5}, s1b[1] = {3}, s2[2] = {2, 3};
    struct {
        dc_dtype t;
        int ndim;
        const int64_t *shape;
        const void *data;
        size_t bytes;
    } cases[] = {{DC_DTYPE_F32, 3, s3, f, sizeof f},
                 {DC_DTYPE_I32, 1, s1, i32, sizeof i32},
                 {DC_DTYPE_I64, 1, s1b, i64, sizeof i64},
                 {DC_DTYPE_U8, 2, s2, u8, sizeof u8}};
    for (int version = 1; version <= 2; version++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const char *p = test_path("rt.npy");
            CHECK(dc_npy_write_version(p, cases[c].t, cases[c].ndim, cases[c].shape,
                                       cases[c].data, version) == DC_OK);
            CHECK_EQ_INT(test_file_size(p) % 64, (long)cases[c].bytes % 64);
            for (int mapped = 0; mapped < 2; mapped++) {
                dc_array a;
                dc_status s = mapped ? dc_npy_map(p, &a) : dc_npy_read(p, &a);
                CHECK_MSG(s == DC_OK, "%s", dc_last_error());
                if (s) continue;
                CHECK(dc_array_expect(&a, p, cases[c].t, cases[c].ndim, cases[c].shape) == DC_OK);
                CHECK_EQ_INT(a.nbytes, cases[c].bytes);
                CHECK(memcmp(a.data, cases[c].data, cases[c].bytes) == 0);
                CHECK(((uintptr_t)a.data % dc_dtype_size(a.dtype)) == 0);
                dc_array_free(&a);
                CHECK(a.data == NULL);
            }
        }
    /* 0-d and empty arrays. */
    float one = 3.5f;
    const char *p = test_path("scalar.npy");
    CHECK(dc_npy_write(p, DC_DTYPE_F32, 0, NULL, &one) == DC_OK);
    dc_array a;
    CHECK(dc_npy_read(p, &a) == DC_OK);
    CHECK(a.ndim == 0 && dc_array_numel(&a) == 1 && ((float *)a.data)[0] == 3.5f);
    dc_array_free(&a);
    int64_t s0[2] = {0, 7};
    CHECK(dc_npy_write(p, DC_DTYPE_F32, 2, s0, NULL) == DC_OK);
    CHECK(dc_npy_map(p, &a) == DC_OK);
    CHECK(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 7 && a.nbytes == 0);
    dc_array_free(&a);
    dc_array_free(NULL);
}

/* Files written by NumPy (tools/gen_io_fixtures.py). */
static void test_numpy_files(void)
{
    const char *names[] = {"f32_v1.npy", "f32_v2.npy", "f32_v3.npy"};
    int64_t shape[3] = {2, 3, 4};
    for (int v = 0; v < 3; v++) {
        dc_array a;
        dc_status s = dc_npy_read(fixture(names[v]), &a);
        CHECK_MSG(s == DC_OK, "%s", dc_last_error());
        if (s) continue;
        CHECK(dc_array_expect(&a, names[v], DC_DTYPE_F32, 3, shape) == DC_OK);
        int ok = 1;
        for (int i = 0; i < 24; i++) ok &= ((float *)a.data)[i] == (float)i * 0.5f - 3.0f;
        CHECK(ok);
        dc_array_free(&a);
    }
    dc_array a;
    CHECK(dc_npy_read(fixture("i32_v1.npy"), &a) == DC_OK);
    CHECK(a.dtype == DC_DTYPE_I32 && a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 2);
    CHECK(((int32_t *)a.data)[5] == 5 * 7 - 20);
    dc_array_free(&a);
    CHECK(dc_npy_map(fixture("i64_v1.npy"), &a) == DC_OK);
    CHECK(a.dtype == DC_DTYPE_I64 && a.ndim == 1 && a.shape[0] == 5);
    CHECK(((int64_t *)a.data)[4] == 4 * (INT64_C(1) << 33) - 5);
    dc_array_free(&a);
    CHECK(dc_npy_read(fixture("u8_v1.npy"), &a) == DC_OK);
    CHECK(a.dtype == DC_DTYPE_U8 && a.shape[1] == 5 && ((uint8_t *)a.data)[9] == (9 * 37) % 256);
    dc_array_free(&a);
    CHECK(dc_npy_read(fixture("scalar_f32.npy"), &a) == DC_OK);
    CHECK(a.ndim == 0 && ((float *)a.data)[0] == 2.5f);
    dc_array_free(&a);
    CHECK(dc_npy_read(fixture("empty_f32.npy"), &a) == DC_OK);
    CHECK(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 4);
    dc_array_free(&a);

    struct {
        const char *file, *msg;
    } bad[] = {{"f64.npy", "'<f8' is not supported"},
               {"f32_big_endian.npy", "big-endian"},
               {"f32_fortran.npy", "Fortran"},
               {"structured.npy", "structured"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(dc_npy_read(fixture(bad[i].file), &a) != DC_OK);
        CHECK_STR_CONTAINS(dc_last_error(), bad[i].msg);
        CHECK_STR_CONTAINS(dc_last_error(), bad[i].file);
        CHECK(a.data == NULL);
    }
}

/* Builds a v1 file from a header dict and `ndata` data bytes. */
static const char *make_npy(const char *dict, size_t ndata, size_t claim_hlen)
{
    static uint8_t buf[4096];
    size_t n = strlen(dict);
    size_t hlen = claim_hlen ? claim_hlen : n;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)hlen;
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, 0x41, ndata);
    const char *p = test_path("bad.npy");
    test_write_bytes(p, buf, 10 + n + ndata);
    return p;
}

static void expect_reject(const char *p, const char *msg)
{
    dc_array a;
    dc_status s1 = dc_npy_read(p, &a);
    CHECK_MSG(s1 != DC_OK, "accepted, expected '%s'", msg);
    CHECK_STR_CONTAINS(dc_last_error(), msg);
    CHECK_STR_CONTAINS(dc_last_error(), p);
    dc_status s2 = dc_npy_map(p, &a);
    CHECK(s2 != DC_OK && a.data == NULL);
}

static void test_rejects(void)
{
    const char *p = test_path("garbage.npy");
    test_write_bytes(p, "", 0);
    expect_reject(p, "empty file");
    test_write_bytes(p, "hello world, not numpy at all", 29);
    expect_reject(p, "bad magic");
    test_write_bytes(p, "\x93NUMPY\x01", 7);
    expect_reject(p, "bad magic"); /* too short for a preamble */
    test_write_bytes(p, "\x93NUMPY\x02\x00\x01", 9);
    expect_reject(p, "truncated");
    test_write_bytes(p, "\x93NUMPY\x09\x00\x10\x00", 10);
    expect_reject(p, "version 9.0");
    expect_reject(test_path("does-not-exist.npy"), "cannot open");

    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    expect_reject(make_npy(good, 20, 0), "truncated: shape needs 24 data bytes, file has 20");
    expect_reject(make_npy(good, 30, 0), "6 unexpected bytes");
    expect_reject(make_npy(good, 24, 400), "truncated: header needs");
    /* Oversized header: a v2 header length of 16 MiB. */
    uint8_t big[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 1};
    test_write_bytes(p, big, sizeof big);
    expect_reject(p, "exceeds the 65536-byte limit");

    struct {
        const char *dict, *msg;
    } dicts[] = {
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "'<c8' is not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "bad dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", "bad dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", "overflows"},
        {"{'descr': '<f4', 'shape': (2,), }", "missing one of"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", "not True/False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unknown key"},
        {"['descr']", "does not start with"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } trailing", "unexpected text"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "bad dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2", "unterminated"},
        {"{'descr': '<f4 ", "not a simple dtype"},
        {"{descr: 1}", "quoted key"},
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++)
        expect_reject(make_npy(dicts[i].dict, 8, 0), dicts[i].msg);
}

static void test_expect(void)
{
    float f[6] = {0};
    int64_t s[2] = {2, 3};
    const char *p = test_path("expect.npy");
    CHECK(dc_npy_write(p, DC_DTYPE_F32, 2, s, f) == DC_OK);
    dc_array a;
    CHECK(dc_npy_read(p, &a) == DC_OK);
    int64_t any[2] = {-1, 3}, wrong[2] = {2, 4}, three[3] = {2, 3, 1};
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_F32, 2, any) == DC_OK);
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_F32, 2, NULL) == DC_OK);
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_I32, 2, any) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "features: wrong dtype F32, expected I32");
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_F32, 2, wrong) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "wrong shape (2, 3), expected (2, 4)");
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_F32, 3, three) != DC_OK);
    CHECK(dc_array_expect(&a, "features", DC_DTYPE_F32, 1, NULL) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "expected 1 dimensions");
    dc_array_free(&a);
}

/* Writes never leave a partial file: a failing write keeps the old one. */
static void test_atomic(void)
{
    float f[4] = {1, 2, 3, 4};
    int64_t s[1] = {4};
    const char *p = test_path("atomic.npy");
    CHECK(dc_npy_write(p, DC_DTYPE_F32, 1, s, f) == DC_OK);
    long before = test_file_size(p);
    CHECK(dc_npy_write(test_path("no-such-dir/x.npy"), DC_DTYPE_F32, 1, s, f) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "cannot create");
    CHECK_EQ_INT(test_file_size(p), before);
    /* Allocation failure while reading is reported, not a crash. */
    dc_array a;
    dc_alloc_fail_after(0);
    dc_status st = dc_npy_read(p, &a);
    dc_alloc_fail_after(-1);
    CHECK(st == DC_STATUS_NOMEM);
    CHECK(a.data == NULL);
}

/* An array written in pieces is the same file as written whole; a short
 * or overlong one is refused and leaves nothing. */
static void test_writer(void)
{
    float x[7 * 3];
    for (int i = 0; i < 21; i++) x[i] = (float)i * 0.25f - 2;
    int64_t shape[2] = {7, 3};
    const char *whole = test_path("whole.npy"), *parts = test_path("parts.npy");
    CHECK(dc_npy_write(whole, DC_DTYPE_F32, 2, shape, x) == DC_OK);
    dc_npy_writer w;
    CHECK(dc_npy_writer_open(&w, parts, DC_DTYPE_F32, 2, shape) == DC_OK);
    CHECK(test_file_size(parts) == -1); /* nothing there before the commit */
    CHECK(dc_npy_writer_write(&w, x, 2 * 3 * sizeof(float)) == DC_OK);
    CHECK(dc_npy_writer_write(&w, x + 6, 0) == DC_OK);
    CHECK(dc_npy_writer_write(&w, x + 6, 5 * 3 * sizeof(float)) == DC_OK);
    CHECK(dc_npy_writer_commit(&w) == DC_OK);
    dc_array a, b;
    CHECK(dc_npy_read(whole, &a) == DC_OK && dc_npy_read(parts, &b) == DC_OK);
    CHECK(test_file_size(whole) == test_file_size(parts));
    CHECK(a.shape[0] == 7 && b.shape[0] == 7 && b.shape[1] == 3 && memcmp(a.data, b.data, sizeof x) == 0);
    dc_array_free(&a);
    dc_array_free(&b);

    const char *shortp = test_path("short.npy");
    CHECK(dc_npy_writer_open(&w, shortp, DC_DTYPE_F32, 2, shape) == DC_OK);
    CHECK(dc_npy_writer_write(&w, x, 6 * 3 * sizeof(float)) == DC_OK);
    CHECK(dc_npy_writer_commit(&w) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "12 bytes short of its shape");
    CHECK(test_file_size(shortp) == -1);
    CHECK(dc_npy_writer_open(&w, shortp, DC_DTYPE_F32, 2, shape) == DC_OK);
    CHECK(dc_npy_writer_write(&w, x, 6 * 3 * sizeof(float)) == DC_OK);
    CHECK(dc_npy_writer_write(&w, x, 2 * 3 * sizeof(float)) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "12 bytes more than its shape holds");
    CHECK(dc_npy_writer_commit(&w) != DC_OK); /* the refused write fails the file */
    CHECK(test_file_size(shortp) == -1);
    CHECK(dc_npy_writer_open(&w, test_path("no-such-dir/x.npy"), DC_DTYPE_F32, 2, shape) == DC_STATUS_IO);
    dc_npy_writer_abort(&w);
}

int main(void)
{
    test_roundtrip();
    test_numpy_files();
    test_rejects();
    test_expect();
    test_atomic();
    test_writer();
    return TEST_SUMMARY();
}
