"""Timed cases: nnbackprop forward/backward/step, its peers and the GEMM floor.

Each case is built outside the clock; ``benchmark.pedantic`` then times
``case.fn`` (which synchronises the device) in rounds of a few iterations,
after warm-up rounds. What the report needs goes into ``extra_info``.
"""

from __future__ import annotations

import time

import pytest

from .cases import all_cases
from .conftest import ROUND_SECONDS, ROUNDS, ROUNDS_LARGE_F64
from .workloads import SIZES, Unavailable


def pytest_generate_tests(metafunc):
    if "spec" in metafunc.fixturenames:
        sizes = [s for s in metafunc.config.getoption("--bench-sizes").split(",") if s]
        dtypes = [d for d in metafunc.config.getoption("--bench-dtypes").split(",") if d]
        specs = all_cases(sizes, dtypes)
        metafunc.parametrize("spec", specs, ids=[s.id for s in specs])


def plan(spec, case) -> dict:
    """Rounds, iterations and warm-up for ``case`` at ``spec``'s size."""
    rounds = ROUNDS[spec.size]
    if spec.size == "large" and spec.dtype == "float64":
        rounds = ROUNDS_LARGE_F64
    if case.setup is not None:  # one call per round, each after its setup
        if not ROUND_SECONDS[spec.size]:
            return {"rounds": rounds, "iterations": 1, "warmup_rounds": 1}
        case.setup()
        t0 = time.perf_counter()
        case.fn()
        once = time.perf_counter() - t0
        return {"rounds": max(rounds, min(200, int(rounds * ROUND_SECONDS[spec.size] / max(once, 1e-6)))),
                "iterations": 1, "warmup_rounds": 1}
    if not ROUND_SECONDS[spec.size]:  # one call per round: the warm-up round is enough
        return {"rounds": rounds, "iterations": 1, "warmup_rounds": 1}
    case.fn()  # first call: compilation, lazy buffers
    t0 = time.perf_counter()
    case.fn()
    once = time.perf_counter() - t0
    iterations = max(1, round(ROUND_SECONDS[spec.size] / max(once, 1e-6)))
    return {"rounds": rounds, "iterations": iterations, "warmup_rounds": 1 if spec.size == "large" else 2}


def test_bench(benchmark, spec):
    size = SIZES[spec.size]
    try:
        case = spec.build(size, spec.dtype)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"{spec.size}-{spec.dtype}"
    benchmark.extra_info.update(case.info)
    benchmark.extra_info.update({"size": spec.size, "dtype": spec.dtype, "layers": list(size.layers),
                                 "batch": size.batch, "gemm_flops": size.gemm_flops()})
    p = plan(spec, case)
    if case.setup is not None:
        benchmark.pedantic(case.fn, setup=case.setup, **p)
    else:
        benchmark.pedantic(case.fn, **p)
    if case.memory is not None:
        benchmark.extra_info["memory"] = case.memory()
