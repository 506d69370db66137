#!/usr/bin/python3
"""Writes the .npy interoperability fixtures under tests/fixtures/io with
NumPy itself (Debian python3-numpy), so that test_npy checks our reader
against the reference writer, format versions 1.0, 2.0 and 3.0 included.

Run with Debian's interpreter: /usr/bin/python3 tools/gen_io_fixtures.py
The values are simple formulas that test_npy.c recomputes."""
import os
import numpy as np
from numpy.lib import format as npf

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "io")
os.makedirs(out, exist_ok=True)


def save(name, arr, version=None):
    with open(os.path.join(out, name), "wb") as f:
        npf.write_array(f, arr, version=version)


# value of element i (flat index): f32: i*0.5 - 3, i32: i*7 - 20, i64: i*2^33 - 5, u8: i*37 mod 256
f32 = (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4)
i32 = (np.arange(6, dtype=np.int32) * 7 - 20).reshape(3, 2)
i64 = np.arange(5, dtype=np.int64) * (1 << 33) - 5
u8 = ((np.arange(10) * 37) % 256).astype(np.uint8).reshape(2, 5)

save("f32_v1.npy", f32, (1, 0))
save("f32_v2.npy", f32, (2, 0))
save("f32_v3.npy", f32, (3, 0))
save("i32_v1.npy", i32, (1, 0))
save("i64_v1.npy", i64, (1, 0))
save("u8_v1.npy", u8, (1, 0))
save("scalar_f32.npy", np.array(2.5, dtype=np.float32), (1, 0))
save("empty_f32.npy", np.zeros((0, 4), dtype=np.float32), (1, 0))
# Rejected by our reader with a clear message:
save("f64.npy", np.arange(3, dtype=np.float64), (1, 0))
save("f32_big_endian.npy", np.arange(3, dtype=">f4"), (1, 0))
save("f32_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)), (1, 0))
save("structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), (1, 0))
print("wrote fixtures to", os.path.normpath(out))
