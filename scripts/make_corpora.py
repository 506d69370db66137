#!/usr/bin/python3
"""The corpora of the non-curated benchmark (scripts/noncurated.sh), built
from the Fashion-MNIST training images, reproducible from a seed; labels
are used only to choose the images and to evaluate.

    /usr/bin/python3 scripts/make_corpora.py OUT [--seed S] [--scale F] [--test N] [--probe N]

writes, as PNG image folders (what the folder reader, not a special path,
gives the methods; grey images, read as RGB like any photo):
  OUT/longtail/  class sizes n_c = round(H · r^(c/9)), r = 0.01, classes in
                 their label order (Liu et al.'s "exp" profile), H = 6000 F
                 capped at the images a class has left after the probe set
                 (5,000 with the default probe: 5000 down to 50 per class,
                 12,400 images at F = 1), flat (no labels)
  OUT/balanced/  as many images, an equal share of each class, flat
  OUT/wild/      longtail plus junk making 15% of the folder: uniform noise,
                 blank and constant images, one image repeated hundreds of
                 times with small shifts, inverted and rotated copies of
                 corpus images, procedurally drawn shapes (equal shares)
  OUT/probe/     N balanced labelled training images (default 10,000), in
                 class sub-folders (the linear probe's training set; none of
                 them in the corpora)
  OUT/test/      the first N test images (default all 10,000), in class
                 sub-folders (evaluation)
and OUT/corpora.json (sizes, class counts, junk counts, the seed). Needs
only NumPy (PNG written with zlib)."""
import argparse
import gzip
import json
import os
import struct
import zlib

import numpy as np

FM = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)
    if magic == 0x801:
        return np.frombuffer(raw, np.uint8, offset=8)
    raise SystemExit(f"{path}: not an IDX file")


def png(path, img):
    """Writes a grey uint8 image as an 8-bit greyscale PNG."""
    h, w = img.shape
    rows = b"".join(b"\x00" + img[i].tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path + ".tmp", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
    os.replace(path + ".tmp", path)


def write_folder(d, images, labels=None, prefix="img"):
    os.makedirs(d, exist_ok=True)
    for i, img in enumerate(images):
        sub = d if labels is None else os.path.join(d, f"class{int(labels[i]):02d}")
        os.makedirs(sub, exist_ok=True)
        png(os.path.join(sub, f"{prefix}{i:06d}.png"), img)


def shapes(rng, n):
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        img = np.full((28, 28), rng.integers(0, 64), np.uint8)
        for _ in range(rng.integers(1, 4)):
            kind, v = rng.integers(0, 3), rng.integers(128, 256)
            cy, cx, r = rng.integers(4, 24), rng.integers(4, 24), rng.integers(3, 10)
            if kind == 0:
                img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = v
            elif kind == 1:
                img[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = v
            else:  # a thick line through (cy, cx)
                a = rng.uniform(0, np.pi)
                img[np.abs((yy - cy) * np.cos(a) - (xx - cx) * np.sin(a)) <= 1.2] = v
        out[i] = img
    return out


def junk(rng, corpus, n):
    """n junk images of six kinds in equal shares; returns (images, counts)."""
    k = [n // 6 + (1 if j < n % 6 else 0) for j in range(6)]
    noise = rng.integers(0, 256, (k[0], 28, 28), dtype=np.uint8)
    blank = np.repeat(rng.choice([0, 255], k[1]).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    const = np.repeat(rng.integers(1, 255, k[2]).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    src = corpus[rng.integers(len(corpus))]
    reps = np.stack([np.roll(np.roll(src, rng.integers(-2, 3), 0), rng.integers(-2, 3), 1) for _ in range(k[3])])
    picks = corpus[rng.integers(0, len(corpus), k[4])]
    flips = np.stack([255 - p if j % 2 == 0 else np.rot90(p, 1 + rng.integers(3)) for j, p in enumerate(picks)])
    drawn = shapes(rng, k[5])
    counts = dict(noise=k[0], blank=k[1], constant=k[2], repeated=k[3], inverted_rotated=k[4], shapes=k[5])
    return np.concatenate([noise, blank, const, reps, flips, drawn]), counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="class sizes times F (small corpora for tests)")
    ap.add_argument("--test", type=int, default=10000, help="test images (evaluation)")
    ap.add_argument("--probe", type=int, default=10000, help="balanced labelled probe images")
    a = ap.parse_args()
    x, y = read_idx(f"{FM}/train-images-idx3-ubyte.gz"), read_idx(f"{FM}/train-labels-idx1-ubyte.gz")
    xt, yt = read_idx(f"{FM}/t10k-images-idx3-ubyte.gz"), read_idx(f"{FM}/t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(a.seed)
    by_class = [rng.permutation(np.flatnonzero(y == c)) for c in range(10)]
    # the probe set first: a balanced share of each class, kept out of the corpora
    pp = a.probe // 10
    probe_idx = np.concatenate([b[:pp] for b in by_class])
    pool = [b[pp:] for b in by_class]
    # the head class has 6000 * F images where the pool allows; with the probe
    # set kept out each class has 6000 - probe/10 left, so at full size the
    # head is capped there and the whole profile scaled with it (r = 0.01 kept)
    head = min(6000 * a.scale, min(len(p) for p in pool))
    if head < 1:
        raise SystemExit(f"--probe {a.probe}: no images left for the corpora")
    sizes = [max(1, int(round(head * 0.01 ** (c / 9)))) for c in range(10)]
    lt_idx = rng.permutation(np.concatenate([p[:s] for p, s in zip(pool, sizes)]))
    n = len(lt_idx)
    bal = [n // 10 + (1 if c < n % 10 else 0) for c in range(10)]
    # balanced draws from the far end of each class's pool (its own images where it can)
    bal_idx = rng.permutation(np.concatenate([p[len(p) - s:] for p, s in zip(pool, bal)]))
    lt = x[lt_idx]
    nj = int(round(0.15 * n / 0.85))
    jimg, jcounts = junk(rng, lt, nj)
    order = rng.permutation(n + nj)
    wild = np.concatenate([lt, jimg])[order]
    write_folder(os.path.join(a.out, "longtail"), lt)
    write_folder(os.path.join(a.out, "balanced"), x[bal_idx])
    write_folder(os.path.join(a.out, "wild"), wild)
    write_folder(os.path.join(a.out, "probe"), x[probe_idx], y[probe_idx])
    write_folder(os.path.join(a.out, "test"), xt[:a.test], yt[:a.test])
    info = dict(seed=a.seed, scale=a.scale, longtail=dict(n=int(n), per_class=[int(s) for s in sizes]),
                balanced=dict(n=int(n), per_class=bal), wild=dict(n=int(n + nj), junk=jcounts),
                probe=int(len(probe_idx)), test=int(min(a.test, len(xt))))
    with open(os.path.join(a.out, "corpora.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
