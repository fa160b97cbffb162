"""The speed targets: nnbackprop's step and its peers in interleaved rounds (paired.py), float32."""

from __future__ import annotations

from . import paired


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = [s for s in metafunc.config.getoption("--bench-sizes").split(",") if s]
        metafunc.parametrize("size", sizes)


def test_paired(benchmark, size):
    result = {}

    def run():
        result.update(paired.measure(size))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = f"paired-{size}"
    benchmark.extra_info.update({"impl": "paired", "phase": "paired", "backend": "numpy", "size": size,
                                 "dtype": "float32", **result})
