#!/usr/bin/python3
"""PyTorch parity fixture for one fine-tuning step (tests/test_finetune.c):
the original's eval_voc_classif.py --fc6_8 recipe on a tiny network of the
original's structure (python/deepercluster/torch.py's VGG: padding,
conv-BN-ReLU, max-pool, Linear-ReLU-Dropout-Linear), then a ReLU and the
top layer (model_factory(relu=True)): body frozen with batch norm on its
running statistics, cross-entropy, gradients clipped at norm 10 over the
trained parameters, SGD with momentum 0.9 and weight decay 1e-6; two steps
on one batch, dropout off (its masks are deepercluster's own and tested
elsewhere). The weights are drawn large enough for the clipping to act.
Writes tests/fixtures/finetune/step.safetensors: the starting tensors
(state_dict names, top.weight, top.bias), the batch (x, y), and the
expected tensors after each step (after1.*, after2.*) and the losses and
gradient norms.

Run with Debian's interpreter: /usr/bin/python3 tools/gen_finetune_fixture.py"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "python", "deepercluster"))
torch.set_num_threads(1)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.asarray(a, order="C")
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}[a.dtype]
        b = a.tobytes()
        header[name] = dict(dtype=dt, shape=list(a.shape), data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    # python/deepercluster/torch.py without importing the package (no library needed)
    import importlib.util
    spec = importlib.util.spec_from_file_location("dctorch_src", os.path.join(ROOT, "python", "deepercluster", "torch.py"))
    src = open(spec.origin).read().replace("from . import load_weights", "load_weights = None")
    mod = {}
    exec(compile(src, spec.origin, "exec"), mod)
    VGG = mod["VGG"]

    torch.manual_seed(11)
    net = VGG([4, "M"], in_c=1, sobel=False, feat_in=4 * 5 * 5, hidden=16)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(3)
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.4)
                m.bias.fill_(0.1)
    top = nn.Linear(16, 3)
    with torch.no_grad():
        top.weight.normal_(0, 0.4)
        top.bias.fill_(0.1)
    x = torch.randn(6, 1, 8, 8) * 2
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    out["top.weight"] = top.weight.detach().numpy().copy()
    out["top.bias"] = top.bias.detach().numpy().copy()
    out["x"] = x.numpy()
    out["y"] = y.numpy().astype(np.int32)

    net.eval()  # batch norm on running statistics, dropout off
    for p in net.body.features.parameters():
        p.requires_grad = False
    params = [p for p in list(net.parameters()) + list(top.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-6)
    losses, norms = [], []
    for step in (1, 2):
        logits = top(torch.relu(net(x)))
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, 10)))
        opt.step()
        losses.append(float(loss))
        for k in ("body.classifier.0.weight", "body.classifier.0.bias", "body.classifier.3.weight",
                  "body.classifier.3.bias"):
            out[f"after{step}.{k}"] = net.state_dict()[k].numpy().copy()
        out[f"after{step}.top.weight"] = top.weight.detach().numpy().copy()
        out[f"after{step}.top.bias"] = top.bias.detach().numpy().copy()
    assert norms[0] > 10, f"the first step's gradient norm {norms[0]} does not reach the clip"
    out["losses"] = np.array(losses, np.float32)
    out["norms"] = np.array(norms, np.float32)
    d = os.path.join(ROOT, "tests", "fixtures", "finetune")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "step.safetensors"), out)
    print("losses", losses, "gradient norms", norms)


if __name__ == "__main__":
    main()
