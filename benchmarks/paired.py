"""Interleaved A/B timing: the ratio of two steps measured side by side.

On a shared machine the speed of the cores drifts over seconds (other
tenants, frequency), so two medians taken a minute apart can differ by 20 %
for the same code. Here each round times a block of A's calls and then a block
of B's (B first in every other round), and the result is the median over
rounds of t_A / t_B, with its quartiles: drift cancels within a round.

Each side's time in a round is the median of its block after the first
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
from .workloads import SIZES, Case, nnbackprop_case

# rounds, calls per side per round, of which the first `discard` are not counted
PLAN = {"tiny": (40, 60, 10), "medium": (20, 14, 4), "large": (7, 3, 1)}

# target name -> builder of the denominator case (the numerator is nnbackprop on NumPy)
PAIRS: dict[str, Callable] = {
    "numpy_hand": lambda size, dtype: peers.numpy_hand(size, dtype),
    "torch_eager": lambda size, dtype: peers.torch_eager(size, dtype),
    "gemm_floor": lambda size, dtype: peers.gemm_floor("numpy", size, dtype),
}


def block_time(case: Case, calls: int, discard: int) -> float:
    """Median seconds of one call of ``case`` over ``calls`` calls, the first ``discard`` dropped."""
    times = []
    for _ in range(calls):
        if case.setup is not None:
            case.setup()
        t0 = time.perf_counter()
        case.fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[discard:]))


def paired_ratio(a: Case, b: Case, rounds: int, calls: int, discard: int) -> dict:
    """Median and quartiles of t_a / t_b over ``rounds`` interleaved rounds of blocks."""
    if not 0 <= discard < calls:
        raise ValueError(f"need 0 <= discard < calls, got discard={discard}, calls={calls}")
    block_time(a, discard + 1, discard), block_time(b, discard + 1, discard)  # warm-up
    ratios, ta, tb = [], [], []
    for r in range(rounds):
        if r % 2:
            y, x = block_time(b, calls, discard), block_time(a, calls, discard)
        else:
            x, y = block_time(a, calls, discard), block_time(b, calls, discard)
        ratios.append(x / y)
        ta.append(x)
        tb.append(y)
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(med), "q1": float(q1), "q3": float(q3), "rounds": rounds, "calls": calls,
            "discard": discard, "median_a": float(np.median(ta)), "median_b": float(np.median(tb))}


def measure(size_name: str, peer: str, dtype: str = "float32", plan: tuple | None = None) -> dict:
    """nnbackprop's training step on NumPy against ``peer`` at ``size_name``.

    ``plan`` = (rounds, calls, discard) overrides :data:`PLAN` (the smoke test runs one round).
    """
    size = SIZES[size_name]
    a = nnbackprop_case("step", "numpy", size, dtype)
    b = PAIRS[peer](size, dtype)
    return paired_ratio(a, b, *(plan or PLAN[size_name]))
