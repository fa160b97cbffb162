"""Data-parallel training cases, shared by the launched ranks and the test that checks them.

    mpiexec -n 2 python tests/distributed_cases.py CASE OUT_DIR [mpi|torch] [BACKEND]

runs ``CASE`` on every rank (each on its own shard) and writes
``OUT_DIR/rank{r}.npz``: the flat parameters after every epoch, the epoch losses
(and validation losses), the epoch training stopped at, and (rank 0, where the
case saves) a checkpoint. :func:`reference` trains one process on the ranks'
batches concatenated in rank order, step by step, with ``train_step``: the
update the ranks must have made.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backends  # noqa: E402
import nnbackprop as nb  # noqa: E402
from nnbackprop import _compat  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Case:
    optimizer: str
    opt_kw: tuple = ()
    shards: tuple = (40, 40, 40)      # rows per rank (the first `size` are used)
    batch: int | None = 16
    epochs: int = 3
    l2: float = 0.0
    shuffle: bool = False
    drop_last: bool = False
    early_stopping: bool = False       # with sharded validation data
    save: bool = False                 # rank 0 saves a checkpoint at the end
    prefit: bool = False               # rank 0 alone trains an epoch first: the optimizer has state there only
    reference: bool = True             # whether one process can reproduce it (no: own shuffles, prefit)

    def make_optimizer(self):
        return nb.optim.get(self.optimizer, **dict(self.opt_kw)) if self.opt_kw else nb.optim.get(self.optimizer)


CASES = {
    "sgd_momentum": Case("sgd", (("lr", 0.1), ("momentum", 0.9))),
    "sgd_momentum_l2_unequal": Case("sgd", (("lr", 0.1), ("momentum", 0.9)), shards=(37, 50, 23), l2=1e-2),
    "adam_unequal": Case("adam", (("lr", 0.01),), shards=(45, 29, 61)),
    "adam_l2_drop_last": Case("adam", (("lr", 0.01),), shards=(45, 29, 61), l2=1e-3, drop_last=True),
    "adamw_l2": Case("adamw", (("lr", 0.01), ("weight_decay", 0.05)), shards=(33, 33, 34), l2=1e-3),
    "full_batch": Case("sgd", (("lr", 0.5),), shards=(30, 21, 17), batch=None),
    "early_stopping": Case("sgd", (("lr", 0.3),), shards=(40, 35, 30), epochs=30, early_stopping=True),
    "checkpoint": Case("adam", (("lr", 0.01),), shards=(40, 31, 22), save=True),
    "shuffled": Case("adam", (("lr", 0.01),), shards=(41, 30, 25), shuffle=True, reference=False),
    "optimizer_state_on_rank0": Case("adam", (("lr", 0.01),), shards=(41, 30, 25), prefit=True, reference=False),
}
# runs every rank must refuse (the same error on all, none left waiting): name -> fit arguments
BAD = {
    "bad_seed": {"seed": 2 ** 300},
    "bad_validation_on_rank0_only": {"validation_on": 0},
    "bad_epochs_differ": {"epochs_by_rank": True},
}
N_IN, HIDDEN, N_OUT = 5, 7, 3


def data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_IN))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, y


def shard(case: Case, rank: int, seed: int = 1):
    """Rank ``rank``'s rows: each rank its own draw."""
    return data(case.shards[rank], seed * 1000 + rank)


def val_shard(rank: int):
    return data(15 + 4 * rank, 99 + rank)


def build(xp, dtype="float64", device=None, seed=3):
    return nb.Sequential([nb.Dense(N_IN, HIDDEN, "tanh"), nb.Dense(HIDDEN, HIDDEN, "relu"), nb.Dense(HIDDEN, N_OUT)],
                         xp=xp, dtype=dtype, device=device, seed=seed)


def flat(model) -> np.ndarray:
    return np.concatenate([_compat.to_host(p).reshape(-1) for p in model.parameters()])


def run_bad(name: str, out: Path, kind: str) -> None:
    """A fit every rank must refuse: each rank writes the error it raised."""
    comm = nb.distributed.get_communicator(kind)
    bad = BAD[name]
    model = build(np)
    X, y = shard(CASES["sgd_momentum"], comm.rank)
    kw = {"seed": bad.get("seed", 11), "epochs": 2 + comm.rank if bad.get("epochs_by_rank") else 2}
    if "validation_on" in bad and comm.rank == bad["validation_on"]:
        kw["validation_data"] = val_shard(comm.rank)
    try:
        model.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", batch_size=16, progress=False,
                  comm=comm, **kw)
        err = ""
    except ValueError as exc:
        err = str(exc)
    np.savez(out / f"rank{comm.rank}.npz", error=np.array(err), size=comm.size, snaps=flat(model)[None])


def run_rank(name: str, out: Path, kind: str, backend: str) -> None:
    if name in BAD:
        return run_bad(name, out, kind)
    case = CASES[name]
    comm = nb.distributed.get_communicator(kind)
    spec = backends.get(backend)
    mod = spec.load()
    xp = _compat.namespace(mod)
    device = spec.device_factory(mod) if spec.device_factory else None
    model = build(mod, device=device, seed=3 + comm.rank)  # rank 0's weights must win

    def put(a, dtype):
        x = _compat.from_host(xp, a, dtype, model.device)
        if spec.freeze is not None:
            spec.freeze(x)
        return x

    Xh, yh = shard(case, comm.rank)
    X, y = put(Xh, model.dtype), put(yh, xp.int64)
    snaps = []
    callbacks = [nb.callbacks.LambdaCallback(on_epoch_end=lambda run, e, logs: snaps.append(flat(run.model)))]
    kw = {}
    if case.early_stopping:
        Xv, yv = val_shard(comm.rank)
        kw["validation_data"] = (put(Xv, model.dtype), put(yv, xp.int64))
        callbacks.append(nb.callbacks.EarlyStopping(patience=2, min_delta=1e-3))
    loss = nb.losses.SoftmaxCrossEntropy(l2=case.l2)
    opt = case.make_optimizer()
    if case.prefit and comm.rank == 0:  # rank 0's optimizer has state and a step count, the others' none
        model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=case.batch, shuffle=False, progress=False)
    hist = model.fit(X, y, loss=loss, optimizer=opt, epochs=case.epochs,
                     batch_size=case.batch, shuffle=case.shuffle, seed=11, drop_last=case.drop_last,
                     callbacks=callbacks, progress=False, metrics=["accuracy"], comm=comm, **kw)
    extra = {}
    if case.save:
        model.save(out / "model.npz", comm=comm)
        extra["reloaded"] = flat(nb.load(out / "model.npz"))  # every rank reads rank 0's file, once complete
    ev = model.evaluate(X, y, loss=loss, metrics=["accuracy"], comm=comm)
    np.savez(out / f"rank{comm.rank}.npz", snaps=np.array(snaps), t=opt.state.t, loss=np.array(hist["loss"]),
             accuracy=np.array(hist["accuracy"]), val_loss=np.array(hist.history.get("val_loss", [])),
             epochs=len(hist["loss"]), size=comm.size, eval_loss=ev["loss"], eval_acc=ev["accuracy"], **extra)


def reference(name: str, size: int):
    """One process, on the ranks' batches in rank order, step by step: (flat parameters
    after each epoch, epoch losses, validation losses)."""
    case = CASES[name]
    model = build(np)
    opt = case.make_optimizer()
    loss = nb.losses.SoftmaxCrossEntropy(l2=case.l2)
    shards = [shard(case, r) for r in range(size)]
    spans = []
    for X, _ in shards:
        n = X.shape[0]
        b = n if case.batch is None else min(case.batch, n)
        s = [(a, min(a + b, n)) for a in range(0, n, b)]
        if case.drop_last and s[-1][1] - s[-1][0] < b:
            s = s[:-1]
        spans.append(s)
    steps = max(len(s) for s in spans)
    n_used = sum(sp[-1][1] for sp in spans)
    vals = [val_shard(r) for r in range(size)]
    Xv, yv = np.concatenate([v[0] for v in vals]), np.concatenate([v[1] for v in vals])
    snaps, losses, val_losses = [], [], []
    stopper = nb.callbacks.EarlyStopping(patience=2, min_delta=1e-3) if case.early_stopping else None
    run = nb.training.Run(model, opt, nb.training.History())
    if stopper:
        stopper.on_train_begin(run)
    for epoch in range(case.epochs):
        total = 0.0
        for s in range(steps):
            parts = [(X[a:b], y[a:b]) for (X, y), sp in zip(shards, spans) if s < len(sp) for a, b in (sp[s],)]
            Xb, yb = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            total += float(model.train_step(Xb, yb, loss, opt)) * Xb.shape[0] / n_used
        snaps.append(flat(model))
        losses.append(total)
        logs = {"loss": total}
        if stopper:
            logs["val_loss"] = model.evaluate(Xv, yv, loss=loss, metrics=())["loss"]
            val_losses.append(logs["val_loss"])
            stopper.on_epoch_end(run, epoch, logs)
            if run.stopped:
                break
    return np.array(snaps), np.array(losses), np.array(val_losses)


if __name__ == "__main__":
    run_rank(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "mpi",
             sys.argv[4] if len(sys.argv) > 4 else "numpy")
