#!/usr/bin/python3
"""The linear probe against a converged logistic regression, side by side.

    /usr/bin/python3 bench/probe_vs_sklearn.py DIR NAME [NAME ...]

DIR holds, for each NAME, NAME-tr.npy and NAME-te.npy (features from
`deepercluster features`, float32 (N, D)) and the labels ytr.npy, yte.npy
(`--labels-out`). Each feature set is standardised with the training
set's mean and deviation (as `eval linear` does) and fitted by
scikit-learn's L-BFGS multinomial logistic regression to convergence at
C = 0.01, 0.1 and 1 (C = 1 is the probe's weight decay 1e-4 on 10,000
images: C = 1 / (wd · n)). Printed: the features' effective rank (the
exponential of the entropy of the standardised spectrum) and the test
accuracy at each C — what a probe that converged would read, to set
beside `eval linear`'s figure for the same features.
"""
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    d = sys.argv[1]
    ytr = np.load(f"{d}/ytr.npy")
    yte = np.load(f"{d}/yte.npy")
    for name in sys.argv[2:]:
        xtr = np.load(f"{d}/{name}-tr.npy").astype(np.float64)
        xte = np.load(f"{d}/{name}-te.npy").astype(np.float64)
        if len(xtr) != len(ytr) or len(xte) != len(yte):
            sys.exit(f"{name}: {len(xtr)}/{len(xte)} feature rows for {len(ytr)}/{len(yte)} labels")
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
        a, b = (xtr - mu) / sd, (xte - mu) / sd
        s = np.linalg.svd(a - a.mean(0), compute_uv=False) ** 2
        p = s / s.sum()
        erank = float(np.exp(-np.sum(p * np.log(p + 1e-300))))
        accs = []
        for c in (0.01, 0.1, 1.0):
            m = LogisticRegression(C=c, max_iter=5000).fit(a, ytr)
            accs.append(f"C={c:g} {m.score(b, yte):.4f}")
        print(f"{name}: effective rank {erank:.1f}; converged logistic regression: " + ", ".join(accs), flush=True)


if __name__ == "__main__":
    main()
