"""Metrics, summed over samples on the device so an epoch reads them once.

``metric.total(pred, target, xp)`` gives a 0-d array: the metric summed over
the N rows of ``pred`` (N, C). The epoch's value is the sum of totals over its
batches divided by the number of rows.
"""

from __future__ import annotations

from typing import Any


class Metric:
    name = "metric"

    def total(self, pred: Any, target: Any, xp: Any) -> Any:
        raise NotImplementedError

    def __call__(self, pred: Any, target: Any) -> float:
        """The metric's mean over the rows of ``pred`` as a Python float."""
        from ._compat import namespace_of

        xp = namespace_of(pred, target)
        return float(self.total(pred, target, xp)) / pred.shape[0]


class Accuracy(Metric):
    """Share of rows whose predicted class is the target's.

    ``pred`` holds logits or probabilities (N, C); with C = 1 it is a single
    binary logit (class 1 when > 0) or probability (class 1 when > 0.5: pass
    ``threshold=0.5``). ``target`` holds labels (N,) or one-hot rows (N, C).
    """

    name = "accuracy"

    def __init__(self, threshold: float = 0.0):
        self.threshold = float(threshold)

    def total(self, pred, target, xp):
        if pred.shape[1] == 1:
            guess = xp.astype(pred[:, 0] > self.threshold, xp.int64)
            truth = target[:, 0] if target.ndim == 2 else target
            truth = xp.astype(truth > 0.5, xp.int64) if xp.isdtype(truth.dtype, "real floating") \
                else xp.astype(truth, xp.int64)
        else:
            guess = xp.argmax(pred, axis=1)
            truth = xp.argmax(target, axis=1) if target.ndim == 2 else target
            truth = xp.astype(truth, guess.dtype)
        return xp.sum(xp.astype(guess == truth, pred.dtype))


class MeanSquaredError(Metric):
    """Mean over rows of sum_j (yhat - y)^2 / C: the plain MSE per output unit."""

    name = "mse"

    def total(self, pred, target, xp):
        r = pred - target
        return xp.sum(r * r) / pred.shape[1]


class MeanAbsoluteError(Metric):
    name = "mae"

    def total(self, pred, target, xp):
        return xp.sum(xp.abs(pred - target)) / pred.shape[1]


METRICS = {"accuracy": Accuracy, "acc": Accuracy, "mse": MeanSquaredError,
           "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
           "mean_absolute_error": MeanAbsoluteError}


def get(spec) -> Metric:
    if isinstance(spec, Metric):
        return spec
    if spec not in METRICS:
        raise ValueError(f"unknown metric {spec!r}; valid names: {', '.join(METRICS)}")
    return METRICS[spec]()
