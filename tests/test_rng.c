/* test_rng.c — Philox4x32-10 against the Random123 known-answer vectors, and
 * the properties the rest of the program relies on: determinism from the
 * coordinates, independence across coordinates, unbiased ranges. */
#include "dc/core.h"
#include "test.h"

#include <stdlib.h>

static void test_kat(void)
{
    static const uint32_t ctr[3][4] = {
        {0, 0, 0, 0},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    static const uint32_t key[3][2] = {
        {0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    static const uint32_t want[3][4] = {
        {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        dc_philox4x32_10(out, ctr[i], key[i]);
        CHECK_MSG(memcmp(out, want[i], sizeof out) == 0, "vector %d: %08x %08x %08x %08x", i,
                  out[0], out[1], out[2], out[3]);
    }
}

static void test_determinism(void)
{
    dc_rng a, b, c, d;
    dc_rng_init(&a, 42, DC_RNG_STREAM_AUGMENT, 3, 1000);
    dc_rng_init(&b, 42, DC_RNG_STREAM_AUGMENT, 3, 1000);
    dc_rng_init(&c, 42, DC_RNG_STREAM_AUGMENT, 3, 1001);
    dc_rng_init(&d, 42, DC_RNG_STREAM_SAMPLER, 3, 1000);
    int same = 1, diff_c = 0, diff_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = dc_rng_u32(&a), y = dc_rng_u32(&b);
        same &= x == y;
        diff_c += x != dc_rng_u32(&c);
        diff_d += x != dc_rng_u32(&d);
    }
    CHECK(same);
    CHECK(diff_c > 990);
    CHECK(diff_d > 990);

    /* The sequence is the Philox blocks of its counter, in order. */
    dc_rng e;
    dc_rng_init(&e, 7, 1, 2, 3);
    uint32_t ctr[4] = {5, 0, 2, 3}, blk[4];
    dc_philox4x32_10(blk, ctr, e.key);
    for (int i = 0; i < 20; i++) dc_rng_u32(&e);
    CHECK(dc_rng_u32(&e) == blk[0]);
    /* Different seeds differ. */
    dc_rng f, g;
    dc_rng_init(&f, 1, 1, 0, 0);
    dc_rng_init(&g, 2, 1, 0, 0);
    CHECK(dc_rng_u64(&f) != dc_rng_u64(&g));
}

static void test_distributions(void)
{
    dc_rng r;
    dc_rng_init(&r, 123, DC_RNG_STREAM_TEST, 0, 0);
    /* Chi-square of 10 bins over 100k draws: 9 degrees of freedom, the
     * 99.99% quantile is about 33.7. */
    enum { BINS = 10, DRAWS = 100000 };
    long cnt[BINS] = {0};
    for (int i = 0; i < DRAWS; i++) cnt[dc_rng_below(&r, BINS)]++;
    double chi = 0, e = DRAWS / (double)BINS;
    for (int i = 0; i < BINS; i++) chi += (cnt[i] - e) * (cnt[i] - e) / e;
    CHECK_MSG(chi < 33.7, "chi2 %.2f", chi);

    /* Large ranges take the 64-bit path and stay in range. */
    int inrange = 1;
    uint64_t big = (1ull << 40) + 17;
    for (int i = 0; i < 1000; i++) inrange &= dc_rng_below(&r, big) < big;
    CHECK(inrange);
    CHECK(dc_rng_below(&r, 1) == 0);

    double sum = 0, sum2 = 0, umin = 1, umax = 0;
    for (int i = 0; i < DRAWS; i++) {
        float u = dc_rng_uniform(&r);
        double ud = dc_rng_uniform_double(&r);
        if (u < umin) umin = u;
        if (u > umax) umax = u;
        inrange &= u >= 0 && u < 1 && ud >= 0 && ud < 1;
        double z = dc_rng_normal(&r);
        sum += z;
        sum2 += z * z;
    }
    CHECK(inrange);
    CHECK(umin < 0.001 && umax > 0.999);
    double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
    CHECK_CLOSE(mean, 0.0, 0.02);
    CHECK_CLOSE(var, 1.0, 0.03);

    int32_t a[100];
    for (int i = 0; i < 100; i++) a[i] = i;
    dc_rng_shuffle_i32(&r, a, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    int perm = 1;
    for (int i = 0; i < 100; i++) perm &= seen[i] == 1;
    CHECK(perm);
    CHECK(moved > 80);
}

static void test_sample_distinct(void)
{
    dc_rng r;
    dc_rng_init(&r, 5, DC_RNG_STREAM_TEST, 1, 0);
    int64_t out[200];
    /* k == n: a permutation, not the identity. */
    dc_rng_sample_distinct(&r, 200, 200, out);
    int seen[200] = {0}, perm = 1, moved = 0;
    for (int i = 0; i < 200; i++) {
        perm &= out[i] >= 0 && out[i] < 200 && seen[out[i]]++ == 0;
        moved += out[i] != i;
    }
    CHECK(perm && moved > 150);
    /* k << n: distinct and in range; every value about equally likely. */
    long hits[10] = {0};
    int distinct = 1;
    for (int rep = 0; rep < 2000; rep++) {
        dc_rng_sample_distinct(&r, 10, 3, out);
        distinct &= out[0] != out[1] && out[0] != out[2] && out[1] != out[2];
        for (int i = 0; i < 3; i++) hits[out[i]]++;
    }
    CHECK(distinct);
    int flat = 1;
    for (int i = 0; i < 10; i++) flat &= hits[i] > 500 && hits[i] < 700; /* expect 600 */
    CHECK(flat);
    int64_t big[5];
    dc_rng_sample_distinct(&r, (uint64_t)1 << 40, 5, big);
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= big[i] >= 0 && big[i] < ((int64_t)1 << 40);
    CHECK(ok);
}

int main(void)
{
    test_sample_distinct();
    test_kat();
    test_determinism();
    test_distributions();
    return TEST_SUMMARY();
}
