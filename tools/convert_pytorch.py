#!/usr/bin/python3
"""Converts a PyTorch checkpoint of the original code's network to
deepercluster's weights format (safetensors with the same state_dict names).

    /usr/bin/python3 tools/convert_pytorch.py IN.pth OUT.safetensors [--arch vgg16]

IN is what facebookresearch/DeeperCluster (and DeepCluster, RotNet in the
same code base) saves: a dict whose 'state_dict' holds the network's tensors
(or a bare state dict), keys possibly prefixed 'module.' (DataParallel /
DistributedDataParallel). DeepCluster-style keys without the 'body.' level
('features.0.weight', 'classifier.0.weight') are moved under it. Prediction
layers ('pred_layer', 'top_layer') are left out: deepercluster re-creates its
heads. BatchNorm's num_batches_tracked, absent from checkpoints of PyTorch
before 0.4.1, is added as 0. Needs Debian's python3-torch; the C program
never does."""
import argparse
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("uint8"): "U8"}


def load_state(path):
    ck = torch.load(path, map_location="cpu")
    sd = ck.get("state_dict", ck) if isinstance(ck, dict) else ck
    if not isinstance(sd, dict):
        sys.exit(f"{path}: no state_dict in this checkpoint")
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        if k.startswith(("pred_layer", "top_layer")):
            continue
        if k.startswith(("features.", "classifier.")):
            k = "body." + k
        out[k] = v
    # num_batches_tracked for every batch-norm (a running_var without it)
    for k in list(out):
        if k.endswith(".running_var"):
            nbt = k[: -len("running_var")] + "num_batches_tracked"
            out.setdefault(nbt, torch.tensor(0, dtype=torch.int64))
    return out


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        if a.dtype == np.float64 or a.dtype == np.float16:
            a = a.astype(np.float32)
        if a.dtype not in DTYPES:
            sys.exit(f"tensor {name}: dtype {a.dtype} has no safetensors counterpart here")
        a = np.asarray(a, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        b = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--arch", default="vgg16", help="preset recorded in the metadata (default vgg16)")
    a = ap.parse_args()
    tensors = load_state(a.input)
    if not any(k.startswith("body.features.") for k in tensors):
        sys.exit(f"{a.input}: no body.features.* tensors: not the original's network")
    sobel = "1" if "sobel.0.weight" in tensors else "0"
    first = tensors["body.features.0.weight"]
    write_safetensors(a.output, tensors, {"format": "pt", "arch": a.arch, "sobel": sobel, "source": a.input,
                                         "converted_by": "tools/convert_pytorch.py"})
    print(f"{a.output}: {len(tensors)} tensors, sobel {sobel}, first conv {tuple(first.shape)}")


if __name__ == "__main__":
    main()
