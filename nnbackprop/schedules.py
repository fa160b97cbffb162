"""Learning-rate schedules: ``lr = schedule(t)`` for the optimizer's step count t.

t is a host ``int`` starting at 0 and the result a host ``float``, so a schedule
never touches a device array and never forces a host-device sync.

    Constant(lr)                           lr
    StepDecay(lr, step_size, factor)       lr * factor ** floor(t / step_size)
    ExponentialDecay(lr, rate, decay_steps) lr * rate ** (t / decay_steps)
    InverseScaling(lr, power)              lr / (t + 1) ** power
    Cosine(lr, total_steps, min_lr)        min_lr + (lr - min_lr) (1 + cos(pi min(t, T) / T)) / 2
    ReduceOnPlateau(lr, factor, patience, ...)  lr * factor ** (number of plateaus seen)

``config()`` gives a JSON-able dict with a ``"name"``; :func:`get` rebuilds a
schedule from it (or from a float, a name, or an instance).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .registry import resolve

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "InverseScaling", "Cosine",
           "ReduceOnPlateau", "get"]


def _number(name: str, v: Any, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> Any:
    """``v`` as a host int (``integer``) or float, or a ValueError naming its allowed range."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(v, kind) and not isinstance(v, bool)
    if ok:
        v = int(v) if integer else float(v)
        ok = integer or math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        left = "(-inf" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
        right = "inf)" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
        raise ValueError(f"{name} must be {'an integer' if integer else 'a finite number'} "
                         f"in {left}, {right}, got {v!r}")
    return v


class Schedule:
    """Base class: ``schedule(t: int) -> float``; ``config()`` rebuilds it via :func:`get`."""

    name = "schedule"
    _fields: tuple[str, ...] = ()

    def __call__(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name, **{f: getattr(self, f) for f in self._fields}}

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and other.config() == self.config()

    __hash__ = None  # type: ignore[assignment]


class Constant(Schedule):
    """``lr`` at every step."""

    name, _fields = "constant", ("lr",)

    def __init__(self, lr: float):
        self.lr = _number("lr", lr, lo=0.0)

    def __call__(self, t: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """``lr * factor ** floor(t / step_size)``: multiply by ``factor`` every ``step_size`` steps."""

    name, _fields = "step", ("lr", "step_size", "factor")

    def __init__(self, lr: float, step_size: int, factor: float = 0.1):
        self.lr = _number("lr", lr, lo=0.0)
        self.step_size = _number("step_size", step_size, lo=1, integer=True)
        self.factor = _number("factor", factor, lo=0.0, hi=1.0, lo_open=True)

    def __call__(self, t: int) -> float:
        return self.lr * self.factor ** (t // self.step_size)


class ExponentialDecay(Schedule):
    """``lr * rate ** (t / decay_steps)``: a smooth decay by ``rate`` per ``decay_steps``."""

    name, _fields = "exponential", ("lr", "rate", "decay_steps")

    def __init__(self, lr: float, rate: float, decay_steps: float = 1):
        self.lr = _number("lr", lr, lo=0.0)
        self.rate = _number("rate", rate, lo=0.0, hi=1.0, lo_open=True)
        self.decay_steps = _number("decay_steps", decay_steps, lo=0.0, lo_open=True)

    def __call__(self, t: int) -> float:
        return self.lr * self.rate ** (t / self.decay_steps)


class InverseScaling(Schedule):
    """``lr / (t + 1) ** power``, t the optimizer's update count: it falls at every step.

    scikit-learn's ``invscaling`` has the same form with t the rows seen, and
    changes only between epochs; ``nnbackprop.sklearn``'s estimators use that one
    (``learning_rate="invscaling"``).
    """

    name, _fields = "inverse_scaling", ("lr", "power")

    def __init__(self, lr: float, power: float = 0.5):
        self.lr = _number("lr", lr, lo=0.0)
        self.power = _number("power", power, lo=0.0)

    def __call__(self, t: int) -> float:
        return self.lr / (t + 1) ** self.power


class Cosine(Schedule):
    """``min_lr + (lr - min_lr) (1 + cos(pi min(t, T) / T)) / 2`` with T = ``total_steps``.

    Falls from ``lr`` at t = 0 to ``min_lr`` at t = T and stays there.
    """

    name, _fields = "cosine", ("lr", "total_steps", "min_lr")

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0):
        self.lr = _number("lr", lr, lo=0.0)
        self.total_steps = _number("total_steps", total_steps, lo=1, integer=True)
        self.min_lr = _number("min_lr", min_lr, lo=0.0, hi=self.lr)

    def __call__(self, t: int) -> float:
        frac = min(t, self.total_steps) / self.total_steps
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * frac)) / 2.0


class ReduceOnPlateau(Schedule):
    """Multiply the lr by ``factor`` (not below ``min_lr``) after ``patience`` epochs
    in a row without improvement.

    The fit loop calls :meth:`observe` once per epoch with the epoch's loss (the
    validation loss when there is one). An epoch improves when its loss is below
    ``best - min_delta``. ``t`` is ignored. The mutable state (current lr, best
    loss, epochs waited) is part of :meth:`config`, so checkpoints keep it.
    """

    name, _fields = "reduce_on_plateau", ("lr", "factor", "patience", "min_delta", "min_lr")

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 min_lr: float = 0.0, state: dict | None = None):
        self.lr = _number("lr", lr, lo=0.0)
        self.factor = _number("factor", factor, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        self.patience = _number("patience", patience, lo=0, integer=True)
        self.min_delta = _number("min_delta", min_delta, lo=0.0)
        self.min_lr = _number("min_lr", min_lr, lo=0.0, hi=self.lr)
        self.current, self.best, self.wait = self.lr, None, 0
        if state is not None:
            self.load_state_dict(state)

    def __call__(self, t: int) -> float:
        return self.current

    def observe(self, value: float) -> None:
        """Record one epoch's loss; lower the lr after ``patience`` epochs without improvement.

        A NaN loss counts as no improvement.
        """
        value = float(value)
        if self.best is None or value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.current, self.wait = max(self.current * self.factor, self.min_lr), 0

    def state_dict(self) -> dict:
        """``{"lr": current lr, "best": best loss or None, "wait": epochs without improvement}``."""
        return {"lr": self.current, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"lr", "best", "wait"}:
            raise ValueError(f"ReduceOnPlateau state must be a dict with keys 'lr', 'best', 'wait', "
                             f"got {state!r}")
        current = _number("state['lr']", state["lr"], lo=self.min_lr, hi=self.lr)
        best = None if state["best"] is None else float(state["best"])
        self.current, self.best = current, best
        self.wait = _number("state['wait']", state["wait"], lo=0, integer=True)

    def config(self) -> dict:
        return {**super().config(), "state": self.state_dict()}


_SCHEDULES = {cls.name: cls for cls in
              (Constant, StepDecay, ExponentialDecay, InverseScaling, Cosine, ReduceOnPlateau)}


def get(spec: Any) -> Schedule:
    """A schedule from a float (-> :class:`Constant`), a name, a config dict or an instance."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(spec)
    if not isinstance(spec, (str, dict, Schedule)):
        raise TypeError(
            f"a learning rate must be a float, a schedule, its name or its config dict, "
            f"got {type(spec).__name__}"
        )
    return resolve("schedule", spec, _SCHEDULES, Schedule)
