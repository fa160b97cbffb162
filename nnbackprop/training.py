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
        progress: bool = True, drop_last: bool = False, resume: bool = False,
        sample_weight: Any = None, class_weight: Any = None, clip_norm: float | None = None,
        clip_value: float | None = None, dp: Any = None, comm: Any = None) -> History:
    """Train ``model`` on inputs X (N, n_in) and targets T; return a :class:`History`.

    loss, optimizer     a Loss (or its name) and an Optimizer (or its name)
    epochs              passes over the data
    batch_size          None: full batch; 1: online; k: mini-batches of k rows
    shuffle, seed       a fresh row order each epoch from numpy.random.default_rng(seed)
    validation_data     (X_val, T_val), or validation_split: the last share of the rows
    metrics             names from nnbackprop.metrics ("accuracy", "mse", "mae")
    callbacks           EarlyStopping, Convergence, or any object with the hooks
    progress            a progress bar on a terminal (silent otherwise)
    drop_last           skip the last, partial batch (an error when batch_size > N: no whole batch)
    resume              continue the run ``model.fit_state`` records (a loaded checkpoint's, or
                        an interrupted fit's) with ``optimizer=model.optimizer``: its row orders
                        go on where they stopped, so training in parts (saving and loading in
                        between) gives the weights of one fit straight through
    sample_weight       (N,) weights >= 0: each batch's loss is sum w J_n / sum w
    class_weight        {class: weight} or "balanced" (scikit-learn's), times sample_weight
    clip_norm           scale the gradient to global norm <= clip_norm after each backward
    clip_value          clamp every gradient entry to [-clip_value, clip_value]
    dp                  a :class:`nnbackprop.privacy.DPSGD`: per-example clipping and noise
                        (History gets "epsilon" when it has a delta)
    comm                data-parallel training over processes: a communicator from
                        nnbackprop.distributed, or "auto" (see below); None: this process alone

    With a communicator of more than one rank, X and T are this rank's own shard
    (shards may differ in size) and ``batch_size`` is per rank: at each step the
    ranks' batches, in rank order, form the global batch, and the update is the one
    a single process makes on that global batch (one all-reduce of the gradients;
    a rank out of rows contributes none). Parameters and optimizer state start as
    rank 0's, the seed is rank 0's, losses, metrics and validation (sharded too)
    are reduced over ranks once per epoch, so callbacks decide the same on every
    rank; only rank 0 shows the progress bar. ``resume`` is for one process only.

    Metrics in the History are plain means over rows; ``evaluate`` weighs them.

    Everything is checked before any weight changes: shapes, dtypes, label
    range, NaN or infinity in X or T, that each metric can score T, argument
    values. An epoch whose loss or weights end NaN or infinite raises
    :class:`TrainingDiverged` naming the epoch and batch where it happened, with
    the model and optimizer put back to their state before that epoch. Ctrl-C
    (KeyboardInterrupt) does the same: the model and optimizer are left as they
    were after the last whole epoch (never half a step), ``model.fit_state``
    says where, and ``fit(..., resume=True)`` carries on from there.

    ``model.fit_state`` (saved with the optimizer) records the run after each
    epoch: the seed, the epochs done, the row count and batch size, and the state
    of the shuffling generator, numpy.random.default_rng(seed), drawn from once
    per epoch.
    """
    from . import distributed as _dist
    from . import optim as _optim

    comm = None if comm is None else _dist.get_communicator(comm)
    parallel = comm is not None and comm.size > 1

    def checks():
        loss_, optimizer_ = _losses.get(loss), _optim.get(optimizer)
        metric_objs_ = [_metrics.get(m).for_model(model) for m in metrics]
        epochs_ = _positive_int("epochs", epochs, allow_zero=True)
        batch_ = None if batch_size is None else _positive_int("batch_size", batch_size)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if resume and parallel:
            raise ValueError("resume=True continues a one-process run; with a communicator of "
                             f"{comm.size} ranks start a new fit from the loaded model instead")
        if parallel:
            _dist.check_seed(seed)
        if parallel and any(getattr(la, "draws_masks", False) for la in model.layers):
            raise ValueError(f"Dropout is not yet supported with a communicator of {comm.size} ranks: every "
                             f"rank's copy of the model's generator would draw the same masks")
        if parallel and model.named_buffers():
            raise ValueError(f"layers with running statistics (BatchNorm) are not yet supported with a "
                             f"communicator of {comm.size} ranks: each rank's batch statistics would differ")
        if parallel and (sample_weight is not None or class_weight is not None or clip_norm is not None
                         or clip_value is not None or dp is not None):
            raise ValueError("sample_weight, class_weight, clip_norm, clip_value and dp are not yet "
                             f"supported with a communicator of {comm.size} ranks")
        check_data(model, X, T, loss_, metric_objs_)
        plan_ = _Plan(model, X, T, loss_, batch_, sample_weight, class_weight, clip_norm, clip_value, dp)
        Xt, Tt, val = X, T, validation_data
        if validation_split:
            n_val = int(round(X.shape[0] * validation_split))
            if n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves {n_val} validation rows "
                                 f"of {X.shape[0]}; need at least one row on each side")
            cut = X.shape[0] - n_val
            Xt, Tt, val = X[:cut, ...], T[:cut, ...], (X[cut:, ...], T[cut:, ...])
            if plan_.weight is not None:  # the training rows' own: refused if all zero there
                from .weights import check_weight

                plan_.weight = check_weight(plan_.weight[:cut, ...], cut, model.xp, model.device, model.dtype,
                                            "sample_weight (times class_weight) of the training rows")[0]
            plan_.train_rows(cut)
        elif val is not None:
            if len(val) != 2:
                raise ValueError("validation_data must be a pair (X_val, T_val)")
            check_data(model, *val, loss_, metric_objs_, names=("X_val", "T_val"))
        batches_ = _Batches(Xt.shape[0], batch_, drop_last)
        sp = batches_.spans
        smallest = min(sp[0][1] - sp[0][0], sp[-1][1] - sp[-1][0])
        if smallest < model.min_rows:
            raise ValueError(f"a training batch of {smallest} row(s) is too small: this model needs at "
                             f"least {model.min_rows} (BatchNorm); choose another batch_size or drop_last=True")
        return loss_, optimizer_, metric_objs_, epochs_, batch_, Xt, Tt, val, batches_, plan_

    loss, optimizer, metric_objs, epochs, batch_size, X, T, validation_data, batches, plan = \
        _agreed(comm, checks) if parallel else checks()
    if parallel:  # every rank must make the same collectives: the same epochs, validation, metrics, L2
        _same_run(comm, {"epochs": epochs, "validation data": validation_data is not None,
                         "metrics": len(metric_objs), "l2": float(loss.l2 or 0.0), "shuffle": bool(shuffle),
                         "callbacks": len(callbacks)})
        seed = _dist.broadcast_seed(comm, seed)
        batches = _Shards(comm, batches)
        _dist.broadcast_model(model, optimizer, comm)
        rng, done = _dist.rank_rng(seed, comm), 0
    else:
        rng, done, seed = _shuffler(model, optimizer, seed, batches, resume, plan.dp)
    model.optimizer, model.loss = optimizer, loss
    if plan.dp is not None:
        plan.dp.begin(plan.sample_rate)
    run = Run(model, optimizer, History())
    bar = ProgressBar(epochs, batches.steps, enabled=progress and (not parallel or comm.rank == 0))
    for cb in callbacks:
        cb.on_train_begin(run)
    try:
        with _compat.quiet_float_errors():
            for epoch in range(epochs):
                for cb in callbacks:
                    cb.on_epoch_begin(run, epoch)
                model.fit_state = _fit_state(seed, done + epoch, batches, rng, plan.dp)  # where an interrupt leaves it
                if plan.poisson:
                    order = plan.dp.poisson_batches(batches.n, batch_size)
                else:
                    order = rng.permutation(batches.n) if shuffle and batches.n > 1 else None
                if parallel:
                    logs = _epoch_parallel(run, X, T, loss, metric_objs, batches, order, epoch, bar, comm)
                else:
                    logs = _epoch(run, X, T, loss, metric_objs, batches, order, epoch, bar, plan)
                del order  # not alive while the next epoch's is drawn
                model.fit_state = _fit_state(seed, done + epoch + 1, batches, rng, plan.dp)
                if plan.dp is not None and plan.dp.delta is not None:
                    logs["epsilon"] = plan.dp.spent()
                if validation_data is not None:
                    val = _evaluate_shards(model, *validation_data, loss, metric_objs, batch_size, comm) \
                        if parallel else _evaluate(model, *validation_data, loss, metric_objs, batch_size)
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


def _fit_state(seed, epochs_done: int, batches, rng, dp=None) -> dict:
    """The JSON-able record of a run after ``epochs_done`` epochs (see :func:`fit`);
    a DP-SGD run also records the steps its DPSGD has taken."""
    state = {"seed": seed, "epochs": epochs_done, "rows": batches.n, "batch_size": batches.batch_size,
             "rng": rng.bit_generator.state}
    if dp is not None:
        state["dp_steps"] = dp.steps
    return state


def _shuffler(model, optimizer, seed, batches, resume: bool, dp=None):
    """(generator, epochs done, seed) of the run: a fresh default_rng(seed) with no
    epochs done, or (resume) the generator ``model.fit_state`` recorded, after the
    checks that it is the same run."""
    if not resume:
        return np.random.default_rng(seed), 0, seed
    st = getattr(model, "fit_state", None)
    if not isinstance(st, dict) or not {"seed", "epochs", "rows", "batch_size", "rng"} <= set(st):
        raise ValueError("resume=True but the model records no run to resume (model.fit_state is "
                         "set by fit and saved with the optimizer)")
    if optimizer is not model.optimizer:
        raise ValueError("resume=True continues the run of model.optimizer (its state and step "
                         "count belong to it): pass optimizer=model.optimizer")
    if seed is not None and seed != st["seed"]:
        raise ValueError(f"resume=True with seed={seed!r}, but the run used seed={st['seed']!r}")
    if (batches.n, batches.batch_size) != (st["rows"], st["batch_size"]):
        raise ValueError(f"resume=True on {batches.n} rows in batches of {batches.batch_size}, but the "
                         f"run had {st['rows']} rows in batches of {st['batch_size']}: not the same run")
    if dp is not None and dp.steps != st.get("dp_steps", 0):
        raise ValueError(f"resume=True with a DPSGD that has taken {dp.steps} steps, but the run took "
                         f"{st.get('dp_steps', 0)} DP-SGD steps: epsilon would leave those out, and a DPSGD "
                         f"seeded alike would draw their noise again; resume with the run's own DPSGD")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = st["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"resume=True but the recorded shuffling state is damaged ({exc})") from None
    return rng, int(st["epochs"]), st["seed"]


class _Plan:
    """How each step turns a batch into gradients: plain, weighted, clipped or DP-SGD;
    everything checked when it is built (before any weight changes)."""

    def __init__(self, model, X, T, loss, batch_size, sample_weight, class_weight, clip_norm,
                 clip_value, dp):
        from . import clipping, weights
        from .privacy import DPSGD

        self.clip = clipping.Clip(clip_norm, clip_value)
        if dp is not None:
            if not isinstance(dp, DPSGD):
                raise TypeError(f"dp must be an nnbackprop.privacy.DPSGD, got {type(dp).__name__}")
            if self.clip or sample_weight is not None or class_weight is not None:
                raise ValueError("dp clips each example's gradient itself: give it without "
                                 "clip_norm, clip_value, sample_weight or class_weight")
            if type(loss).rows is _losses.Loss.rows:
                raise ValueError(f"dp needs the per-row losses of {type(loss).__name__}, which "
                                 f"defines no rows()")
            dp.check_model(model)
            if dp.sampling == "poisson" and batch_size is None:
                raise ValueError("dp sampling='poisson' needs a batch_size (the expected batch)")
        self.dp = dp
        self.poisson = dp is not None and dp.sampling == "poisson"
        self.batch_size = batch_size
        self.train_rows(X.shape[0])
        self.weight = weights.fit_weights(model, T, loss, sample_weight, class_weight)
        if self.weight is not None and type(loss).rows is _losses.Loss.rows:
            raise ValueError(f"sample_weight needs the per-row losses of {type(loss).__name__}, "
                             f"which defines no rows()")
        self.tiny = _compat.tiny(model.xp, model.dtype)

    def train_rows(self, n: int) -> None:
        """The rows training draws its batches from (after a validation split): DP-SGD's
        sampling rate q = batch_size / n and its expected batch."""
        self.sample_rate = 1.0 if self.batch_size is None else min(self.batch_size, n) / n
        self.expected_batch = None if self.batch_size is None else min(self.batch_size, n)

    def grads(self, model, Y, tape, Tb, loss, wb):
        """The batch's J (0-d, unread) after filling every gradient; ``wb`` its weights."""
        xp = model.xp
        if self.dp is not None:
            denom = self.expected_batch if self.poisson else Y.shape[0]
            J = self.dp.step_grads(model, Y, tape, Tb, loss, denom)
        elif wb is not None:
            wsum = xp.sum(wb)
            J = model._add_l2(model._step_backward(Y, Tb, loss, tape, row_scale=wb / xp.maximum(
                wsum, xp.full_like(wsum, self.tiny))), loss)
        else:
            J = model._add_l2(model._step_backward(Y, Tb, loss, tape), loss)
        if self.clip:
            self.clip(model.store)
        return J


@dataclasses.dataclass
class _Batches:
    """Row ranges [start, start + size) of one epoch's batches."""

    n: int
    batch_size: int | None
    drop_last: bool

    def __post_init__(self):
        spans = _spans(self.n, self.batch_size)
        if self.drop_last and self.batch_size is not None and spans[-1][1] - spans[-1][0] < self.batch_size:
            spans = _Spans(spans.n, spans.size, len(spans) - 1)
            if not spans:
                raise ValueError(f"drop_last with batch_size={self.batch_size} > {self.n} rows "
                                 f"leaves no batch")
        self.spans = spans
        self.n_used = min(self.n, len(spans) * spans.size)

    @property
    def steps(self) -> int:
        """Steps per epoch."""
        return len(self.spans)


class _Shards:
    """Every rank's batches of an epoch (data-parallel fit): this rank's ``spans``
    over its ``n`` rows, ``steps`` (the most batches any rank has: every rank
    runs them all), ``n_used`` (rows an epoch uses on all ranks together) and
    ``rows(s)``, the global batch's rows at step s."""

    def __init__(self, comm, mine: _Batches):
        from .distributed import sum_host

        facts = np.zeros(3 * comm.size)
        facts[3 * comm.rank:3 * comm.rank + 3] = (mine.n, mine.spans.size, len(mine.spans))
        facts = sum_host(comm, facts).reshape(comm.size, 3).astype(np.int64)  # one small all-reduce
        self.n, self.spans, self.batch_size = mine.n, mine.spans, mine.batch_size
        self._all = [_Spans(int(n), int(size), int(count)) for n, size, count in facts]
        self.steps = max(len(sp) for sp in self._all)
        self.n_used = sum(min(sp.n, len(sp) * sp.size) for sp in self._all)

    def rows(self, s: int) -> int:
        return sum(b - a for sp in self._all if s < len(sp) for a, b in (sp[s],))


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


def _epoch(run, X, T, loss, metric_objs, batches, order, epoch, bar, plan) -> dict:
    """One pass over the data; returns the epoch's logs. Two device reads: the
    summed loss and metrics, and whether every weight is still finite.
    ``order``: None (no shuffling), a permutation, or (indices, spans) of Poisson batches."""
    model, optimizer = run.model, run.optimizer
    xp = model.xp
    saved = _snapshot(model, optimizer)
    dp_steps = None if plan.dp is None else plan.dp.steps
    spans, n_used = batches.spans, batches.n_used
    if isinstance(order, tuple):
        order, spans = order
        n_used = max(order.shape[0], 1)
    # the epoch's row order moves to the device once; each batch gathers its rows from it
    idx = None if order is None else _compat.from_host(xp, order, device=model.device)
    w = plan.weight
    total, totals = 0.0, [0.0] * len(metric_objs)  # means, summed batch by batch (float16 never overflows)
    wtotal = 0.0
    try:
        for b, (start, stop) in enumerate(spans):
            Xb, Tb = _rows(xp, X, idx, start, stop), _rows(xp, T, idx, start, stop)
            Y, tape = model._step_forward(Xb)
            for i, m in enumerate(metric_objs):  # before the loss, which may write over Y
                totals[i] = totals[i] + m.total(Y, Tb, xp) * (1 / n_used)
            wb = None if w is None else _rows(xp, w, idx, start, stop)
            J = plan.grads(model, Y, tape, Tb, loss, wb)
            del Y
            optimizer.step(model)
            if wb is None:
                total = total + J * ((stop - start) / n_used)  # the batch's share of the epoch
            else:  # the epoch's loss is sum w J_n / sum w too
                wsum = xp.sum(wb)
                total, wtotal = total + J * wsum, wtotal + wsum
            bar.batch(epoch, b)
        epoch_loss = float(total if w is None else total / wtotal)  # the one read of the epoch's numbers
    except KeyboardInterrupt:  # maybe mid-update: back to the whole state before the epoch
        _restore(model, optimizer, saved)
        if dp_steps is not None:
            plan.dp.steps = dp_steps
        raise
    if not (math.isfinite(epoch_loss) and _all_finite(xp, model.parameters())):
        b, what = _replay(model, optimizer, X, T, idx, loss, spans, saved, plan)
        _restore(model, optimizer, saved)
        if dp_steps is not None:
            plan.dp.steps = dp_steps
        where = f"batch {b + 1} of {len(spans)}" if b is not None else \
            f"one of its {len(spans)} batches (a replay did not reproduce it)"
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}, {where}: {what}. The model and its "
            f"optimizer are back to their state before that epoch. Lower the learning rate "
            f"or check the scale of the data"
        )
    logs = {"loss": epoch_loss}
    for m, t in zip(metric_objs, totals):
        logs[m.name] = float(t)
    return logs


def _epoch_parallel(run, X, T, loss, metric_objs, shards, order, epoch, bar, comm) -> dict:
    """One pass of a data-parallel fit over this rank's shard: at each step this
    rank's batch (none once its rows run out), its gradient weighted by its share
    of the global batch's rows, one all-reduce, then the L2 term and the update,
    the same on every rank. Losses and metrics are reduced over the ranks once,
    at the end."""
    from . import distributed as _dist

    model, optimizer = run.model, run.optimizer
    xp, store = model.xp, model.store
    saved = _snapshot(model, optimizer)
    idx = None if order is None else _compat.from_host(xp, order, device=model.device)
    total, totals = 0.0, [0.0] * len(metric_objs)
    try:
        for s in range(shards.steps):
            rows = shards.rows(s)
            if s < len(shards.spans):
                start, stop = shards.spans[s]
                Xb, Tb = _rows(xp, X, idx, start, stop), _rows(xp, T, idx, start, stop)
                Y, tape = model._step_forward(Xb)
                for i, m in enumerate(metric_objs):
                    totals[i] = totals[i] + m.total(Y, Tb, xp) * (1 / shards.n_used)
                J = model._step_backward(Y, Tb, loss, tape)
                del Y
                total = total + J * ((stop - start) / shards.n_used)
                share = (stop - start) / rows
            else:
                _dist.zero_grads(store)
                share = 1.0
            _dist.allreduce_grads(store, comm, share)
            if loss.l2:  # every rank's term, counted once in the epoch's loss
                penalty = model._add_l2(0.0, loss)
                if comm.rank == 0:
                    total = total + penalty * (rows / shards.n_used)
            optimizer.step(model)
            bar.batch(epoch, s)
        sums = _dist.sum_host(comm, [float(total)] + [float(t) for t in totals])  # the epoch's one read
    except KeyboardInterrupt:  # maybe mid-update: back to the whole state before the epoch
        _restore(model, optimizer, saved)
        raise
    epoch_loss = float(sums[0])
    if not (math.isfinite(epoch_loss) and _all_finite(xp, model.parameters())):
        _restore(model, optimizer, saved)
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1} (data-parallel over {comm.size} ranks: the batch is "
            f"not located): the loss or the weights became NaN or infinite. The model and its optimizer "
            f"are back to their state before that epoch. Lower the learning rate or check the scale of the data"
        )
    logs = {"loss": epoch_loss}
    for m, t in zip(metric_objs, sums[1:]):
        logs[m.name] = float(t)
    return logs


def _same_run(comm, facts: dict) -> None:
    """Refuse, on every rank, a run whose ranks disagree on ``facts`` (numbers that
    decide which collectives a rank makes): one small all-reduce."""
    from .distributed import sum_host

    k = len(facts)
    table = np.zeros((comm.size, k))
    table[comm.rank] = [float(v) for v in facts.values()]
    table = sum_host(comm, table).reshape(comm.size, k)
    differ = [name for j, name in enumerate(facts) if not np.all(table[:, j] == table[0, j])]
    if differ:
        raise ValueError(f"the {comm.size} ranks were given different {', '.join(differ)}: every rank "
                         f"must run the same fit (only the data shards differ)")


def _agreed(comm, checks):
    """``checks()`` on every rank, and its result only if it passed on all of them:
    a rank whose data are refused raises its error, the others say which ranks
    refused theirs (no rank is left waiting in a collective)."""
    from .distributed import sum_host

    try:
        out, err = checks(), None
    except Exception as exc:  # noqa: BLE001 - any failure here is raised on its rank, after the others know
        out, err = None, exc
    flags = np.zeros(comm.size)
    flags[comm.rank] = err is not None
    flags = sum_host(comm, flags)
    if err is not None:
        raise err
    if flags.any():
        bad = [r for r in range(comm.size) if flags[r]]
        raise ValueError(f"rank(s) {bad} refused their data or arguments (see their errors); "
                         f"nothing was trained on any rank")
    return out


def _all_finite(xp, arrays) -> bool:
    """Whether every value of every array is finite: one device read."""
    return bool(xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays])))


def _rows(xp, A, idx, start, stop):
    """Batch rows start..stop of A in this epoch's order: a slice of A itself
    (no copy) when idx is None (no shuffling), else rows idx[start:stop]
    gathered on the device. One batch is copied at a time, never all of A."""
    return A[start:stop, ...] if idx is None else xp.take(A, idx[start:stop], axis=0)


def _replay(model, optimizer, X, T, idx, loss, spans, saved, plan):
    """(batch index, what went wrong) of a diverged epoch, found by running it
    again, on the same batches, from ``saved`` with a check after every batch
    (the failure path only: one device read per batch). (None, ...) if the
    replay stays finite."""
    xp = model.xp
    _restore(model, optimizer, saved)
    for b, (start, stop) in enumerate(spans):
        Xb, Tb = _rows(xp, X, idx, start, stop), _rows(xp, T, idx, start, stop)
        wb = None if plan.weight is None else _rows(xp, plan.weight, idx, start, stop)
        Y, tape = model._step_forward(Xb)
        J = float(plan.grads(model, Y, tape, Tb, loss, wb))
        del Y
        if not math.isfinite(J):
            return b, f"the loss became {J}"
        optimizer.step(model)
        if not _all_finite(xp, model.parameters()):
            return b, f"its update made the weights NaN or infinite (the batch's loss was {J:.6g})"
    return None, "the loss or the weights became NaN or infinite"


_BLOCK = 1 << 20  # values of the widest layer per block of predict/evaluate by default (4 MiB of float32)


def block_rows(model) -> int:
    """Rows per block of :func:`predict` and :func:`evaluate` when no batch_size is
    given: about 1 Mi values of the widest layer's activations (at least 1024 rows),
    so their extra memory does not grow with N."""
    width = max(max(layer.n_in, layer.n_out) for layer in model.layers)
    return max(1024, _BLOCK // max(width, 1))


def predict(model, X, batch_size: int | None = None) -> Any:
    """Outputs (N, n_out) for X (N, n_in), in batches of ``batch_size`` rows
    (default :func:`block_rows`: the extra memory is a block's, whatever N).

    Leaves what the last ``forward`` kept for ``backward`` untouched.
    """
    model.check_input(X)
    batch_size = block_rows(model) if batch_size is None else _positive_int("batch_size", batch_size)
    _refuse_not_finite(model.xp, "X", X, "predicting")
    return _predict(model, X, batch_size)


def _predict(model, X, batch_size):
    n = X.shape[0]
    if batch_size is None or batch_size >= n:
        return model._infer(X)
    spans = _spans(n, batch_size)
    first = model._infer(X[spans[0][0]:spans[0][1], ...])
    if _compat.writer(first) is None:  # a namespace the library does not write: one concat
        return model.xp.concat([first] + [model._infer(X[a:b, ...]) for a, b in spans[1:]], axis=0)
    out = model.xp.empty((n, first.shape[1]), dtype=first.dtype, device=model.device)
    out[:spans[0][1], ...] = first
    del first
    for a, b in spans[1:]:  # each block written into its rows: no list of blocks, no second copy
        out[a:b, ...] = model._infer(X[a:b, ...])
    return out


def evaluate(model, X, T, loss=None, metrics: Sequence = ("accuracy",),
             batch_size: int | None = None, sample_weight: Any = None, comm: Any = None) -> dict[str, float]:
    """``{"loss": J, metric: value, ...}`` on X (N, n_in) and T as Python floats;
    ``loss=None`` leaves J out. T is checked against the loss and every metric first.
    With no ``batch_size`` the rows go in blocks of :func:`block_rows`, each block's
    loss and metric sums added up, so the extra memory does not grow with N.
    ``sample_weight`` (N,) >= 0: the loss and every metric are weighted means over rows.
    With a communicator (nnbackprop.distributed) of more than one rank, X and T
    are this rank's shard and the figures are those of all shards together, the
    same on every rank."""
    from . import distributed as _dist

    comm = None if comm is None else _dist.get_communicator(comm)
    parallel = comm is not None and comm.size > 1

    def checks():
        loss_ = _losses.get(loss) if loss is not None else None
        metric_objs_ = [_metrics.get(m).for_model(model) for m in metrics]
        model.check_input(X)
        _need_rows(X, "X")
        if loss_ is not None:
            model.check_target(T, loss_, n_rows=X.shape[0])
        else:
            _compat.check_array(T, name="T", xp=model.xp, device=model.device)
            if T.shape[0] != X.shape[0]:
                raise ValueError(f"X has {X.shape[0]} rows but T has {T.shape[0]}; they must match")
        _check_metrics(model, T, metric_objs_, "T")
        batch_ = None if batch_size is None else _positive_int("batch_size", batch_size)
        for name, A in (("X", X), ("T", T)):
            _refuse_not_finite(model.xp, name, A, "evaluating")
        w_ = None
        if sample_weight is not None:
            if parallel:
                raise ValueError(f"sample_weight is not yet supported with a communicator of {comm.size} ranks")
            from .weights import check_weight

            w, wsum = check_weight(sample_weight, X.shape[0], model.xp, model.device, model.dtype)
            w_ = None if w is None else w / wsum
        return loss_, metric_objs_, batch_, w_

    loss, metric_objs, batch_size, weight = _agreed(comm, checks) if parallel else checks()
    if weight is not None:
        return _evaluate(model, X, T, loss, metric_objs, batch_size, weight=weight)
    if parallel:
        return _evaluate_shards(model, X, T, loss, metric_objs, batch_size, comm)
    if batch_size is None and X.shape[0] > block_rows(model):
        return _evaluate_blocks(model, X, T, loss, metric_objs, block_rows(model))
    return _evaluate(model, X, T, loss, metric_objs, batch_size)


def _evaluate_blocks(model, X, T, loss, metric_objs, rows) -> dict[str, float]:
    """:func:`_evaluate` block by block: the mean loss as the blocks' means weighted by
    their share of the rows, the metrics as sums; one read at the end."""
    xp, n = model.xp, X.shape[0]
    total, totals = 0.0, [0.0] * len(metric_objs)
    for a, b in _spans(n, rows):
        Y, Tb = model._infer(X[a:b, ...]), T[a:b, ...]
        for i, m in enumerate(metric_objs):  # before the loss, which may write over Y
            totals[i] = totals[i] + m.total(Y, Tb, xp)
        if loss is not None:
            total = total + loss.value(Y, Tb, xp) * ((b - a) / n)
        del Y
    out = {}
    if loss is not None:
        out["loss"] = float(total + (model.l2_penalty(loss.l2) if loss.l2 else 0.0))
    for m, t in zip(metric_objs, totals):
        out[m.name] = float(t) / n
    return out


def _evaluate_shards(model, X, T, loss, metric_objs, batch_size, comm) -> dict[str, float]:
    """The figures of every rank's shard together: each rank's means (the L2 term,
    the same on every rank, included) weighted by its rows, in one small all-reduce."""
    from .distributed import sum_host

    n = X.shape[0]
    local = _evaluate_blocks(model, X, T, loss, metric_objs, batch_size or block_rows(model))
    keys = list(local)
    sums = sum_host(comm, [local[k] * n for k in keys] + [n])
    return {k: float(v) / float(sums[-1]) for k, v in zip(keys, sums[:-1])}


def _evaluate(model, X, T, loss, metric_objs, batch_size, weight=None) -> dict[str, float]:
    """``weight``: the rows' w / sum w (N,), or None for plain means."""
    xp = model.xp
    Y = _predict(model, X, batch_size)
    out = {}
    if loss is not None:
        J = loss.value(Y, T, xp) if weight is None else loss.value_and_grad(Y, T, xp, row_scale=weight)[0]
        out["loss"] = float(J + (model.l2_penalty(loss.l2) if loss.l2 else 0.0))
    for m in metric_objs:
        if weight is None:
            out[m.name] = float(m.total(Y, T, xp)) / X.shape[0]
        else:
            out[m.name] = float(xp.sum(weight * m.rows(Y, T, xp)))
    return out


def check_data(model, X, T, loss, metric_objs=(), names=("X", "T")) -> None:
    """Every check ``fit`` makes of its data, with the numbers in the message."""
    model.check_input(X, name=names[0])
    _need_rows(X, names[0])
    model.check_target(T, loss, n_rows=X.shape[0], name=names[1])
    _check_metrics(model, T, metric_objs, names[1])
    for name, A in zip(names, (X, T)):
        _refuse_not_finite(model.xp, name, A, "training")


def _refuse_not_finite(xp, name, A, doing: str) -> None:
    """Refuse a floating A holding NaN or infinity, with the counts in the message."""
    if xp.isdtype(A.dtype, "real floating") and A.shape[0] > 0:
        if not _all_finite(xp, list(_blocks(A))):  # the one read when all is well
            bad = int(_count_not_finite(xp, A))
            rows = int(_count_not_finite(xp, A, rows=True))
            raise ValueError(f"{name} holds {bad} NaN or infinite values in {rows} rows; "
                             f"remove or impute them before {doing}")


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
