"""Data-parallel step on loopback: all-reduce of the flat gradient buffer against compute.

    python -m benchmarks.distributed benchmarks/results/distributed.json [--ranks 1,2] [--sizes tiny,medium,large]

launches itself under ``mpiexec -n R`` for each R and merges what rank 0 of each
run measured. Under a launcher (``mpiexec -n 2 python -m benchmarks.distributed
--rank-run OUT``) every rank trains the size's network on its own batch of the
size's batch rows (weak scaling: the global batch grows with the ranks), float32,
and times, per step and between barriers: compute (``value_and_grad``: forward,
loss, backward), the all-reduce of the flat gradient buffer (with the share
weighting), and the update (``optimizer.step``). It also times an all-reduce of a
64 MiB buffer, for the loopback bandwidth (bus bandwidth, 2(N-1)/N x bytes / time,
as NCCL's tests report it). Each rank limits its BLAS threads to cores / ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnbackprop as nb  # noqa: E402

from .workloads import SIZES, host_data  # noqa: E402

REPS = {"tiny": 200, "medium": 40, "large": 4}
BANDWIDTH_BYTES = 64 << 20


def _timed(comm, fn) -> float:
    comm.barrier()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _measure_size(comm, name: str) -> dict:
    """Median compute, all-reduce and update per step of the size's network on this rank."""
    size = SIZES[name]
    model = nb.mlp(size.layers, "relu", dtype="float32", seed=0)
    Xh, y = host_data(size, seed=comm.rank)
    X = Xh.astype(np.float32)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(lr=0.01)
    store = model.store
    parts = {"compute": [], "allreduce": [], "update": []}
    for r in range(REPS[name] + 2):
        c = _timed(comm, lambda: model.value_and_grad(X, y, loss))
        a = _timed(comm, lambda: nb.distributed.allreduce_grads(store, comm, 1 / comm.size))
        u = _timed(comm, lambda: opt.step(model))
        if r >= 2:  # the first steps allocate and warm the caches
            for k, v in zip(parts, (c, a, u)):
                parts[k].append(v)
    med = {k: float(np.median(v)) for k, v in parts.items()}
    return {"params": store.size, "bytes": store.size * 4, "rows_per_rank": size.batch, **med,
            "step": sum(med.values()), "reps": REPS[name]}


def rank_run(out: Path, sizes: list[str]) -> None:
    comm = nb.distributed.get_communicator("mpi")
    result = {"ranks": comm.size, "sizes": {}}
    for name in sizes:
        result["sizes"][name] = _measure_size(comm, name)
    buf = np.ones(BANDWIDTH_BYTES // 4, dtype=np.float32)
    times = [_timed(comm, lambda: comm.allreduce_(buf)) for _ in range(12)][2:]
    t = float(np.median(times))
    result["bandwidth"] = {"bytes": BANDWIDTH_BYTES, "seconds": t,
                           "bus_GBps": 2 * (comm.size - 1) / comm.size * BANDWIDTH_BYTES / t / 1e9
                           if comm.size > 1 else None}
    if comm.rank == 0:
        out.write_text(json.dumps(result, indent=1))


def mpiexec() -> str | None:
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def run_all(out: Path, ranks: list[int], sizes: list[str], timeout: float = 1800) -> dict:
    """Each rank count under mpiexec, merged into ``out`` ({"runs": [...], "cores": ...})."""
    exe = mpiexec()
    if exe is None:
        raise SystemExit("no mpiexec: pip install 'nnbackprop[mpi]'")
    runs = []
    for n in ranks:
        part = out.with_name(f"{out.stem}.{n}.json")
        subprocess.run([exe, "-n", str(n), sys.executable, "-m", "benchmarks.distributed", "--rank-run", str(part),
                        "--sizes", ",".join(sizes)], check=True, timeout=timeout,
                       cwd=Path(__file__).resolve().parents[1])
        runs.append(json.loads(part.read_text()))
        part.unlink()
    data = {"runs": runs, "cores": os.cpu_count()}
    out.write_text(json.dumps(data, indent=1))
    return data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="benchmarks/results/distributed.json")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--sizes", default="tiny,medium,large")
    ap.add_argument("--rank-run", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    if args.rank_run:
        rank_run(Path(args.rank_run), sizes)
        return
    data = run_all(Path(args.out), [int(r) for r in args.ranks.split(",")], sizes)
    print(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
