#!/usr/bin/python3
"""PyTorch parity fixtures for the network engine (tests/test_parity.c).

Builds the original's network structure in PyTorch (src/model/vgg16.py and
model_factory.py: ConstantPad2d, the fixed Sobel stage, VGG conv-BN-ReLU
blocks, Linear-ReLU-Dropout-Linear, no final ReLU), the super-class head and
one sub-class head per super-class, and runs three SGD steps of
DeeperCluster's loss (SPEC §5) on one batch. Weights, inputs and dropout
masks come from deepercluster's own Philox generator (tools/philox.py), so
the C test recreates them bit for bit and the fixture holds only the
expected results: body output, logits, losses, every gradient, the
batch-norm running statistics after the first step and every parameter
after the third (tensors over 4096 values are sampled with a fixed stride
and their L2 norm is stored too).

Run with Debian's interpreter: /usr/bin/python3 tools/gen_nn_fixtures.py"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox  # noqa: E402

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "nn")
STREAM_TEST, STREAM_DROPOUT = 100, 6

CONFIGS = [
    dict(name="vgg-s32", features="64 64 M 128 128 M 256 256 M", hidden=512, input=32, sobel=1, in_c=3,
         N=8, S=4, k_sub=5, lr=0.05, wd=1e-4, seed=1082, dropout=0.5),
    dict(name="vgg-s32-grey", features="64 64 M 128 128 M 256 256 M", hidden=512, input=32, sobel=0, in_c=1,
         N=4, S=2, k_sub=3, lr=0.05, wd=1e-4, seed=78, dropout=0.5),
    dict(name="vgg16-slim", features="8 8 M 16 16 M 32 32 32 M 64 64 64 M 64 64 64 M", hidden=512,
         input=224, sobel=1, in_c=3, N=2, S=2, k_sub=3, lr=0.05, wd=1e-4, seed=79, dropout=0.5,
         # batch-norm over a batch of 2 is chaotic: after 3 steps PyTorch's own
         # float32 run is 7% away from float64; only the first step is compared
         params_after_steps=0),
]


def sampled(n):
    return 1 if n <= 4096 else n // 2048 + 1


class MaskDropout(nn.Module):
    """Dropout whose mask is deepercluster's (seed, layer, step) draw."""

    def __init__(self, p, seed, layer):
        super().__init__()
        self.p, self.seed, self.layer, self.step = p, seed, layer, 0

    def forward(self, x):
        if not self.training:
            return x
        u = philox.uniform(self.seed, STREAM_DROPOUT, self.layer, self.step, x.numel())
        self.step += 1
        keep = torch.from_numpy((u >= np.float32(self.p)).astype(np.float32)).reshape(x.shape).to(x.dtype)
        return x * keep / (1.0 - self.p)


class Body(nn.Module):
    def __init__(self, cfg, in_c, input_size, hidden, dropout_module):
        super().__init__()
        layers, c = [], in_c
        for v in cfg.split():
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                v = int(v)
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        s = input_size
        for v in cfg.split():
            if v == "M":
                s = (s - 2) // 2 + 1
        self.classifier = nn.Sequential(nn.Linear(c * s * s, hidden), nn.ReLU(inplace=True), dropout_module,
                                        nn.Linear(hidden, hidden))

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.padding = nn.ConstantPad2d(2 if cfg["sobel"] else 1, 0.0)
        first = cfg["in_c"]
        if cfg["sobel"]:
            grey = nn.Conv2d(cfg["in_c"], 1, 1)
            grey.weight.data.fill_(1.0 / 3.0 if cfg["in_c"] == 3 else 1.0)
            grey.bias.data.zero_()
            sob = nn.Conv2d(1, 2, 3)
            sob.weight.data[0, 0] = torch.tensor([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=torch.float32)
            sob.weight.data[1, 0] = torch.tensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=torch.float32)
            sob.bias.data.zero_()
            self.sobel = nn.Sequential(grey, sob)
            for p in self.sobel.parameters():
                p.requires_grad = False
            first = 2
        else:
            self.sobel = None
        size = cfg["input"] + (2 if cfg["sobel"] else 2)  # pad 2 then Sobel -2, or pad 1
        nfeat = sum(3 if v != "M" else 1 for v in cfg["features"].split())
        # C layer index of the dropout: pad, [2 Sobel convs], features, flatten, linear, relu, dropout
        self.dropout_layer = 1 + (2 if cfg["sobel"] else 0) + nfeat + 3
        self.body = Body(cfg["features"], first, size, cfg["hidden"],
                         MaskDropout(cfg["dropout"], cfg["seed"], self.dropout_layer))

    def forward(self, x):
        x = self.padding(x)
        if self.sobel is not None:
            x = self.sobel(x)
        return self.body(x)


def fill(t, seed, a, kind, fan_in=None):
    u = torch.from_numpy(philox.uniform(seed, STREAM_TEST, a, 0, t.numel()).astype(np.float32))
    s = 2 * u - 1
    if kind == "conv":
        v = s * math.sqrt(3.0) * math.sqrt(2.0 / (9 * t.shape[0]))
    elif kind == "small":
        v = s * 0.1
    elif kind == "gamma":
        v = 1 + 0.2 * s
    else:
        v = s / math.sqrt(fan_in)
    t.data.copy_(v.reshape(t.shape))


def trainable(net):
    """(name, tensor, kind, fan_in) of the body's trainable tensors, in order."""
    out = []
    for name, mod in net.body.named_modules():
        full = "body." + name
        if isinstance(mod, nn.Conv2d):
            out += [(full + ".weight", mod.weight, "conv", None), (full + ".bias", mod.bias, "small", None)]
        elif isinstance(mod, nn.BatchNorm2d):
            out += [(full + ".weight", mod.weight, "gamma", None), (full + ".bias", mod.bias, "small", None)]
        elif isinstance(mod, nn.Linear):
            fi = mod.weight.shape[1]
            out += [(full + ".weight", mod.weight, "linear", fi), (full + ".bias", mod.bias, "linear", fi)]
    return out


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        arr = np.asarray(np.asarray(arr, dtype=np.float64), dtype=np.float32, order="C")
        b = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def run(cfg, dtype):
    torch.manual_seed(0)
    net = Net(cfg)
    seed, N, S, K, D = cfg["seed"], cfg["N"], cfg["S"], cfg["k_sub"], cfg["hidden"]
    params = trainable(net)
    for j, (_, t, kind, fi) in enumerate(params):
        fill(t, seed, j, kind, fi)
    sup_head = nn.Linear(D, S)
    fill(sup_head.weight, seed, 500, "linear", D)
    fill(sup_head.bias, seed, 501, "linear", D)
    subs = [nn.Linear(D, K) for _ in range(S)]
    for s, h in enumerate(subs):
        fill(h.weight, seed, 600 + 2 * s, "linear", D)
        fill(h.bias, seed, 601 + 2 * s, "linear", D)
    net.to(dtype)
    sup_head.to(dtype)
    for h in subs:
        h.to(dtype)
    size = cfg["input"]
    x = torch.from_numpy(philox.uniform(seed, STREAM_TEST, 900, 0, N * cfg["in_c"] * size * size)
                         .astype(np.float32) * 4 - 2).reshape(N, cfg["in_c"], size, size).to(dtype)
    sup = torch.tensor([i % S for i in range(N)])
    sub = torch.tensor([(3 * i + 1) % K for i in range(N)])
    opt = [torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg["lr"], momentum=0.9,
                           weight_decay=cfg["wd"]),
           torch.optim.SGD(sup_head.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["wd"])]
    opt += [torch.optim.SGD(h.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["wd"]) for h in subs]
    net.train()
    out, losses = {}, []
    for step in range(3):
        feat = net(x)
        h = F.relu(feat)
        ls = sup_head(h)
        sl = torch.stack([subs[int(sup[i])](h[i]) for i in range(N)])
        loss_super = F.cross_entropy(ls, sup)
        loss_sub = F.cross_entropy(sl, sub)
        loss = loss_super + loss_sub
        for o in opt:
            o.zero_grad()
        loss.backward()
        # sub-head s: the mean over its own samples, not over the batch
        for s, hd in enumerate(subs):
            ns = int((sup == s).sum())
            for p in hd.parameters():
                p.grad *= N / ns
        both = ((ls.argmax(1) == sup) & (sl.argmax(1) == sub)).float().mean()
        losses.append([loss.item(), loss_super.item(), loss_sub.item(),
                       (ls.argmax(1) == sup).float().mean().item(), (sl.argmax(1) == sub).float().mean().item(),
                       both.item()])
        if step == 0:
            out["features"] = feat.detach().numpy().copy()
            out["logits_super"] = ls.detach().numpy().copy()
            out["logits_sub"] = sl.detach().numpy().copy()
            for name, t, _, _ in params:
                g = t.grad.detach().numpy().reshape(-1).copy()  # a copy: the grad buffer is reused
                out["grad:" + name] = g[::sampled(g.size)]
                out["gnorm:" + name] = np.array([np.linalg.norm(g.astype(np.float64))])
            out["grad:super.weight"] = sup_head.weight.grad.numpy().copy()
            out["grad:super.bias"] = sup_head.bias.grad.numpy().copy()
            for s, hd in enumerate(subs):
                out[f"grad:sub{s}.weight"] = hd.weight.grad.numpy().copy()
                out[f"grad:sub{s}.bias"] = hd.bias.grad.numpy().copy()
        for o in opt:
            o.step()
        if step == 0:
            for name, mod in net.body.named_modules():
                if isinstance(mod, nn.BatchNorm2d):
                    out[f"body.{name}.running_mean"] = mod.running_mean.numpy().copy()
                    out[f"body.{name}.running_var"] = mod.running_var.numpy().copy()
    for name, t, _, _ in params:
        v = t.detach().numpy().reshape(-1)
        out["param:" + name] = v[::sampled(v.size)]
    out["param:super.weight"] = sup_head.weight.detach().numpy()
    for s, hd in enumerate(subs):
        out[f"param:sub{s}.weight"] = hd.weight.detach().numpy()
    out["losses"] = np.array(losses)
    return out, net.dropout_layer


def write(cfg):
    """PyTorch in float32 (what C is compared with) and in float64 (the
    reference both are measured against: the test asks C to be about as
    close to float64 as PyTorch's own float32 result is)."""
    # A seed whose run sits within round-off of a ReLU kink or a max-pool
    # tie makes float32 runs (PyTorch's, ours with any summation order) take
    # different branches: the comparison would measure the branch, not the
    # arithmetic. Keep the first seed (from cfg["seed"], then +1000, ...)
    # where PyTorch's float32 run agrees with float64 to 1e-4 everywhere.
    base = cfg["seed"]
    for attempt in range(20):
        cfg = dict(cfg, seed=base + 1000 * attempt)
        f32, layer = run(cfg, torch.float32)
        f64, _ = run(cfg, torch.float64)
        worst = max(float(np.abs(f32[k] - f64[k]).max() / max(np.abs(f64[k]).max(), 1e-30))
                    for k in f32 if not k.endswith(".bias") and not k.startswith("gnorm:"))
        if worst < 1e-4:
            break
        print(f"{cfg['name']}: seed {cfg['seed']} is near a kink (float32 vs float64 {worst:.3g}), next")
    out = dict(f32)
    for k, v in f64.items():
        out["f64/" + k] = v
    meta = {k: str(v) for k, v in cfg.items()}
    meta.setdefault("params_after_steps", "1")
    meta["dropout_layer"] = str(layer)
    meta["generator"] = "tools/gen_nn_fixtures.py, torch " + torch.__version__
    path = os.path.join(OUT, cfg["name"] + ".safetensors")
    write_safetensors(path, out, meta)
    print(f"{cfg['name']}: loss per step {[round(float(l[0]), 5) for l in f32['losses']]}, "
          f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]  # fixture names; none: all
    for c in CONFIGS:
        if not only or c["name"] in only:
            write(c)
