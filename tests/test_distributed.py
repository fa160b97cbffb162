"""Data-parallel fit over MPI (mpiexec) and torch.distributed (torchrun, gloo).

Each test launches the ranks itself, as a subprocess with a timeout (a rank stuck
in a collective fails the test, never hangs the suite), from
tests/distributed_cases.py, and checks what they wrote against one process that
trains on the ranks' batches concatenated in rank order (``reference``), in
float64: the ranks' weights equal each other bit for bit after every epoch and
the reference within 1e-12 relative, and so do the epoch losses.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnbackprop as nb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_cases as dc  # noqa: E402

WORKER = Path(__file__).resolve().parent / "distributed_cases.py"
TIMEOUT = 180
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def _need_mpi():
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed: pip install 'nnbackprop[mpi]' (mpi4py, mpich)")
    if MPIEXEC is None:
        pytest.skip("no mpiexec beside the interpreter or on PATH: pip install mpich")


def _env():
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def launch(cmd, out: Path):
    try:
        p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"ranks did not finish within {TIMEOUT} s (stuck in a collective?): {exc.stderr}")
    assert p.returncode == 0, f"ranks failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    return [dict(np.load(f)) for f in sorted(out.glob("rank*.npz"))]


def mpi_run(case, n, out, backend="numpy"):
    _need_mpi()
    return launch([MPIEXEC, "-n", str(n), sys.executable, str(WORKER), case, str(out), "mpi", backend], out)


def torchrun(case, n, out, backend="numpy"):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: torch.distributed cannot be tested")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    return launch([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                   str(WORKER), case, str(out), "auto", backend], out)


def check(case, ranks, n):
    assert len(ranks) == n and all(int(r["size"]) == n for r in ranks)
    first = ranks[0]
    for r in ranks[1:]:  # the same weights on every rank, bit for bit, after every epoch
        np.testing.assert_array_equal(r["snaps"], first["snaps"])
        np.testing.assert_array_equal(r["loss"], first["loss"])
        assert r["eval_loss"] == first["eval_loss"] and r["eval_acc"] == first["eval_acc"]
    if not dc.CASES[case].reference:  # own shuffles, or a prefit on rank 0: only rank equality holds
        assert np.isfinite(first["snaps"]).all() and len(first["snaps"]) == dc.CASES[case].epochs
        return
    snaps, losses, val_losses = dc.reference(case, n)
    assert int(first["epochs"]) == len(snaps)
    scale = np.abs(snaps).max()
    np.testing.assert_allclose(first["snaps"], snaps, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(first["loss"], losses, rtol=1e-12)
    if len(val_losses):
        np.testing.assert_allclose(first["val_loss"], val_losses, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("case", list(dc.CASES))
def test_mpi_equals_one_process(case, n, tmp_path):
    check(case, mpi_run(case, n, tmp_path), n)


def test_optimizer_state_and_step_count_come_from_rank0(tmp_path):
    """Rank 0 alone trained an epoch (its Adam has moments and t = 3), the others start
    fresh: after the data-parallel fit every rank has rank 0's step count and weights."""
    ranks = mpi_run("optimizer_state_on_rank0", 3, tmp_path)
    check("optimizer_state_on_rank0", ranks, 3)
    assert {int(r["t"]) for r in ranks} == {3 + 3 * 3}  # 41 rows / 16: 3 steps alone, then 3 epochs of 3


@pytest.mark.parametrize("bad", list(dc.BAD))
def test_a_run_the_ranks_disagree_on_is_refused_on_every_rank(bad, tmp_path):
    """A seed too large, validation data on one rank only, different epochs: every rank
    raises (none is left waiting in a collective, the launch ends well within its timeout)
    and no weights change."""
    ranks = mpi_run(bad, 2, tmp_path)
    assert len(ranks) == 2
    for r in ranks:
        assert str(r["error"]), "each rank refused"
    fresh = dc.flat(dc.build(np))
    np.testing.assert_array_equal(ranks[0]["snaps"][0], fresh)


def test_mpi_checkpoint_saved_once_reloads_equal(tmp_path):
    ranks = mpi_run("checkpoint", 2, tmp_path)
    check("checkpoint", ranks, 2)
    for r in ranks:
        np.testing.assert_array_equal(r["reloaded"], ranks[0]["snaps"][-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "rank0.npz", "rank1.npz"]


def test_mpi_evaluate_is_over_all_shards(tmp_path):
    """evaluate(comm=) on shards gives the figures of one evaluate on their concatenation."""
    ranks = mpi_run("sgd_momentum_l2_unequal", 3, tmp_path)
    case = dc.CASES["sgd_momentum_l2_unequal"]
    model = dc.build(np)
    flat = ranks[0]["snaps"][-1]
    params, start = [], 0
    for p in model.parameters():
        params.append(flat[start:start + p.size].reshape(p.shape))
        start += p.size
    model.store.assign(params)
    X = np.concatenate([dc.shard(case, r)[0] for r in range(3)])
    y = np.concatenate([dc.shard(case, r)[1] for r in range(3)])
    ev = model.evaluate(X, y, loss=nb.losses.SoftmaxCrossEntropy(l2=case.l2), metrics=["accuracy"])
    assert ranks[0]["eval_loss"] == pytest.approx(ev["loss"], rel=1e-12)
    assert ranks[0]["eval_acc"] == pytest.approx(ev["accuracy"], rel=1e-12)


@pytest.mark.parametrize("case", ["adam_unequal", "sgd_momentum_l2_unequal", "checkpoint"])
def test_mpi_on_the_test_backend(be, case, tmp_path):
    """The same over MPI with the model on each backend of the run (CPU tensors
    reduced where they lie; arrays that cannot be written go through host buffers)."""
    check(case, mpi_run(case, 2, tmp_path, backend=be.name), 2)


@pytest.mark.parametrize("case", ["adam_unequal", "adamw_l2", "early_stopping"])
def test_torch_distributed_gloo(case, tmp_path):
    check(case, torchrun(case, 2, tmp_path), 2)


def test_local_comm_is_bit_identical_to_no_comm():
    case = dc.CASES["adam_l2_drop_last"]
    X, y = dc.shard(case, 0)
    out = []
    for comm in (None, nb.distributed.LocalComm(), "local"):
        m = dc.build(np)
        h = m.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(l2=case.l2), optimizer=case.make_optimizer(),
                  epochs=3, batch_size=16, seed=5, progress=False, comm=comm)
        out.append((dc.flat(m), h["loss"]))
    for f, loss in out[1:]:
        np.testing.assert_array_equal(f, out[0][0])
        assert loss == out[0][1]


def test_get_communicator_refuses_what_is_not_one():
    with pytest.raises(ValueError, match="choose 'auto'"):
        nb.distributed.get_communicator("gloo")
    with pytest.raises(TypeError, match="must be a communicator"):
        nb.distributed.get_communicator(object())
    assert isinstance(nb.distributed.get_communicator(None), nb.distributed.LocalComm)


def test_cli_train_distributed(tmp_path):
    """`mpiexec -n 2 nnbackprop train --distributed`: one report, one checkpoint, which
    loads; both ranks trained (the data-parallel line names 2 ranks)."""
    _need_mpi()
    out = tmp_path / "m.npz"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "nnbackprop", "train", "--distributed", "--epochs", "3",
           "--no-progress", "--out", str(out)]
    p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-4000:]
    assert p.stdout.count("saved ") == 1 and "data-parallel: 2 ranks" in p.stdout
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.npz"]
    assert nb.load(out).n_in == 64


class _TwoRanks(nb.distributed.LocalComm):
    """A stand-in for rank 0 of 2 whose collectives sum only its own buffer: enough to
    reach the checks every rank makes before any collective that moves data."""

    size = 2


@pytest.mark.parametrize("extra", [{"sample_weight": np.ones(40)}, {"clip_norm": 1.0}, {"resume": True}])
def test_what_data_parallel_fit_does_not_do_yet_is_refused(extra):
    X, y = dc.shard(dc.CASES["sgd_momentum"], 0)
    m = dc.build(np)
    before = dc.flat(m)
    with pytest.raises(ValueError, match="communicator of 2 ranks"):
        m.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", epochs=1, progress=False,
              comm=_TwoRanks(), **extra)
    np.testing.assert_array_equal(dc.flat(m), before)


@pytest.mark.parametrize("layer", [lambda: nb.Dropout(0.3), lambda: nb.BatchNorm(dc.HIDDEN)])
def test_layers_that_differ_per_rank_are_refused_with_a_communicator(layer):
    m = nb.Sequential([nb.Dense(dc.N_IN, dc.HIDDEN, "relu"), layer(), nb.Dense(dc.HIDDEN, dc.N_OUT)], seed=0)
    X, y = dc.shard(dc.CASES["sgd_momentum"], 0)
    with pytest.raises(ValueError, match="communicator of 2 ranks"):
        m.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", epochs=1, progress=False, comm=_TwoRanks())
