"""Interleaved A/B timing: the ratio of two steps measured side by side.

On a shared machine the speed of the cores drifts over seconds (other
tenants, frequency), so two medians taken a minute apart can differ by 20 %
for the same code. Here each round times A then B (or B then A, alternating)
over the same few milliseconds, and the result is the median of the per-round
ratios t_A / t_B with its quartiles: drift cancels within a round.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import peers
from .workloads import SIZES, Case, nnbackprop_case

# rounds, and calls per side in a round, by size
PLAN = {"tiny": (150, 10), "medium": (40, 2), "large": (7, 1)}

# target name -> builder of the denominator case (the numerator is nnbackprop on NumPy)
PAIRS: dict[str, Callable] = {
    "numpy_hand": lambda size, dtype: peers.numpy_hand(size, dtype),
    "torch_eager": lambda size, dtype: peers.torch_eager(size, dtype),
    "gemm_floor": lambda size, dtype: peers.gemm_floor("numpy", size, dtype),
}


def _timed(case: Case, calls: int) -> float:
    total = 0.0
    for _ in range(calls):
        if case.setup is not None:
            case.setup()
        t0 = time.perf_counter()
        case.fn()
        total += time.perf_counter() - t0
    return total / calls


def paired_ratio(a: Case, b: Case, rounds: int, calls: int, warmup: int = 2) -> dict:
    """Median and quartiles of t_a / t_b over ``rounds`` interleaved rounds."""
    for _ in range(warmup):
        _timed(a, calls), _timed(b, calls)
    ratios, ta, tb = [], [], []
    for r in range(rounds):
        if r % 2:
            y, x = _timed(b, calls), _timed(a, calls)
        else:
            x, y = _timed(a, calls), _timed(b, calls)
        ratios.append(x / y)
        ta.append(x)
        tb.append(y)
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(med), "q1": float(q1), "q3": float(q3), "rounds": rounds, "calls": calls,
            "median_a": float(np.median(ta)), "median_b": float(np.median(tb))}


def measure(size_name: str, peer: str, dtype: str = "float32") -> dict:
    """nnbackprop's training step on NumPy against ``peer`` at ``size_name``."""
    size = SIZES[size_name]
    a = nnbackprop_case("step", "numpy", size, dtype)
    b = PAIRS[peer](size, dtype)
    rounds, calls = PLAN[size_name]
    return paired_ratio(a, b, rounds, calls)
