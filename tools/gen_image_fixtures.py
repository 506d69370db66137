#!/usr/bin/python3
"""Messy-image fixtures for the decoders (tests/test_decode.c), written with
Debian's python3-pil under tests/fixtures/images/: an image folder with two
classes holding JPEGs (grey, RGB, CMYK, progressive, large) and PNGs
(palette, grey+alpha, RGBA, 16-bit grey, RGB), plus broken files (empty,
truncated, not an image, misnamed text). Each good image's expected pixels
are PIL's Image.open(p).convert("RGB") — what torchvision's ImageFolder
feeds the original — saved as expect/<path>.npy (uint8 HWC); for 16-bit PNG,
where PIL clips, the high byte of each value.

Run with Debian's interpreter: /usr/bin/python3 tools/gen_image_fixtures.py"""
import os
import shutil

import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "images")
shutil.rmtree(root, ignore_errors=True)
folder = os.path.join(root, "folder")
os.makedirs(os.path.join(folder, "cats", "sub"))
os.makedirs(os.path.join(folder, "dogs"))
exp = os.path.join(root, "expect")
os.makedirs(exp)
rng = np.random.default_rng(9)


def pattern(h, w):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = ((x + y) % 64 * 4).astype(np.uint8)
    return np.stack([r, g, b], -1)


def save(img, rel, ref=None, **kw):
    path = os.path.join(folder, rel)
    img.save(path, **kw)
    if ref is None:
        ref = np.asarray(Image.open(path).convert("RGB"))
    if ref is not False:
        np.save(os.path.join(exp, rel.replace("/", "_") + ".npy"), ref)


rgb = Image.fromarray(pattern(37, 50))
save(rgb, "cats/a_rgb.jpg", quality=90)
save(rgb.convert("L"), "cats/b_grey.jpg", quality=90)
save(rgb.convert("CMYK"), "cats/c_cmyk.jpg", quality=90)
save(rgb, "cats/d_progressive.jpg", quality=90, progressive=True)
save(Image.fromarray(pattern(600, 900)), "cats/sub/e_large.jpg", ref=False, quality=85)  # size checked only
save(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "dogs/f_palette.png")
la = rgb.convert("LA")
la.putalpha(Image.fromarray((pattern(37, 50)[:, :, 0] // 2).astype(np.uint8)))
save(la, "dogs/g_grey_alpha.png")
rgba = rgb.convert("RGBA")
rgba.putalpha(Image.fromarray(pattern(37, 50)[:, :, 1]))
save(rgba, "dogs/h_rgba.png")
# 16-bit grey: PIL's convert("RGB") clips such values to 255; we keep the
# high byte (v >> 8), so the expectation is the 8-bit source, replicated
src8 = pattern(20, 30)[:, :, 0]
g16 = Image.fromarray(src8.astype(np.uint16) * 257, mode="I;16")
save(g16, "dogs/i_grey16.png", ref=np.repeat(src8[:, :, None], 3, axis=2))
save(rgb, "dogs/j_rgb.png")
save(Image.fromarray(pattern(5, 3)), "dogs/k_tiny.png")
# broken files
open(os.path.join(folder, "cats", "x_empty.jpg"), "wb").close()
data = open(os.path.join(folder, "cats", "a_rgb.jpg"), "rb").read()
open(os.path.join(folder, "cats", "y_truncated.jpg"), "wb").write(data[: len(data) // 2])
open(os.path.join(folder, "dogs", "z_text.png"), "w").write("this is not an image\n")
pdata = open(os.path.join(folder, "dogs", "j_rgb.png"), "rb").read()
open(os.path.join(folder, "dogs", "w_corrupt.png"), "wb").write(pdata[:60] + bytes(200) + pdata[260:])
open(os.path.join(folder, "dogs", "notes.txt"), "w").write("not an image, not an image extension: ignored\n")
print("fixtures written to", os.path.normpath(root))
