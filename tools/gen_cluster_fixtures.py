#!/usr/bin/python3
"""Known answers for the clustering module, computed with the reference
libraries (Debian python3-sklearn, python3-numpy), written under
tests/fixtures/cluster/:

  metrics.json   label pairs and scikit-learn's NMI / ARI, scipy's Hungarian
                 accuracy, and purity, for test_cluster.c
  pca_x.npy      a small anisotropic data set (float32)
  pca_expect.npy its whitened, L2-normalised projection as the original's
                 PCA class computes it (numpy, float64), signs fixed so that
                 each component's largest-magnitude loading is positive
  fmnist_kmeans.json  scikit-learn KMeans NMI on Fashion-MNIST raw pixels

Run with Debian's interpreter: /usr/bin/python3 tools/gen_cluster_fixtures.py
(the Fashion-MNIST part needs `apt-get install dataset-fashion-mnist`)."""
import gzip
import json
import os

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "cluster")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)


def scores(pred, truth):
    c = contingency_matrix(truth, pred)  # rows: truth, cols: pred
    r, k = linear_sum_assignment(-c)
    return {
        "nmi": normalized_mutual_info_score(truth, pred),
        "ari": adjusted_rand_score(truth, pred),
        "acc": c[r, k].sum() / len(pred),
        "purity": c.max(axis=0).sum() / len(pred),
    }


cases = []
n = 600
truth = rng.integers(0, 10, n)
noisy = truth.copy()
flip = rng.random(n) < 0.3
noisy[flip] = rng.integers(0, 12, flip.sum())
perm = rng.permutation(10)
pairs = [
    ("random", rng.integers(0, 12, n), truth),
    ("noisy", noisy, truth),
    ("permuted", perm[truth], truth),
    ("one_cluster", np.zeros(n, dtype=int), truth),
    ("sparse_labels", truth * 1000 + 7, rng.integers(0, 3, n) * 50),
    ("many_small", rng.integers(0, 150, n), truth),
    ("both_single", np.full(n, 4), np.full(n, 2)),
]
for name, pred, tr in pairs:
    s = scores(pred, tr)
    cases.append({"name": name, "pred": [int(v) for v in pred], "truth": [int(v) for v in tr], **s})
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"generator": "tools/gen_cluster_fixtures.py", "cases": cases}, f)

# PCA: the original's recipe (src/utils.py PCA), in float64.
d, dim = 12, 5
a = rng.normal(size=(d, d))
x = (rng.normal(size=(300, d)) @ a * np.linspace(3, 0.1, d) + 2.0).astype(np.float32)
xf = x.astype(np.float64)
mean = xf.mean(axis=0)
xc = xf - mean
cov = xc.T @ xc / xc.shape[0]
w, v = np.linalg.eigh(cov)
w = np.maximum(w, w.max() * 1e-5)
idx = np.argsort(w)[::-1][:dim]
w, v = w[idx], v[:, idx]
sign = np.sign(v[np.abs(v).argmax(axis=0), np.arange(dim)])
v = v * sign
y = (np.diag(1.0 / np.sqrt(w)) @ v.T @ xc.T).T
y /= np.linalg.norm(y, axis=1, keepdims=True)
np.save(os.path.join(out, "pca_x.npy"), x)
np.save(os.path.join(out, "pca_expect.npy"), np.ascontiguousarray(y, dtype=np.float32))

# Three well-separated blobs with their labels, for the CLI tests.
centres = np.array([[0.0] * 8, [10.0] * 8, [-10.0] * 4 + [10.0] * 4])
lab3 = np.repeat(np.arange(3), 40)
bx = (centres[lab3] + rng.normal(size=(120, 8))).astype(np.float32)
np.save(os.path.join(out, "blobs_x.npy"), bx)
np.save(os.path.join(out, "blobs_y.npy"), lab3.astype(np.int32))
np.save(os.path.join(out, "blobs_y64.npy"), lab3.astype(np.int64))

# k-means on Fashion-MNIST test images, raw pixels in [0, 1].
root = "/usr/share/datasets/fashion-mnist"
if os.path.isdir(root):
    with gzip.open(os.path.join(root, "t10k-images-idx3-ubyte.gz")) as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(os.path.join(root, "t10k-labels-idx1-ubyte.gz")) as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    res = {}
    for init in ("random", "k-means++"):
        nmis = []
        for seed in range(5):
            km = KMeans(n_clusters=10, init=init, n_init=1, max_iter=20, random_state=seed).fit(img)
            nmis.append(normalized_mutual_info_score(lab, km.labels_))
        res[init] = {"nmi": nmis, "mean": float(np.mean(nmis))}
    with open(os.path.join(out, "fmnist_kmeans.json"), "w") as f:
        json.dump({"data": "t10k-images-idx3-ubyte.gz / 255", "k": 10, "max_iter": 20,
                   "n_init": 1, "sklearn": res}, f, indent=1)
print("wrote fixtures to", os.path.normpath(out))
