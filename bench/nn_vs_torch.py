#!/usr/bin/python3
"""Side-by-side training/inference throughput: deepercluster (bench_nn)
against PyTorch 1.13 (Debian python3-torch) on the identical network (the
original's structure, tools/gen_nn_fixtures.py's Net), batch, thread count
and two-level loss, in one invocation. PyTorch gets its best CPU setting
here: glibc malloc tunables that keep freed large blocks for reuse instead
of a fresh mmap (and its page faults) per tensor, set for its process only.
Run after `make bench`:

    /usr/bin/python3 bench/nn_vs_torch.py [--quick] [--threads 2]

On a GPU (after `make CUDA=1 bench`; PyTorch with CUDA, cudnn.benchmark on,
TF32 as the row's precision; ours with deterministic algorithms, then
timed ones with --autotune):

    python3 bench/nn_vs_torch.py --device cuda [--quick]"""
import argparse
import json
import os
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true", help="vgg-s32 at batch 64 only")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu", help="cpu or cuda")
ap.add_argument("--autotune", action="store_true", help="GPU: also our timed algorithm choice")
ap.add_argument("--cases", default=None, help="GPU: PRESET:BATCH,... (default: vgg-s32:256,vgg16:48,vgg16:256)")
ap.add_argument("--binary", default=None, help="bench_nn to run (default: build/release[-cuda]/bench/bench_nn)")
ap.add_argument("--child", nargs=3, metavar=("PRESET", "BATCH", "STEPS"), help=argparse.SUPPRESS)
ap.add_argument("--precision", default="tf32", help=argparse.SUPPRESS)
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUNABLES = "glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=2147483647"
PRESETS = {"vgg-s32": ("64 64 M 128 128 M 256 256 M", 512, 32),
           "vgg16": ("64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M", 4096, 224)}

if args.child:  # the PyTorch measurement, in its own process
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(root, "tools"))
    import gen_nn_fixtures as g
    torch.set_num_threads(args.threads)
    name, B, steps = args.child[0], int(args.child[1]), int(args.child[2])
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        tf32 = args.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    feats, hidden, size = PRESETS[name]
    cfg = dict(features=feats, hidden=hidden, input=size, sobel=1, in_c=3, seed=1, dropout=0.5)
    net = g.Net(cfg)
    net.body.classifier[2] = torch.nn.Dropout(0.5)
    S, K = 4, 10
    sup_head = torch.nn.Linear(hidden, S)
    subs = [torch.nn.Linear(hidden, K) for _ in range(S)]
    net.to(dev)
    sup_head.to(dev)
    for h in subs:
        h.to(dev)
    params = [p for p in net.parameters() if p.requires_grad] + list(sup_head.parameters())
    params += [p for h in subs for p in h.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-5)
    x = torch.randn(B, 3, size, size, device=dev)
    sup = torch.arange(B, device=dev) % S
    sub = torch.arange(B, device=dev) % K
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def step():
        h = F.relu(net(x))
        loss = F.cross_entropy(sup_head(h), sup)
        for s in range(S):
            idx = (sup == s).nonzero().squeeze(1)
            loss = loss + F.cross_entropy(subs[s](h[idx]), sub[idx]) * len(idx) / B
        opt.zero_grad()
        loss.backward()
        opt.step()

    net.train()
    for _ in range(3 if args.device == "cuda" else 1):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    tt = (time.perf_counter() - t) / steps
    net.eval()
    with torch.no_grad():
        for _ in range(3 if args.device == "cuda" else 1):
            net(x)
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            net(x)
        sync()
        ti = (time.perf_counter() - t) / steps
    print(json.dumps({"train_img_s": B / tt, "infer_img_s": B / ti}))
    sys.exit(0)

if args.device == "cuda":
    binary = args.binary or os.path.join(root, "build", "release-cuda", "bench", "bench_nn")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: run `make CUDA=1 bench` first")
    import subprocess as sp
    gpu = sp.run(["nvidia-smi", "--query-gpu=name,clocks.max.sm", "--format=csv,noheader"], capture_output=True,
                 text=True).stdout.strip()
    print(f"GPU: {gpu}; PyTorch: cudnn.benchmark on; ours: deterministic algorithms"
          f"{' (heuristic order), then timed (--autotune)' if args.autotune else ' (cuDNN heuristic order)'}")
    cases = [("vgg-s32", 256, 40), ("vgg16", 48, 12), ("vgg16", 256, 6)]
    if args.cases:
        steps_for = {"vgg-s32": 40, "vgg16": 12}
        cases = [(c.split(":")[0], int(c.split(":")[1]), steps_for.get(c.split(":")[0], 10)) for c in args.cases.split(",")]
    if args.quick:
        cases = cases[:1]
    print(f"{'case':<14} {'prec':>5} {'':>6} {'torch img/s':>12} {'ours img/s':>11} {'ours/torch':>10} "
          f"{'ours TF/s':>10}{'  timed/torch' if args.autotune else ''}")
    for name, B, steps in cases:
        for prec in ("fp32", "tf32"):
            theirs = json.loads(subprocess.run([sys.executable, __file__, "--device", "cuda", "--precision", prec,
                                                "--child", name, str(B), str(steps)], check=True,
                                               capture_output=True, text=True).stdout)
            runs = [json.loads(subprocess.run([binary, name, str(B), "1", str(steps), "cuda", prec, str(a)],
                                              check=True, capture_output=True, text=True).stdout)
                    for a in ((0, 1) if args.autotune else (0,))]
            for mode in ("train", "infer"):
                t, o = theirs[mode + "_img_s"], runs[0][mode + "_img_s"]
                extra = f"  {runs[1][mode + '_img_s'] / t:11.2f}" if args.autotune else ""
                print(f"{name + ' b' + str(B):<14} {prec:>5} {mode:>6} {t:12.1f} {o:11.1f} {o / t:10.2f} "
                      f"{runs[0][mode + '_gflops'] / 1000:10.1f}{extra}", flush=True)
    sys.exit(0)

binary = os.path.join(root, "build", "release", "bench", "bench_nn")
if not os.path.exists(binary):
    sys.exit(f"{binary} not found: run `make bench` first")
cases = [("vgg-s32", 64, 5), ("vgg-s32", 256, 3), ("vgg16", 8, 2)]
if args.quick:
    cases = cases[:1]
env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
print(f"threads {args.threads}; PyTorch with GLIBC_TUNABLES={TUNABLES}")
print(f"{'case':<18} {'':>6} {'torch img/s':>12} {'ours img/s':>11} {'ours/torch':>10} {'ours GF/s':>10} {'peak MB':>8}")
for name, B, steps in cases:
    tenv = dict(env, GLIBC_TUNABLES=TUNABLES)
    theirs = json.loads(subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", name,
                                        str(B), str(steps)], env=tenv, check=True, capture_output=True,
                                       text=True).stdout)
    ours = json.loads(subprocess.run([binary, name, str(B), "1", str(steps)], env=env, check=True,
                                     capture_output=True, text=True).stdout)
    for mode in ("train", "infer"):
        t, o = theirs[mode + "_img_s"], ours[mode + "_img_s"]
        print(f"{name + ' b' + str(B):<18} {mode:>6} {t:12.2f} {o:11.2f} {o / t:10.2f} "
              f"{ours[mode + '_gflops']:10.1f} {ours['peak_rss_mb']:8.0f}", flush=True)
