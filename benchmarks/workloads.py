"""Sizes, data and the nnbackprop cases.

A :class:`Case` is what a benchmark times: ``fn()`` does one unit of work and
waits for the device; ``setup()`` (optional) runs before each timed call,
outside the clock. Builders raise :class:`Unavailable` with a reason when the
case cannot run here (library not installed, dtype missing); the benchmark
turns it into a visible skip.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backends  # noqa: E402
import nnbackprop as nb  # noqa: E402
from nnbackprop import _compat  # noqa: E402

from . import memory as _memory  # noqa: E402

LR = 0.01


@dataclasses.dataclass(frozen=True)
class Size:
    """A network ``layers`` = [n_in, hidden..., n_out] trained on batches of ``batch`` rows."""

    name: str
    layers: tuple[int, ...]
    batch: int

    def gemm_flops(self) -> int:
        """Floating point operations of the GEMMs of one training step (see peers.gemm_floor)."""
        n, total = self.batch, 0
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            total += 2 * n * a * b * (3 if i > 0 else 2)
        return total


SIZES = {
    "tiny": Size("tiny", (784, 128, 10), 64),
    "medium": Size("medium", (784, 512, 512, 10), 256),
    "large": Size("large", (1024, 2048, 2048, 1024), 4096),
}
DTYPES = ("float32", "float64")


class Unavailable(Exception):
    """This case cannot run here; the message says why."""


@dataclasses.dataclass
class Case:
    fn: Callable[[], Any]                      # one unit of work, device synchronised
    setup: Callable[[], None] | None = None    # before each timed call, untimed
    info: dict = dataclasses.field(default_factory=dict)
    memory: Callable[[], dict] | None = None   # peak-memory probe (memory.py), if measurable
    state: dict = dataclasses.field(default_factory=dict)  # what the case holds (model, optimizer)


def host_data(size: Size, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (batch, n_in) float64 ~ N(0, 1) and labels (batch,) int64 in [0, n_out)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((size.batch, size.layers[0]))
    labels = rng.integers(0, size.layers[-1], size=size.batch)
    return X, labels


def backend(name: str) -> tuple[Any, Any, Callable[[], None]]:
    """(spec, module, sync) of an available backend from ``backends/``."""
    spec = backends.get(name)
    reason = spec.unavailable()
    if reason:
        raise Unavailable(f"backend {name}: {reason}")
    mod = spec.load()
    return spec, mod, (lambda: spec.sync(mod))


def check_dtype(spec: Any, dtype: str) -> None:
    if dtype not in spec.dtypes:
        raise Unavailable(f"{spec.name} has no {dtype}")


def sgd(lr: float = LR) -> tuple[Any, str]:
    """nnbackprop's plain SGD, the optimizer every peer's step uses too."""
    return nb.optim.SGD(lr=lr), "nnbackprop.optim.SGD"


def build_model(size: Size, xp: Any, dtype: str, seed: int = 0) -> Any:
    """ReLU hidden layers, identity output, He-normal weights from ``seed``."""
    return nb.mlp(size.layers, "relu", xp=xp, dtype=dtype, seed=seed)


def nnbackprop_case(phase: str, backend_name: str, size: Size, dtype: str) -> Case:
    """nnbackprop on ``backend_name``: ``phase`` is "forward", "backward" or "step".

    forward: ``model(X)``; backward: ``model.backward(dY)`` after an untimed
    forward (dY the softmax cross-entropy gradient); step:
    ``model.train_step(X, labels, SoftmaxCrossEntropy(), SGD(lr))``.
    """
    spec, mod, sync = backend(backend_name)
    check_dtype(spec, dtype)
    xp = _compat.namespace(mod)
    model = build_model(size, mod, dtype)
    Xh, yh = host_data(size)
    X = _compat.from_host(xp, Xh, model.dtype, model.device)
    y = _compat.from_host(xp, yh, xp.int64, model.device)
    loss = nb.losses.SoftmaxCrossEntropy()
    info = {"impl": "nnbackprop", "backend": backend_name, "phase": phase}

    if phase == "forward":
        def fn():
            out = model(X)
            sync()
            return out
        return Case(fn, info=info)

    if phase == "backward":
        dY = loss.grad(model(X), y)

        def setup():
            model(X)
            sync()

        def fn():
            out = model.backward(dY)
            sync()
            return out
        return Case(fn, setup=setup, info=info)

    if phase == "step":
        opt, opt_name = sgd()
        info["optimizer"] = opt_name

        def fn():
            J = model.train_step(X, y, loss, opt)
            sync()
            return J

        case = Case(fn, info=info, state={"model": model, "optimizer": opt})
        if backend_name in ("numpy", "array_api_strict"):  # tracemalloc sees NumPy buffers
            case.memory = lambda: _memory.peak_of(lambda: _traced_step(backend_name, size, dtype))
        return case

    raise ValueError(f"unknown phase {phase!r}")


def _traced_step(backend_name: str, size: Size, dtype: str):
    """A fresh nnbackprop step and its memory budget, for :func:`memory.peak_of`."""
    case = nnbackprop_case("step", backend_name, size, dtype)
    itemsize = np.dtype(dtype).itemsize
    opt = case.state["optimizer"]
    return case.fn, lambda: _memory.step_budget(size.layers, size.batch, itemsize, _memory.array_bytes(opt.state))
