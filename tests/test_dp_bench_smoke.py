"""benchmarks/dp_pairs.py once at the tiny size, so it cannot rot (no timed assertions),
and its per-example loop reference agrees with the DP-SGD step it is timed against."""

from __future__ import annotations

import numpy as np

from benchmarks import dp_pairs, workloads


def test_dp_pairs_runs_once():
    out = dp_pairs.measure("tiny", plan=(1, 2, 1))
    assert set(out["pairs"]) == {"weighted", "clipped", "dp", "dp_clip", "dp_loop", "noise", "bits"}
    assert all(v["rounds"] == 1 and v["ratio"] > 0 for v in out["pairs"].values())


def test_dp_loop_reference_is_the_same_update():
    size = workloads.SIZES["tiny"]
    fast = dp_pairs._step_case(size, "float64", dp=dp_pairs.DPSGD(dp_pairs.CLIP, 0.0))
    loop = dp_pairs._dp_loop_case(size, "float64")
    fast.fn()
    loop.fn()
    # both built from the same seed and batch: one step each lands on the same weights
    a = [np.asarray(p) for p in fast_model(fast)]
    b = [np.asarray(p) for p in fast_model(loop)]
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)


def test_noise_reference_adds_sigma_C_normals():
    case = dp_pairs._noise_case(workloads.SIZES["tiny"], "float32")
    g = case.state["model"].store.flat_grads
    before = g.copy()
    case.fn()
    z = (g - before) / dp_pairs.CLIP  # sigma 1: C times standard normals
    assert abs(float(z.mean())) < 5 / np.sqrt(z.size) and abs(float(z.std()) - 1) < 0.01


def fast_model(case):
    return case.state["model"].parameters()
