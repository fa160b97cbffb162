"""Metrics, summed over samples on the device so an epoch reads them once.

``metric.total(pred, target, xp)`` gives a 0-d array: the metric summed over
the N rows of ``pred`` (N, C). The epoch's value is the sum of totals over its
batches divided by the number of rows. ``metric.check(pred_shape, target, xp,
dtype)`` refuses targets the metric cannot score (it reads their values: fit
and evaluate call it once per data set, before anything is computed).
"""

from __future__ import annotations

from typing import Any

from . import _compat
from .losses import check_float_target, check_labels
from .registry import resolve


class Metric:
    name = "metric"

    def total(self, pred: Any, target: Any, xp: Any) -> Any:
        raise NotImplementedError

    def rows(self, pred: Any, target: Any, xp: Any) -> Any:
        """(N,): each row's value (what weighted means weigh)."""
        raise NotImplementedError(f"{type(self).__name__} defines no rows(): it cannot be weighted")

    def check(self, pred_shape: tuple, target: Any, xp: Any, dtype: Any) -> None:
        """Raise if ``target`` cannot be scored against outputs of ``pred_shape`` (N, C)
        in ``dtype``. Reads ``target`` back to the host: once per data set."""

    def for_model(self, model: Any) -> Metric:
        """This metric as it applies to ``model``'s outputs (itself, unless it depends on them)."""
        return self

    def __call__(self, pred: Any, target: Any) -> float:
        """The metric's mean over the rows of ``pred`` (N, C) as a Python float."""
        xp = _compat.namespace_of(pred, target)
        if pred.ndim != 2 or pred.shape[0] == 0:
            raise ValueError(f"pred must be 2-D (N, C) with N >= 1, got shape {tuple(pred.shape)}")
        self.check(tuple(pred.shape), target, xp, pred.dtype)
        return float(self.total(pred, target, xp)) / pred.shape[0]


class Accuracy(Metric):
    """Share of rows whose predicted class is the target's.

    ``pred`` (N, C) holds logits or probabilities; ``target`` labels (N,) in
    [0, C) or one-hot / probability rows (N, C). With C = 1 the output is one
    binary score, class 1 when it exceeds ``threshold``, and ``target`` holds
    0/1 values (N,) or (N, 1). ``threshold=None`` takes it from the model
    (:meth:`for_model`, as fit and evaluate do): 0.5 after a sigmoid output
    (a probability), else 0 (a logit); called on bare arrays, None means 0.
    """

    name = "accuracy"

    def __init__(self, threshold: float | None = None):
        self.threshold = None if threshold is None else float(threshold)

    def for_model(self, model):
        if self.threshold is not None or model.n_out != 1:
            return self
        last = getattr(getattr(model.layers[-1], "activation", None), "name", None)  # a layer may have none
        return Accuracy(0.5 if last == "sigmoid" else 0.0)

    def check(self, pred_shape, target, xp, dtype):
        n, c = pred_shape
        if c > 1 and target.ndim == 1:
            check_labels(self.name, pred_shape, target, xp)
            return
        fits = tuple(target.shape) in ((n,), (n, 1)) if c == 1 else tuple(target.shape) == (n, c)
        if not fits:
            want = f"({n},) or ({n}, 1) of 0/1" if c == 1 else f"({n},) class labels or ({n}, {c}) one-hot"
            raise ValueError(f"accuracy: target shape {tuple(target.shape)} does not fit the output "
                             f"shape {(n, c)}; expected {want} targets")
        if not (xp.isdtype(target.dtype, "real floating") or xp.isdtype(target.dtype, "integral")):
            raise TypeError(f"accuracy: targets must be numbers, got {_compat.dtype_name(xp, target.dtype)}")
        if n == 0:
            return
        if c == 1:
            if not bool(xp.all((target == 0) | (target == 1))):
                lo, hi = float(xp.min(target)), float(xp.max(target))
                raise ValueError(f"accuracy on a single output needs 0/1 targets, got values from {lo:g} "
                                 f"to {hi:g} (regression targets? score them with 'mse' or 'mae')")
            return
        t = xp.astype(target, dtype) if xp.isdtype(target.dtype, "integral") else target
        lo, hi = float(xp.min(t)), float(xp.max(t))
        sums = xp.sum(t, axis=1)
        off = float(xp.max(xp.abs(sums - 1)))
        if lo < 0 or hi > 1 or not off <= 1e-3:
            raise ValueError(f"accuracy: ({n}, {c}) targets must be one-hot or class probabilities "
                             f"(values in [0, 1], each row summing to 1), got values from {lo:g} to "
                             f"{hi:g} and row sums off 1 by up to {off:g} (regression targets? score "
                             f"them with 'mse' or 'mae')")

    def total(self, pred, target, xp):
        return xp.sum(self.rows(pred, target, xp))

    def rows(self, pred, target, xp):
        if pred.shape[1] == 1:
            threshold = 0.0 if self.threshold is None else self.threshold
            guess = xp.astype(pred[:, 0] > threshold, xp.int64)
            truth = target[:, 0] if target.ndim == 2 else target
            truth = xp.astype(truth > 0.5, xp.int64) if xp.isdtype(truth.dtype, "real floating") \
                else xp.astype(truth, xp.int64)
        else:
            guess = xp.argmax(pred, axis=1)
            truth = xp.argmax(target, axis=1) if target.ndim == 2 else target
            truth = xp.astype(truth, guess.dtype)
        return xp.astype(guess == truth, pred.dtype)

    def __repr__(self) -> str:
        return f"Accuracy(threshold={self.threshold!r})"


class MeanSquaredError(Metric):
    """Mean over rows of sum_j (yhat - y)^2 / C: the plain MSE per output unit.
    ``target`` has the outputs' shape (N, C) and dtype."""

    name = "mse"

    def check(self, pred_shape, target, xp, dtype):
        check_float_target(self.name, pred_shape, target, xp, dtype)

    def total(self, pred, target, xp):
        r = pred - target
        return xp.sum(r * r) / pred.shape[1]

    def rows(self, pred, target, xp):
        r = pred - target
        return xp.sum(r * r, axis=1) / pred.shape[1]


class MeanAbsoluteError(MeanSquaredError):
    """Mean over rows of sum_j |yhat - y| / C; ``target`` as for :class:`MeanSquaredError`."""

    name = "mae"

    def total(self, pred, target, xp):
        return xp.sum(xp.abs(pred - target)) / pred.shape[1]

    def rows(self, pred, target, xp):
        return xp.sum(xp.abs(pred - target), axis=1) / pred.shape[1]


METRICS = {"accuracy": Accuracy, "acc": Accuracy, "mse": MeanSquaredError,
           "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
           "mean_absolute_error": MeanAbsoluteError}


def get(spec) -> Metric:
    """A metric from its name (``"accuracy"``, ``"mse"``, ``"mae"`` or an alias in
    :data:`METRICS`), a dict such as ``{"name": "accuracy", "threshold": 0.5}``, or an instance."""
    return resolve("metric", spec, METRICS, Metric)
