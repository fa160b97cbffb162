"""Per-row weights: checked once per data set, and class weights turned into row weights.

With weights w_n >= 0 a batch's loss is sum_n w_n J_n / sum_n w_n (scikit-learn's
definition); the training step hands the loss the row scales s_n = w_n / sum w of
its batch (:mod:`nnbackprop.losses`). ``class_weight`` maps each row's class to a
weight; ``"balanced"`` is scikit-learn's: n_rows / (n_classes * count(class)) over
the classes present. Weights that are all 1 are dropped, so they take the
unweighted path itself (bit-identical to no weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _compat


def check_weight(weight: Any, n_rows: int, xp: Any, device: Any, dtype: Any,
                 name: str = "sample_weight") -> tuple[Any, float]:
    """Refuse per-row weights that are not a 1-D array of ``n_rows`` finite numbers
    >= 0 of namespace ``xp`` on ``device``, or are all zero. Returns (w in ``dtype``,
    or None when every weight is 1; sum w as a float). Reads the weights back to
    the host once: per data set, not per step."""
    _compat.check_array(weight, name=name, xp=xp, device=device)
    if weight.ndim != 1 or weight.shape[0] != n_rows:
        raise ValueError(f"{name} must have shape ({n_rows},), one weight per row, got "
                         f"{tuple(weight.shape)}")
    if not (xp.isdtype(weight.dtype, "real floating") or xp.isdtype(weight.dtype, "integral")):
        raise TypeError(f"{name} must hold real numbers, got {_compat.dtype_name(xp, weight.dtype)}")
    host = np.asarray(_compat.to_host(weight), dtype=np.float64)
    bad = ~np.isfinite(host)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values")
    if (host < 0).any():
        raise ValueError(f"{name} must be >= 0, got {int((host < 0).sum())} negative weights "
                         f"(smallest {host.min():g})")
    total = float(host.sum())
    if not total > 0:
        raise ValueError(f"{name} is all zero: no row would count")
    if (host == 1).all():
        return None, total
    return xp.astype(weight, dtype), total


def row_scales(weight: Any, pred: Any, xp: Any) -> Any:
    """s = w / sum w (N,) in pred's dtype, checked (:func:`check_weight`); None for no
    weights or all-ones weights (the unweighted path)."""
    if weight is None:
        return None
    w, total = check_weight(weight, pred.shape[0], xp, _compat.device_of(pred), pred.dtype, "weight")
    return None if w is None else w / total


def row_classes(T: Any, n_out: int) -> np.ndarray:
    """Each row's class as host integers (N,): labels (N,) as they are, (N, C) one-hot
    or probability rows by their argmax, and one output unit's 0/1 targets (N,) or
    (N, 1) by t > 0.5. Reads T back to the host."""
    t = np.asarray(_compat.to_host(T))
    if t.ndim == 1 and n_out > 1:
        return t.astype(np.int64)
    if n_out == 1:
        return (t.reshape(t.shape[0], -1)[:, 0] > 0.5).astype(np.int64)
    return np.argmax(t, axis=1)


def class_weight_rows(T: Any, class_weight: Any, n_out: int) -> np.ndarray:
    """Host float64 (N,): each row's class weight. ``class_weight`` is ``"balanced"``
    or {class index: weight} (classes it leaves out weigh 1, as in scikit-learn)."""
    y = row_classes(T, n_out)
    n_classes = max(n_out, 2)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced' or a dict {{class: weight}}, "
                             f"got {class_weight!r}")
        present, counts = np.unique(y, return_counts=True)
        per_class = np.ones(n_classes)
        per_class[present] = y.shape[0] / (present.shape[0] * counts)
        return per_class[y]
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be 'balanced' or a dict {{class: weight}}, got "
                        f"{type(class_weight).__name__}")
    per_class = np.ones(n_classes)
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n_classes:
            raise ValueError(f"class_weight key {k!r} is not a class index in [0, {n_classes - 1}]")
        v = float(v)
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"class_weight[{k}] must be a finite number >= 0, got {v}")
        per_class[k] = v
    return per_class[y]


def fit_weights(model: Any, T: Any, loss: Any, sample_weight: Any, class_weight: Any) -> Any:
    """The row weights ``fit`` trains with (sample_weight times class weights), checked;
    None where there are none or all are 1."""
    if sample_weight is None and class_weight is None:
        return None
    xp, n = model.xp, T.shape[0]
    if class_weight is not None:
        if not getattr(loss, "classifies", False):
            raise ValueError(f"class_weight needs a classification loss (softmax or binary "
                             f"cross-entropy), got {loss.name}")
        cw = class_weight_rows(T, class_weight, model.n_out)
        if sample_weight is not None:
            sw, _ = check_weight(sample_weight, n, xp, model.device, model.dtype)
            cw = cw * (1.0 if sw is None else np.asarray(_compat.to_host(sw), dtype=np.float64))
        sample_weight = _compat.from_host(xp, cw, model.dtype, model.device)
    return check_weight(sample_weight, n, xp, model.device, model.dtype)[0]
