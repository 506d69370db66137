#!/usr/bin/python3
"""data_vs_pil.py — decode + training augmentation, images per second on
one core: deepercluster (bench_data) against PIL with the torchvision
transforms the original uses (RandomResizedCrop(224) with PIL's bilinear
resize, RandomHorizontalFlip, ToTensor, Normalize), written out with PIL and
NumPy exactly as torchvision 0.14 runs them on PIL images. Both read the
same JPEGs (about 500x375, quality 90, made here from smooth random
images), in the same run.

Usage: /usr/bin/python3 bench/data_vs_pil.py [BUILD_DIR] [SECONDS]
"""
import json, math, os, random, subprocess, sys, tempfile, time

import numpy as np
from PIL import Image

build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
os.environ.setdefault("OMP_NUM_THREADS", "1")

def make_images(d, n=32):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = (500, 375) if i % 2 == 0 else (375, 500)
        small = rng.integers(0, 256, size=(h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        p = os.path.join(d, "img%03d.jpg" % i)
        im.save(p, quality=90)
        paths.append(p)
    return paths

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)

def rrc_params(w, h, rnd):
    area = w * h
    for _ in range(10):
        target = area * rnd.uniform(0.08, 1.0)
        ar = math.exp(rnd.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return rnd.randint(0, h - ch), rnd.randint(0, w - cw), ch, cw
    ch, cw = min(h, w), min(h, w)
    return (h - ch) // 2, (w - cw) // 2, ch, cw

def pil_pipeline(paths, seconds, size=224):
    rnd = random.Random(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for p in paths:
            with Image.open(p) as im:
                im = im.convert("RGB")
                w, h = im.size
                top, left, ch, cw = rrc_params(w, h, rnd)
                im = im.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
                if rnd.random() < 0.5:
                    im = im.transpose(Image.FLIP_LEFT_RIGHT)
                x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
                x = (x - MEAN) / STD
            n += 1
    return n / (time.perf_counter() - t0)

with tempfile.TemporaryDirectory() as d:
    paths = make_images(d)
    out = subprocess.run([os.path.join(build, "bench", "bench_data"), "224", str(secs)] + paths,
                         capture_output=True, text=True, check=True).stdout
    ours = json.loads(out)
    pil = pil_pipeline(paths, secs)
    print("decode + RandomResizedCrop(224) + flip + normalise, JPEG ~500x375, one core")
    print("%-34s %10s" % ("", "images/s"))
    print("%-34s %10.1f   (decoding %.0f%% of the time)" % ("deepercluster (libjpeg-turbo)", ours["images_per_s"],
                                                             100 * ours["decode_share"]))
    print("%-34s %10.1f" % ("PIL + torchvision-style transforms", pil))
    print("ratio (deepercluster / PIL): %.2f" % (ours["images_per_s"] / pil))
