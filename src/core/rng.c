/* rng.c — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011), a counter-based generator: output block i is a keyed
 * bijection of the counter i, so any draw can be recomputed from its
 * coordinates alone. Checked against the Random123 known-answer vectors.
 * The block function is core/philox.h's, shared with the GPU kernels.
 * Includes: core.h, core/philox.h, libc, libm. */
#include "core/philox.h"
#include "dc/core.h"

#include <math.h>
#include <string.h>

void dc_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    dc_philox_block(out, ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]);
}

/* SplitMix64 finaliser: spreads (seed, stream) over the 64-bit key. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dc_rng_init(dc_rng *r, uint64_t seed, uint32_t stream, uint32_t a,
                 uint32_t b)
{
    uint64_t k = mix64(seed ^ mix64((uint64_t)stream));
    r->key[0] = (uint32_t)k;
    r->key[1] = (uint32_t)(k >> 32);
    r->ctr[0] = 0; /* block index, low  */
    r->ctr[1] = 0; /* block index, high */
    r->ctr[2] = a;
    r->ctr[3] = b;
    r->avail = 0;
}

void dc_rng_seek(dc_rng *r, uint64_t block)
{
    r->ctr[0] = (uint32_t)block;
    r->ctr[1] = (uint32_t)(block >> 32);
    r->avail = 0;
}

uint32_t dc_rng_u32(dc_rng *r)
{
    if (r->avail == 0) {
        dc_philox4x32_10(r->buf, r->ctr, r->key);
        if (++r->ctr[0] == 0) r->ctr[1]++;
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

uint64_t dc_rng_u64(dc_rng *r)
{
    uint64_t lo = dc_rng_u32(r);
    uint64_t hi = dc_rng_u32(r);
    return lo | (hi << 32);
}

uint64_t dc_rng_below(dc_rng *r, uint64_t n)
{
    DC_ASSERT(n > 0);
    if (n <= UINT32_MAX) {
        /* Lemire's multiply-shift with rejection of the biased low band. */
        uint32_t n32 = (uint32_t)n;
        uint32_t threshold = (uint32_t)(-n32) % n32;
        for (;;) {
            uint64_t m = (uint64_t)dc_rng_u32(r) * n32;
            if ((uint32_t)m >= threshold) return m >> 32;
        }
    }
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = dc_rng_u64(r);
        if (x < limit) return x % n;
    }
}

float dc_rng_uniform(dc_rng *r)
{
    return (float)(dc_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double dc_rng_uniform_double(dc_rng *r)
{
    return (double)(dc_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double dc_rng_normal(dc_rng *r)
{
    /* u1 in (0, 1] so that log(u1) is finite. */
    double u1 = 1.0 - dc_rng_uniform_double(r);
    double u2 = dc_rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Fisher–Yates over n elements of `size` bytes: the same draws whatever the
 * element type (inlined with a constant size by each caller below). */
static inline void shuffle(dc_rng *r, void *a, size_t n, size_t size)
{
    unsigned char *p = a, t[8];
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dc_rng_below(r, i);
        memcpy(t, p + (i - 1) * size, size);
        memcpy(p + (i - 1) * size, p + j * size, size);
        memcpy(p + j * size, t, size);
    }
}

void dc_rng_shuffle_i32(dc_rng *r, int32_t *a, size_t n) { shuffle(r, a, n, sizeof *a); }

void dc_rng_shuffle_i64(dc_rng *r, int64_t *a, size_t n) { shuffle(r, a, n, sizeof *a); }

/* Floyd's algorithm: k distinct values of [0, n) with an O(k) open-addressing
 * set, then a Fisher–Yates pass, because Floyd's insertion order is biased
 * towards increasing values. */
void dc_rng_sample_distinct(dc_rng *r, uint64_t n, size_t k, int64_t *out)
{
    DC_ASSERT(k <= n);
    size_t cap = 16;
    while (cap < 2 * k) cap <<= 1;
    int64_t *set = dc_xmalloc(cap * sizeof *set);
    for (size_t i = 0; i < cap; i++) set[i] = -1;
    size_t cnt = 0;
    for (uint64_t j = n - k; j < n; j++) {
        int64_t pick = (int64_t)dc_rng_below(r, j + 1);
        for (int attempt = 0; attempt < 2; attempt++) {
            size_t h = (size_t)((uint64_t)pick * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (set[h] != -1 && set[h] != pick) h = (h + 1) & (cap - 1);
            if (set[h] == -1) {
                set[h] = pick;
                out[cnt++] = pick;
                break;
            }
            pick = (int64_t)j; /* already drawn: take j, which cannot be */
        }
    }
    DC_ASSERT(cnt == k);
    dc_free(set);
    dc_rng_shuffle_i64(r, out, k);
}
