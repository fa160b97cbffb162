"""End-to-end fit on digits: nnbackprop against scikit-learn's MLPClassifier."""

from __future__ import annotations

import pytest

from .digits import digits_case
from .workloads import Unavailable

ROUNDS = 5


@pytest.mark.parametrize("impl", ["nnbackprop", "sklearn"])
def test_digits_fit(benchmark, impl):
    try:
        case = digits_case(impl)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = "digits-fit"
    benchmark.extra_info.update(case.info)
    fitted = benchmark.pedantic(case.fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["accuracy"] = case.state["score"](fitted)
