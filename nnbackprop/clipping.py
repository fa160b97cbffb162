"""Gradient clipping over the flat gradient buffer, after the backward (and the L2 term).

    clip_grad_norm_(store, C):   n = ||g||_2 over every gradient,  g <- g * min(1, C / (n + 1e-6))
    clip_grad_value_(store, v):  g <- clip(g, -v, v)

The same rules, in the same order, as ``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_``. Where the store is flat each is one reduction and one
in-place operation over one buffer. On an accelerator the factor stays a 0-d
array on the device (no host read per step); on the host it is a Python float,
and a step whose norm is within C skips the multiplication.
"""

from __future__ import annotations

import math
from typing import Any

from . import _compat

_EPS = 1e-6  # torch's: keeps C / (n + eps) finite for a zero gradient


def _positive(name: str, v: Any) -> float:
    v = float(v)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def check(clip_norm: Any, clip_value: Any) -> tuple[float | None, float | None]:
    """The two thresholds as floats (None where not given), refused unless > 0 and finite."""
    return (None if clip_norm is None else _positive("clip_norm", clip_norm),
            None if clip_value is None else _positive("clip_value", clip_value))


def sq_norm(x: Any, xp: Any) -> Any:
    """sum x^2 of a 1-D array as a 0-d array: one ``dot`` where the array's module has
    one (NumPy, CuPy, PyTorch: no temporary), else ``xp.sum(x * x)``."""
    m = _compat.writer(x)
    dot = getattr(m, "dot", None)
    if dot is not None:
        return dot(x, x)
    return xp.sum(x * x)


def grad_norm(store: Any) -> Any:
    """||g||_2 over every gradient of ``store`` (0-d array, not read)."""
    xp = store.xp
    if store.flat:
        return xp.sqrt(sq_norm(store.flat_grads, xp))
    return xp.sqrt(sum(xp.sum(g * g) for g in store.grads.values()))


def clip_grad_norm_(store: Any, max_norm: float) -> Any:
    """Scale every gradient by min(1, max_norm / (||g|| + 1e-6)); returns ||g|| before."""
    xp = store.xp
    norm = grad_norm(store)
    if store.flat and _compat.on_host(store.flat_grads):  # reading a host value syncs nothing
        factor = min(max_norm / (float(norm) + _EPS), 1.0)
        if factor < 1.0:  # g * 1.0 is g: no pass over the buffer when nothing is clipped
            g = store.flat_grads
            g *= factor
        return norm
    factor = xp.minimum(max_norm / (norm + _EPS), xp.ones_like(norm))
    if store.flat:
        g = store.flat_grads
        g *= factor
    else:
        for name, g in store.grads.items():
            store.grads[name] = g * factor
    return norm


def clip_grad_value_(store: Any, value: float) -> None:
    """Clamp every gradient to [-value, value]."""
    xp = store.xp
    if store.flat:
        g = store.flat_grads
        m = _compat.writer(g)
        m.clip(g, -value, value, out=g)
        return
    for name, g in store.grads.items():
        store.grads[name] = xp.clip(g, -value, value)


class Clip:
    """What ``fit(clip_norm=, clip_value=)`` applies after each backward: the value
    clamp first, then the norm (when both are given)."""

    def __init__(self, clip_norm: Any = None, clip_value: Any = None):
        self.clip_norm, self.clip_value = check(clip_norm, clip_value)

    def __bool__(self) -> bool:
        return self.clip_norm is not None or self.clip_value is not None

    def __call__(self, store: Any) -> None:
        if self.clip_value is not None:
            clip_grad_value_(store, self.clip_value)
        if self.clip_norm is not None:
            clip_grad_norm_(store, self.clip_norm)
