#!/usr/bin/python3
"""PIL reference results for the image transforms (tests/test_data.c):
small synthetic images (smooth gradients plus noise, grey and RGB, odd
sizes), each resized by PIL exactly as torchvision 0.14 does on PIL images:
RandomResizedCrop's crop + Image.resize(BILINEAR), and Resize(shorter side)
+ CenterCrop. Written as uint8 .npy files under tests/fixtures/data/ with
the crop boxes in boxes.json.

Run with Debian's interpreter: /usr/bin/python3 tools/gen_data_fixtures.py"""
import json
import os

import numpy as np
from PIL import Image

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(5)


def synth(h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    base = 127 + 80 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img = np.stack([base + 30 * k for k in range(c)], axis=-1) + rng.normal(0, 20, (h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8)


cases = []
for idx, (h, w, c) in enumerate([(37, 53, 3), (28, 28, 1), (120, 90, 3), (64, 64, 1)]):
    img = synth(h, w, c)
    np.save(os.path.join(out, f"img{idx}.npy"), img)
    pil = Image.fromarray(img[:, :, 0] if c == 1 else img)
    for j, (top, left, ch, cw, size) in enumerate([(0, 0, h, w, 32), (3, 5, h // 2, w // 3, 24),
                                                 (1, 2, h - 3, w - 4, min(h, w) * 2), (h // 4, w // 4, h // 2, w // 2, 9)]):
        res = np.asarray(pil.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BILINEAR))
        name = f"img{idx}_rrc{j}.npy"
        np.save(os.path.join(out, name), res.reshape(size, size, c))
        cases.append({"image": f"img{idx}.npy", "kind": "crop", "top": top, "left": left, "h": ch, "w": cw,
                      "size": size, "expect": name})
    for j, (resize, size) in enumerate([(36, 32), (min(h, w), min(h, w) - 3)]):
        if w <= h:
            ow, oh = resize, int(resize * h / w)
        else:
            oh, ow = resize, int(resize * w / h)
        r = pil.resize((ow, oh), Image.BILINEAR)
        t, l = int(round((oh - size) / 2.0)), int(round((ow - size) / 2.0))
        res = np.asarray(r.crop((l, t, l + size, t + size)))
        name = f"img{idx}_eval{j}.npy"
        np.save(os.path.join(out, name), res.reshape(size, size, c))
        cases.append({"image": f"img{idx}.npy", "kind": "eval", "resize": resize, "size": size, "expect": name})
with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(len(cases), "cases written to", os.path.normpath(out))
