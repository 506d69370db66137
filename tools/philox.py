"""deepercluster's counter-based RNG (src/core/rng.c) in NumPy, bit for bit:
Philox4x32-10 keyed by SplitMix64(seed ^ SplitMix64(stream)), counter
(block low, block high, a, b). Used by the fixture generators so that
PyTorch and the C code start from identical weights, inputs and dropout
masks without storing them."""
import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK64 = (1 << 64) - 1


def _mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def key(seed, stream):
    k = _mix64(seed ^ _mix64(stream))
    return k & 0xFFFFFFFF, k >> 32


def philox(c0, c1, c2, c3, k0, k1):
    """Vectorised Philox4x32-10 over uint64 arrays holding 32-bit words."""
    c0, c1, c2, c3 = (np.asarray(v, dtype=np.uint64) & np.uint64(0xFFFFFFFF) for v in (c0, c1, c2, c3))
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(W0)) & np.uint64(0xFFFFFFFF)
            k1 = (k1 + np.uint64(W1)) & np.uint64(0xFFFFFFFF)
        p0 = c0 * np.uint64(M0)
        p1 = c2 * np.uint64(M1)
        hi0, lo0 = p0 >> np.uint64(32), p0 & np.uint64(0xFFFFFFFF)
        hi1, lo1 = p1 >> np.uint64(32), p1 & np.uint64(0xFFFFFFFF)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def words(seed, stream, a, b, n):
    """The first n 32-bit outputs of the generator (seed, stream, a, b)."""
    nblk = (n + 3) // 4
    blk = np.arange(nblk, dtype=np.uint64)
    k0, k1 = key(seed, stream)
    o = philox(blk & np.uint64(0xFFFFFFFF), blk >> np.uint64(32), np.full(nblk, a), np.full(nblk, b), k0, k1)
    return np.stack(o, axis=1).reshape(-1)[:n].astype(np.uint32)


def uniform(seed, stream, a, b, n):
    """dc_rng_uniform: (u32 >> 8) * 2^-24, float32 in [0, 1)."""
    return ((words(seed, stream, a, b, n) >> 8).astype(np.float64) * (1.0 / 16777216.0)).astype(np.float32)


if __name__ == "__main__":
    # Random123 known-answer vector, as tests/test_rng.c.
    o = philox(0, 0, 0, 0, 0, 0)
    assert [int(v) for v in o] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    print("philox ok")
