"""Peak memory of a training step against what the step must hold.

The budget of one step on a batch of N rows is

    parameters + gradients + optimizer state        (sum over layers of n_in*n_out + n_out, each)
    + the batch itself (X and its labels)
    + the activations backward needs: every hidden layer's output (N, n_k)
      and the logits (N, n_out)

all in the model's dtype. The peak is measured with :mod:`tracemalloc`, which
sees NumPy's data buffers (NumPy reports them to it), so it works for NumPy
and array-api-strict (NumPy underneath); other backends are not measured.
Everything (model, data, optimizer) is built while tracing, so the peak is the
whole footprint of a steady-state step (the second one), not only what it adds.
"""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
from collections.abc import Callable
from typing import Any


def step_budget(layers: tuple[int, ...], batch: int, itemsize: int, optimizer_bytes: int = 0) -> dict:
    """Bytes a step cannot do without, by part, for ReLU layers ``layers`` and ``batch`` rows."""
    params = sum(a * b + b for a, b in zip(layers, layers[1:])) * itemsize
    data = batch * layers[0] * itemsize + batch * 8  # X, int64 labels
    acts = sum(batch * n for n in layers[1:]) * itemsize  # hidden outputs + logits
    parts = {"parameters": params, "gradients": params, "optimizer": optimizer_bytes,
             "data": data, "activations": acts}
    parts["total"] = sum(parts.values())
    return parts


def array_bytes(obj: Any, _depth: int = 0) -> int:
    """Bytes of the arrays held by ``obj`` (an optimizer's state), looking a few levels down."""
    if _depth > 4 or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return 0
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        n = 1
        for d in obj.shape:
            n *= int(d)
        return n * getattr(obj.dtype, "itemsize", 8)
    if isinstance(obj, dict):
        return sum(array_bytes(v, _depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(array_bytes(v, _depth + 1) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(array_bytes(v, _depth + 1) for v in vars(obj).values())
    return 0


@contextlib.contextmanager
def tracing():
    """tracemalloc on (after a garbage collection) for the block, off afterwards."""
    gc.collect()
    if tracemalloc.is_tracing():  # pragma: no cover - someone else is tracing
        tracemalloc.stop()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def peak_of(build: Callable[[], tuple[Callable[[], Any], Any]]) -> dict:
    """Peak traced bytes of the second call of ``fn``, where ``fn, budget = build()``.

    ``budget`` is a :func:`step_budget` dict or a function returning one after the steps.

    Returns ``{"peak_bytes", "budget_bytes", "ratio", "budget": {part: bytes}}``.
    """
    with tracing():
        fn, budget = build()
        fn()
        gc.collect()
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        if callable(budget):  # optimizer state may appear on the first step
            budget = budget()
    return {"peak_bytes": peak, "budget_bytes": budget["total"],
            "ratio": peak / budget["total"], "budget": budget}
