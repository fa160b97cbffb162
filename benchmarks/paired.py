"""Interleaved timing: nnbackprop's step and its peers measured in the same rounds.

On a shared machine the speed of the cores drifts over seconds and minutes
(other tenants), and not equally for every kind of work: a step of many small
calls suffers more than one of a few large matrix products. Two medians taken
a minute apart, or two pairings run a minute apart, can then disagree by 20 %
or more. Here each round times a block of calls of every case in turn
(nnbackprop's step, the hand-written NumPy step, PyTorch eager, the GEMM
floor), rotating which goes first, and every ratio is the median over rounds of
the per-round ratio, with its quartiles: all ratios come from the same moments,
so they agree with each other, and drift cancels.

Besides nnbackprop's NumPy step against every peer, more pairs come from the
same rounds (:data:`MORE`): nnbackprop's step on the PyTorch backend against
PyTorch eager (the same library underneath, so the ratio is what nnbackprop's
design adds or saves), with PyTorch's own GEMM floor beside it; and the step as
users run it, ``model.fit`` over an epoch of equal batches (one call, timed per
step), against the hand-written step looping over the same batches.

Each case's time in a round is the median of its block after the first
``discard`` calls. Those first calls are not the library's own: two libraries
with their own thread pools (OpenBLAS behind NumPy, OpenMP behind PyTorch)
leave their worker threads spinning for a while after each call, and on a
2-core machine the first calls after a switch run against the other pool's
spinning threads (measured here: the first NumPy step after a block of PyTorch
steps takes 8x its usual time, the second is back to normal). Alternating
single calls would time that contention, not either library.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import peers
from .workloads import SIZES, Case, Unavailable, fit_epoch_case, nnbackprop_case

# rounds, calls per case per round, of which the first `discard` are not counted
PLAN = {"tiny": (40, 60, 10), "medium": (20, 14, 4), "large": (7, 3, 1)}

# peer name -> builder of its case; each is timed against nnbackprop on NumPy
PEERS: dict[str, Callable] = {
    "numpy_hand": lambda size, dtype: peers.numpy_hand(size, dtype),
    "torch_eager": lambda size, dtype: peers.torch_eager(size, dtype),
    "gemm_floor": lambda size, dtype: peers.gemm_floor("numpy", size, dtype),
}
NNB = "nnbackprop"
# more cases, each timed in the same rounds and judged against (or, for a
# reference, compared with) the case named beside it
MORE: dict[str, tuple[Callable, str]] = {
    "nnbackprop_torch": (lambda size, dtype: nnbackprop_case("step", "torch", size, dtype), "torch_eager"),
    "gemm_floor_torch": (lambda size, dtype: peers.gemm_floor("torch", size, dtype), "torch_eager"),
    "numpy_hand_epoch": (lambda size, dtype: peers.numpy_hand_epoch(size, dtype), "numpy_hand"),
    "fit_epoch": (lambda size, dtype: fit_epoch_case("numpy", size, dtype), "numpy_hand_epoch"),
}


def pair_key(num: str, den: str) -> str:
    """The key of the ratio num / den in ``measure()["pairs"]``."""
    return f"{num}/{den}"


def block_time(case: Case, calls: int, discard: int) -> float:
    """Median seconds of one step of ``case`` (a call's time / ``case.steps``) over
    ``calls`` calls, the first ``discard`` dropped."""
    times = []
    for _ in range(calls):
        if case.setup is not None:
            case.setup()
        t0 = time.perf_counter()
        case.fn()
        times.append((time.perf_counter() - t0) / case.steps)
    return float(np.median(times[discard:]))


def interleave(cases: dict[str, Case], rounds: int, calls: int, discard: int) -> dict[str, list[float]]:
    """{name: [seconds per call in round r]}: every round times a block of each case,
    starting one case further on each round."""
    if not 0 <= discard < calls:
        raise ValueError(f"need 0 <= discard < calls, got discard={discard}, calls={calls}")
    items = list(cases.items())
    for _, case in items:  # warm-up
        block_time(case, discard + 1, discard)
    times: dict[str, list[float]] = {name: [] for name, _ in items}
    for r in range(rounds):
        k = r % len(items)
        for name, case in items[k:] + items[:k]:
            times[name].append(block_time(case, calls, discard))
    return times


def summary(num: list[float], den: list[float]) -> dict:
    """Median and quartiles of the per-round ratios num / den, and each side's median."""
    ratios = [x / y for x, y in zip(num, den, strict=True)]
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(med), "q1": float(q1), "q3": float(q3), "rounds": len(ratios),
            "median_a": float(np.median(num)), "median_b": float(np.median(den))}


def measure(size_name: str, dtype: str = "float32", plan: tuple | None = None) -> dict:
    """nnbackprop's training step on NumPy, every available peer, and nnbackprop's own
    the cases in :data:`MORE`, at ``size_name``, interleaved. Returns ``{"pairs": {"a/b":
    summary of a / b}, "peer_floor": {peer: summary of peer / GEMM floor},
    "skipped": {case: why}, "plan": [rounds, calls, discard]}``, with pairs
    nnbackprop/peer for every peer and case/judge for every case of MORE
    (:func:`pair_key`). ``plan`` overrides :data:`PLAN`."""
    size = SIZES[size_name]
    cases, skipped = {NNB: nnbackprop_case("step", "numpy", size, dtype)}, {}
    builders = {**PEERS, **{name: build for name, (build, _) in MORE.items()}}
    for name, build in builders.items():
        try:
            cases[name] = build(size, dtype)
        except Unavailable as exc:
            skipped[name] = str(exc)
    pairs = [(NNB, p) for p in PEERS if p in cases]
    pairs += [(name, judge) for name, (_, judge) in MORE.items() if name in cases and judge in cases]
    plan = tuple(plan or PLAN[size_name])
    times = interleave(cases, *plan)
    out = {"pairs": {pair_key(a, b): summary(times[a], times[b]) for a, b in pairs},
           "peer_floor": {}, "skipped": skipped, "plan": list(plan)}
    if "gemm_floor" in times:
        out["peer_floor"] = {p: summary(times[p], times["gemm_floor"]) for p in PEERS
                             if p in times and p != "gemm_floor"}
    return out
