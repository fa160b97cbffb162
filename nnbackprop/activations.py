"""Activation functions g and their derivatives.

Each activation maps Z (N, n) to A = g(Z) (N, n) and, walking back, turns
dJ/dA into the layer's error term delta = dJ/dZ. Derivatives use the cheap
forms from the seeds, written in terms of what the forward pass kept:

    sigmoid   sigma'(z) = a (1 - a)
    tanh      tanh'(z)  = 1 - a^2
    relu      relu'(z)  = 1[z > 0]
    softmax   delta_i   = a_i (dA_i - sum_j dA_j a_j)   (no Jacobian formed)

Every built-in derivative needs only the output a (relu: a > 0 exactly where
z > 0), so a layer may compute A in Z's own buffer (``forward_``) and keep
just A; and ``backward_`` may turn dJ/dA into delta in dJ/dA's buffer. Those
two in-place forms are for arrays the layer owns; the plain forms never
overwrite their inputs.
"""

from __future__ import annotations

from typing import Any

from . import _compat
from .registry import resolve


class Activation:
    """Base class: ``forward(z, xp) -> a`` and ``backward(dA, z, a, xp) -> delta``."""

    name = "activation"
    #: whether ``backward`` reads z; if not, layers keep only a = g(z) (z may be None)
    backward_uses_z = True
    #: whether ``backward`` reads a; if not, a is free once the next step has read it
    backward_uses_a = True

    def forward(self, z: Any, xp: Any) -> Any:
        raise NotImplementedError

    def backward(self, dA: Any, z: Any, a: Any, xp: Any) -> Any:
        raise NotImplementedError

    def forward_(self, z: Any, xp: Any) -> Any:
        """g(z), allowed to overwrite ``z`` (which the caller owns)."""
        return self.forward(z, xp)

    def backward_(self, dA: Any, z: Any, a: Any, xp: Any) -> Any:
        """delta, allowed to overwrite ``dA`` (which the caller owns)."""
        return self.backward(dA, z, a, xp)

    def backward_into_a(self, dA: Any, a: Any) -> Any:
        """delta written over ``a`` (which the caller owns and no longer needs), or
        ``None`` where this activation or namespace cannot do that."""
        return None

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

    def forward(self, z, xp):
        return z

    def backward(self, dA, z, a, xp):
        return dA


class Sigmoid(Activation):
    """sigma(z) = 1 / (1 + e^-z), computed from e^-|z| so it never overflows."""

    name = "sigmoid"
    backward_uses_z = False

    def forward(self, z, xp):
        e = xp.exp(-xp.abs(z))
        return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))

    def backward(self, dA, z, a, xp):
        return dA * a * (1 - a)


class Tanh(Activation):
    name = "tanh"
    backward_uses_z = False

    def forward(self, z, xp):
        return xp.tanh(z)

    def backward(self, dA, z, a, xp):
        return dA * (1 - a * a)


class ReLU(Activation):
    """relu(z) = max(z, 0); relu'(z) = 1[z > 0] = 1[a > 0]."""

    name = "relu"
    backward_uses_z = False

    def forward(self, z, xp):
        return xp.where(z < 0, xp.zeros_like(z), z)  # NaN stays NaN, as in max(z, 0)

    def backward(self, dA, z, a, xp):
        return xp.where(a > 0, dA, xp.zeros_like(dA))

    def forward_(self, z, xp):
        return _compat.relu_(z, xp)

    def backward_(self, dA, z, a, xp):
        return _compat.relu_backward_(dA, a, xp)

    def backward_into_a(self, dA, a):
        return _compat.relu_backward_into_a(dA, a)


class LeakyReLU(Activation):
    """g(z) = z for z > 0, slope * z otherwise."""

    name = "leaky_relu"
    backward_uses_z = False  # slope >= 0, so a > 0 exactly where z > 0

    def __init__(self, slope: float = 0.01):
        slope = float(slope)
        if not 0 <= slope < 1:
            raise ValueError(f"leaky_relu slope must be in [0, 1), got {slope}")
        self.slope = slope

    def forward(self, z, xp):
        return xp.where(z > 0, z, self.slope * z)

    def backward(self, dA, z, a, xp):
        return xp.where(a > 0, dA, self.slope * dA)

    def config(self):
        return {"name": self.name, "slope": self.slope}


class Softmax(Activation):
    """softmax over the units of each row, shifted by the row max for stability."""

    name = "softmax"
    backward_uses_z = False

    def forward(self, z, xp):
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def backward(self, dA, z, a, xp):
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
