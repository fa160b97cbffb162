"""Weighted, clipped and DP-SGD steps against a plain step, interleaved (dp_pairs.py), float32."""

from __future__ import annotations

from . import dp_pairs


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = [s for s in metafunc.config.getoption("--bench-sizes").split(",") if s]
        metafunc.parametrize("size", sizes)


def test_dp_pairs(benchmark, size):
    result = {}

    def run():
        result.update(dp_pairs.measure(size))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = f"dp-{size}"
    benchmark.extra_info.update({"impl": "dp_pairs", "phase": "dp", "backend": "numpy", "size": size,
                                 "dtype": "float32", **result})
