"""deepercluster — DeeperCluster (Caron et al., ICCV 2019), unsupervised
pre-training of convnet image features, from Python.

A thin layer over the C library libdeepercluster (through ctypes): every
call runs the library's own functions, so its results are those of the
``deepercluster`` program bit for bit, and a run started here resumes with
the program and the reverse.

    import deepercluster as dc
    run = dc.train("train-images-idx3-ubyte.gz", "runs/fm", epochs=2)
    x = dc.features(run, "t10k-images-idx3-ubyte.gz")          # (N, 512) float32
    assign, centroids = dc.kmeans(x, 10, pca=32)
    print(dc.eval_clusters(run, "t10k-images-idx3-ubyte.gz"))  # nmi, ari, acc
    net = dc.torch.vgg(run)                                      # a torch.nn.Module

The library's log lines go to the logger "deepercluster"; its errors
become exceptions carrying its message (ValueError for a bad value or a
malformed file, OSError for a file that cannot be read or written,
MemoryError, or DeeperClusterError)."""
import ctypes
import json
import os
import struct
import threading

import numpy as np

from . import _lib
from ._lib import DeeperClusterError, check, enc, ptr, lib

__all__ = ["train", "finetune", "features", "inputs", "kmeans", "pca_whiten", "metrics", "eval_clusters", "eval_linear",
           "eval_knn", "load_weights", "DeeperClusterError", "version", "library_path"]

library_path = _lib.path


def version():
    """The linked library's version ("0.1.0")."""
    return lib.dc_version().decode()


def _opt_value(what, key, v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (str, bytes, os.PathLike, int, float, np.integer, np.floating)):
        return os.fsdecode(v) if isinstance(v, (bytes, os.PathLike)) else str(v)
    raise TypeError(f"{what}: option {key}={v!r}: expected a number, a string or a path")


def _option_args(what, options):
    args = []
    for k, v in options.items():
        if v is None:
            continue
        args += ["--" + k.replace("_", "-"), _opt_value(what, k, v)]
    return args


def _stoppable(what, call, args, callback):
    """Runs call(argc, argv, stop) on a thread of its own, its log lines to
    `callback` or the logger; Ctrl-C raises the stop flag (the library stops
    at its next step, saving its state) and KeyboardInterrupt follows; a
    failure raises the library's message."""
    argv = (ctypes.c_char_p * len(args))(*[a.encode() for a in args])
    stop = lib.dc_stop_flag_new()
    result = {}
    done = threading.Event()

    def work():
        try:
            result["status"] = call(len(args), argv, stop)
            # the library's error message is per thread: read it on this one
            result["message"] = (lib.dc_last_error() or b"").decode("utf-8", "replace")
        finally:
            done.set()

    interrupted = False
    with _lib.callback(callback):
        t = threading.Thread(target=work, name="deepercluster-" + what)
        t.start()
        # waiting on an Event, not on Thread.join: a KeyboardInterrupt inside
        # join() can leave the thread marked finished while it still runs
        while not done.is_set():
            try:
                done.wait(0.1)
            except KeyboardInterrupt:
                if not interrupted:
                    _lib.log.warning("interrupted: stopping at the next step, state saved")
                    lib.dc_stop_flag_raise(stop, 2)  # SIGINT's number, as the program records it
                    interrupted = True
        t.join()
    lib.dc_stop_flag_free(stop)
    s = result.get("status", 8)
    if s == _lib.INTERRUPTED or interrupted:
        if s not in (0, _lib.INTERRUPTED):
            name, cls = _lib._STATUS.get(s, ("internal", DeeperClusterError))
            raise cls(result.get("message") or f"{what}: {name} error (status {s})", name)
        raise KeyboardInterrupt(result.get("message") or f"{what} stopped")
    if s != 0:
        name, cls = _lib._STATUS.get(s, ("internal", DeeperClusterError))
        raise cls(result.get("message") or f"{what}: {name} error", name)


def finetune(weights, train, test, callback=None, **options):
    """Fine-tunes as ``deepercluster eval finetune --weights W --train TRAIN
    --test TEST`` with every option of that command as a keyword
    (``mode="all"``, ``labels_per_class=10``, ``lr=0.01``, ``out="ft"``,
    ``train_labels="y.npy"``...; see ``deepercluster eval finetune --help``),
    checked by the library (a bad value raises ValueError with its message).
    With ``out``, Ctrl-C stops at the next step with the state saved, then
    raises KeyboardInterrupt; the same call (or the program) resumes it.
    Returns a dict with the program's JSON keys: top1, top5 (single-label)
    or map (multi-label), lr, held_out_top1 (when the rate was chosen),
    labelled, held_out, classes, epochs, batch, loss, device; with
    ``head_first=1``, head_lr and head_held_out_top1 (its first stage)."""
    args = ["--weights", os.fsdecode(weights), "--train", os.fsdecode(train), "--test", os.fsdecode(test)]
    args += _option_args("finetune", options)
    r = _lib.FinetuneResult()
    _stoppable("finetune", lambda argc, argv, stop: lib.dc_finetune_main(argc, argv, stop, ctypes.byref(r)), args,
               callback)
    out = dict(lr=r.lr, labelled=r.labelled, held_out=r.held_out, classes=r.nclasses, epochs=r.epochs,
               batch=r.batch, loss=r.loss, device=r.device.decode())
    for key, v in (("top1", r.top1), ("top5", r.top5), ("map", r.map), ("held_out_top1", r.val_top1),
                   ("head_lr", r.head_lr), ("head_held_out_top1", r.head_val_top1)):
        if v >= 0:
            out[key] = v
    return out


def train(data, out, callback=None, **options):
    """Trains (or resumes, when `out` holds a checkpoint) as ``deepercluster
    train --data DATA --out OUT`` with every option of that command as a
    keyword (``epochs=2``, ``super_classes=8``, ``method="rotnet"``, ...;
    see ``deepercluster train --help``), checked by the library: a bad
    value raises ValueError with the program's message. Log lines go to the
    logger "deepercluster", or to ``callback(level, line)`` when given.

    Ctrl-C (KeyboardInterrupt) stops the run at its next step with a
    checkpoint written, then is raised again: calling train again with the
    same arguments (or the program on the same run directory) resumes it,
    bit-identical to a run never stopped. Returns `out`."""
    args = ["--data", os.fsdecode(data), "--out", os.fsdecode(out)]
    args += _option_args("train", options)
    _stoppable("train", lambda argc, argv, stop: lib.dc_train_main(argc, argv, stop), args, callback)
    return out


def _ranges(**checks):
    """Each keyword's (value, low, high): a number outside [low, high] is a
    ValueError naming the keyword and its range, as the program's options."""
    for name, (v, lo, hi) in checks.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a number, got {v!r}")
        if not (lo <= v <= hi):
            raise ValueError(f"{name}: {v} is out of range (must be between {lo:g} and {hi:g})")


class _Dataset:
    """A library dataset from a path (anything the program's --data takes)
    or from an (N, H, W[, C]) uint8 array (held, not copied, while open)."""

    def __init__(self, data, labels=None):
        self.h = ctypes.c_void_p()
        self.keep = None
        if isinstance(data, (str, bytes, os.PathLike)):
            if labels is not None and not isinstance(labels, (str, bytes, os.PathLike)):
                raise TypeError("labels: with a path as data, a path to IDX labels")
            check(lib.dc_dataset_open(enc(data), enc(labels), ctypes.byref(self.h)))
        else:
            a = _lib.as_array(data, np.uint8, (3, 4), "images")
            if a.ndim == 3:
                a = a[..., None]
            n, hh, ww, c = a.shape
            y = None
            if labels is not None:
                y = _lib.as_array(labels, np.int32, 1, "labels")
                if y.shape[0] != n:
                    raise ValueError(f"labels: {y.shape[0]} labels for {n} images")
            self.keep = (a, y)
            check(lib.dc_dataset_wrap(ptr(a), n, hh, ww, c, None if y is None else ptr(y), ctypes.byref(self.h)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.dc_dataset_close(self.h)
        self.h = None
        return False

    def size(self):
        return lib.dc_dataset_size(self.h)

    def channels(self):
        return lib.dc_dataset_channels(self.h)

    def labels(self, n):
        p = lib.dc_dataset_labels(self.h)
        return None if not p else np.ctypeslib.as_array(p, shape=(self.size(),))[:n].copy()

    def count(self, max_images):
        n = self.size()
        return min(n, max_images) if max_images and max_images > 0 else n


class _Net:
    def __init__(self, weights, channels, sobel=1, seed=0, batch_size=0, device=None, precision=None):
        self.h = ctypes.c_void_p()
        if weights == "pixels":
            raise ValueError("weights='pixels' (the raw-pixel baseline) is the program's: deepercluster eval ... "
                             "--weights pixels")
        check(lib.dc_net_open(ctypes.byref(self.h), enc(os.fsdecode(weights)), channels, int(sobel), int(seed),
                              int(batch_size), enc(device), enc(precision)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.dc_net_close(self.h)
        self.h = None
        return False

    def dim(self, layer):
        d = lib.dc_net_feature_dim(self.h, enc(layer))
        if d <= 0:
            check(3)
        return d

    def features(self, ds, n, layer):
        out = np.empty((n, self.dim(layer)), dtype=np.float32)
        check(lib.dc_net_features(self.h, ds.h, n, enc(layer), ptr(out)))
        return out


def features(weights, data, layer="final", labels=None, max_images=0, batch_size=0, sobel=1, seed=0, device=None,
             precision=None, return_labels=False):
    """The features of layer `layer` ("final": the network's output, or
    "convN": after the N-th convolution's ReLU, average-pooled under 10,000
    values) for every image of `data`, under the evaluation transform, as a
    float32 array (N, D) in the data's order — the bytes ``deepercluster
    features`` writes.

    weights: a run directory, a weights .safetensors file, or
    "random:<preset>" (then `sobel` and `seed` apply). data: anything the
    program's --data takes (IDX, CIFAR, an image folder, a .txt list, a
    pack) or an (N, H, W) / (N, H, W, C) uint8 array (C = 1 or 3), used in
    place when C-contiguous. With return_labels, returns (features, labels)
    (labels None when the data has none)."""
    _ranges(max_images=(max_images, 0, 1e12), batch_size=(batch_size, 0, 4096), sobel=(sobel, 0, 1),
            seed=(seed, 0, 9.2e18))
    with _Dataset(data, labels) as ds:
        n = ds.count(max_images)
        with _Net(weights, ds.channels(), sobel, seed, batch_size, device, precision) as net:
            x = net.features(ds, n, layer)
        return (x, ds.labels(n)) if return_labels else x


def inputs(weights, data, max_images=0, sobel=1, seed=0):
    """What the network of `weights` is fed for each image of `data` under
    the evaluation transform (shorter side resized to the preset's, centre
    crop, normalised): float32 (N, C, S, S) — e.g. to run the same images
    through ``deepercluster.torch.vgg(weights)``."""
    with _Dataset(data) as ds:
        n = ds.count(max_images)
        with _Net(weights, ds.channels(), sobel, seed, batch_size=1) as net:  # never run: one image's buffers
            s = lib.dc_net_input_size(net.h)
            out = np.empty((n, ds.channels(), s, s), dtype=np.float32)
            check(lib.dc_net_inputs(net.h, ds.h, n, ptr(out)))
    return out


def _features_matrix(x, what="x"):
    a = _lib.as_array(x, np.float32, 2, what)
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what}: empty feature matrix {a.shape}")
    return a


def pca_whiten(x, dim, sample=-1, seed=0, save=None):
    """PCA-whitening to `dim` dimensions + L2 normalisation of the rows of x
    (float32 (N, D)), as the clustering step and ``deepercluster kmeans
    --pca`` do it: fitted on at most `sample` random rows (-1: D(D-1)/2, the
    original's); the fitted PCA written to `save` (.safetensors) when given.
    Returns float32 (N, dim); NaN or infinite features raise ValueError."""
    _ranges(sample=(sample, -1, 1e15), seed=(seed, 0, 9.2e18))
    a = _features_matrix(x)
    if not 1 <= dim <= a.shape[1]:
        raise ValueError(f"pca: {dim} dimensions of {a.shape[1]}-dimensional features (1 to {a.shape[1]})")
    out = np.empty((a.shape[0], dim), dtype=np.float32)
    check(lib.dc_pca_whiten(ptr(out), ptr(a), a.shape[0], a.shape[1], int(dim), int(sample), int(seed),
                            enc(save)))
    return out


def kmeans(x, k, super_clusters=None, pca=None, niter=10, seed=0, pca_sample=-1, verbose=False):
    """k-means of the rows of x (float32 (N, D)) as ``deepercluster kmeans``
    computes it: PCA-whitened to `pca` dimensions + L2 first when given,
    then Lloyd's k-means with the original's empty-cluster splits — flat,
    or two-level with `super_clusters` M (k/M sub-clusters in each).

    Returns (assignments, centroids): int32 (N,) and float32 (k, D'), or
    with super_clusters int32 (N, 2) = (super, sub) and float32 (M, k/M, D').
    Same inputs and seed: the same arrays as the program's .npy files."""
    _ranges(niter=(niter, 0, 1e6), seed=(seed, 0, 9.2e18), pca_sample=(pca_sample, -1, 1e15))
    a = _features_matrix(x)
    m = 1 if super_clusters is None else int(super_clusters)
    if pca:
        a = pca_whiten(a, int(pca), pca_sample, seed)
    n, d = a.shape
    k = int(k)
    if k < 1 or m < 1:
        raise ValueError(f"kmeans: k = {k}, super_clusters = {m}: both must be at least 1")
    if k % m:
        raise ValueError(f"kmeans: k = {k} is not a multiple of super_clusters = {m}; "
                         f"choose k = M x (sub-clusters per super-cluster)")
    assign = np.empty((n,) if m == 1 else (n, 2), dtype=np.int32)
    cent = np.empty((k, d) if m == 1 else (m, k // m, d), dtype=np.float32)
    obj = ctypes.c_double()
    check(lib.dc_kmeans_flat_or_two_level(ptr(assign), ptr(cent), ctypes.byref(obj), ptr(a), n, d, k, m,
                                          int(niter), int(seed), int(bool(verbose))))
    return assign, cent


def metrics(pred, labels):
    """NMI, ARI, accuracy (best one-to-one matching; absent with over 4,096
    labels on either side) and purity of an assignment against labels, as
    ``deepercluster metrics`` computes them: {"nmi", "ari", "acc",
    "purity", "n"}."""
    p = _lib.as_array(pred, np.int32, 1, "pred")
    y = _lib.as_array(labels, np.int32, 1, "labels")
    if p.shape != y.shape:
        raise ValueError(f"metrics: {p.shape[0]} assignments for {y.shape[0]} labels")
    sc = _lib.ClusterScores()
    check(lib.dc_cluster_scores_compute(ctypes.byref(sc), ptr(p), ptr(y), p.shape[0]))
    out = {"nmi": sc.nmi, "ari": sc.ari}
    if sc.acc >= 0:
        out["acc"] = sc.acc
    out["purity"] = sc.purity
    out["n"] = p.shape[0]
    return out


def _eval_result(protocol, weights, rows):
    res = {"results": rows, "protocol": protocol, "weights": os.fsdecode(weights)}
    if len(rows) == 1:
        res.update(rows[0])
    return res


def _layers(net, layer):
    if layer == "all":
        return [f"conv{i + 1}" for i in range(lib.dc_net_nconv(net.h))] + ["final"]
    return [layer]


def _run_dim_pca(run_dir):
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            return int(json.load(f).get("dim_pca", 0))
    except (OSError, ValueError, TypeError):
        return 0


def eval_clusters(weights, data, k=0, pca=-1, layer="final", niter=20, restarts=10, seed=0, max_images=0,
                  batch_size=0, sobel=1, device=None, precision=None, runs=1):
    """``deepercluster eval clusters``: k-means (k: the number of classes
    when 0; the best of `restarts` runs by objective) on a layer's features
    of the labelled `data`, PCA-whitened + L2 to `pca` dimensions first (-1:
    as the run clustered, else the preset's; 0: the raw features), scored
    against the labels; with `runs` > 1, clustered that many times (seeds
    seed, seed + 1, ...) and the scores' mean reported with their standard
    deviations (nmi_sd, ari_sd, acc_sd). Returns the program's JSON as a
    dict (nmi, ari, acc, k, pca, layer, runs, ...)."""
    _ranges(k=(k, 0, 1e6), pca=(pca, -1, 1e5), niter=(niter, 0, 1e6), restarts=(restarts, 1, 1000), runs=(runs, 1, 1000),
            seed=(seed, 0, 9.2e18), max_images=(max_images, 0, 1e12), batch_size=(batch_size, 0, 4096),
            sobel=(sobel, 0, 1))
    with _Dataset(data) as ds:
        n = ds.count(max_images)
        y = ds.labels(n)
        if y is None:
            raise ValueError("evaluation needs labelled images (IDX with its labels, CIFAR, class folders)")
        kk = int(k) if k else lib.dc_dataset_nclasses(ds.h)
        if kk > n:
            raise ValueError(f"k = {kk} is more than the {n} images (set k to at most {n})")
        with _Net(weights, ds.channels(), sobel, seed, batch_size, device, precision) as net:
            run_dim = _run_dim_pca(lib.dc_net_run_dir(net.h).decode()) if lib.dc_net_run_dir(net.h) else 0
            rows = []
            for name in _layers(net, layer):
                x = net.features(ds, n, name)
                dp = int(pca)
                if dp < 0:
                    dp = run_dim if run_dim > 0 and name == "final" else lib.dc_net_preset_dim_pca(net.h)
                if dp >= x.shape[1]:
                    dp = 0
                sc, sd = _lib.ClusterScores(), _lib.ClusterScores()
                check(lib.dc_eval_clusters_runs(ctypes.byref(sc), ctypes.byref(sd), ptr(x), n, x.shape[1], ptr(y), kk,
                                                dp, int(niter), int(restarts), int(runs), int(seed)))
                row = {"layer": name, "pca": dp, "nmi": sc.nmi, "ari": sc.ari, "acc": sc.acc, "k": kk, "runs": int(runs)}
                if runs > 1:
                    row.update(nmi_sd=sd.nmi, ari_sd=sd.ari, acc_sd=sd.acc)
                rows.append(row)
    return _eval_result("clusters", weights, rows)


def _labelled_pair(weights, train, test, layer, max_images, batch_size, sobel, seed, device, precision, score):
    _ranges(seed=(seed, 0, 9.2e18), max_images=(max_images, 0, 1e12), batch_size=(batch_size, 0, 4096),
            sobel=(sobel, 0, 1))
    with _Dataset(train) as dtr, _Dataset(test) as dte:
        ntr, nte = dtr.count(max_images), dte.count(max_images)
        ytr, yte = dtr.labels(ntr), dte.labels(nte)
        if ytr is None or yte is None:
            raise ValueError("evaluation needs labelled images (IDX with its labels, CIFAR, class folders)")
        ncls = max(lib.dc_dataset_nclasses(dtr.h), lib.dc_dataset_nclasses(dte.h))
        with _Net(weights, dtr.channels(), sobel, seed, batch_size, device, precision) as net:
            rows = []
            for name in _layers(net, layer):
                xtr, xte = net.features(dtr, ntr, name), net.features(dte, nte, name)
                rows.append(dict({"layer": name}, **score(xtr, ytr, xte, yte, ncls, lib.dc_dataset_nclasses(dtr.h))))
    return rows


def eval_linear(weights, train, test, layer="final", epochs=10, seed=0, max_images=0, batch_size=0, sobel=1,
                device=None, precision=None):
    """``deepercluster eval linear``: a logistic regression on the frozen
    features of `layer` ("final", "convN" or "all") of the labelled
    `train` images, its learning rate chosen on 10% held out, scored on
    `test` (the classifier the mean of the second half's SGD iterates).
    Returns the program's JSON as a dict (top1, top5, lr, probe_epochs,
    averaged, dim, layer; with layer="all", one row per layer under "results")."""
    _ranges(epochs=(epochs, 1, 1e4))

    def score(xtr, ytr, xte, yte, ncls, _ntrcls):
        out = (ctypes.c_double * 4)()
        check(lib.dc_linear_probe_default(out, ptr(xtr), ptr(ytr), xtr.shape[0], ptr(xte), ptr(yte), xte.shape[0],
                                          xtr.shape[1], ncls, int(epochs), int(seed)))
        row = {"top1": out[0]}
        if out[1] >= 0:
            row["top5"] = out[1]
        row.update({"lr": out[2], "probe_epochs": int(epochs), "averaged": 1, "dim": xtr.shape[1]})
        return row

    return _eval_result("linear", weights, _labelled_pair(weights, train, test, layer, max_images, batch_size, sobel,
                                                          seed, device, precision, score))


def eval_knn(weights, train, test, k=20, T=0.07, layer="final", seed=0, max_images=0, batch_size=0, sobel=1,
             device=None, precision=None):
    """``deepercluster eval knn``: weighted k-nearest neighbours (cosine
    similarity on L2-normalised features, votes exp(sim/T)) of the `test`
    images among the `train` images. Returns the program's JSON as a dict
    (top1, k, layer)."""
    _ranges(k=(k, 1, 4096), T=(T, 1e-4, 100))

    def score(xtr, ytr, xte, yte, _ncls, ntrcls):
        if k > xtr.shape[0]:
            raise ValueError(f"k {k} is more than the {xtr.shape[0]} training images")
        top1 = ctypes.c_double()
        check(lib.dc_knn_eval(ctypes.byref(top1), ptr(xtr), ptr(ytr), xtr.shape[0], ptr(xte), ptr(yte), xte.shape[0],
                              xtr.shape[1], ntrcls, int(k), float(T)))
        return {"top1": top1.value, "k": int(k)}

    return _eval_result("knn", weights, _labelled_pair(weights, train, test, layer, max_images, batch_size, sobel,
                                                       seed, device, precision, score))


_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def _read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its header's length)")
    (hl,) = struct.unpack("<Q", raw[:8])
    if hl > len(raw) - 8:
        raise ValueError(f"{path}: not a safetensors file, or truncated (its first 8 bytes give a header of {hl} "
                         f"bytes; the file has {len(raw)})")
    try:
        header = json.loads(raw[8:8 + hl])
    except ValueError as e:
        raise ValueError(f"{path}: malformed safetensors header: {e}") from None
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + hl:]
    out = {}
    for name, e in header.items():
        dt = _ST_DTYPES.get(e.get("dtype"))
        if dt is None:
            raise ValueError(f"{path}: tensor {name}: dtype {e.get('dtype')} not read here")
        b, end = e["data_offsets"]
        shape = tuple(e["shape"])
        if not 0 <= b <= end <= len(data) or end - b != int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize:
            raise ValueError(f"{path}: tensor {name}: offsets {b}..{end} do not fit its shape {shape}")
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(shape).copy()
    return out, meta


def load_weights(path, with_metadata=False):
    """The network's tensors of a run directory (its checkpoint) or a
    weights .safetensors file, by the original's state_dict names
    ("sobel.0.weight", "body.features.0.weight", "body.classifier.0.bias",
    ... — what its PyTorch module's load_state_dict takes; the training
    heads and optimiser state left out), as NumPy arrays. With
    with_metadata, returns (tensors, metadata)."""
    p = os.fsdecode(path)
    if os.path.isdir(p):
        p = os.path.join(p, "checkpoint.safetensors")
    if not os.path.exists(p):
        raise FileNotFoundError(f"{os.fsdecode(path)}: no such run directory or weights file")
    tensors, meta = _read_safetensors(p)
    net = {k: v for k, v in tensors.items() if k.startswith(("sobel.", "body."))}
    if not any(k.startswith("body.features.") for k in net):
        raise ValueError(f"{p}: no body.features.* tensors: not a deepercluster network")
    return (net, meta) if with_metadata else net


def __getattr__(name):
    # deepercluster.torch only when PyTorch is importable, imported on first use
    if name == "torch":
        import importlib
        return importlib.import_module(__name__ + ".torch")
    raise AttributeError(f"module 'deepercluster' has no attribute {name!r}")
