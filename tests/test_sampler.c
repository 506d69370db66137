/* test_sampler.c — the epoch sampler uniform over pseudo-labels (SPEC §5):
 * every non-empty sub-cluster gets ⌊E/nonempty⌋+1 draws before the cut to
 * E, so counts differ by at most the cut; large sub-clusters are drawn
 * without replacement, too-small ones with; empty ones never; each entry
 * names a member of its sub-cluster; the result is a function of (seed,
 * epoch, super-class) and changes with each. */
#include "dc/train.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    /* 5 sub-clusters of sizes 1000, 3, 0, 50, 7 over n = 1060 images */
    enum { K = 5, N = 1060 };
    int64_t sizes[K] = {1000, 3, 0, 50, 7}, bounds[K + 1] = {0};
    for (int j = 0; j < K; j++) bounds[j + 1] = bounds[j] + sizes[j];
    int64_t members[N];
    int32_t owner[N];
    for (int64_t i = 0; i < N; i++) members[i] = (i * 389) % N; /* a permutation: 389 and 1060 coprime */
    for (int j = 0; j < K; j++)
        for (int64_t t = bounds[j]; t < bounds[j + 1]; t++) owner[members[t]] = j;
    int64_t E = 200; /* per = 200 / 4 + 1 = 51, 204 drawn, 4 cut */
    int32_t *a = dc_xmalloc(E * sizeof *a), *b = dc_xmalloc(E * sizeof *b);
    dc_sample_uniform(a, E, members, bounds, K, N, 7, 3, 1);
    int64_t cnt[K] = {0};
    int ok_member = 1;
    for (int64_t t = 0; t < E; t++) {
        int j = a[t] % K;
        int64_t img = a[t] / K;
        cnt[j]++;
        ok_member &= img >= 0 && img < N && owner[img] == j;
    }
    CHECK(ok_member);
    CHECK_EQ_INT((int)cnt[2], 0);
    for (int j = 0; j < K; j++)
        if (sizes[j]) CHECK_MSG(cnt[j] >= 51 - 4 && cnt[j] <= 51, "sub-cluster %d drawn %lld times", j, (long long)cnt[j]);
    /* sub-cluster 0 (1000 members >= 51): no image twice; 1 (3 members): repeats */
    char *seen = dc_xcalloc(N, 1);
    int dup0 = 0;
    for (int64_t t = 0; t < E; t++)
        if (a[t] % K == 0) dup0 |= seen[a[t] / K]++ != 0;
    CHECK(!dup0);
    CHECK(cnt[1] > 3);
    /* sub-cluster 3 has 50 < 51 members: drawn with replacement, all 50 */
    /* shuffled: the first 20 entries are not all from one sub-cluster */
    int mixed = 0;
    for (int64_t t = 1; t < 20; t++) mixed |= a[t] % K != a[0] % K;
    CHECK(mixed);
    /* a function of (seed, epoch, super) */
    dc_sample_uniform(b, E, members, bounds, K, N, 7, 3, 1);
    CHECK(memcmp(a, b, E * sizeof *a) == 0);
    dc_sample_uniform(b, E, members, bounds, K, N, 7, 4, 1);
    CHECK(memcmp(a, b, E * sizeof *a) != 0);
    dc_sample_uniform(b, E, members, bounds, K, N, 7, 3, 2);
    CHECK(memcmp(a, b, E * sizeof *a) != 0);
    dc_sample_uniform(b, E, members, bounds, K, N, 8, 3, 1);
    CHECK(memcmp(a, b, E * sizeof *a) != 0);
    /* exactly per members: a permutation of them, no replacement */
    int64_t b2[3] = {0, 51, 102};
    int32_t *c = dc_xmalloc(100 * sizeof *c);
    dc_sample_uniform(c, 100, members, b2, 2, N, 1, 0, 0); /* per = 100/2 + 1 = 51 = each size */
    memset(seen, 0, N);
    int dup = 0;
    for (int t = 0; t < 100; t++) dup |= seen[c[t] / 2]++ != 0;
    CHECK(!dup);
    /* no non-empty sub-cluster: uniform over all images, sub-cluster 0 */
    int64_t b3[3] = {0, 0, 0};
    dc_sample_uniform(c, 100, members, b3, 2, N, 1, 0, 0);
    int ok3 = 1;
    for (int t = 0; t < 100; t++) ok3 &= c[t] % 2 == 0 && c[t] / 2 < N;
    CHECK(ok3);
    /* a large draw: the frequencies of a 3-way split are equal within noise */
    enum { K3 = 3 };
    int64_t b4[K3 + 1] = {0, 500, 520, 1060};
    int64_t E4 = 30000;
    int32_t *d = dc_xmalloc(E4 * sizeof *d);
    dc_sample_uniform(d, E4, members, b4, K3, N, 5, 0, 0);
    int64_t c4[K3] = {0};
    for (int64_t t = 0; t < E4; t++) c4[d[t] % K3]++;
    for (int j = 0; j < K3; j++) CHECK_MSG(c4[j] >= 10000 - 1 && c4[j] <= 10001, "share %d: %lld", j, (long long)c4[j]);
    dc_free(a);
    dc_free(b);
    dc_free(c);
    dc_free(d);
    dc_free(seen);
    return TEST_SUMMARY();
}
