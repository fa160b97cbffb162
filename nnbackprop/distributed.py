"""Data-parallel training: the communicators ``fit`` all-reduces gradients through.

A communicator is the smallest thing data parallelism needs from a distributed
engine::

    comm.rank, comm.size          this process's index and the number of processes
    comm.allreduce_(buf)          buf <- sum over ranks of buf, in place (buf 1-D)
    comm.bcast_(buf, root=0)      buf <- root's buf, in place
    comm.barrier()                wait until every rank gets here

Three are built in: :class:`LocalComm` (one process, every call a no-op),
:class:`MPIComm` (mpi4py: ``mpiexec -n 4 python train.py``) and
:class:`TorchComm` (torch.distributed, gloo on CPU or NCCL on CUDA: ``torchrun
--nproc_per_node=4 train.py``); :func:`get_communicator` picks one from the
environment. mpi4py and torch are imported only when those are built.

With a communicator, ``fit`` trains on every rank's own shard of the data: at
each step the ranks' batches together are the global batch, each rank's gradient
is weighted by its share of the global batch's rows, and one all-reduce of the
flat gradient buffer makes every rank's update the same (see
:func:`allreduce_grads`).
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any, Protocol

import numpy as np

from . import _compat

__all__ = ["Communicator", "LocalComm", "MPIComm", "TorchComm", "get_communicator", "allreduce_grads",
           "broadcast_model", "sum_host", "limit_threads"]


class Communicator(Protocol):
    rank: int
    size: int

    def allreduce_(self, buf: Any) -> Any: ...
    def bcast_(self, buf: Any, root: int = 0) -> Any: ...
    def barrier(self) -> None: ...


class LocalComm:
    """One process: rank 0 of 1; every collective leaves its buffer as it is."""

    rank, size = 0, 1

    def allreduce_(self, buf: Any) -> Any:
        return buf

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        return buf

    def barrier(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalComm()"


def _host_view(buf: Any) -> np.ndarray | None:
    """A NumPy array sharing ``buf``'s memory (NumPy itself, a CPU tensor through
    DLPack), or None where buf is not in host memory or cannot be shared."""
    if isinstance(buf, np.ndarray):
        return buf
    try:
        view = np.from_dlpack(buf)
    except (TypeError, RuntimeError, BufferError, ValueError):
        return None
    return view if view.flags.writeable else None


def _staged(buf: Any, collective) -> Any:
    """Run ``collective`` (on a NumPy array, in place) over ``buf``: on its memory
    where NumPy can share it, else through a host copy written back into buf."""
    view = _host_view(buf)
    if view is not None:
        collective(view)
        return buf
    host = np.ascontiguousarray(_compat.to_host(buf))
    collective(host)
    xp = _compat.namespace_of(buf)
    buf[...] = _compat.from_host(xp, host, buf.dtype, _compat.device_of(buf))
    return buf


class MPIComm:
    """A communicator over MPI (mpi4py's ``MPI.COMM_WORLD`` unless ``comm`` is given).

    Buffers in host memory (NumPy, CPU PyTorch tensors) are reduced where they lie;
    others (CuPy, CUDA tensors) are staged through host memory.
    ``threads="auto"`` limits each rank's BLAS and PyTorch threads so that the
    ranks on one machine use no more threads together than it has cores; an
    integer sets them, None leaves them alone.
    """

    def __init__(self, comm: Any = None, threads: int | str | None = "auto"):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError("MPIComm needs mpi4py: pip install 'nnbackprop[mpi]' "
                              "(mpi4py and the mpich wheels, which bring mpiexec)") from exc
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = local.Get_size()
        local.Free()
        self._limits = limit_threads(threads, self.local_size)

    def allreduce_(self, buf: Any) -> Any:
        MPI = self._MPI
        return _staged(buf, lambda a: self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM))

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        return _staged(buf, lambda a: self.comm.Bcast(a, root=root))

    def barrier(self) -> None:
        self.comm.Barrier()

    def __repr__(self) -> str:
        return f"MPIComm(rank={self.rank}, size={self.size})"


class TorchComm:
    """A communicator over torch.distributed (its default group unless ``group``).

    The process group must be initialised (``torch.distributed.init_process_group``;
    :func:`get_communicator` does it from torchrun's variables). Tensors are reduced
    where they lie (gloo: CPU; NCCL: CUDA); NumPy buffers without a copy, through
    ``torch.from_numpy``; other arrays through a host copy. ``threads`` as for
    :class:`MPIComm`.
    """

    def __init__(self, group: Any = None, threads: int | str | None = "auto"):
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("TorchComm needs an initialised process group: call "
                               "torch.distributed.init_process_group first (torchrun sets its variables)")
        self._torch, self._dist, self.group = torch, dist, group
        self.rank, self.size = dist.get_rank(group), dist.get_world_size(group)
        self.local_size = int(os.environ.get("LOCAL_WORLD_SIZE", self.size))
        self._limits = limit_threads(threads, self.local_size)

    def _run(self, buf: Any, collective) -> Any:
        torch = self._torch
        if isinstance(buf, torch.Tensor):
            collective(buf)
            return buf
        if isinstance(buf, np.ndarray):
            collective(torch.from_numpy(buf))
            return buf
        return _staged(buf, lambda a: collective(torch.from_numpy(a)))

    def allreduce_(self, buf: Any) -> Any:
        dist = self._dist
        return self._run(buf, lambda t: dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group))

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        dist = self._dist
        src = root if self.group is None else dist.get_global_rank(self.group, root)
        return self._run(buf, lambda t: dist.broadcast(t, src=src, group=self.group))

    def barrier(self) -> None:
        self._dist.barrier(group=self.group)

    def __repr__(self) -> str:
        return f"TorchComm(rank={self.rank}, size={self.size})"


_MPI_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")
_TORCHRUN_VARS = ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE")


def get_communicator(kind: Any = "auto", threads: int | str | None = "auto") -> Any:
    """A communicator: ``kind`` is one (returned as it is), None or "local"
    (:class:`LocalComm`), "mpi", "torch", or "auto": torch.distributed if its
    process group is initialised, MPI under an MPI launcher (its variables in the
    environment), torch.distributed under torchrun (the group initialised here,
    NCCL for CUDA tensors and gloo for host buffers where CUDA is available, else
    gloo, and destroyed at exit), else local."""
    if kind is None or kind == "local":
        return LocalComm()
    if not isinstance(kind, str):
        for attr in ("rank", "size", "allreduce_", "bcast_", "barrier"):
            if not hasattr(kind, attr):
                raise TypeError(f"comm must be a communicator (rank, size, allreduce_, bcast_, barrier) "
                                f"or one of 'auto', 'local', 'mpi', 'torch'; {type(kind).__name__} has no {attr}")
        return kind
    if kind == "mpi":
        return MPIComm(threads=threads)
    if kind == "torch":
        return TorchComm(threads=threads)
    if kind != "auto":
        raise ValueError(f"comm={kind!r}: choose 'auto', 'local', 'mpi', 'torch' or pass a communicator")
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return TorchComm(threads=threads)
    env = os.environ
    if any(v in env for v in _MPI_VARS):
        return MPIComm(threads=threads)
    if any(v in env for v in _TORCHRUN_VARS) and "RANK" in env and "WORLD_SIZE" in env:
        import torch
        import torch.distributed as dist

        if torch.cuda.is_available():  # CUDA tensors through NCCL; host buffers (the small reductions) through gloo
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group("gloo")
        atexit.register(_destroy_group, dist)  # ours to end: a group alive at exit aborts the process
        return TorchComm(threads=threads)
    return LocalComm()


def _destroy_group(dist) -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def limit_threads(threads: int | str | None, ranks_here: int) -> Any:
    """Limit this process's BLAS (threadpoolctl) and PyTorch threads: "auto" to
    cores // ranks_here (at least 1) when more than one rank shares the machine,
    an integer to itself, None not at all. Returns what keeps the limit alive."""
    if threads is None or (threads == "auto" and ranks_here <= 1):
        return None
    if threads == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // ranks_here)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be 'auto', a positive integer or None, got {threads!r}")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))  # libraries loaded from now on
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(threads)


# what fit needs on top of the collectives ---------------------------------------------
def sum_host(comm: Any, values) -> np.ndarray:
    """The sum over ranks of a few host numbers (float64), the same on every rank."""
    buf = np.array(values, dtype=np.float64).reshape(-1)
    comm.allreduce_(buf)
    return buf


def gather_counts(comm: Any, n: int) -> list[int]:
    """Every rank's ``n``, in rank order (one small all-reduce)."""
    buf = np.zeros(comm.size, dtype=np.float64)
    buf[comm.rank] = n
    comm.allreduce_(buf)
    return [int(v) for v in buf]


def allreduce_grads(store: Any, comm: Any, share: float) -> None:
    """Every gradient <- sum over ranks of share_r * gradient_r: the gradient of the
    global batch's mean loss when share_r = (rank r's rows) / (global batch rows).

    One all-reduce of ``store.flat_grads`` where the store is flat; else the
    gradients go through one host buffer and come back as new arrays."""
    if store.flat:
        g = store.flat_grads
        if share != 1.0:
            g *= share
        comm.allreduce_(g)
        return
    names = store.names
    host = np.concatenate([_compat.to_host(store.grads[n]).reshape(-1) for n in names]).astype(np.float64)
    if share != 1.0:
        host *= share
    comm.allreduce_(host)
    start = 0
    for n in names:
        g = store.grads[n]
        stop = start + int(np.prod(store.shapes[n]))
        store.grads[n] = _compat.from_host(store.xp, host[start:stop].reshape(store.shapes[n]), g.dtype,
                                           _compat.device_of(g))
        start = stop


def zero_grads(store: Any) -> None:
    """Every gradient 0: a rank with no rows in this step contributes nothing."""
    xp = store.xp
    if store.flat:
        store.flat_grads[...] = 0
    else:
        for n in store.names:
            store.grads[n] = xp.zeros_like(store.grads[n])
    store.has_grads = True


def broadcast_model(model: Any, optimizer: Any, comm: Any, root: int = 0) -> None:
    """Rank ``root``'s parameters (and optimizer state, where it has one) on every
    rank: into the arrays themselves where they can be written, else as new ones."""
    if comm.size == 1:
        return
    store = model.store
    if store.flat:
        comm.bcast_(store.flat_params, root)
    else:
        store.assign([_bcast_copy(comm, p, root) for p in model.parameters()])
    # the optimizer's state: rank root's, whether or not this rank had one (its step count too)
    state = getattr(optimizer, "state", None)
    head = np.array([state is not None, 0 if state is None else state.t], dtype=np.int64)
    comm.bcast_(head, root)
    if not head[0]:
        if state is not None:
            optimizer.reset()
        return
    if state is None:
        state = optimizer.init(list(store.params.values()))
    slots = {}
    for k, arrays in state.slots.items():
        slots[k] = tuple(comm.bcast_(a, root) if _compat.writer(a) is not None else _bcast_copy(comm, a, root)
                         for a in arrays)
    optimizer.state = type(state)(int(head[1]), slots)


def _bcast_copy(comm: Any, a: Any, root: int) -> Any:
    host = np.ascontiguousarray(_compat.to_host(a)).copy()
    comm.bcast_(host, root)
    return _compat.from_host(_compat.namespace_of(a), host, a.dtype, _compat.device_of(a))


def check_seed(seed: Any) -> None:
    """What a data-parallel fit's seed may be: None or an integer in [0, 2**256)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not 0 <= int(seed) < 1 << 256):
        raise ValueError(f"with a communicator, seed must be None or an integer in [0, 2**256), got {seed!r}")


def broadcast_seed(comm: Any, seed: Any) -> Any:
    """``seed`` as rank 0 has it (None: drawn there from the OS), on every rank."""
    if comm.size == 1:
        return seed
    check_seed(seed)
    buf = np.zeros(8, dtype=np.int64)  # 8 x 32 bits (every engine reduces int64; not all uint64)
    if comm.rank == 0:
        value = np.random.SeedSequence().entropy if seed is None else int(seed)
        for i in range(8):
            buf[i] = (value >> (32 * i)) & 0xFFFFFFFF
    comm.bcast_(buf)
    return sum(int(v) << (32 * i) for i, v in enumerate(buf))


def rank_rng(seed: Any, comm: Any) -> np.random.Generator:
    """The shuffling generator of this rank: ``default_rng(seed)`` in one process
    (as without a communicator), else this rank's own stream spawned from seed."""
    if comm.size == 1:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(comm.size)[comm.rank])
