"""BatchNorm's step against the plain step and PyTorch eager, interleaved (norm_pairs.py), float32."""

from __future__ import annotations

from . import norm_pairs


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = [s for s in metafunc.config.getoption("--bench-sizes").split(",") if s]
        metafunc.parametrize("size", [s for s in sizes if s != "large"])  # BatchNorm at large: not a target


def test_norm_pairs(benchmark, size):
    result = {}

    def run():
        result.update(norm_pairs.measure(size))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = f"norm-{size}"
    benchmark.extra_info.update({"impl": "norm_pairs", "phase": "norm", "backend": "numpy", "size": size,
                                 "dtype": "float32", **result})
