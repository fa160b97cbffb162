"""The model side of the command line: parse ``--hidden`` (the network is
``nb.mlp([n_in, *hidden, n_out], activation)``), fold the data standardisation into
its weights, and keep a little metadata in the checkpoint.

The command line trains on standardised data, x' = (x - mu) / s and, for
regression, y' = (y - m) / sy. After training both affine maps are folded
into the first and last layers, so the saved model takes the raw features and
gives raw targets; ``nb.load(path).predict(X_raw)`` needs no extra step:

    W0 <- W0 / s[:, None]            b0 <- b0 - (mu / s) @ W0
    WL <- WL * sy                    bL <- bL * sy + m           (identity output)

The checkpoint also gets one extra entry, ``cli_meta`` (JSON: task, class
values, feature and target names, the train/test split), written in the same
atomic write as the weights, which :func:`nnbackprop.load` ignores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import _compat, checkpoint
from .model import Sequential

META_KEY = "cli_meta"


def parse_hidden(text: str) -> list[int]:
    """``"128,64"`` -> [128, 64]; ``""`` or ``"none"`` -> [] (no hidden layer)."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"--hidden must be layer sizes separated by commas, like 128,64; got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), scale (D,)) with scale 1 for constant columns."""
    mu, s = X.mean(axis=0), X.std(axis=0)
    return mu, np.where(s > 1e-12, s, 1.0)


def fold(model: Sequential, mu: np.ndarray, s: np.ndarray, y_shift: float = 0.0, y_scale: float = 1.0) -> None:
    """Make ``model`` take raw x and give raw y (see the module docstring)."""
    host = [_compat.to_host(p).astype(np.float64) for p in model.parameters()]
    W0, b0 = host[0], host[1]
    host[0], host[1] = W0 / s[:, None], b0 - (mu / s) @ W0
    host[-2], host[-1] = host[-2] * y_scale, host[-1] * y_scale + y_shift
    model.set_parameters([_compat.from_host(model.xp, h, model.dtype, model.device) for h in host])


def save(model: Sequential, path: str | os.PathLike, meta: dict) -> Path:
    """Write ``model`` and its ``cli_meta`` to ``path`` in one atomic write (a crash
    leaves the old file or the whole new one, never weights without their metadata)."""
    return checkpoint.save(model, path, extra={META_KEY: meta})


_META_FIELDS = {  # field: (types, what)
    "task": ((str,), "'classification' or 'regression'"), "features": ((list,), "a list of names"),
    "named": ((bool,), "true or false"), "target": ((str, type(None)), "a column name or null"),
    "data": ((str, type(None)), "a data name"), "classes": ((list, type(None)), "a list of class values"),
    "split": ((dict,), "a JSON object"),
}
_SPLIT_FIELDS = {"seed": ((int,), "an integer"), "test_share": ((float, int), "a number"),
                 "stratified": ((bool,), "true or false"), "fingerprint": ((str,), "a hex digest")}


def read_meta(path: str | os.PathLike) -> dict:
    """The ``cli_meta`` of a checkpoint, each field's type checked; {} for one saved
    from Python. A malformed one raises CheckpointError naming the field."""
    meta = checkpoint.read_extra(path, META_KEY)
    if meta is None:
        return {}
    _check_fields(path, META_KEY, meta, _META_FIELDS)
    if meta.get("task") not in (None, "classification", "regression"):
        raise checkpoint.CheckpointError(f"{path}: damaged {META_KEY} (task {meta['task']!r})")
    if "split" in meta:
        _check_fields(path, f"{META_KEY}.split", meta["split"], _SPLIT_FIELDS)
    for key, item in (("features", (str,)), ("classes", (str, int, float))):
        values = meta.get(key) or []
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in values):
            raise checkpoint.CheckpointError(f"{path}: damaged {META_KEY}.{key} (its entries must be "
                                             f"{' or '.join(t.__name__ for t in item)})")
    return meta


def _check_fields(path, where: str, d: Any, fields: dict) -> None:
    if not isinstance(d, dict):
        raise checkpoint.CheckpointError(f"{path}: damaged {where} (a {type(d).__name__}, expected a "
                                         f"JSON object)")
    for key, (types, what) in fields.items():
        if key in d and (not isinstance(d[key], types) or (isinstance(d[key], bool) and bool not in types)):
            raise checkpoint.CheckpointError(f"{path}: damaged {where}.{key} ({type(d[key]).__name__} "
                                             f"{str(d[key])[:40]!r}, expected {what})")


def feature_names(meta: dict) -> list[str] | None:
    """The training data's feature names, or None when they were made up (x0, x1, ...)."""
    names = meta.get("features")
    if not names or not meta.get("named", names != [f"x{i}" for i in range(len(names))]):
        return None
    return names


def is_classifier(model: Sequential, meta: dict) -> bool:
    if "task" in meta:
        return meta["task"] == "classification"
    return getattr(model.loss, "name", None) == "softmax_cross_entropy"


def label_indices(y: np.ndarray, classes: list | None, n_out: int) -> np.ndarray:
    """Targets (N,) -> int64 class indices into ``classes`` (or 0..n_out-1 when None)."""
    if classes is None:
        if not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
            raise ValueError("the target holds non-integer values but this model predicts class indices")
        idx = y.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= n_out)]
    else:
        lookup = {str(c): i for i, c in enumerate(classes)}
        keys = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in y.tolist()]
        idx = np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)
        bad = np.array(keys, dtype=object)[idx < 0]
    if bad.size:
        raise ValueError(f"the target holds the label {bad[0]!r}, which the model never saw in training "
                         f"(its classes: {classes if classes is not None else list(range(n_out))})")
    return idx


def decode(model: Sequential, out: Any, meta: dict) -> np.ndarray:
    """Model outputs (N, C) -> predicted class values (N,) or values (N,) / (N, C)."""
    Y = _compat.to_host(out)
    if is_classifier(model, meta):
        idx = Y.argmax(axis=1)
        classes = meta.get("classes")
        return np.asarray(classes, dtype=object)[idx] if classes is not None else idx
    return Y[:, 0] if Y.shape[1] == 1 else Y
