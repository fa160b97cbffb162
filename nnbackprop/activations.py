"""Activation functions g and their derivatives.

Each activation maps Z (N, n) to A = g(Z) (N, n) and, walking back, turns
dJ/dA into the layer's error term delta = dJ/dZ. Derivatives use the cheap
forms from the seeds, written in terms of what the forward pass kept:

    sigmoid   sigma'(z) = a (1 - a)
    tanh      tanh'(z)  = 1 - a^2
    relu      relu'(z)  = 1[z > 0]
    softmax   delta_i   = a_i (dA_i - sum_j dA_j a_j)   (no Jacobian formed)

Every built-in derivative needs only the output a (relu: a > 0 exactly where
z > 0), so a layer may compute A in Z's own buffer and keep just A. Both
passes take ``out=``: a buffer the caller owns and no longer needs (z for the
forward; dA or a for the backward) that the result may be written into. Where
the array's library can write it (:func:`nnbackprop._compat.writer`) ReLU does
so, one pass over memory and no new array; everywhere else, and for the other
activations, ``out`` is ignored and the generic Array API expression returns a
new array. Both forms are tested equal on every backend.
"""

from __future__ import annotations

from typing import Any

from . import _compat
from .registry import resolve


class Activation:
    """Base class: ``forward(z, xp, out=None) -> a`` and
    ``backward(dA, z, a, xp, out=None) -> delta = dJ/dA * g'(z)``, both (N, n)."""

    name = "activation"
    #: whether ``backward`` reads z; if not, layers keep only a = g(z) (z may be None)
    backward_uses_z = True
    #: whether ``backward`` reads a; if not, a is free once the next layer has read it
    backward_uses_a = True

    def forward(self, z: Any, xp: Any, out: Any = None) -> Any:
        """g(z); may be written into ``out`` (z itself, which the caller owns)."""
        raise NotImplementedError

    def backward(self, dA: Any, z: Any, a: Any, xp: Any, out: Any = None) -> Any:
        """delta = dA * g'(z); may be written into ``out`` (dA or a, which the
        caller owns and no longer needs)."""
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-friendly description, enough for :func:`get` to rebuild it."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config().items())))


class Identity(Activation):
    """g(z) = z, g'(z) = 1."""

    name = "identity"
    backward_uses_z = backward_uses_a = False

    def forward(self, z, xp, out=None):
        return z

    def backward(self, dA, z, a, xp, out=None):
        return dA


class Sigmoid(Activation):
    """sigma(z) = 1 / (1 + e^-z), computed from e^-|z| so it never overflows."""

    name = "sigmoid"
    backward_uses_z = False

    def forward(self, z, xp, out=None):
        e = xp.exp(-xp.abs(z))
        return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))

    def backward(self, dA, z, a, xp, out=None):
        return dA * a * (1 - a)


class Tanh(Activation):
    name = "tanh"
    backward_uses_z = False

    def forward(self, z, xp, out=None):
        return xp.tanh(z)

    def backward(self, dA, z, a, xp, out=None):
        return dA * (1 - a * a)


class ReLU(Activation):
    """relu(z) = max(z, 0); relu'(z) = 1[z > 0] = 1[a > 0]."""

    name = "relu"
    backward_uses_z = False

    def forward(self, z, xp, out=None):
        m = _compat.writer(out)
        if m is None:
            return xp.where(z < 0, xp.zeros_like(z), z)  # NaN stays NaN, as in max(z, 0)
        clamp_min = _compat.module_function(m, "clamp_min")  # a maximum that takes a Python scalar
        if clamp_min is not None:
            return clamp_min(z, 0, out=out)
        if _compat.on_host(z) and z.size <= _ZEROS_MAX:  # NumPy's maximum against a scalar misses its
            return m.maximum(z, _zeros_like(m, z), out=out)  # vectorised loop: 4x slower on small batches
        return m.maximum(z, 0, out=out)

    def backward(self, dA, z, a, xp, out=None):
        m = _compat.writer(out)
        if m is None:
            return xp.where(a > 0, dA, xp.zeros_like(dA))
        if out is dA:
            return m.multiply(dA, a > 0, out=out)
        m.greater(a, 0, out=out)  # the mask 1[a > 0] in out's buffer (a's, usually): no temporary
        return m.multiply(out, dA, out=out)


_ZEROS: dict = {}  # (shape, dtype) -> a read-only host array of zeros, the operand of relu's maximum
#: the largest z that gets a kept zeros operand (64 Ki elements, 512 KiB in float64; at most 8 kept, 4 MiB):
#: where the step is many small calls it pays; a big layer's step is its GEMMs, and holds no hidden copy
_ZEROS_MAX = 64 * 1024


def _zeros_like(m: Any, z: Any) -> Any:
    """Zeros of z's shape and dtype from z's writer ``m`` (host arrays), made once per shape and kept:
    ``maximum(z, zeros)`` runs NumPy's vectorised loop, ``maximum(z, 0)`` does not;
    the values are the same."""
    key = (z.shape, z.dtype)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 8:  # a few batch shapes per layer; never a growing cache
            _ZEROS.clear()
        zeros = _ZEROS[key] = m.zeros(z.shape, dtype=z.dtype)
        zeros.flags.writeable = False
    return zeros


class LeakyReLU(Activation):
    """g(z) = z for z > 0, slope * z otherwise."""

    name = "leaky_relu"
    backward_uses_z = False  # slope >= 0, so a > 0 exactly where z > 0

    def __init__(self, slope: float = 0.01):
        slope = float(slope)
        if not 0 <= slope < 1:
            raise ValueError(f"leaky_relu slope must be in [0, 1), got {slope}")
        self.slope = slope

    def forward(self, z, xp, out=None):
        return xp.where(z > 0, z, self.slope * z)

    def backward(self, dA, z, a, xp, out=None):
        return xp.where(a > 0, dA, self.slope * dA)

    def config(self):
        return {"name": self.name, "slope": self.slope}


class Softmax(Activation):
    """softmax over the units of each row, shifted by the row max for stability."""

    name = "softmax"
    backward_uses_z = False

    def forward(self, z, xp, out=None):
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def backward(self, dA, z, a, xp, out=None):
        return a * (dA - xp.sum(dA * a, axis=1, keepdims=True))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}

_NO_DERIVATIVE = {
    name: "it has no useful derivative (it is 0 almost everywhere), so backpropagation cannot "
          "train through it; use 'sigmoid' or 'tanh' for a smooth step"
    for name in ("step", "heaviside", "sign", "threshold")
}


def get(spec: str | dict | Activation | None) -> Activation:
    """An :class:`Activation` from its name, its ``config()`` dict, or itself; None is identity."""
    if spec is None:
        return Identity()
    return resolve("activation", spec, ACTIVATIONS, Activation, refused=_NO_DERIVATIVE)
