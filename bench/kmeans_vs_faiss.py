#!/usr/bin/python3
"""Side-by-side clustering benchmark: deepercluster's k-means (bench_kmeans)
against faiss 1.7.3's faiss.Kmeans (Debian python3-faiss), same data, same
thread count, same number of passes, no sub-sampling; and PCA-whitening
fit + apply against NumPy. Prints seconds, the ratio ours/theirs and peak
memory. Run with Debian's interpreter, after `make bench`:

    /usr/bin/python3 bench/kmeans_vs_faiss.py [--quick] [--threads 2]

faiss runs niter Lloyd iterations, then one search for the final
assignment; ours runs niter update passes and the final assignment pass:
the same number of E-steps."""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true", help="only the two smaller k-means cases and a smaller PCA")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--build", default="build/release")
args = ap.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)
import faiss  # noqa: E402  (after OMP_NUM_THREADS)

faiss.omp_set_num_threads(args.threads)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bench_kmeans = os.path.join(root, args.build, "bench", "bench_kmeans")
bench_pca = os.path.join(root, args.build, "bench", "bench_pca")
for b in (bench_kmeans, bench_pca):
    if not os.path.exists(b):
        sys.exit(f"{b} not found: run `make bench` first")


def faiss_kmeans(x, k, niter):
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=1, max_points_per_centroid=10**9,
                      min_points_per_centroid=1, verbose=False)
    t = time.perf_counter()
    km.train(x)
    km.index.search(x, 1)
    return time.perf_counter() - t


def faiss_hkmeans(x, m, k, niter):
    t = time.perf_counter()
    top = faiss.Kmeans(x.shape[1], m, niter=niter, seed=1, max_points_per_centroid=10**9,
                       min_points_per_centroid=1)
    top.train(x)
    _, a = top.index.search(x, 1)
    for c in range(m):
        xc = np.ascontiguousarray(x[a[:, 0] == c])
        sub = faiss.Kmeans(x.shape[1], k // m, niter=niter, seed=1, max_points_per_centroid=10**9,
                           min_points_per_centroid=1)
        sub.train(xc)
        sub.index.search(xc, 1)
    return time.perf_counter() - t


def ours(binary, *argv):
    out = subprocess.run([binary, *map(str, argv)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def numpy_pca(x, dim):
    t = time.perf_counter()
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / xc.shape[0]
    w, v = np.linalg.eigh(cov)
    w = np.maximum(w, w.max() * 1e-5)
    idx = np.argsort(w)[::-1][:dim]
    proj = np.diag(1.0 / np.sqrt(w[idx])) @ v[:, idx].T
    y = (proj.astype(np.float32) @ xc.T).T
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return time.perf_counter() - t


cases = [(60000, 256, 1000, 1), (240000, 256, 1000, 1), (1000000, 128, 10000, 1), (240000, 256, 4000, 4)]
if args.quick:
    cases = cases[:2]
niter = 10
rng = np.random.default_rng(0)
print(f"threads {args.threads}, niter {niter}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
print(f"{'case':<34} {'faiss s':>9} {'ours s':>9} {'ratio':>7} {'ours GF/s':>10} {'ours MB':>8}")
with tempfile.TemporaryDirectory() as tmp:
    for n, d, k, m in cases:
        x = rng.standard_normal((n, d), dtype=np.float32)
        path = os.path.join(tmp, "x.npy")
        np.save(path, x)
        theirs = faiss_kmeans(x, k, niter) if m == 1 else faiss_hkmeans(x, m, k, niter)
        r = ours(bench_kmeans, path, k, niter, m)
        name = f"N={n} d={d} k={k}" + (f" m={m}" if m > 1 else "")
        print(f"{name:<34} {theirs:9.2f} {r['seconds']:9.2f} {r['seconds'] / theirs:7.2f} "
              f"{r['gflops']:10.1f} {r['peak_rss_mb']:8.0f}", flush=True)
    n, d, dim = (20000, 1024, 128) if args.quick else (60000, 4096, 256)
    x = rng.standard_normal((n, d), dtype=np.float32) * np.linspace(2, 0.1, d, dtype=np.float32)
    path = os.path.join(tmp, "x.npy")
    np.save(path, x)
    theirs = numpy_pca(x, dim)
    r = ours(bench_pca, path, dim)
    name = f"PCA fit+apply {n}x{d}->{dim}"
    print(f"{name:<34} {theirs:9.2f} {r['seconds']:9.2f} {r['seconds'] / theirs:7.2f} "
          f"{'numpy':>10} {r['peak_rss_mb']:8.0f}")
print(f"python peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
