"""Finding and loading libdeepercluster, the C functions' signatures, and
the library's errors as Python exceptions.

The shared library is looked for, in order: the path in the environment
variable DEEPERCLUSTER_LIB; the build tree of the checkout this package sits
in (build/release, then the other builds); the system's library path (where
``make install`` put it)."""
import ctypes
import ctypes.util
import glob
import logging
import os
import threading

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_BUILDS = ("release", "release-cuda", "debug", "asan")

log = logging.getLogger("deepercluster")


class DeeperClusterError(Exception):
    """An error reported by the library; ``status`` is its code's name
    ("io", "format", "arg", ...) and the message is the library's."""

    def __init__(self, message, status="internal"):
        super().__init__(message)
        self.status = status


class LibraryArgumentError(DeeperClusterError, ValueError):
    """A value the library refused (an option out of range, a bad shape)."""


class LibraryFormatError(DeeperClusterError, ValueError):
    """A file whose contents the library cannot read."""


class LibraryIOError(DeeperClusterError, OSError):
    """A file that cannot be opened, read or written."""


class LibraryMemoryError(DeeperClusterError, MemoryError):
    """Not enough memory for what was asked."""


_STATUS = {1: ("io", LibraryIOError), 2: ("format", LibraryFormatError), 3: ("arg", LibraryArgumentError),
           4: ("nomem", LibraryMemoryError), 5: ("unsupported", DeeperClusterError),
           6: ("comm", DeeperClusterError), 7: ("interrupted", DeeperClusterError),
           8: ("internal", DeeperClusterError)}
INTERRUPTED = 7


def _candidates():
    env = os.environ.get("DEEPERCLUSTER_LIB")
    if env:
        yield env
        return
    root = os.path.dirname(os.path.dirname(_HERE))
    for b in _BUILDS:
        for p in sorted(glob.glob(os.path.join(root, "build", b, "libdeepercluster.so*"))):
            yield p
    found = ctypes.util.find_library("deepercluster")
    yield found or "libdeepercluster.so.0"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError("deepercluster: cannot load libdeepercluster (build it with `make`, install it with "
                      "`make install`, or set DEEPERCLUSTER_LIB to its path): " + "; ".join(errors))


lib, path = _load()

c_int, c_i64, c_u64, c_dbl, c_char_p, c_void_p = (ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double,
                                                   ctypes.c_char_p, ctypes.c_void_p)
P = ctypes.POINTER


class ClusterScores(ctypes.Structure):
    _fields_ = [("nmi", c_dbl), ("ari", c_dbl), ("acc", c_dbl), ("purity", c_dbl)]


class FinetuneResult(ctypes.Structure):
    _fields_ = [("top1", c_dbl), ("top5", c_dbl), ("map", c_dbl), ("lr", c_dbl), ("val_top1", c_dbl),
                ("loss", c_dbl), ("epochs", c_int), ("nclasses", c_int), ("batch", c_int), ("labelled", c_i64),
                ("trained", c_i64), ("held_out", c_i64), ("tested", c_i64), ("device", ctypes.c_char * 256),
                ("head_lr", c_dbl), ("head_val_top1", c_dbl)]


_SIGS = {
    "dc_version": (c_char_p, []),
    "dc_last_error": (c_char_p, []),
    "dc_clear_error": (None, []),
    "dc_status_str": (c_char_p, [c_int]),
    "dc_log_set_hook": (None, [c_void_p, c_void_p]),
    "dc_log_set_level": (None, [c_int]),
    "dc_train_main": (c_int, [c_int, P(c_char_p), c_void_p]),
    "dc_finetune_main": (c_int, [c_int, P(c_char_p), c_void_p, P(FinetuneResult)]),
    "dc_stop_flag_new": (c_void_p, []),
    "dc_stop_flag_raise": (None, [c_void_p, c_int]),
    "dc_stop_flag_free": (None, [c_void_p]),
    "dc_dataset_open": (c_int, [c_char_p, c_char_p, P(c_void_p)]),
    "dc_dataset_wrap": (c_int, [c_void_p, c_i64, c_int, c_int, c_int, c_void_p, P(c_void_p)]),
    "dc_dataset_close": (None, [c_void_p]),
    "dc_dataset_size": (c_i64, [c_void_p]),
    "dc_dataset_channels": (c_int, [c_void_p]),
    "dc_dataset_labels": (P(ctypes.c_int32), [c_void_p]),
    "dc_dataset_nclasses": (c_int, [c_void_p]),
    "dc_net_open": (c_int, [P(c_void_p), c_char_p, c_int, c_int, c_u64, c_int, c_char_p, c_char_p]),
    "dc_net_close": (None, [c_void_p]),
    "dc_net_preset": (c_char_p, [c_void_p]),
    "dc_net_run_dir": (c_char_p, [c_void_p]),
    "dc_net_preset_dim_pca": (c_int, [c_void_p]),
    "dc_net_nconv": (c_int, [c_void_p]),
    "dc_net_feature_dim": (c_i64, [c_void_p, c_char_p]),
    "dc_net_features": (c_int, [c_void_p, c_void_p, c_i64, c_char_p, c_void_p]),
    "dc_net_input_size": (c_int, [c_void_p]),
    "dc_net_inputs": (c_int, [c_void_p, c_void_p, c_i64, c_void_p]),
    "dc_pca_whiten": (c_int, [c_void_p, c_void_p, c_i64, c_int, c_int, c_i64, c_u64, c_char_p]),
    "dc_kmeans_flat_or_two_level": (c_int, [c_void_p, c_void_p, P(c_dbl), c_void_p, c_i64, c_int, c_int, c_int,
                                            c_int, c_u64, c_int]),
    "dc_cluster_scores_compute": (c_int, [P(ClusterScores), c_void_p, c_void_p, c_i64]),
    "dc_eval_clusters": (c_int, [P(ClusterScores), c_void_p, c_i64, c_int, c_void_p, c_int, c_int, c_int, c_int,
                                 c_u64]),
    "dc_eval_clusters_runs": (c_int, [P(ClusterScores), P(ClusterScores), c_void_p, c_i64, c_int, c_void_p, c_int,
                                      c_int, c_int, c_int, c_int, c_u64]),
    "dc_linear_probe_default": (c_int, [P(c_dbl), c_void_p, c_void_p, c_i64, c_void_p, c_void_p, c_i64, c_int, c_int,
                                        c_int, c_u64]),
    "dc_knn_eval": (c_int, [P(c_dbl), c_void_p, c_void_p, c_i64, c_void_p, c_void_p, c_i64, c_int, c_int, c_int,
                            c_dbl]),
}
for _name, (_res, _args) in _SIGS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def check(status):
    """Raises the exception for a failed library call (status != 0), with
    the message the library left on this thread."""
    if status == 0:
        return
    msg = (lib.dc_last_error() or b"").decode("utf-8", "replace")
    name, cls = _STATUS.get(status, ("internal", DeeperClusterError))
    raise cls(msg or f"deepercluster: {name} error", name)


def enc(s):
    """A path or string as the bytes the library takes (None stays None)."""
    return None if s is None else os.fsencode(s) if isinstance(s, (str, os.PathLike)) else bytes(s)


def ptr(a):
    """The address of a C-contiguous NumPy array's data."""
    return a.ctypes.data_as(c_void_p)


# Log lines go to the logger "deepercluster" (INFO and up by default), or to
# the callbacks registered by the calls that run with a callback.
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_callbacks = []
_cb_lock = threading.Lock()
HOOK_T = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)


def _hook(level, line, _user):
    text = line.decode("utf-8", "replace")
    with _cb_lock:
        cbs = list(_callbacks)
    if cbs:
        for cb in cbs:
            cb(_LEVELS.get(level, logging.INFO), text)
    else:
        log.log(_LEVELS.get(level, logging.INFO), "%s", text)


_hook_c = HOOK_T(_hook)  # kept alive as long as the module
lib.dc_log_set_hook(ctypes.cast(_hook_c, c_void_p), None)


class callback:
    """Within the block, the library's log lines go to fn(level, line)."""

    def __init__(self, fn):
        self.fn = fn

    def __enter__(self):
        if self.fn is not None:
            with _cb_lock:
                _callbacks.append(self.fn)
        return self

    def __exit__(self, *exc):
        if self.fn is not None:
            with _cb_lock:
                _callbacks.remove(self.fn)
        return False


def as_array(x, dtype, ndim, what):
    """x as a C-contiguous array of `dtype` with ndim dimensions (a tuple:
    any of them): no copy when it already is one; a copy when only the
    layout differs; TypeError when the dtype differs (no silent casts but
    between integer label types), ValueError for the shape."""
    a = np.asarray(x)
    if a.size == 0 and not isinstance(x, np.ndarray):
        a = a.astype(dtype)  # [] is float64 to NumPy
    dims = ndim if isinstance(ndim, tuple) else (ndim,)
    if a.ndim not in dims:
        want = " or ".join(str(d) for d in dims)
        raise ValueError(f"{what}: expected a {want}-dimensional array, got shape {a.shape}")
    if a.dtype != dtype:
        if np.issubdtype(dtype, np.integer) and np.issubdtype(a.dtype, np.integer) and dtype != np.uint8:
            if a.size and (a.min() < np.iinfo(dtype).min or a.max() > np.iinfo(dtype).max):
                raise ValueError(f"{what}: values outside {np.dtype(dtype).name}")
            a = a.astype(dtype)
        else:
            raise TypeError(f"{what}: expected {np.dtype(dtype).name}, got {a.dtype} "
                            f"(convert it with .astype(np.{np.dtype(dtype).name}))")
    return np.ascontiguousarray(a)
