"""The mini-batch training loop, prediction and evaluation.

``fit`` runs gradient descent over (X, T) for some epochs:

    batch_size=None   full batch: one step per epoch on all N rows
    batch_size=1      online learning: one step per example
    batch_size=k      mini-batches of k rows (the last, partial one included
                      unless drop_last=True)

Data stay on their device. Each epoch draws one permutation from a seeded host
generator (same seed, same order on every backend) and moves it to the device
once; each batch gathers its rows through it, so no epoch copies all of X (and
without shuffling, batches are slices: no copy at all). The loss and metrics are
summed on the device and read once per epoch, with one more read that checks
the weights are still finite: no host-device sync per batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _compat
from . import losses as _losses
from . import metrics as _metrics
from .callbacks import Callback
from .progress import ProgressBar


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite in an epoch; the model and its
    optimizer are back to their state before that epoch."""


@dataclasses.dataclass
class History:
    """What ``fit`` returns: ``history["loss"][e]`` is the mean loss of epoch e."""

    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epoch: list[int] = dataclasses.field(default_factory=list)
    stop_reason: str | None = None

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]


class Run:
    """The training run a callback sees."""

    def __init__(self, model, optimizer, history):
        self.model, self.optimizer, self.history = model, optimizer, history
        self.stopped = False

    def stop(self, reason: str) -> None:
        """End training after the current epoch, recording why."""
        self.stopped = True
        if self.history.stop_reason is None:
            self.history.stop_reason = reason


def fit(model, X, T, *, loss, optimizer, epochs: int = 1, batch_size: int | None = None,
        shuffle: bool = True, seed: int | None = None, validation_data=None,
        validation_split: float = 0.0, metrics: Sequence = (), callbacks: Sequence[Callback] = (),
        progress: bool = True, drop_last: bool = False) -> History:
    """Train ``model`` on inputs X (N, n_in) and targets T; return a :class:`History`.

    loss, optimizer     a Loss (or its name) and an Optimizer (or its name)
    epochs              passes over the data
    batch_size          None: full batch; 1: online; k: mini-batches of k rows
    shuffle, seed       a fresh row order each epoch from numpy.random.default_rng(seed)
    validation_data     (X_val, T_val), or validation_split: the last share of the rows
    metrics             names from nnbackprop.metrics ("accuracy", "mse", "mae")
    callbacks           EarlyStopping, Convergence, or any object with the hooks
    progress            a progress bar on a terminal (silent otherwise)
    drop_last           skip the last, partial batch

    Everything is checked before any weight changes: shapes, dtypes, label
    range, NaN or infinity in X or T, that each metric can score T, argument
    values. An epoch whose loss or weights end NaN or infinite raises
    :class:`TrainingDiverged` naming the epoch and batch where it happened, with
    the model and optimizer put back to their state before that epoch.
    """
    from . import optim as _optim

    loss = _losses.get(loss)
    optimizer = _optim.get(optimizer)
    metric_objs = [_metrics.get(m).for_model(model) for m in metrics]
    epochs = _positive_int("epochs", epochs, allow_zero=True)
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    check_data(model, X, T, loss, metric_objs)

    if validation_split:
        n_val = int(round(X.shape[0] * validation_split))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(f"validation_split={validation_split} leaves {n_val} validation rows "
                             f"of {X.shape[0]}; need at least one row on each side")
        cut = X.shape[0] - n_val
        X, T, validation_data = X[:cut, ...], T[:cut, ...], (X[cut:, ...], T[cut:, ...])
    elif validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, T_val)")
        check_data(model, *validation_data, loss, metric_objs, names=("X_val", "T_val"))

    batches = _Batches(X.shape[0], batch_size, drop_last)
    smallest = min(batches.spans[0][1] - batches.spans[0][0], batches.spans[-1][1] - batches.spans[-1][0])
    if smallest < model.min_rows:
        raise ValueError(f"a training batch of {smallest} row(s) is too small: this model needs at "
                         f"least {model.min_rows} (BatchNorm); choose another batch_size or drop_last=True")
    model.optimizer, model.loss = optimizer, loss
    rng = np.random.default_rng(seed)
    run = Run(model, optimizer, History())
    bar = ProgressBar(epochs, len(batches.spans), enabled=progress)
    for cb in callbacks:
        cb.on_train_begin(run)
    try:
        with _compat.quiet_float_errors():
            for epoch in range(epochs):
                for cb in callbacks:
                    cb.on_epoch_begin(run, epoch)
                order = rng.permutation(batches.n) if shuffle and batches.n > 1 else None
                logs = _epoch(run, X, T, loss, metric_objs, batches, order, epoch, bar)
                del order  # not alive while the next epoch's is drawn
                if validation_data is not None:
                    val = _evaluate(model, *validation_data, loss, metric_objs, batch_size)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                _observe_schedule(optimizer, logs)
                for cb in callbacks:
                    cb.on_epoch_end(run, epoch, logs)
                run.history.append(epoch, logs)
                bar.epoch_end(epoch, logs)
                if run.stopped:
                    break
    finally:
        bar.close()
    for cb in callbacks:
        cb.on_train_end(run)
    return run.history


@dataclasses.dataclass
class _Batches:
    """Row ranges [start, start + size) of one epoch's batches."""

    n: int
    batch_size: int | None
    drop_last: bool

    def __post_init__(self):
        spans = _spans(self.n, self.batch_size)
        if self.drop_last and spans[-1][1] - spans[-1][0] < spans[0][1]:
            spans = _Spans(spans.n, spans.size, len(spans) - 1)
            if not spans:
                raise ValueError(f"drop_last with batch_size={self.batch_size} > {self.n} rows "
                                 f"leaves no batch")
        self.spans = spans
        self.n_used = min(self.n, len(spans) * spans.size)


class _Spans(Sequence):
    """(start, stop) of the first ``count`` batches of ``size`` rows over rows
    0..n (the last may be shorter), made when asked for, so that an online fit
    on N rows holds no list of N tuples (with their shares of the epoch, such
    lists took 160 bytes a batch: 31 % of a 2 GiB X of 128 float32 features)."""

    def __init__(self, n: int, size: int, count: int):
        self.n, self.size, self.count = n, size, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.count))]
        j = i + self.count if i < 0 else i
        if not 0 <= j < self.count:
            raise IndexError(f"batch {i} of {self.count}")
        return j * self.size, min((j + 1) * self.size, self.n)


def _spans(n: int, batch_size: int | None) -> _Spans:
    """(start, stop) pairs covering rows 0..n in batches (stops never past n; none for n = 0)."""
    size = max(1, n if batch_size is None else min(batch_size, n))
    return _Spans(n, size, -(-n // size))


def _epoch(run, X, T, loss, metric_objs, batches, order, epoch, bar) -> dict:
    """One pass over the data; returns the epoch's logs. Two device reads: the
    summed loss and metrics, and whether every weight is still finite."""
    model, optimizer = run.model, run.optimizer
    xp = model.xp
    saved = _snapshot(model, optimizer)
    # the epoch's row order moves to the device once; each batch gathers its rows from it
    idx = None if order is None else _compat.from_host(xp, order, device=model.device)
    total, totals = 0.0, [0.0] * len(metric_objs)  # means, summed batch by batch (float16 never overflows)
    for b, (start, stop) in enumerate(batches.spans):
        Xb, Tb = _rows(xp, X, idx, start, stop), _rows(xp, T, idx, start, stop)
        Y, tape = model._step_forward(Xb)
        for i, m in enumerate(metric_objs):  # before the loss, which may write over Y
            totals[i] = totals[i] + m.total(Y, Tb, xp) * (1 / batches.n_used)
        J = model._step_backward(Y, Tb, loss, tape)
        del Y
        optimizer.step(model)
        total = total + J * ((stop - start) / batches.n_used)  # the batch's share of the epoch
        bar.batch(epoch, b)
    epoch_loss = float(total)  # the one read of the epoch's numbers
    if not (math.isfinite(epoch_loss) and _all_finite(xp, model.parameters())):
        b, what = _replay(model, optimizer, X, T, idx, loss, batches, saved)
        _restore(model, optimizer, saved)
        where = f"batch {b + 1} of {len(batches.spans)}" if b is not None else \
            f"one of its {len(batches.spans)} batches (a replay did not reproduce it)"
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}, {where}: {what}. The model and its "
            f"optimizer are back to their state before that epoch. Lower the learning rate "
            f"or check the scale of the data"
        )
    logs = {"loss": epoch_loss}
    for m, t in zip(metric_objs, totals):
        logs[m.name] = float(t)
    return logs


def _all_finite(xp, arrays) -> bool:
    """Whether every value of every array is finite: one device read."""
    return bool(xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays])))


def _rows(xp, A, idx, start, stop):
    """Batch rows start..stop of A in this epoch's order: a slice of A itself
    (no copy) when idx is None (no shuffling), else rows idx[start:stop]
    gathered on the device. One batch is copied at a time, never all of A."""
    return A[start:stop, ...] if idx is None else xp.take(A, idx[start:stop], axis=0)


def _replay(model, optimizer, X, T, idx, loss, batches, saved):
    """(batch index, what went wrong) of a diverged epoch, found by running it
    again, on the same batches, from ``saved`` with a check after every batch
    (the failure path only: one device read per batch). (None, ...) if the
    replay stays finite."""
    xp = model.xp
    _restore(model, optimizer, saved)
    for b, (start, stop) in enumerate(batches.spans):
        Xb, Tb = _rows(xp, X, idx, start, stop), _rows(xp, T, idx, start, stop)
        J = float(model._value_and_grad(Xb, Tb, loss))
        if not math.isfinite(J):
            return b, f"the loss became {J}"
        optimizer.step(model)
        if not _all_finite(xp, model.parameters()):
            return b, f"its update made the weights NaN or infinite (the batch's loss was {J:.6g})"
    return None, "the loss or the weights became NaN or infinite"


def predict(model, X, batch_size: int | None = None) -> Any:
    """Outputs (N, n_out) for X (N, n_in), in batches of ``batch_size`` rows.

    Leaves what the last ``forward`` kept for ``backward`` untouched.
    """
    model.check_input(X)
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    return _predict(model, X, batch_size)


def _predict(model, X, batch_size):
    n = X.shape[0]
    if batch_size is None or batch_size >= n:
        return model._infer(X)
    return model.xp.concat([model._infer(X[a:b, ...]) for a, b in _spans(n, batch_size)], axis=0)


def evaluate(model, X, T, loss=None, metrics: Sequence = ("accuracy",),
             batch_size: int | None = None) -> dict[str, float]:
    """``{"loss": J, metric: value, ...}`` on X (N, n_in) and T as Python floats;
    ``loss=None`` leaves J out. T is checked against the loss and every metric first."""
    loss = _losses.get(loss) if loss is not None else None
    metric_objs = [_metrics.get(m).for_model(model) for m in metrics]
    model.check_input(X)
    _need_rows(X, "X")
    if loss is not None:
        model.check_target(T, loss, n_rows=X.shape[0])
    else:
        _compat.check_array(T, name="T", xp=model.xp, device=model.device)
        if T.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but T has {T.shape[0]}; they must match")
    _check_metrics(model, T, metric_objs, "T")
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    return _evaluate(model, X, T, loss, metric_objs, batch_size)


def _evaluate(model, X, T, loss, metric_objs, batch_size) -> dict[str, float]:
    xp = model.xp
    Y = _predict(model, X, batch_size)
    out = {}
    if loss is not None:
        out["loss"] = float(loss.value(Y, T, xp) + (model.l2_penalty(loss.l2) if loss.l2 else 0.0))
    for m in metric_objs:
        out[m.name] = float(m.total(Y, T, xp)) / X.shape[0]
    return out


def check_data(model, X, T, loss, metric_objs=(), names=("X", "T")) -> None:
    """Every check ``fit`` makes of its data, with the numbers in the message."""
    model.check_input(X, name=names[0])
    _need_rows(X, names[0])
    model.check_target(T, loss, n_rows=X.shape[0], name=names[1])
    _check_metrics(model, T, metric_objs, names[1])
    xp = model.xp
    for name, A in zip(names, (X, T)):
        if xp.isdtype(A.dtype, "real floating"):
            if not _all_finite(xp, list(_blocks(A))):  # the one read when all is well
                bad = int(_count_not_finite(xp, A))
                rows = int(_count_not_finite(xp, A, rows=True))
                raise ValueError(f"{name} holds {bad} NaN or infinite values in {rows} rows; "
                                 f"remove or impute them before training")


_CHECK_BLOCK = 1 << 20  # elements per block of the finiteness check: 1 MiB boolean temporaries


def _count_not_finite(xp, A, rows: bool = False):
    """How many values of A (rows=False), or rows holding one, are NaN or
    infinite: a 0-d array summed on the device, not read back. A is checked in
    blocks of rows, so the temporaries stay about _CHECK_BLOCK booleans, never
    the size of A."""
    total = 0
    for B in _blocks(A):  # one block's temporaries die before the next one's
        total = total + _block_not_finite(xp, B, rows)
    return total


def _blocks(A):
    """Row blocks of A (views) of about _CHECK_BLOCK values each."""
    n = A.shape[0]
    step = max(1, _CHECK_BLOCK // max(math.prod(A.shape[1:]), 1))
    for start in range(0, n, step):
        yield A[start:min(start + step, n), ...]


def _block_not_finite(xp, B, rows: bool):
    ok = xp.isfinite(B)
    if rows and B.ndim > 1:
        ok = xp.all(ok, axis=tuple(range(1, B.ndim)))
    return math.prod(ok.shape) - xp.count_nonzero(ok)


def _need_rows(X, name) -> None:
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; need at least one")


def _check_metrics(model, T, metric_objs, name) -> None:
    for m in metric_objs:
        try:
            m.check((T.shape[0], model.n_out), T, model.xp, model.dtype)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc


def _positive_int(name, v, allow_zero=False):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be an integer >= {0 if allow_zero else 1}, got {v!r}")
    return int(v)


def _snapshot(model, optimizer):
    """Copies of the weights, the non-trained buffers, the host generator's state
    (dropout masks) and the optimizer state (the update may work in place)."""
    xp = model.xp
    params = [xp.asarray(p, copy=True) for p in model.parameters()]
    model_state = (dict(model.store.buffers), model.rng.bit_generator.state)  # buffers are rebound
    return params, optimizer.snapshot() if hasattr(optimizer, "snapshot") else None, model_state


def _restore(model, optimizer, saved):
    """Put back copies of the snapshot (which stays usable)."""
    params, opt_state, (buffers, rng_state) = saved
    xp = model.xp
    model.store.assign([xp.asarray(p, copy=True) for p in params])
    model.store.buffers.update(buffers)
    model.rng.bit_generator.state = rng_state
    if opt_state is not None:
        optimizer.restore(opt_state)


def _observe_schedule(optimizer, logs):
    sched = getattr(optimizer, "lr", None)
    if hasattr(sched, "observe"):
        sched.observe(logs.get("val_loss", logs["loss"]))
