#!/usr/bin/python3
"""Side-by-side clustering benchmark: deepercluster's k-means (bench_kmeans)
against faiss 1.7.3's faiss.Kmeans (Debian python3-faiss), same data, same
thread count, same number of passes, no sub-sampling; and PCA-whitening
fit + apply against NumPy. Prints seconds, the ratio ours/theirs and peak
memory. Run with Debian's interpreter, after `make bench`:

    /usr/bin/python3 bench/kmeans_vs_faiss.py [--quick] [--threads 2]

With --device cuda (a CUDA build: --build build/release-cuda), ours with
the E-step on the GPU against the same k-means written in PyTorch on the
same GPU (a GEMM + arg-min per block of rows, index_add_ sums; TF32 off, as
ours; the upload timed on both sides, the device started before timing on
both): 60k x 256 into 1,000, 1M x 128 and 1M x 256 into 10,000, and
two-level 1M x 256 into 16 x 625. faiss is not needed there.

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
ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
args = ap.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)
if args.device == "cpu":
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


def torch_kmeans(torch, xg, k, niter, seed=1):
    """Lloyd's k-means on the device tensor xg: niter update passes and a
    final assignment pass, blocks of rows bounded to 256 MB of products."""
    n, d = xg.shape
    g = torch.Generator().manual_seed(seed)
    c = xg[torch.randperm(n, generator=g)[:k].to(xg.device)].clone()
    xn = (xg * xg).sum(1)
    block = max(1024, (64 << 20) // k)
    assign = torch.empty(n, dtype=torch.int64, device=xg.device)
    for it in range(niter + 1):
        cn = (c * c).sum(1)
        for b0 in range(0, n, block):
            dist = torch.addmm(cn, xg[b0:b0 + block], c.t(), alpha=-2.0)
            assign[b0:b0 + block] = dist.argmin(1)
        if it < niter:
            sums = torch.zeros_like(c).index_add_(0, assign, xg)
            counts = torch.bincount(assign, minlength=k)
            nz = counts > 0
            c[nz] = sums[nz] / counts[nz].unsqueeze(1).to(c.dtype)
    del xn
    return assign


def torch_case(torch, x, k, niter, m):
    torch.cuda.synchronize()
    t = time.perf_counter()
    xg = torch.from_numpy(x).cuda()
    if m == 1:
        torch_kmeans(torch, xg, k, niter)
    else:
        top = torch_kmeans(torch, xg, m, niter)
        for c in range(m):
            torch_kmeans(torch, xg[top == c].contiguous(), k // m, niter)
    torch.cuda.synchronize()
    return time.perf_counter() - t


if args.device == "cuda":
    import torch  # noqa: E402

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.zeros(1, device="cuda")
    torch_kmeans(torch, torch.randn(4096, 64, device="cuda"), 8, 1)  # warm-up, untimed
    print(f"{torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}, niter 10, fp32 (TF32 off)")
    print(f"{'case':<34} {'torch s':>9} {'ours s':>9} {'speed-up':>9} {'ours GF/s':>10}")
    rng = np.random.default_rng(0)
    gcases = [(60000, 256, 1000, 1), (1000000, 128, 10000, 1), (1000000, 256, 10000, 1), (1000000, 256, 10000, 16)]
    with tempfile.TemporaryDirectory() as tmp:
        for n, d, k, m in gcases:
            x = rng.standard_normal((n, d), dtype=np.float32)
            path = os.path.join(tmp, "x.npy")
            np.save(path, x)
            theirs = torch_case(torch, x, k, 10, m)
            r = ours(bench_kmeans, path, k, 10, m, 0)
            name = f"N={n} d={d} k={k}" + (f" m={m}" if m > 1 else "")
            print(f"{name:<34} {theirs:9.2f} {r['seconds']:9.2f} {theirs / r['seconds']:9.2f} {r['gflops']:10.1f}",
                  flush=True)
    sys.exit(0)

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
