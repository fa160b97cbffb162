"""Backend probing for ``nnbackprop info``, ``bench`` and ``--backend auto``: generic,
through nnbackprop._compat (import the module, compute on its default device)."""

from __future__ import annotations

import sys
import types

import pytest

from nnbackprop import _compat, sysinfo


@pytest.fixture
def gpu_library_without_gpu(monkeypatch):
    """An importable array module whose default device is unusable, as CuPy is
    on a machine without a GPU: creating any array fails."""
    mod = types.ModuleType("fake_gpu_arrays")

    def asarray(*args, **kwargs):
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    mod.asarray = asarray
    monkeypatch.setitem(sys.modules, "fake_gpu_arrays", mod)
    return "fake_gpu_arrays"


def test_probe_runs_every_backend_under_test(be):
    assert _compat.probe(be.spec.module) is None
    assert sysinfo.unavailable(be.spec.module) is None
    assert str(be.device) in sysinfo.devices(be.spec.module).split(", ")
    assert be.device in _compat.devices(be.xp)


def test_probe_says_why_not():
    assert _compat.probe("no_such_array_library").startswith(
        "no_such_array_library is not installed (ModuleNotFoundError")


def test_probe_catches_a_library_that_cannot_compute(gpu_library_without_gpu):
    reason = _compat.probe(gpu_library_without_gpu)
    assert reason == (f"{gpu_library_without_gpu} is installed but cannot compute on its default device "
                      f"(RuntimeError: cudaErrorNoDevice: no CUDA-capable device is detected)")


def test_auto_takes_the_first_usable_and_says_why(gpu_library_without_gpu):
    name, why = sysinfo.pick_auto((gpu_library_without_gpu, "numpy"))
    assert name == "numpy" and why == _compat.probe(gpu_library_without_gpu)
    name, why = sysinfo.pick_auto(("numpy", gpu_library_without_gpu))
    assert (name, why) == ("numpy", "numpy computes on cpu")
    with pytest.raises(RuntimeError, match=f"none of {gpu_library_without_gpu} is usable"):
        sysinfo.pick_auto((gpu_library_without_gpu,))


def test_info_lists_each_known_backend_once():
    lines = sysinfo.info_lines()
    for name in sysinfo.KNOWN:
        assert sum(line.split()[0] == name for line in lines if line.startswith("  ")) == 1
    assert lines[-1].startswith("--backend auto picks ")
