"""benchmarks/report.py --rerun: a later run of some groups replaces exactly those groups."""

from __future__ import annotations

from benchmarks import report


def _bench(group, name, median):
    return {"group": group, "name": name, "stats": {"median": median}, "extra_info": {}}


def test_rerun_replaces_its_groups_only():
    data = {"benchmarks": [_bench("dp-tiny", "a", 1.0), _bench("step", "b", 2.0)], "datetime": "then",
            "commit_info": {"id": "aaaaaaaaaaaa"}}
    rerun = {"benchmarks": [_bench("dp-tiny", "a", 3.0)], "datetime": "now",
             "commit_info": {"id": "bbbbbbbbbbbbbb", "dirty": False}}
    out = report.merge(data, rerun)
    assert sorted((b["group"], b["stats"]["median"]) for b in out["benchmarks"]) == [("dp-tiny", 3.0), ("step", 2.0)]
    assert data["benchmarks"][0]["stats"]["median"] == 1.0  # the original is not changed
    assert out["reruns"] == [{"groups": ["dp-tiny"], "datetime": "now", "commit": "bbbbbbbbbb", "dirty": False}]
    text = "\n".join(report.machine_section(out))
    assert "Rerun of dp-tiny: now; commit bbbbbbbbbb" in text and "commit aaaaaaaaaa" in text
