"""Data-parallel training: the same script on 1, 2 or N processes, the same model.

    python examples/distributed.py                       # one process
    mpiexec -n 2 python examples/distributed.py          # MPI (pip install 'nnbackprop[mpi]')
    torchrun --nproc_per_node=2 examples/distributed.py  # torch.distributed (gloo on CPU)

Every rank reads only its own shard of the digits (rows rank, rank + size, ...),
trains with the global batch split over the ranks (batch_size is per rank), and
ends with the same weights as every other rank; rank 0 prints and saves.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.datasets import load_digits

import nnbackprop as nb


def main(out: str = "distributed_model.npz") -> float:
    comm = nb.distributed.get_communicator("auto")  # MPI, torch.distributed or one process
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    test = np.arange(len(X)) % 5 == 0                  # the same held-out rows on every rank
    mine = np.flatnonzero(~test)[comm.rank::comm.size]  # this rank's shard of the training rows
    model = nb.mlp([64, 128, 10], "relu", seed=0)
    model.fit(X[mine], y[mine], loss="softmax_cross_entropy", optimizer=nb.optim.Adam(lr=1e-3),
              epochs=20, batch_size=64 // comm.size, seed=0, progress=comm.rank == 0, comm=comm)
    shard = np.flatnonzero(test)[comm.rank::comm.size]
    acc = model.evaluate(X[shard], y[shard], metrics=["accuracy"], comm=comm)["accuracy"]
    model.save(out, comm=comm)  # rank 0 writes; the others wait for the file
    if comm.rank == 0:
        print(f"{comm.size} rank(s): test accuracy {acc:.3f}, saved {out}")
    return acc


if __name__ == "__main__":
    main(*sys.argv[1:])
