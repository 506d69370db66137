"""A network trained by deepercluster as the original's PyTorch module
(facebookresearch/DeeperCluster's src/model/vgg16.py with its Sobel stage),
its weights loaded — for use downstream in PyTorch:

    net = deepercluster.torch.vgg("runs/fm")       # eval mode, on the CPU
    feats = net(torch.from_numpy(deepercluster.inputs("runs/fm", images)))

The structure is read off the weights (convolutions, batch norms and
max-pools of body.features, the classifier's widths), so every preset and
converted checkpoint of the original loads. Needs PyTorch; importing this
module without it raises ImportError."""
import re

import numpy as np

try:
    import torch as _torch
    import torch.nn as _nn
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError("deepercluster.torch needs PyTorch (Debian: apt-get install python3-torch)") from e

from . import load_weights

__all__ = ["vgg", "VGG"]


class VGG(_nn.Module):
    """The original's network: zero padding, the fixed Sobel stage (grey
    1x1 conv, then the two 3x3 Sobel filters) when present, ``body.features``
    (conv-BN-ReLU blocks and 2x2 max-pools), ``body.classifier``
    (Linear-ReLU-Dropout-Linear); its output is the "final" features."""

    def __init__(self, cfg, in_c, sobel, feat_in, hidden):
        super().__init__()
        self.padding = _nn.ConstantPad2d(2 if sobel else 1, 0.0)
        first = in_c
        if sobel:
            self.sobel = _nn.Sequential(_nn.Conv2d(in_c, 1, 1), _nn.Conv2d(1, 2, 3))
            for p in self.sobel.parameters():
                p.requires_grad = False
            first = 2
        else:
            self.sobel = None
        layers, c = [], first
        for v in cfg:
            if v == "M":
                layers.append(_nn.MaxPool2d(2, 2))
            else:
                layers += [_nn.Conv2d(c, v, 3, padding=1), _nn.BatchNorm2d(v), _nn.ReLU(inplace=True)]
                c = v
        self.body = _nn.Module()
        self.body.features = _nn.Sequential(*layers)
        self.body.classifier = _nn.Sequential(_nn.Linear(feat_in, hidden), _nn.ReLU(inplace=True), _nn.Dropout(0.5),
                                              _nn.Linear(hidden, hidden))

    def forward(self, x):
        x = self.padding(x)
        if self.sobel is not None:
            x = self.sobel(x)
        x = self.body.features(x)
        return self.body.classifier(_torch.flatten(x, 1))


def _structure(w):
    """The body's layer list from the weights' names: a conv at every index
    with a 4-D weight, a max-pool wherever the indices skip one place (a
    conv-BN-ReLU block takes three), and the final max-pool every preset
    and the original's VGG-16 end with."""
    convs = sorted(int(m.group(1)) for k in w for m in [re.match(r"body\.features\.(\d+)\.weight$", k)]
                   if m and w[k].ndim == 4)
    if not convs:
        raise ValueError("no convolutions under body.features: not the original's network")
    cfg, at = [], 0
    for i in convs:
        gap = i - at
        if gap not in (0, 1):
            raise ValueError(f"body.features.{i}: not the conv-BN-ReLU[-pool] layout of the original's VGG")
        if gap == 1:
            cfg.append("M")
        cfg.append(int(w[f"body.features.{i}.weight"].shape[0]))
        at = i + 3
    return cfg + ["M"]


def vgg(weights, device="cpu"):
    """The original's PyTorch module with the weights of a run directory or
    a .safetensors file loaded, in eval mode (batch norm's running
    statistics, no dropout), on `device`."""
    w = load_weights(weights)
    cfg = _structure(w)
    sobel = "sobel.0.weight" in w
    in_c = int(w["sobel.0.weight"].shape[1] if sobel else w["body.features.0.weight"].shape[1])
    hidden, feat_in = (int(s) for s in w["body.classifier.0.weight"].shape)
    net = VGG(cfg, in_c, sobel, feat_in, hidden)
    sd = {k: _torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.items()}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the module: missing {missing}, unexpected {unexpected}")
    return net.eval().to(device)
