"""Weight initialisers.

Random numbers are not part of the Array API, so every initialiser draws from a
seeded host NumPy generator in float64; the model then moves the result with
``xp.asarray``. One seed therefore gives bit-identical weights on every backend.
Biases start at zero: the random weights already break the symmetry.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import resolve


class Initializer:
    """``init(rng, n_in, n_out) -> (n_in, n_out)`` float64 host array."""

    name = "initializer"

    def __call__(self, rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class HeNormal(Initializer):
    """W ~ randn * sqrt(2 / n_in): keeps the variance of relu layers steady."""

    name = "he_normal"

    def __call__(self, rng, n_in, n_out):
        return rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)


class GlorotUniform(Initializer):
    """W ~ U(-r, r), r = sqrt(6 / (n_in + n_out)) (Glorot and Bengio, 2010)."""

    name = "glorot_uniform"

    def __call__(self, rng, n_in, n_out):
        r = math.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-r, r, size=(n_in, n_out))


class Uniform(Initializer):
    """W ~ U(low, high); U(-1, 1) is the seeds' worked example."""

    name = "uniform"

    def __init__(self, low: float = -1.0, high: float = 1.0):
        if not low < high:
            raise ValueError(f"uniform init needs low < high, got low={low}, high={high}")
        if low == 0 and high == 0:  # pragma: no cover - caught above
            raise ValueError(_ZERO_MESSAGE)
        self.low, self.high = float(low), float(high)

    def __call__(self, rng, n_in, n_out):
        return rng.uniform(self.low, self.high, size=(n_in, n_out))

    def config(self):
        return {"name": self.name, "low": self.low, "high": self.high}


class Normal(Initializer):
    """W ~ N(0, scale^2)."""

    name = "normal"

    def __init__(self, scale: float = 0.01):
        if not scale > 0:
            raise ValueError(f"normal init needs scale > 0, got {scale}; " + _ZERO_MESSAGE)
        self.scale = float(scale)

    def __call__(self, rng, n_in, n_out):
        return rng.standard_normal((n_in, n_out)) * self.scale

    def config(self):
        return {"name": self.name, "scale": self.scale}


INITIALIZERS = {cls.name: cls for cls in (HeNormal, GlorotUniform, Uniform, Normal)}

_ZERO_MESSAGE = (
    "all-zero weights are refused: every unit of a layer would compute the same output "
    "and receive the same gradient, so the units stay identical forever (the symmetry "
    "problem). Use 'he_normal' (relu), 'glorot_uniform' (sigmoid, tanh) or 'uniform'"
)
_CONSTANT = dict.fromkeys(("zeros", "zero", "constant", "ones"), _ZERO_MESSAGE)


def get(spec, activation_name: str = "identity") -> Initializer:
    """An initialiser from a name, a config dict, an instance, or ``None``.

    ``None`` picks He normal for relu and leaky_relu, Glorot uniform otherwise.
    """
    if spec is None:
        return HeNormal() if activation_name in ("relu", "leaky_relu") else GlorotUniform()
    return resolve("init", spec, INITIALIZERS, Initializer, refused=_CONSTANT)
