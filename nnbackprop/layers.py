"""The fully connected layer.

Forward, for a batch X of N rows (N, n_in):

    Z = X @ W + b          W (n_in, n_out), b (n_out,)
    A = g(Z)               (N, n_out)

Backward, batched over the whole batch (no per-example loop, no
(N, n_in, n_out) temporaries), from dJ/dA (N, n_out):

    delta      = dJ/dA * g'(Z)        (N, n_out)
    dW         = X^T @ delta          (n_in, n_out)
    db         = sum_rows delta       (n_out,)
    dJ/dX      = delta @ W^T          (N, n_in)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _compat
from . import activations as _activations
from . import init as _init


class Dense:
    """``Dense(n_in, n_out, activation="identity", init=None)``.

    ``init=None`` picks He normal for relu/leaky_relu and Glorot uniform
    otherwise. ``W`` and ``b`` exist once the layer is part of a
    :class:`~nnbackprop.Sequential`; they may be replaced by arrays of the same
    shape, namespace, device and dtype (hand-set or pretrained weights).
    """

    def __init__(self, n_in: int, n_out: int, activation: Any = "identity", init: Any = None):
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Dense {name} must be a positive integer, got {v!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = _activations.get(activation)
        self.init = _init.get(init, self.activation.name)
        self._W = self._b = None
        self.dW = self.db = None
        self._cache = None  # (X, Z or None, A) of the last forward, for backward
        self._spent = False  # whether a training step consumed that record
        self._z_buf = None  # the training step's Z buffer (see train_forward)
        self._grad_out = None  # (dW, db) buffers the training step writes, from the model's flat store

    # parameters --------------------------------------------------------------
    def build(self, xp: Any, dtype: Any, device: Any, rng: np.random.Generator) -> None:
        """Draw W from the initialiser (host float64) and move it to ``xp``."""
        self._xp, self._dtype, self._device = xp, dtype, device
        self._W = _compat.from_host(xp, self.init(rng, self.n_in, self.n_out), dtype, device)
        self._b = xp.zeros((self.n_out,), dtype=dtype, device=device)
        self.dW = self.db = None
        self._cache = None
        self._spent = False
        self._z_buf = None
        self._grad_out = None

    @property
    def W(self) -> Any:
        """Weights, shape (n_in, n_out)."""
        return self._W

    @W.setter
    def W(self, value: Any) -> None:
        """Takes a copy: training may update weights in place, never the caller's array."""
        self._W = self._copied_in(self._W, self._checked_param("W", value, (self.n_in, self.n_out)))

    @property
    def b(self) -> Any:
        """Biases, shape (n_out,)."""
        return self._b

    @b.setter
    def b(self, value: Any) -> None:
        self._b = self._copied_in(self._b, self._checked_param("b", value, (self.n_out,)))

    def _copied_in(self, current: Any, value: Any) -> Any:
        """``value`` copied into ``current``'s buffer where it can be written (so a
        model's flat store keeps its views), else a new copy."""
        if _compat.is_writeable(current):
            current[...] = value
            return current
        return self._xp.asarray(value, copy=True)

    def _checked_param(self, name, value, shape):
        if self._W is None:
            raise RuntimeError(f"this Dense layer is not built yet: put it in a Sequential before setting {name}")
        _compat.check_array(value, name=name, xp=self._xp, device=self._device)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
        if value.dtype != self._dtype:
            raise TypeError(
                f"{name} must have dtype {_compat.dtype_name(self._xp, self._dtype)}, "
                f"got {_compat.dtype_name(self._xp, value.dtype)}"
            )
        return value

    # passes -----------------------------------------------------------------
    def forward(self, X: Any) -> Any:
        """A = g(X @ W + b), (N, n_out); keeps X and A (and Z if g' needs it) for backward.

        Z is a fresh product, so the bias is added and g applied in its own
        buffer where the namespace allows writes (one pass each, no new array).
        """
        return self._forward_from(X, X @ self._W)

    def train_forward(self, X: Any) -> Any:
        """:meth:`forward` inside the training step, whose outputs no caller keeps:
        Z goes into the previous training step's Z buffer where it can, so the
        array returned is overwritten by the next training step."""
        self._z_buf = _compat.matmul_into(X, self._W, self._z_buf)
        return self._forward_from(X, self._z_buf)

    def _forward_from(self, X: Any, Z: Any) -> Any:
        """A = g(Z + b) from the product Z = X @ W, which this layer owns."""
        xp = self._xp
        act = self.activation
        Z += self._b  # in place on NumPy, PyTorch, CuPy, array-api-strict; rebinds on JAX
        if act.backward_uses_z:
            A = act.forward(Z, xp)
            self._cache = (X, Z, A)
        else:
            A = act.forward_(Z, xp)
            self._cache = (X, None, A)
        self._spent = False
        return A

    def infer(self, X: Any) -> Any:
        """g(X @ W + b) without keeping anything for backward."""
        return self.activation.forward(X @ self._W + self._b, self._xp)

    def backward(self, dA: Any, input_grad: bool = True) -> Any:
        """Fill ``dW`` and ``db`` from dJ/dA (N, n_out); return dJ/dX (N, n_in).

        ``dA`` is never written. With ``input_grad=False`` (the first layer in
        training) dJ/dX is skipped and ``None`` returned.
        """
        X, Z, A = self._kept_forward()
        return self._grads(self.activation.backward(dA, Z, A, self._xp), X, input_grad)

    def _backward_owned(self, dA: Any, input_grad: bool) -> Any:
        """:meth:`backward` for a dA that the model made and nobody else holds:
        delta may be computed in dA's buffer."""
        X, Z, A = self._kept_forward()
        return self._grads(self.activation.backward_(dA, Z, A, self._xp), X, input_grad)

    def _kept_forward(self) -> tuple:
        """(X, Z, A) of the last forward; a clear error where there is none."""
        if self._cache is None:
            if self._spent:
                raise RuntimeError("backward needs the last forward pass, but a training step "
                                   "consumed it; run forward(X) again")
            raise RuntimeError("backward called before forward: run forward(X) first")
        return self._cache

    def _grads(self, delta: Any, X: Any, input_grad: bool) -> Any:
        """dW = X^T delta, db = sum_rows delta; dJ/dX = delta W^T if ``input_grad``."""
        self.dW = X.T @ delta
        self.db = self._xp.sum(delta, axis=0)
        return delta @ self._W.T if input_grad else None

    def train_backward(self, dA: Any, input_grad: bool, consume: bool, workspace: dict) -> Any:
        """``backward`` inside the training step, where the model owns every array.

        Uses less memory and allocates less: dW goes into last step's dW, and
        dJ/dX into a buffer of ``workspace`` (the step's reusable buffers, by
        shape). With ``consume`` (a hidden layer, whose output nobody reads
        after this) delta is written over A, which frees dA's buffer for
        reuse; the forward record is then spent, so a second backward raises.
        """
        X, Z, A = self._kept_forward()
        xp = self._xp
        act = self.activation
        delta = act.backward_into_a(dA, A) if consume else None
        if delta is None:
            delta = act.backward_(dA, Z, A, xp)
        if consume:
            self._cache, self._spent = None, True
        dW_out, db_out = self._grad_out or (self.dW, self.db)
        self.dW = _compat.matmul_into(X.T, delta, dW_out)
        self.db = _compat.sum_rows(delta, xp, out=db_out)
        if not input_grad:
            return None
        key = (delta.shape[0], self.n_in)
        buf = workspace.get(key)
        dX = _compat.matmul_into(delta, self._W.T, None if buf is delta else buf)
        workspace[key] = dX
        return dX

    def config(self) -> dict:
        return {
            "type": "Dense", "n_in": self.n_in, "n_out": self.n_out,
            "activation": self.activation.config(), "init": self.init.config(),
        }

    def __repr__(self) -> str:
        act = self.activation.name
        return f"Dense({self.n_in}, {self.n_out}, activation={act!r})"
