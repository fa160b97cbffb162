"""One builder of a multilayer perceptron from its layer sizes, re-exported as ``nb.mlp``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dropout import Dropout
from .layers import Dense
from .model import Sequential
from .norm import BatchNorm, LayerNorm

NORMS = {"layer": LayerNorm, "batch": BatchNorm}


def mlp(sizes: Sequence[int], activation: Any = "relu", *, output: Any = "identity", init: Any = None,
        norm: str | None = None, dropout: float = 0.0, xp: Any = None, dtype: Any = "float32",
        device: Any = None, seed: int | None = None) -> Sequential:
    """A :class:`Sequential` of Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    sizes       [n_in, hidden..., n_out], at least two positive integers
    activation  of every hidden layer (a name, config dict or Activation)
    output      of the last layer; "identity" gives logits or values
    init        of every layer; None picks He normal for relu/leaky_relu, else Glorot uniform
    norm        None, "layer" or "batch": a LayerNorm or BatchNorm after each hidden layer
    dropout     p of a Dropout after each hidden layer (after its norm); 0 adds none
    xp, dtype, device, seed   as for :class:`Sequential`

    ``mlp([64, 128, 10], "relu", seed=0)`` is ``Sequential([Dense(64, 128, "relu"),
    Dense(128, 10)], seed=0)``, the same initial weights included.
    """
    sizes = _checked(sizes)
    n_hidden = len(sizes) - 2
    if norm is not None and norm not in NORMS:
        raise ValueError(f"mlp norm must be None, 'layer' or 'batch', got {norm!r}")
    drop = Dropout(dropout)  # checks 0 <= p < 1
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Dense(a, b, activation if i < n_hidden else output, init=init))
        if i < n_hidden:
            layers += [NORMS[norm](b)] if norm is not None else []
            layers += [Dropout(drop.p)] if drop.p > 0 else []
    return Sequential(layers, xp=xp, dtype=dtype, device=device, seed=seed)


def _checked(sizes: Any) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"mlp sizes must be a list of layer sizes [n_in, hidden..., n_out], "
                        f"got {type(sizes).__name__}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp sizes must hold at least n_in and n_out, got {sizes!r}")
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"mlp sizes must be positive integers, got {sizes!r} (entry {i} is {s!r})")
    return [int(s) for s in sizes]
