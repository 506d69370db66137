/* sampler.c — the epoch's samples of one super-class, uniform over its
 * pseudo-labels (SPEC §5; the original's DistUnifTargSampler): the same
 * number, ⌊E / nonempty⌋ + 1, drawn from every non-empty sub-cluster —
 * without replacement, except from sub-clusters smaller than that — then
 * shuffled and cut to E. Keyed by (seed, epoch, super-class) alone.
 * Includes: dc/train.h. */
#include "dc/train.h"

#include <string.h>

void dc_sample_uniform(int32_t *out, int64_t E, const int64_t *members, const int64_t *bounds, int k_sub, int64_t n,
                       uint64_t seed, uint32_t epoch, uint32_t super)
{
    int nonempty = 0;
    for (int j = 0; j < k_sub; j++) nonempty += bounds[j + 1] > bounds[j];
    dc_rng rng;
    dc_rng_init(&rng, seed, DC_RNG_STREAM_SAMPLER, epoch, super);
    if (nonempty == 0) { /* only when the data has fewer images than super-clusters */
        for (int64_t t = 0; t < E; t++) out[t] = (int32_t)(dc_rng_below(&rng, (uint64_t)n) * k_sub);
        return;
    }
    int64_t per = E / nonempty + 1, total = per * nonempty;
    int32_t *all = dc_xmalloc((size_t)total * sizeof *all);
    int64_t *pick = dc_xmalloc((size_t)per * sizeof *pick);
    int64_t at = 0;
    for (int j = 0; j < k_sub; j++) {
        const int64_t *mem = members + bounds[j];
        int64_t cnt = bounds[j + 1] - bounds[j];
        if (cnt == 0) continue;
        if (cnt < per) { /* too small: with replacement */
            for (int64_t t = 0; t < per; t++) all[at++] = (int32_t)(mem[dc_rng_below(&rng, (uint64_t)cnt)] * k_sub + j);
        } else {
            dc_rng_sample_distinct(&rng, (uint64_t)cnt, (size_t)per, pick);
            for (int64_t t = 0; t < per; t++) all[at++] = (int32_t)(mem[pick[t]] * k_sub + j);
        }
    }
    dc_rng_shuffle_i32(&rng, all, (size_t)total);
    memcpy(out, all, (size_t)E * sizeof *out);
    dc_free(all);
    dc_free(pick);
}
