"""Which array libraries are usable here, and how fast one training step is on each.

Used by ``nnbackprop info``, ``nnbackprop bench`` and ``--backend auto``. The
probing is generic (:func:`nnbackprop._compat.probe`: import the module, compute
one small array on its default device); the only names here are the command
line's user-facing choices, :data:`KNOWN` and the order ``--backend auto``
tries them in, :data:`AUTO`.
"""

from __future__ import annotations

import importlib
import platform
import time
from typing import Any

import numpy as np

from . import _compat

#: the ``--backend`` choices of the command line, in the order ``info`` and ``bench`` list them
KNOWN = ("numpy", "array_api_strict", "torch", "cupy")
#: ``--backend auto``: the first of these that computes on its default device (a GPU library
#: fails there without a GPU), so CuPy when a GPU is usable, else NumPy
AUTO = ("cupy", "numpy")


def unavailable(name: str) -> str | None:
    """None when backend ``name`` can run here; otherwise the reason in words."""
    return _compat.probe(name)


def pick_auto(order: tuple[str, ...] = AUTO) -> tuple[str, str]:
    """(name, why) of the first backend in ``order`` that runs here: ("cupy", ...)
    when a GPU is usable, else ("numpy", why CuPy is not)."""
    reasons = []
    for name in order:
        reason = unavailable(name)
        if reason is None:
            if reasons:
                return name, "; ".join(reasons)
            return name, f"{name} computes on {_compat.default_device(_compat.namespace(name))}"
        reasons.append(reason)
    raise RuntimeError(f"none of {', '.join(order)} is usable: {'; '.join(reasons)}")


def _version(name: str) -> str:
    try:
        return str(getattr(importlib.import_module(name), "__version__", "?"))
    except Exception:
        return "-"


def devices(name: str) -> str:
    """The devices of backend ``name`` in words, as its namespace lists them."""
    return ", ".join(str(d) for d in _compat.devices(_compat.namespace(name)))


def info_lines() -> list[str]:
    """Versions, backends found (or why not) and their devices."""
    from . import __version__

    lines = [f"nnbackprop {__version__}", f"python {platform.python_version()} ({platform.platform()})"]
    for dep in ("numpy", "array_api_compat", "sklearn", "matplotlib"):
        lines.append(f"{dep} {_version(dep)}")
    lines.append("backends:")
    for name in KNOWN:
        reason = unavailable(name)
        if reason is None:
            lines.append(f"  {name:<17} {_version(name):<12} {devices(name)}")
        else:
            lines.append(f"  {name:<17} unavailable: {reason}")
    auto, why = pick_auto()
    lines.append(f"--backend auto picks {auto} ({why})")
    return lines


def time_step(name: str, *, n_in: int = 64, hidden: int = 256, n_out: int = 10, batch: int = 256,
              steps: int = 20, dtype: str = "float32", seed: int = 0) -> float:
    """Seconds per training step (forward, backward, Adam update) of an
    n_in-hidden-hidden-n_out ReLU network on a batch (batch, n_in) in backend ``name``."""
    from . import losses, optim
    from ._compat import from_host, namespace, resolve_dtype
    from ._mlp import mlp

    xp = namespace(name)
    model = mlp([n_in, hidden, hidden, n_out], "relu", xp=xp, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    X = from_host(xp, rng.standard_normal((batch, n_in)), resolve_dtype(xp, dtype), model.device)
    T = from_host(xp, rng.integers(0, n_out, batch).astype(np.int64), None, model.device)
    loss, opt = losses.SoftmaxCrossEntropy(), optim.get("adam", lr=1e-3)
    float(model.train_step(X, T, loss, opt))  # warm-up; float() waits for the device
    start = time.perf_counter()
    for _ in range(steps):
        J = model.train_step(X, T, loss, opt)
    float(J)
    return (time.perf_counter() - start) / steps


def bench_rows(**kw: Any) -> list[tuple[str, str]]:
    """(backend, "x.xx ms/step" or why it was not run) for every known backend."""
    rows = []
    for name in KNOWN:
        reason = unavailable(name)
        if reason is not None:
            rows.append((name, f"skipped: {reason}"))
            continue
        try:
            rows.append((name, f"{time_step(name, **kw) * 1e3:8.3f} ms/step"))
        except Exception as exc:  # one backend failing must not hide the others
            rows.append((name, f"failed: {type(exc).__name__}: {exc}"))
    return rows
