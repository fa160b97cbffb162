"""Gradient checking by central differences (the seeds' sanity check).

For every parameter theta the numerical slope

    (J(theta + eps) - J(theta - eps)) / (2 eps)

is compared with the backpropagated gradient. The relative error of a whole
parameter array is ||analytic - numeric|| / (||analytic|| + ||numeric||);
the largest over all parameters is returned. Correct backprop in float64
gives about 1e-8 or less; a wrong rule gives 1e-2 or more.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _compat
from .model import Sequential


def gradient_check(model: Sequential, loss: Any, X: Any, T: Any, eps: float = 1e-6, *,
                   training: bool = True) -> float:
    """Largest relative error between backprop and central differences.

    Runs in float64 where the backend has it (on a copy: ``model`` is left as
    it was), otherwise in the model's dtype. X (N, n_in); T as ``loss`` wants.
    ``training=True`` checks the function a training step differentiates (batch
    statistics; one dropout mask, the same for every probe: the copy's host
    generator is put back to one state before each forward); ``False`` the
    inference function (running statistics, no dropout).
    """
    model.check_input(X)
    model.check_target(T, loss, n_rows=X.shape[0])
    xp = model.xp
    dtype = "float64" if _compat.has_dtype(xp, "float64", model.device) else model.dtype_name
    m = Sequential.from_config(model.config(), xp=xp, dtype=dtype, device=model.device)
    params = [_compat.to_host(p).astype(np.float64) for p in model.parameters()]
    on_device = [_compat.from_host(xp, p, m.dtype, m.device) for p in params]
    m.store.assign(on_device)
    m.store.buffers.update({k: xp.astype(b, m.dtype) for k, b in model.named_buffers()})
    mask_state = model.rng.bit_generator.state
    X = xp.astype(X, m.dtype)
    if xp.isdtype(T.dtype, "real floating"):
        T = xp.astype(T, m.dtype)

    m.rng.bit_generator.state = mask_state
    m._value_and_grad(X, T, loss, training)
    analytic = [_compat.to_host(g).astype(np.float64) for g in m.gradients()]

    def J() -> float:
        m.rng.bit_generator.state = mask_state  # the same mask at every probe
        Y = m._forward(X, None, m._fresh, training)
        return float(loss.value(Y, T, xp) + m.l2_penalty(loss.l2))

    worst = 0.0
    for k, p in enumerate(params):
        numeric = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            values = []
            for shifted in (orig + eps, orig - eps):
                p[idx] = shifted
                on_device[k] = _compat.from_host(xp, p, m.dtype, m.device)
                m.store.assign(on_device)
                values.append(J())
            p[idx] = orig
            numeric[idx] = (values[0] - values[1]) / (2 * eps)
        on_device[k] = _compat.from_host(xp, p, m.dtype, m.device)
        m.store.assign(on_device)
        denom = np.linalg.norm(analytic[k]) + np.linalg.norm(numeric)
        if denom > 0:
            worst = max(worst, float(np.linalg.norm(analytic[k] - numeric) / denom))
    return worst
