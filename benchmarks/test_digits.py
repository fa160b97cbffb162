"""End-to-end fit on digits: nnbackprop against scikit-learn's MLPClassifier."""

from __future__ import annotations

import numpy as np
import pytest

from .digits import CONFIGS, digits_case
from .workloads import Unavailable

ROUNDS = 5


@pytest.mark.parametrize("impl", ["nnbackprop", "sklearn"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_digits_fit(benchmark, impl, config):
    try:
        case = digits_case(impl, config)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"digits-fit-{config}"
    benchmark.extra_info.update(case.info)
    benchmark.pedantic(case.fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    scores = case.state["scores"]()
    benchmark.extra_info.update(accuracy=float(np.mean(scores)), accuracy_std=float(np.std(scores)),
                                accuracies=scores)
