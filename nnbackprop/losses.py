"""Cost functions J, each "sum over output units, mean over samples".

A loss is an object: ``loss(pred, target)`` gives J as a 0-d array and
``loss.grad(pred, target)`` gives dJ/dpred, shaped like ``pred`` (N, C).
Both check their inputs first; the training loop checks its data once and then
calls the unchecked ``value_and_grad``, which may write dJ/dpred into ``out=``
(the predictions' own buffer, which the model owns and no longer needs). Target checks come in two parts:
``check_target_kind`` (shape, dtype: free, run on every training step) and
``check_target_values`` (labels in range, ...: a device read, run once per data set).

Every loss takes ``l2=lambda``: the penalty lambda/2 sum ||W||^2 over the
weights (biases excluded), which the model adds to J and lambda W to each dW
whenever it evaluates the loss on itself.

Per-row weights (scikit-learn's definition): with weights w_n >= 0 the batch loss is

    J = sum_n w_n J_n / sum_n w_n,   dJ/dyhat_n = (w_n / sum_m w_m) dJ_n/dyhat_n

where J_n is row n's loss (summed over its output units). ``loss(pred, target,
weight=w)`` takes raw weights; the training step passes the normalised row scales
s_n = w_n / sum w (``row_scale=``) to :meth:`Loss.value_and_grad`, which then uses
:meth:`Loss.rows` (J_n and dJ_n/dyhat_n, both unscaled). All-ones weights are the
unweighted path itself (bit-identical).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _compat
from .registry import resolve
from .weights import row_scales


class Loss:
    name = "loss"
    #: value_and_grad returns a gradient array no one else holds (the model may overwrite
    #: it); for a loss that says False the model copies the gradient first
    fresh_grad = False
    #: targets are classes (class_weight applies)
    classifies = False

    def __init__(self, *, l2: float = 0.0):
        l2 = float(l2)
        if not l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.l2 = l2

    # public, checked -------------------------------------------------------
    def __call__(self, pred: Any, target: Any, weight: Any = None) -> Any:
        """J (0-d array) of predictions ``pred`` (N, C) against ``target``;
        ``weight`` (N,) >= 0: the weighted mean over rows (see the module docstring)."""
        xp = self._check(pred, target)
        s = row_scales(weight, pred, xp)
        if s is None:
            return self.value(pred, target, xp)
        return self.value_and_grad(pred, target, xp, row_scale=s)[0]

    def grad(self, pred: Any, target: Any, weight: Any = None) -> Any:
        """dJ/dpred, shape (N, C)."""
        xp = self._check(pred, target)
        s = row_scales(weight, pred, xp)
        if s is None:  # a loss of one's own may not take row_scale
            return self.value_and_grad(pred, target, xp)[1]
        return self.value_and_grad(pred, target, xp, row_scale=s)[1]

    # unchecked, for the training loop ---------------------------------------
    def value(self, pred, target, xp):
        raise NotImplementedError

    def rows(self, pred, target, xp):
        """(J_n (N,), dJ_n/dpred_n (N, C)): each row's own loss and its gradient,
        unscaled (no 1/N). What weighted losses, per-example norms and DP-SGD use."""
        raise NotImplementedError(f"{type(self).__name__} defines no rows(): it cannot take "
                                  f"per-row weights, per-example clipping or DP-SGD")

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        """(J, dJ/dpred) without input checks; dJ/dpred may be written into ``out``
        (``pred`` itself, when the caller owns it and no longer needs it).

        ``row_scale`` s (N,): J = sum_n s_n J_n, dJ/dpred_n = s_n dJ_n/dpred_n
        (s = w / sum w: the weighted mean; s = 1: per-example gradients);
        None: the plain mean over rows."""
        if row_scale is None:
            raise NotImplementedError
        return self.scaled(pred, target, xp, row_scale)

    def scaled(self, pred, target, xp, s):
        """(sum_n s_n J_n, s_n dJ_n/dpred_n) from :meth:`rows`."""
        J_rows, G = self.rows(pred, target, xp)
        return xp.sum(s * J_rows), G * s[:, None]

    # checks ----------------------------------------------------------------
    def check_target(self, pred_shape: tuple, target: Any, xp: Any, dtype: Any) -> None:
        """Raise if ``target`` cannot be compared with outputs of ``pred_shape``:
        :meth:`check_target_kind`, then :meth:`check_target_values`.

        Reads a summary of ``target`` back to the host (a sync): call it once
        per data set, not per step.
        """
        self.check_target_kind(pred_shape, target, xp, dtype)
        self.check_target_values(pred_shape, target, xp)

    def check_target_kind(self, pred_shape: tuple, target: Any, xp: Any, dtype: Any) -> None:
        """Raise if ``target``'s shape or dtype does not suit outputs of ``pred_shape``
        in ``dtype``. Reads no values: free, fit for every step."""
        check_float_target(self.name, pred_shape, target, xp, dtype)

    def check_target_values(self, pred_shape: tuple, target: Any, xp: Any) -> None:
        """Raise if ``target``'s values are outside what this loss takes (after
        :meth:`check_target_kind`). Reads back to the host: once per data set."""

    def check_model(self, model: Any) -> None:
        """Raise if this loss cannot sit on top of ``model``'s last layer."""

    def _check(self, pred, target):
        xp = _compat.namespace_of(pred)
        _compat.check_array(target, name="target", xp=xp, device=_compat.device_of(pred))
        if pred.ndim != 2:
            raise ValueError(f"pred must be 2-D (N, C), got shape {tuple(pred.shape)}")
        self.check_target(tuple(pred.shape), target, xp, pred.dtype)
        return xp

    def config(self) -> dict:
        return {"name": self.name, "l2": self.l2}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l2={self.l2})" if self.l2 else f"{type(self).__name__}()"


class MSE(Loss):
    """J = 1/(2N) sum_n ||yhat_n - y_n||^2; dJ/dyhat = (yhat - y) / N."""

    name = "mse"
    fresh_grad = True

    def value(self, pred, target, xp):
        r = pred - target
        return xp.sum(r * r) / (2 * pred.shape[0])

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        if row_scale is not None:
            return self.scaled(pred, target, xp, row_scale)
        r = pred - target
        n = pred.shape[0]
        return xp.sum(r * r) / (2 * n), r / n

    def rows(self, pred, target, xp):
        r = pred - target
        return xp.sum(r * r, axis=1) / 2, r


class BinaryCrossEntropy(Loss):
    """On logits z with targets t in [0, 1]:

    J = 1/N sum_n sum_j [log(1 + e^z) - t z]   (logaddexp: finite for any z)
    dJ/dz = (sigma(z) - t) / N
    """

    name = "binary_cross_entropy"
    fresh_grad = True
    classifies = True

    def value(self, pred, target, xp):
        return xp.sum(xp.logaddexp(xp.zeros_like(pred), pred) - target * pred) / pred.shape[0]

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        if row_scale is not None:
            return self.scaled(pred, target, xp, row_scale)
        n = pred.shape[0]
        return self.value(pred, target, xp), (_sigmoid(pred, xp) - target) / n

    def rows(self, pred, target, xp):
        J = xp.sum(xp.logaddexp(xp.zeros_like(pred), pred) - target * pred, axis=1)
        return J, _sigmoid(pred, xp) - target

    def check_target_values(self, pred_shape, target, xp):
        if bool(xp.any((target < 0) | (target > 1))):
            raise ValueError("binary_cross_entropy targets must lie in [0, 1]")

    def check_model(self, model):
        _refuse_last_activation(model, "sigmoid", self.name, "BinaryCrossEntropy takes logits")


class SoftmaxCrossEntropy(Loss):
    """On logits z (N, C) with integer labels (N,) or probabilities t (N, C):

    J = -1/N sum_n sum_c t_nc log softmax(z_n)_c
    dJ/dz = (softmax(z) - t) / N        (no Jacobian is formed)
    """

    name = "softmax_cross_entropy"
    fresh_grad = True
    classifies = True

    def value(self, pred, target, xp):
        return self.value_and_grad(pred, target, xp)[0]

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        if target.ndim == 1:
            fast = softmax_xent_labels(pred, target, out, row_scale)  # host labels: no one-hot, 2 passes fewer
            if fast is not None:
                return fast
        if row_scale is not None:
            return self.scaled(pred, target, xp, row_scale)
        n, c = pred.shape
        t = target if target.ndim == 2 else one_hot(target, c, xp, pred.dtype)
        shifted = pred - xp.max(pred, axis=1, keepdims=True)
        e = xp.exp(shifted)
        s = xp.sum(e, axis=1, keepdims=True)
        log_p = shifted - xp.log(s)
        return -xp.sum(t * log_p) / n, (e / s - t) / n

    def rows(self, pred, target, xp):
        t = target if target.ndim == 2 else one_hot(target, pred.shape[1], xp, pred.dtype)
        shifted = pred - xp.max(pred, axis=1, keepdims=True)
        e = xp.exp(shifted)
        s = xp.sum(e, axis=1, keepdims=True)
        return -xp.sum(t * (shifted - xp.log(s)), axis=1), e / s - t

    def check_target_kind(self, pred_shape, target, xp, dtype):
        if target.ndim == 2:
            check_float_target(self.name, pred_shape, target, xp, dtype)
        else:
            check_label_kind(self.name, pred_shape, target, xp)

    def check_target_values(self, pred_shape, target, xp):
        if target.ndim == 2:
            if bool(xp.any(target < 0)):
                raise ValueError("softmax_cross_entropy probability targets must be >= 0")
        else:
            check_label_range(self.name, pred_shape[1], target, xp)

    def check_model(self, model):
        _refuse_last_activation(
            model, "softmax", self.name,
            "SoftmaxCrossEntropy applies softmax itself (a double softmax); "
            "give the last layer activation='identity'",
        )


class Huber(Loss):
    """``Huber(delta=1.0)``: with r = yhat - y, per unit

        rho(r) = r^2 / 2                     where |r| < delta
                 delta (|r| - delta / 2)     elsewhere
        J = 1/N sum_n sum_j rho(r_nj),  dJ/dyhat = clip(r, -delta, delta) / N

    (PyTorch's ``huber_loss``: equal to it with ``reduction="sum"`` divided by N,
    and to ``reduction="mean"`` for one output unit.)
    """

    name = "huber"
    fresh_grad = True

    def __init__(self, delta: float = 1.0, *, l2: float = 0.0):
        super().__init__(l2=l2)
        delta = float(delta)
        if not (delta > 0 and math.isfinite(delta)):
            raise ValueError(f"huber delta must be a finite number > 0, got {delta}")
        self.delta = delta

    def value(self, pred, target, xp):
        return self.value_and_grad(pred, target, xp)[0]

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        return _mean_or_scaled(self, pred, target, xp, row_scale)

    def rows(self, pred, target, xp):
        d = self.delta
        r = pred - target
        a = xp.abs(r)
        rho = xp.where(a < d, 0.5 * r * r, d * (a - 0.5 * d))
        return xp.sum(rho, axis=1), xp.clip(r, -d, d)

    def config(self):
        return {**super().config(), "delta": self.delta}

    def __repr__(self):
        return f"Huber(delta={self.delta}" + (f", l2={self.l2})" if self.l2 else ")")


class L1(Loss):
    """Mean absolute error: J = 1/N sum_n sum_j |yhat_nj - y_nj|,
    dJ/dyhat = sign(yhat - y) / N (0 where they are equal: PyTorch's ``l1_loss``,
    equal to it with ``reduction="sum"`` divided by N)."""

    name = "l1"
    fresh_grad = True

    def value(self, pred, target, xp):
        return xp.sum(xp.abs(pred - target)) / pred.shape[0]

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        if row_scale is not None:
            return self.scaled(pred, target, xp, row_scale)
        return self.value(pred, target, xp), xp.sign(pred - target) / pred.shape[0]

    def rows(self, pred, target, xp):
        r = pred - target
        return xp.sum(xp.abs(r), axis=1), xp.sign(r)


class Pinball(Loss):
    """``Pinball(quantile=0.5)``: quantile regression. With r = y - yhat and q the quantile,

        rho_q(r) = max(q r, (q - 1) r),   J = 1/N sum_n sum_j rho_q(r_nj)
        dJ/dyhat = (1[yhat > y] - q) / N

    The minimiser of E rho_q(y - yhat) is the q-quantile of y, so a model trained
    with it predicts that quantile (q = 0.5: half the L1 loss, the median).
    """

    name = "pinball"
    fresh_grad = True

    def __init__(self, quantile: float = 0.5, *, l2: float = 0.0):
        super().__init__(l2=l2)
        q = float(quantile)
        if not 0 < q < 1:
            raise ValueError(f"pinball quantile must lie in (0, 1), got {quantile}")
        self.quantile = q

    def value(self, pred, target, xp):
        return self.value_and_grad(pred, target, xp)[0]

    def value_and_grad(self, pred, target, xp, out=None, row_scale=None):
        return _mean_or_scaled(self, pred, target, xp, row_scale)

    def rows(self, pred, target, xp):
        q = self.quantile
        r = target - pred
        rho = xp.maximum(q * r, (q - 1) * r)
        return xp.sum(rho, axis=1), xp.astype(pred > target, pred.dtype) - q

    def config(self):
        return {**super().config(), "quantile": self.quantile}

    def __repr__(self):
        return f"Pinball(quantile={self.quantile}" + (f", l2={self.l2})" if self.l2 else ")")


def _mean_or_scaled(loss, pred, target, xp, row_scale):
    """(J, dJ/dpred) from ``loss.rows``: the mean over rows, or scaled by ``row_scale``."""
    if row_scale is not None:
        return loss.scaled(pred, target, xp, row_scale)
    J_rows, G = loss.rows(pred, target, xp)
    n = pred.shape[0]
    return xp.sum(J_rows) / n, G / n


def _sigmoid(z, xp):
    """sigma(z), stable for any z."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _label_out_of_range(labels, n_classes: int) -> bool:
    """Whether any label is outside [0, n_classes): one reduction (a negative signed
    label read as unsigned is larger than any class index)."""
    unsigned = labels.view(labels.dtype.str.replace("i", "u")) if labels.dtype.kind == "i" else labels
    return bool(unsigned.max() >= n_classes)


def softmax_xent_labels(z: Any, labels: Any, out: Any = None, row_scale: Any = None) -> tuple[Any, Any] | None:
    """(J, dJ/dz) of mean softmax cross-entropy on logits z (N, C), labels (N,) int,
    for arrays in host memory: the fast form of :meth:`SoftmaxCrossEntropy.value_and_grad`.

    It gathers and scatters with integer index arrays, which the standard lacks:
    J = mean(log sum_c e^(z - max) - (z - max)[label]), dJ/dz = (softmax(z) - onehot) / N,
    in one new (N, C) array with ``z`` untouched, or in z's own buffer with
    ``out=z`` where z may be written. ``None`` for arrays off the host (the label
    range check below would be a device read) and for labels outside [0, C)
    (which the training step does not check; fit does): the caller then uses the
    generic one-hot form, where such a label gives a zero row, as on every backend.
    """
    if not (_compat.INPLACE and _compat.on_host(z) and _compat.on_host(labels)):
        return None
    if row_scale is not None and not _compat.on_host(row_scale):
        return None
    n = z.shape[0]
    if n == 0 or _label_out_of_range(labels, z.shape[1]):  # host memory: no device read
        return None
    rows = np.arange(n)
    out = out if out is z and _compat.writer(z) is not None else None
    g = np.subtract(z, _row_max(z), out=out)
    picked = g[rows, labels]
    np.exp(g, out=g)
    s = g.sum(axis=1, keepdims=True)
    if row_scale is not None:     # sum_n s_n J_n and s_n (softmax(z_n) - onehot_n): the same passes
        J = np.dot(np.log(s[:, 0]) - picked, row_scale)
        g /= s
        g[rows, labels] -= 1
        g *= row_scale[:, None]
        return np.asarray(J, dtype=z.dtype), g
    J = (np.log(s).sum(dtype=z.dtype) - picked.sum(dtype=z.dtype)) / z.dtype.type(n)
    g /= s                        # softmax(z)
    g[rows, labels] -= 1          # - onehot
    g *= z.dtype.type(1 / n)      # / N
    return np.asarray(J, dtype=z.dtype), g


_FEW_CLASSES = 32  # up to this many columns a row max is faster over a transposed copy


def _row_max(z: Any) -> Any:
    """max over each row of a host array z (N, C), as (N, 1). For few columns NumPy's
    row reduction runs a short loop per row (9 us for 200 x 10): a transposed copy
    reduced down its columns is vectorised across rows (3 us). A max is exact, so
    the numbers are the same."""
    if z.shape[1] <= _FEW_CLASSES:
        return np.ascontiguousarray(z.T).max(axis=0)[:, None]
    return z.max(axis=1, keepdims=True)


def one_hot(labels: Any, n_classes: int, xp: Any, dtype: Any) -> Any:
    """(N,) integer labels -> (N, n_classes) rows of 0 and 1."""
    classes = xp.arange(n_classes, dtype=labels.dtype, device=_compat.device_of(labels))
    return xp.astype(labels[:, None] == classes[None, :], dtype)


def check_labels(loss_name: str, pred_shape: tuple, labels: Any, xp: Any) -> None:
    """Integer class labels (N,) in [0, C)."""
    check_label_kind(loss_name, pred_shape, labels, xp)
    check_label_range(loss_name, pred_shape[1], labels, xp)


def check_label_kind(loss_name: str, pred_shape: tuple, labels: Any, xp: Any) -> None:
    """Integer class labels of shape (N,); no values read."""
    n, c = pred_shape
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(
            f"{loss_name}: 1-D targets are class labels and must be integers, got "
            f"{_compat.dtype_name(xp, labels.dtype)}; pass one-hot (N, {c}) floats otherwise"
        )
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{loss_name}: labels must have shape ({n},) to match the output ({n}, {c}), "
            f"got {tuple(labels.shape)}"
        )


def check_label_range(loss_name: str, c: int, labels: Any, xp: Any) -> None:
    """Labels (N,) in [0, C); reads their min and max back to the host."""
    if labels.shape[0] == 0:
        return
    lo, hi = int(xp.min(labels)), int(xp.max(labels))
    if lo < 0 or hi >= c:
        raise ValueError(
            f"{loss_name}: class labels must lie in [0, {c - 1}] for {c} output units, "
            f"got labels from {lo} to {hi}"
        )


def check_float_target(loss_name, pred_shape, target, xp, dtype):
    """Float targets shaped like the outputs (N, C) and in their dtype; no values read."""
    if tuple(target.shape) != tuple(pred_shape):
        raise ValueError(
            f"{loss_name}: target shape {tuple(target.shape)} does not match the output "
            f"shape {tuple(pred_shape)}"
        )
    if target.dtype != dtype:
        raise TypeError(
            f"{loss_name}: target dtype {_compat.dtype_name(xp, target.dtype)} does not match "
            f"the model's {_compat.dtype_name(xp, dtype)}; cast it with xp.astype"
        )


def _refuse_last_activation(model, act_name, loss_name, why):
    last = model.layers[-1]
    if getattr(getattr(last, "activation", None), "name", None) == act_name:  # a layer may have none
        raise ValueError(f"{loss_name} on a last layer with activation={act_name!r}: {why}")


LOSSES = {cls.name: cls for cls in (MSE, BinaryCrossEntropy, SoftmaxCrossEntropy, Huber, L1, Pinball)}


def get(spec) -> Loss:
    """A loss from its name (``"mse"``, ``"binary_cross_entropy"``,
    ``"softmax_cross_entropy"``, ``"huber"``, ``"l1"``, ``"pinball"``), a config dict
    (``{"name": "pinball", "quantile": 0.9}``), or an instance."""
    return resolve("loss", spec, LOSSES, Loss)
