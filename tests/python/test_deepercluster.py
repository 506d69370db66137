"""The Python package against the program: the same bytes from the same
inputs (features, k-means, PCA, evaluations, training), runs resumed across
the two, bad inputs raising the library's message, Ctrl-C leaving a
checkpoint, fine-tuning giving the program's figures, and the PyTorch module
computing the same features.

Run by tests/test_python.sh (DC_TEST_BIN: the program; the package's
library is the one beside it, through DEEPERCLUSTER_LIB)."""
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import deepercluster as dc

BIN = os.environ["DC_TEST_BIN"]
FM = "/usr/share/datasets/fashion-mnist"
TRAIN = f"{FM}/train-images-idx3-ubyte.gz"
TEST = f"{FM}/t10k-images-idx3-ubyte.gz"
TINY = dict(max_images=256, batch_size=8, niter=3, k=16, seed=5, reassignment=2)


def cli_args(opts):
    out = []
    for k, v in opts.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


def run_cli(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, f"{args}: exit {p.returncode}: {p.stderr[-2000:]}"
    return p


def digest(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """A tiny training run made by the program."""
    d = tmp_path_factory.mktemp("run") / "cli"
    run_cli("train", "--data", TRAIN, "--out", str(d), "--epochs", "3", *cli_args(TINY))
    return str(d)


@pytest.fixture(scope="session")
def test_images():
    with gzip.open(TEST) as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:300]


def test_version_and_library():
    assert dc.version() == "0.1.0"
    assert os.path.samefile(dc.library_path, os.environ["DEEPERCLUSTER_LIB"])


def test_features_are_the_programs_bytes(run, tmp_path):
    npy = tmp_path / "f.npy"
    run_cli("features", "--batch-size", "16", "--weights", run, "--data", TEST, "--max-images", "300", "--out", str(npy))
    want = np.load(npy)
    x = dc.features(run, TEST, max_images=300, batch_size=16)
    assert x.dtype == np.float32 and x.shape == want.shape == (300, 512)
    assert x.tobytes() == want.tobytes()
    c3 = dc.features(run, TEST, layer="conv3", max_images=50, batch_size=16)
    npy3 = tmp_path / "c3.npy"
    run_cli("features", "--batch-size", "16", "--weights", run, "--data", TEST, "--max-images", "50", "--layer", "conv3",
            "--out", str(npy3))
    assert c3.tobytes() == np.load(npy3).tobytes()


def test_features_of_an_array(run, test_images):
    from_path = dc.features(run, TEST, max_images=300, batch_size=16)
    assert dc.features(run, test_images, batch_size=16).tobytes() == from_path.tobytes()
    assert dc.features(run, test_images[..., None], batch_size=16).tobytes() == from_path.tobytes()  # (N, H, W, 1)
    # not C-contiguous: copied, same result
    fortran = np.asfortranarray(test_images)
    assert not fortran.flags.c_contiguous
    assert dc.features(run, fortran, batch_size=16).tobytes() == from_path.tobytes()
    x, y = dc.features(run, test_images, labels=np.arange(300) % 10, return_labels=True, batch_size=16)
    assert y.dtype == np.int32 and list(y[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_features_bad_inputs(run, test_images):
    with pytest.raises(TypeError, match="expected uint8, got float32"):
        dc.features(run, test_images.astype(np.float32), batch_size=16)
    with pytest.raises(ValueError, match="expected a 3 or 4-dimensional array"):
        dc.features(run, test_images[0], batch_size=16)
    with pytest.raises(ValueError, match="2 channels"):
        dc.features(run, np.zeros((4, 28, 28, 2), np.uint8), batch_size=16)
    with pytest.raises(OSError, match="absent.idx: cannot open"):
        dc.features(run, "/nonexistent/absent.idx", batch_size=16)
    with pytest.raises(OSError, match="no such run directory or weights file"):
        dc.features("/nonexistent/run", test_images, batch_size=16)
    with pytest.raises(ValueError, match="layer conv9"):
        dc.features(run, test_images, layer="conv9", batch_size=16)
    with pytest.raises(ValueError, match="max_images: -5 is out of range"):
        dc.features(run, test_images, max_images=-5)
    with pytest.raises(ValueError, match="restarts: 0 is out of range"):
        dc.eval_clusters(run, TEST, restarts=0)
    with pytest.raises(ValueError, match="not a safetensors file"):
        dc.load_weights(TEST)
    with pytest.raises(ValueError, match="3 labels for 300 images"):
        dc.features(run, test_images, labels=[1, 2, 3], batch_size=16)


@pytest.fixture(scope="session")
def feats(run, tmp_path_factory):
    x = dc.features(run, TEST, max_images=300, batch_size=16)
    p = tmp_path_factory.mktemp("feats") / "x.npy"
    np.save(p, x)
    return x, str(p)


def test_kmeans_is_the_programs(feats, tmp_path):
    x, path = feats
    a, c = tmp_path / "a.npy", tmp_path / "c.npy"
    run_cli("kmeans", "--in", path, "--k", "10", "--pca", "16", "--seed", "3", "--out", str(a), "--centroids", str(c))
    assign, cent = dc.kmeans(x, 10, pca=16, seed=3)
    assert assign.dtype == np.int32 and assign.shape == (300,)
    assert assign.tobytes() == np.load(a).tobytes() and cent.tobytes() == np.load(c).tobytes()
    run_cli("kmeans", "--in", path, "--k", "8", "--super-clusters", "2", "--seed", "4", "--niter", "5", "--out", str(a),
            "--centroids", str(c))
    assign, cent = dc.kmeans(x, 8, super_clusters=2, seed=4, niter=5)
    assert assign.shape == (300, 2) and cent.shape == (2, 4, 512)
    assert assign.tobytes() == np.load(a).tobytes() and cent.tobytes() == np.load(c).tobytes()


def test_pca_whiten_is_the_programs(feats, tmp_path):
    x, path = feats
    p1, p2 = tmp_path / "p1.safetensors", tmp_path / "p2.safetensors"
    run_cli("kmeans", "--in", path, "--k", "4", "--pca", "12", "--pca-out", str(p1), "--out", str(tmp_path / "a.npy"))
    w = dc.pca_whiten(x, 12, save=p2)
    assert digest(p1) == digest(p2)
    assert w.shape == (300, 12) and np.allclose(np.linalg.norm(w, axis=1), 1, atol=1e-5)


def test_clustering_bad_inputs(feats):
    x, _ = feats
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|non-finite|not finite"):
        dc.kmeans(bad, 4)
    with pytest.raises(ValueError, match="(?i)nan|non-finite|not finite"):
        dc.pca_whiten(bad, 8)
    with pytest.raises(TypeError, match="expected float32, got float64"):
        dc.kmeans(x.astype(np.float64), 4)
    with pytest.raises(ValueError, match="not a multiple of super_clusters"):
        dc.kmeans(x, 10, super_clusters=3)
    with pytest.raises(ValueError, match="pca: 600 dimensions of 512"):
        dc.kmeans(x, 4, pca=600)
    with pytest.raises(ValueError, match="2-dimensional"):
        dc.kmeans(x[0], 4)


def test_metrics_are_the_programs(tmp_path):
    rng = np.random.default_rng(0)
    pred, y = rng.integers(0, 7, 500).astype(np.int32), rng.integers(0, 5, 500).astype(np.int32)
    np.save(tmp_path / "p.npy", pred)
    np.save(tmp_path / "y.npy", y)
    run_cli("metrics", "--pred", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "--json",
            str(tmp_path / "m.json"))
    with open(tmp_path / "m.json") as f:
        want = json.load(f)
    got = dc.metrics(pred, y.astype(np.int64))  # integer labels of another width are converted
    assert set(got) == set(want)
    for k in want:  # cJSON writes 15 significant digits
        assert got[k] == pytest.approx(want[k], rel=1e-13, abs=1e-15), k
    assert dc.metrics(y, y)["nmi"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="4 assignments for 3 labels"):
        dc.metrics([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative|negative"):
        dc.metrics([1, -2, 3], [1, 2, 3])


def cli_eval(tmp_path, *args):
    j = tmp_path / "e.json"
    run_cli("eval", *args, "--batch-size", "16", "--json", str(j))
    with open(j) as f:
        return json.load(f)


def same_keys(got, want):
    for k, v in want.items():
        if k in ("results", "weights"):
            continue
        assert got[k] == (pytest.approx(v, rel=1e-13, abs=1e-15) if isinstance(v, float) else v), (k, got[k], v)


def test_evaluations_are_the_programs(run, tmp_path):
    want = cli_eval(tmp_path, "clusters", "--weights", run, "--data", TEST, "--max-images", "400", "--restarts", "3")
    same_keys(dc.eval_clusters(run, TEST, max_images=400, restarts=3, batch_size=16), want)
    want = cli_eval(tmp_path, "linear", "--weights", run, "--train", TRAIN, "--test", TEST, "--max-images", "300",
                    "--layer", "final", "--epochs", "2")
    same_keys(dc.eval_linear(run, TRAIN, TEST, max_images=300, epochs=2, batch_size=16), want)
    want = cli_eval(tmp_path, "knn", "--weights", run, "--train", TRAIN, "--test", TEST, "--max-images", "300")
    same_keys(dc.eval_knn(run, TRAIN, TEST, max_images=300, batch_size=16), want)
    with pytest.raises(ValueError, match="k = 1000 is more than the 300 images"):
        dc.eval_clusters(run, TEST, k=1000, max_images=300, batch_size=16)


def test_train_writes_the_programs_bytes(run, tmp_path):
    out = str(tmp_path / "py")
    lines = []
    assert dc.train(TRAIN, out, epochs=3, callback=lambda lvl, line: lines.append(line), **TINY) == out
    assert digest(f"{out}/checkpoint.safetensors") == digest(f"{run}/checkpoint.safetensors")
    for f in ("pca.safetensors", "assignments/epoch-000.npy", "assignments/epoch-002.npy"):
        assert digest(f"{out}/{f}") == digest(f"{run}/{f}"), f
    assert any("epoch 2:" in l for l in lines), lines[-3:]


def test_train_bad_options_leave_a_run_as_it_was(run, tmp_path):
    before = digest(f"{run}/checkpoint.safetensors")
    with pytest.raises(ValueError, match="--lr: .* is (below|outside|not in)|--lr"):
        dc.train(TRAIN, run, lr=-1, **TINY)
    with pytest.raises(ValueError, match="unknown option '--no-such-option'"):
        dc.train(TRAIN, run, no_such_option=3, **TINY)
    with pytest.raises(ValueError, match="--method: 'simclr' is not one of"):
        dc.train(TRAIN, run, method="simclr")
    with pytest.raises(ValueError, match="--k 1000 is larger than the 256 images"):
        dc.train(TRAIN, str(tmp_path / "v"), **dict(TINY, k=1000))
    with pytest.raises(OSError, match="cannot open"):
        dc.train("/nonexistent/images.idx", str(tmp_path / "w"))
    with pytest.raises(TypeError, match="expected a number, a string or a path"):
        dc.train(TRAIN, str(tmp_path / "x"), k=[16])
    assert digest(f"{run}/checkpoint.safetensors") == before
    assert not os.path.exists(tmp_path / "v") and not os.path.exists(tmp_path / "w")


CHILD = textwrap.dedent("""
    import signal, sys
    import deepercluster as dc
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    opts = dict(max_images=256, batch_size=8, niter=3, k=16, seed=5, reassignment=2, epochs=4)
    try:
        dc.train(sys.argv[1], sys.argv[2], **opts)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


def test_ctrl_c_then_resume_with_the_program(tmp_path):
    """Ctrl-C in Python: a checkpoint, KeyboardInterrupt; the program
    resumes the run and ends bit-identical to one never stopped; and the
    reverse: a run the program stopped (SIGTERM) resumed from Python."""
    full = tmp_path / "full"
    run_cli("train", "--data", TRAIN, "--out", str(full), "--epochs", "4", *cli_args(TINY))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    stopped = tmp_path / "py-stopped"
    p = subprocess.Popen([sys.executable, "-c", CHILD, TRAIN, str(stopped)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # wait for the first epoch to end, then Ctrl-C
    log = stopped / "stats.jsonl"
    for _ in range(600):
        if log.exists() and '"type":"epoch"' in log.read_text():
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "KeyboardInterrupt" in out, (p.returncode, out, err[-1500:])
    assert "signal 2: writing a checkpoint" in (stopped / "log.txt").read_text()
    epochs_done = (stopped / "stats.jsonl").read_text().count('"type":"epoch"')
    assert epochs_done < 4
    run_cli("train", "--data", TRAIN, "--out", str(stopped), "--epochs", "4", *cli_args(TINY))
    assert digest(stopped / "checkpoint.safetensors") == digest(full / "checkpoint.safetensors")

    # the reverse: the program stopped by SIGTERM, Python resumes
    rev = tmp_path / "cli-stopped"
    q = subprocess.Popen([BIN, "train", "--data", TRAIN, "--out", str(rev), "--epochs", "4", *cli_args(TINY)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = rev / "stats.jsonl"
    for _ in range(600):
        if log.exists() and '"type":"epoch"' in log.read_text() or q.poll() is not None:
            break
        time.sleep(0.05)
    q.send_signal(signal.SIGTERM)
    assert q.wait(timeout=120) == 130
    dc.train(TRAIN, str(rev), epochs=4, **TINY)
    assert digest(rev / "checkpoint.safetensors") == digest(full / "checkpoint.safetensors")


def test_load_weights(run):
    w = dc.load_weights(run)
    assert "body.features.0.weight" in w and "sobel.1.weight" in w and "body.classifier.3.bias" in w
    assert not any(k.startswith(("head.", "optimizer.")) for k in w)
    assert w["body.features.0.weight"].shape == (64, 2, 3, 3) and w["body.features.0.weight"].dtype == np.float32
    assert w["body.features.1.num_batches_tracked"].dtype == np.int64
    same = dc.load_weights(f"{run}/checkpoint.safetensors")
    assert all(np.array_equal(same[k], w[k]) for k in w)
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        dc.load_weights("/nonexistent/run")


def test_pytorch_module_computes_the_same_features(run, test_images):
    torch = pytest.importorskip("torch", reason="python3-torch is not installed: the PyTorch interop is not checked")
    net = dc.torch.vgg(run)
    x = dc.features(run, test_images, batch_size=16)
    with torch.no_grad():
        y = net(torch.from_numpy(dc.inputs(run, test_images))).numpy()
    assert y.shape == x.shape
    rel = np.linalg.norm(y - x) / np.linalg.norm(x)
    assert rel < 1e-4, rel
    assert np.abs(y - x).max() <= 1e-4 * np.abs(x).max()
    # a network without the Sobel stage
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        r = os.path.join(d, "r")
        run_cli("train", "--data", TRAIN, "--out", r, "--epochs", "1", "--sobel", "0", *cli_args(TINY))
        net = dc.torch.vgg(r)
        assert net.sobel is None
        x = dc.features(r, test_images[:6], batch_size=16)
        with torch.no_grad():
            y = net(torch.from_numpy(dc.inputs(r, test_images[:6]))).numpy()
        assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-4


@pytest.fixture(scope="session")
def labelled_folders(tmp_path_factory):
    """Class folders of Fashion-MNIST test images (PNG): 6 per class to train, 4 to test."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    import make_corpora
    x = make_corpora.read_idx(TEST)
    y = make_corpora.read_idx(f"{FM}/t10k-labels-idx1-ubyte.gz")
    d = tmp_path_factory.mktemp("folders")
    tr = np.concatenate([np.flatnonzero(y == c)[:6] for c in range(10)])
    te = np.concatenate([np.flatnonzero(y == c)[6:10] for c in range(10)])
    make_corpora.write_folder(str(d / "train"), x[tr], y[tr])
    make_corpora.write_folder(str(d / "test"), x[te], y[te])
    return str(d / "train"), str(d / "test")


def test_finetune_is_the_programs(labelled_folders, tmp_path):
    tr, te = labelled_folders
    for extra in ({}, dict(head_first=1, lr=0.05)):  # the rate chosen; LP-FT (its first stage's rate chosen)
        opts = dict(labels_per_class=5, epochs=2, crops=1, seed=3, mode="all", **extra)
        j = tmp_path / "f.json"
        run_cli("eval", "finetune", "--weights", "random:vgg-s32", "--train", tr, "--test", te, *cli_args(opts),
                "--json", str(j))
        with open(j) as f:
            want = json.load(f)
        got = dc.finetune("random:vgg-s32", tr, te, **opts)
        keys = ["top1", "top5", "lr", "labelled", "held_out", "classes", "epochs", "batch", "loss", "device"]
        keys += ["head_lr", "head_held_out_top1"] if extra else ["held_out_top1"]
        for k in keys:
            assert got[k] == (pytest.approx(want[k], rel=1e-13) if isinstance(want[k], float) else want[k]), k
        assert ("head_lr" in got) == bool(extra), got
    with pytest.raises(ValueError, match="--labels-per-class 7: class 0 has only 6 training images"):
        dc.finetune("random:vgg-s32", tr, te, labels_per_class=7)
    with pytest.raises(ValueError, match="--crops"):
        dc.finetune("random:vgg-s32", tr, te, crops=11)
