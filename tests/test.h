/* test.h — the test harness: CHECK macros that count and report with
 * file:line, and TEST_SUMMARY() printing the final "N passed, N failed" line
 * and giving main's exit status. One translation unit per test program. */
#ifndef DC_TEST_H
#define DC_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            test_passed++;                                                 \
        } else {                                                           \
            test_failed++;                                                 \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                  \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (cond) {                                                        \
            test_passed++;                                                 \
        } else {                                                           \
            test_failed++;                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);               \
        CHECK_MSG(va_ == vb_, "%lld != %lld", va_, vb_);                    \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                              \
    do {                                                                    \
        double va_ = (double)(a), vb_ = (double)(b);                        \
        CHECK_MSG(fabs(va_ - vb_) <= (tol), "%.9g vs %.9g (tol %g)", va_, vb_, \
                  (double)(tol));                                           \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                     \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        CHECK_MSG(h_ && strstr(h_, n_), "'%s' does not contain '%s'",       \
                  h_ ? h_ : "(null)", n_);                                  \
    } while (0)

#define TEST_SUMMARY()                                                      \
    (printf("%d passed, %d failed\n", test_passed, test_failed),            \
     test_failed ? 1 : 0)



/* ---- helpers for tests that write files ---- */
#include <stdlib.h>
#include <unistd.h>

/* A path under the run's temporary directory ($DC_TEST_TMP, else /tmp),
 * made unique per process. Returns a static buffer rotated over 8 slots. */
static inline const char *test_path(const char *name)
{
    static char bufs[8][512];
    static int slot;
    const char *dir = getenv("DC_TEST_TMP");
    char *b = bufs[slot++ % 8];
    snprintf(b, 512, "%s/%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
    return b;
}

/* tests/fixtures/<dir>/<name> under $DC_TEST_ROOT (else the current
 * directory); a static buffer rotated over 8 slots. */
static inline const char *test_fixture(const char *dir, const char *name)
{
    static char bufs[8][512];
    static int slot;
    const char *root = getenv("DC_TEST_ROOT");
    char *b = bufs[slot++ % 8];
    snprintf(b, 512, "%s/tests/fixtures/%s/%s", root && *root ? root : ".", dir, name);
    return b;
}

/* Gaussian blobs: n points in d dims around c random centres (spread
 * `spread`), unit noise; owned (dc_free). Needs dc/core.h. */
#ifdef DC_CORE_H
static inline float *test_blobs(int64_t n, int d, int c, uint64_t seed, double spread)
{
    dc_rng r;
    dc_rng_init(&r, seed, DC_RNG_STREAM_TEST, 0, 0);
    float *centres = dc_xmalloc((size_t)c * d * sizeof(float));
    for (int i = 0; i < c * d; i++) centres[i] = (float)(dc_rng_normal(&r) * spread);
    float *x = dc_xmalloc((size_t)n * d * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        int k = (int)dc_rng_below(&r, (uint64_t)c);
        for (int j = 0; j < d; j++) x[i * d + j] = centres[k * d + j] + (float)dc_rng_normal(&r);
    }
    dc_free(centres);
    return x;
}
#endif

static inline int test_write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(buf, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static inline long test_file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}
#endif
