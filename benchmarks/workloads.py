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
    steps: int = 1                             # training steps one call of fn performs


def host_data(size: Size, seed: int = 0, batches: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (batches * batch, n_in) float64 ~ N(0, 1) and labels (batches * batch,)
    int64 in [0, n_out)."""
    rng = np.random.default_rng(seed)
    n = size.batch * batches
    X = rng.standard_normal((n, size.layers[0]))
    labels = rng.integers(0, size.layers[-1], size=n)
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


# batches per epoch of the fit case: enough that fit's once-per-call work (argument and
# data checks, History) is spread as it is in a user's epoch, few enough to keep a call short
FIT_BATCHES = {"tiny": 32, "medium": 8, "large": 1}


def fit_epoch_case(backend_name: str, size: Size, dtype: str, batches: int | None = None) -> Case:
    """The step as users run it: ``model.fit`` over one epoch of ``batches`` equal batches
    of ``size.batch`` rows, no shuffle, no progress bar, plain SGD. ``Case.steps`` is the
    number of batches, so a per-step time is a call's time / steps."""
    spec, mod, sync = backend(backend_name)
    check_dtype(spec, dtype)
    xp = _compat.namespace(mod)
    batches = batches or FIT_BATCHES[size.name]
    model = build_model(size, mod, dtype)
    Xh, yh = host_data(size, batches=batches)
    X = _compat.from_host(xp, Xh, model.dtype, model.device)
    y = _compat.from_host(xp, yh, xp.int64, model.device)
    loss = nb.losses.SoftmaxCrossEntropy()
    opt, opt_name = sgd()

    def fn():
        history = model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=size.batch,
                            shuffle=False, progress=False)
        sync()
        return history["loss"][-1]

    return Case(fn, info={"impl": "nnbackprop", "backend": backend_name, "phase": "fit_epoch",
                          "optimizer": opt_name, "batches": batches},
                state={"model": model, "optimizer": opt}, steps=batches)


def _traced_step(backend_name: str, size: Size, dtype: str):
    """A fresh nnbackprop step and its memory budget, for :func:`memory.peak_of`."""
    case = nnbackprop_case("step", backend_name, size, dtype)
    itemsize = np.dtype(dtype).itemsize
    opt = case.state["optimizer"]
    return case.fn, lambda: _memory.step_budget(size.layers, size.batch, itemsize, _memory.array_bytes(opt.state))
