"""The speed targets as interleaved A/B ratios (see paired.py), float32."""

from __future__ import annotations

import pytest

from . import paired
from .workloads import Unavailable


def pytest_generate_tests(metafunc):
    if "pair" in metafunc.fixturenames:
        sizes = [s for s in metafunc.config.getoption("--bench-sizes").split(",") if s]
        pairs = [(s, p) for s in sizes for p in paired.PAIRS]
        metafunc.parametrize("pair", pairs, ids=[f"{s}-vs-{p}" for s, p in pairs])


def test_paired(benchmark, pair):
    size, peer = pair
    result = {}

    def run():
        result.update(paired.measure(size, peer))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"paired-{size}"
    benchmark.extra_info.update({"impl": "paired", "phase": "paired", "backend": "numpy", "size": size,
                                 "dtype": "float32", "peer": peer, **result})
