"""End-to-end fit on digits: nnbackprop against scikit-learn's MLPClassifier.

The two fits alternate round by round (paired.interleave, one fit per block,
rotating which goes first), so the time ratio comes from the same moments of
the shared machine; each fit uses the next seed, for both libraries alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from . import paired
from .digits import CONFIGS, ESTIMATOR_DTYPES, digits_case, estimator_case
from .workloads import Unavailable

ROUNDS = 7
ESTIMATOR_ROUNDS = 8  # seeds per library: issue 15's "mean of 8 seeds"
IMPLS = ("nnbackprop", "sklearn")


def _interleaved_fits(benchmark, cases: dict, rounds: int, **per_fit) -> tuple[dict, dict]:
    """(times, fits) of ``cases`` fitted in interleaved rounds, each a fit at the next seed;
    ``fits[impl]`` holds its info, median and IQR, and the mean accuracy of the timed fits
    (their last ``rounds``), plus the mean of each ``per_fit`` state list."""
    times: dict = {}

    def run():
        times.update(paired.interleave(cases, rounds=rounds, calls=1, discard=0))

    benchmark.pedantic(run, rounds=1, iterations=1)
    fits = {}
    for impl, case in cases.items():
        scores = case.state["scores"]()[-rounds:]
        q1, q3 = np.percentile(times[impl], [25, 75])
        fits[impl] = {**case.info, "median": float(np.median(times[impl])), "iqr": float(q3 - q1),
                      "accuracy": float(np.mean(scores)), "accuracy_std": float(np.std(scores)),
                      "accuracies": scores,
                      **{k: float(np.mean(case.state[key]()[-rounds:])) for k, key in per_fit.items()}}
    return times, fits


@pytest.mark.parametrize("config", list(CONFIGS))
def test_digits_fit(benchmark, config):
    try:
        cases = {impl: digits_case(impl, config) for impl in IMPLS}
    except Unavailable as exc:
        pytest.skip(str(exc))
    times, fits = _interleaved_fits(benchmark, cases, ROUNDS)
    benchmark.group = f"digits-fit-{config}"
    benchmark.extra_info.update({"impl": "digits", "phase": "fit", "backend": "numpy", "config": config,
                                 "fits": fits, "ratio": paired.summary(times["nnbackprop"], times["sklearn"])})


@pytest.mark.parametrize("dtype", ESTIMATOR_DTYPES)
def test_digits_estimator(benchmark, dtype):
    """Both MLPClassifiers at their defaults (issue 15's target), X in ``dtype``, and the lean
    hand-written floor; the accuracy is the mean over the timed fits' seeds."""
    try:
        cases = {impl: estimator_case(impl, dtype) for impl in (*IMPLS, "lean")}
    except Unavailable as exc:
        pytest.skip(str(exc))
    times, fits = _interleaved_fits(benchmark, cases, ESTIMATOR_ROUNDS, epochs="epochs")
    benchmark.group = f"digits-estimator-{dtype}"
    benchmark.extra_info.update({"impl": "digits_estimator", "phase": "estimator_fit", "backend": "numpy",
                                 "dtype": dtype, "fits": fits,
                                 "ratio": paired.summary(times["nnbackprop"], times["sklearn"]),
                                 "ratio_lean": paired.summary(times["lean"], times["sklearn"])})
