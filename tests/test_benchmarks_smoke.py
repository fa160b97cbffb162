"""Every benchmark function once, at the tiny size, so the suite cannot rot.

No timing and no timed assertions: each case is built and run once (and its
memory probe once, where it has one), the digits fits run one epoch, and the
report renders from a synthetic result file. Peers that are not installed
(PyTorch, JAX, scikit-learn, matplotlib) skip with the reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import cases, digits, memory, peers, report, workloads

TINY = cases.all_cases(sizes=("tiny",), dtypes=("float32",))


@pytest.mark.parametrize("spec", TINY, ids=[s.id for s in TINY])
def test_case_runs_once(spec):
    try:
        case = spec.build(workloads.SIZES["tiny"], spec.dtype)
    except workloads.Unavailable as exc:
        pytest.skip(str(exc))
    if case.setup is not None:
        case.setup()
    out = case.fn()
    assert case.info["impl"] == spec.impl
    if spec.phase == "step" and spec.impl != "gemm_floor":
        assert math.isfinite(float(out)), "a step returns a finite loss"
    if case.memory is not None:
        m = case.memory()
        assert m["peak_bytes"] > 0 and m["budget_bytes"] > 0


def test_hand_written_steps_agree():
    """The hand-written NumPy step and the seeds' per-example step compute the same loss and update."""
    size = workloads.SIZES["tiny"]
    X, y = workloads.host_data(size)
    hand, per = peers.NumpyHandStep(size, "float64"), peers.PerExampleStep(size, "float64")
    assert hand(X, y) == pytest.approx(per(X, y), rel=1e-10)
    for (W, b), Wb in zip(hand.params, per.weights):
        np.testing.assert_allclose(Wb[0], b, atol=1e-12)
        np.testing.assert_allclose(Wb[1:], W, atol=1e-12)


def test_gemm_flops():
    s = workloads.Size("x", (3, 4, 5), 2)
    assert s.gemm_flops() == 2 * 2 * 3 * 4 * 2 + 2 * 2 * 4 * 5 * 3


def test_memory_budget_parts():
    b = memory.step_budget((3, 4, 5), batch=2, itemsize=4)
    assert b["parameters"] == (3 * 4 + 4 + 4 * 5 + 5) * 4 == b["gradients"]
    assert b["activations"] == 2 * (4 + 5) * 4
    assert b["total"] == sum(v for k, v in b.items() if k != "total")


@pytest.mark.parametrize("impl", ["nnbackprop", "sklearn"])
def test_digits_one_epoch(impl):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed: the digits benchmark skips")
    case = digits.digits_case(impl, epochs=1)
    acc = case.state["score"](case.fn())
    assert 0.0 <= acc <= 1.0


def _fake_results():
    rows = []
    for impl, backend in [("nnbackprop", "numpy"), ("numpy_hand", "numpy"), ("torch_eager", "torch"),
                          ("gemm_floor", "numpy"), ("per_example", "numpy")]:
        for size in ("tiny", "medium"):
            extra = {"impl": impl, "phase": "step", "backend": backend, "size": size, "dtype": "float32",
                     "gemm_flops": 1e9}
            if impl == "nnbackprop":
                extra["memory"] = {"peak_bytes": 120, "budget_bytes": 100, "ratio": 1.2, "budget": {}}
            rows.append({"name": impl + size, "extra_info": extra,
                         "stats": {"median": 0.01, "iqr": 0.001, "rounds": 5, "iterations": 1}})
    for impl in ("nnbackprop", "sklearn"):
        rows.append({"name": impl, "extra_info": {"impl": impl, "phase": "fit", "backend": "numpy",
                                                  "accuracy": 0.95, "epochs": 1},
                     "stats": {"median": 1.0, "iqr": 0.1, "rounds": 5, "iterations": 1}})
    return {"machine_info": {"versions": {"numpy": np.__version__}}, "commit_info": {}, "benchmarks": rows}


def test_report_renders(tmp_path):
    text = report.render(_fake_results(), plot_rel="plot.png", notes="## Notes")
    assert "| step / hand-written NumPy step | tiny | ≤ 1.10× | — | 1.00× | met |" in text
    assert "peak memory / budget" in text and "digits" in text and "## Notes" in text


def test_report_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: the plot is skipped")
    report.plot(report.rows(_fake_results()), tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_memory_budget_counts_only_what_a_step_needs():
    """Plain SGD keeps no state: the budget is parameters, gradients, data and activations,
    computed here by hand for the tiny size (784-128-10, batch 64, float32)."""
    size = workloads.SIZES["tiny"]
    m = workloads.nnbackprop_case("step", "numpy", size, "float32").memory()
    params = (784 * 128 + 128 + 128 * 10 + 10) * 4
    expected = 2 * params + 64 * 784 * 4 + 64 * 8 + 64 * (128 + 10) * 4
    assert m["budget"]["optimizer"] == 0
    assert m["budget_bytes"] == expected


def test_paired_ratio_runs_and_cancels_a_known_factor():
    """Interleaved A/B timing: a case doing the same work twice is about 2x the case doing it once."""
    from benchmarks import paired

    x = np.random.default_rng(0).standard_normal((200, 200))
    once = workloads.Case(lambda: x @ x)
    twice = workloads.Case(lambda: (x @ x, x @ x))
    r = paired.paired_ratio(twice, once, rounds=15, calls=3)
    assert 1.3 < r["ratio"] < 4.0 and r["q1"] <= r["ratio"] <= r["q3"]
    for peer in paired.PAIRS:
        try:
            paired.PAIRS[peer](workloads.SIZES["tiny"], "float32")
        except workloads.Unavailable as exc:
            pytest.skip(str(exc))
