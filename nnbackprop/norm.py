"""LayerNorm and BatchNorm: normalise, then scale and shift, with closed-form backward passes.

Both normalise X (N, n) over one axis, LayerNorm over each row's n features,
BatchNorm over the N rows of the batch (each feature on its own), with
learnable gamma, beta (n,):

    mu = mean(X),  var = mean((X - mu)^2)          (biased), over that axis
    rstd = 1 / sqrt(var + eps)
    Xhat = (X - mu) * rstd,   A = gamma * Xhat + beta          (N, n)

Backward from dJ/dA (N, n), the standard batched expressions (not a chain of
elementary steps): with G = dJ/dA * gamma and means over the same axis,

    dJ/dgamma = sum_rows(dJ/dA * Xhat),  dJ/dbeta = sum_rows(dJ/dA)           (n,)
    dJ/dX = rstd * (G - mean(G) - Xhat * mean(G * Xhat))                      (N, n)

For BatchNorm the means run over the rows, where gamma is a constant, so
mean_rows(G) = gamma dJ/dbeta / N and mean_rows(G * Xhat) = gamma dJ/dgamma / N:

    dJ/dX = gamma * rstd * (dJ/dA - dJ/dbeta / N - Xhat * dJ/dgamma / N)

BatchNorm at inference uses its running statistics instead of the batch's,
so mu and rstd are constants and dJ/dX = dJ/dA * gamma * rstd.

The arrays forward creates and dJ/dA are the model's own (see the Layer
protocol): the expressions update them in place (``a -= b``; a new array where
a namespace has immutable arrays).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .layers import Layer, Workspace, sum_rows


def _positive_int(what: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} n must be a positive integer, got {n!r}")
    return int(n)


def _real(what: str, name: str, v: Any, low: float, high: float, low_open: bool) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) \
        and math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        span = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high != math.inf else "")
        raise ValueError(f"{what} {name} must be a number {span}, got {v!r}")
    return float(v)


def normalise(xp: Any, X: Any, axis: int, eps: float) -> tuple[Any, Any, Any, Any]:
    """(Xhat, rstd, mu, var) of X over ``axis`` (1: each row, 0: each column); rstd,
    mu and the biased var keep that axis (length 1)."""
    mu = xp.mean(X, axis=axis, keepdims=True)
    Xc = X - mu  # a new array: Xhat, in place
    var = xp.mean(Xc * Xc, axis=axis, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    Xc *= rstd
    return Xc, rstd, mu, var


def normalise_backward(xp: Any, G: Any, Xhat: Any, rstd: Any, axis: int) -> Any:
    """dJ/dX = rstd * (G - mean(G) - Xhat * mean(G * Xhat)), means over ``axis``."""
    mGX = xp.mean(G * Xhat, axis=axis, keepdims=True)
    G -= xp.mean(G, axis=axis, keepdims=True)  # G is the caller's own
    G -= Xhat * mGX
    G *= rstd
    return G


class _Norm(Layer):
    """What LayerNorm and BatchNorm share: gamma (ones), beta (zeros), the affine part."""

    def _setup(self, n: int, eps: float) -> None:
        what = type(self).__name__
        self.n_in = self.n_out = _positive_int(what, n)
        self.eps = _real(what, "eps", eps, 0.0, math.inf, low_open=True)
        self.params = self.grads = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.n_in,), "beta": (self.n_in,)}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"gamma": np.ones(self.n_in), "beta": np.zeros(self.n_in)}

    def _affine(self, Xhat: Any, ctx: dict | None, rstd: Any, training: bool) -> Any:
        """A = gamma * Xhat + beta, keeping Xhat and rstd for backward."""
        if ctx is not None:
            ctx["Xhat"], ctx["rstd"], ctx["training"] = Xhat, rstd, training
        A = Xhat * self.params["gamma"]
        A += self.params["beta"]
        return A

    def _param_grads(self, dA: Any, Xhat: Any) -> tuple[Any, Any]:
        """dJ/dgamma = sum_rows(dA * Xhat), dJ/dbeta = sum_rows(dA), into their views."""
        g = self.grads
        g["gamma"] = sum_rows(dA * Xhat, self.xp, out=g["gamma"])
        g["beta"] = sum_rows(dA, self.xp, out=g["beta"])
        return g["gamma"], g["beta"]


class LayerNorm(_Norm):
    """``LayerNorm(n, eps=1e-5)``: each row of X (N, n) normalised over its n
    features, then ``gamma * Xhat + beta``; the same in training and inference."""

    def __init__(self, n: int, eps: float = 1e-5):
        self._setup(n, eps)

    def forward(self, X: Any, ctx: dict | None, ws: Workspace) -> Any:
        Xhat, rstd, _, _ = normalise(self.xp, X, 1, self.eps)
        return self._affine(Xhat, ctx, rstd, True)

    def backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> Any:
        self._param_grads(dA, ctx["Xhat"])
        if not input_grad:
            return None
        dA *= self.params["gamma"]  # G, over dA (the model's own)
        return normalise_backward(self.xp, dA, ctx["Xhat"], ctx["rstd"], 1)

    def config(self) -> dict:
        return {"type": "LayerNorm", "n": self.n_in, "eps": self.eps}

    def __repr__(self) -> str:
        return f"LayerNorm({self.n_in}, eps={self.eps})"


class BatchNorm(_Norm):
    """``BatchNorm(n, eps=1e-5, momentum=0.1)``: each of n features normalised over
    the batch, then ``gamma * Xhat + beta``.

    Training: the batch's mean and biased variance normalise, and the running
    estimates (buffers, not parameters) follow, as PyTorch's BatchNorm1d does,

        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * N / (N - 1)

    Inference: ``Xhat = (X - running_mean) / sqrt(running_var + eps)``. A training
    batch needs at least 2 rows.
    """

    min_rows = 2

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1):
        self._setup(n, eps)
        self.momentum = _real("BatchNorm", "momentum", momentum, 0.0, 1.0, low_open=False)

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (self.n_in,), "running_var": (self.n_in,)}

    def init_buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": np.zeros(self.n_in), "running_var": np.ones(self.n_in)}

    def forward(self, X: Any, ctx: dict | None, ws: Workspace) -> Any:
        xp, buf = self.xp, self.buffers
        if not ws.training:
            rstd = 1.0 / xp.sqrt(buf["running_var"] + self.eps)
            return self._affine((X - buf["running_mean"]) * rstd, ctx, rstd, False)
        n_rows = X.shape[0]
        Xhat, rstd, mu, var = normalise(xp, X, 0, self.eps)
        mu, var = xp.reshape(mu, (self.n_in,)), xp.reshape(var, (self.n_in,))
        m = self.momentum
        buf["running_mean"] = (1 - m) * buf["running_mean"] + m * mu
        buf["running_var"] = (1 - m) * buf["running_var"] + (m * n_rows / (n_rows - 1)) * var
        return self._affine(Xhat, ctx, rstd, True)

    def backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> Any:
        Xhat, rstd = ctx["Xhat"], ctx["rstd"]
        dgamma, dbeta = self._param_grads(dA, Xhat)
        if not input_grad:
            return None
        if ctx["training"]:  # dA - dbeta / N - Xhat * dgamma / N, over dA (the model's own)
            n_rows = dA.shape[0]
            dA -= Xhat * (dgamma / n_rows)
            dA -= dbeta / n_rows
        dA *= self.params["gamma"] * rstd
        return dA

    def config(self) -> dict:
        return {"type": "BatchNorm", "n": self.n_in, "eps": self.eps, "momentum": self.momentum}

    def __repr__(self) -> str:
        return f"BatchNorm({self.n_in}, eps={self.eps}, momentum={self.momentum})"
