"""The tests' independent oracle for gradients: central differences on the host."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """df/dx of a scalar function of a float64 host array, shaped like ``x``:
    (f(x + h e_i) - f(x - h e_i)) / 2h for every element i."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        out[idx] = (f(xp) - f(xm)) / (2 * h)
    return out
