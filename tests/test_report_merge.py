"""benchmarks/report.py --rerun: a later run of some benchmarks replaces exactly those."""

from __future__ import annotations

from benchmarks import report


def _bench(fullname, median):
    return {"group": None, "name": fullname.split("::")[-1], "fullname": fullname, "stats": {"median": median},
            "extra_info": {}}


def test_rerun_replaces_its_benchmarks_only():
    data = {"benchmarks": [_bench("b/test_dp.py::test_dp[tiny]", 1.0), _bench("b/test_s.py::test_step[tiny]", 2.0)],
            "datetime": "then", "commit_info": {"id": "aaaaaaaaaaaa"}}
    rerun = {"benchmarks": [_bench("b/test_dp.py::test_dp[tiny]", 3.0)], "datetime": "now",
             "commit_info": {"id": "bbbbbbbbbbbbbb", "dirty": False}}
    out = report.merge(data, rerun)
    assert sorted((b["fullname"], b["stats"]["median"]) for b in out["benchmarks"]) == [
        ("b/test_dp.py::test_dp[tiny]", 3.0), ("b/test_s.py::test_step[tiny]", 2.0)]
    assert data["benchmarks"][0]["stats"]["median"] == 1.0  # the original is not changed
    assert out["reruns"] == [{"benchmarks": ["b/test_dp.py::test_dp[tiny]"], "datetime": "now",
                              "commit": "bbbbbbbbbb", "dirty": False}]
    text = "\n".join(report.machine_section(out))
    assert "Rerun of `b/test_dp.py::test_dp[tiny]`: now; commit bbbbbbbbbb" in text and "commit aaaaaaaaaa" in text
