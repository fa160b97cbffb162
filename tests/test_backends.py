"""The backend specs tell the truth: what each says it can do is what its
library does here, its requirements are the ones pyproject.toml installs, and
the ``be`` fixture hands arrays over the way the spec says."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

import backends
import nnbackprop as nb
from backends import spec_array_api_strict_device1, spec_cupy
from nnbackprop import _compat

ROOT = Path(__file__).resolve().parents[1]
SPECS = list(backends.all_backends().values())


# what the spec says against what the library does --------------------------------------
def test_dtypes_exist_on_the_device(be):
    assert set(be.spec.dtypes) <= set(_compat.float_dtypes(be.xp, be.device))


def test_writeable_is_what_the_library_finds(be):
    """The library's own arrays (a model's parameters) may be written in place
    exactly where the spec says so."""
    model = nb.Sequential([nb.Dense(2, 3)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    assert [_compat.is_writeable(p) for p in model.parameters()] == [be.spec.writeable] * 2


def test_arrays_go_on_the_spec_device(be):
    x = be.asarray(np.arange(6.0).reshape(2, 3), "float64")
    assert _compat.device_of(x) == be.device
    if be.spec.device_factory is not None:  # a spec that names a device means one other than the default
        assert be.device != _compat.default_device(be.xp)
    else:
        assert be.device == _compat.default_device(be.xp)


def test_inputs_are_read_only_where_the_spec_says(be):
    host = np.arange(6.0).reshape(2, 3)
    x = be.asarray(host, "float64")
    if be.spec.readonly_inputs:
        assert not _compat.is_writeable(x)
        with pytest.raises(ValueError, match="read-only"):
            x[0, 0] = 7.0
    else:
        assert _compat.is_writeable(x) == be.spec.writeable
    host[0, 0] = 7.0  # the test's own host array is never frozen nor aliased
    np.testing.assert_array_equal(be.host(x), np.arange(6.0).reshape(2, 3))


# requirements ------------------------------------------------------------------------------
def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_requirements_are_the_ones_pyproject_installs(spec):
    project = _pyproject()
    extras = project["optional-dependencies"]
    if spec.base:
        assert spec.requirement in project["dependencies"]
    elif spec.exact_pin:
        assert backends.is_exact_pin(spec.requirement)
        assert any(spec.requirement in reqs for reqs in extras.values()), "the pin must be an extra, verbatim"
    else:
        name = Requirement(spec.requirement).name
        assert any(Requirement(r).name == name for reqs in extras.values() for r in reqs)
    for other in spec.alternatives:
        assert any(other in reqs for reqs in extras.values()), f"{other} has no extra"
        assert other in spec.install_hint()


def test_cuda_builds_each_have_an_extra():
    extras = _pyproject()["optional-dependencies"]
    assert extras["gpu"] == extras["gpu-cuda12"] == ["cupy-cuda12x"]
    assert extras["gpu-cuda13"] == ["cupy-cuda13x"]


def test_exact_pins():
    assert backends.is_exact_pin("torch==2.13.0")
    for loose in ("torch", "torch>=2.13", "torch==2.13.*", "torch==2.13.0,<3"):
        assert not backends.is_exact_pin(loose), loose


# probes, on stand-in modules: no GPU needed -------------------------------------------------
class _FakeCupyArray:
    def __init__(self, a, broken_matmul=None, wrong=False):
        self.a, self.broken_matmul, self.wrong = np.asarray(a, dtype=float), broken_matmul, wrong

    def _new(self, a):
        return _FakeCupyArray(a, self.broken_matmul, self.wrong)

    def __matmul__(self, other):
        if self.broken_matmul:
            raise self.broken_matmul
        return self._new(self.a @ other.a + (1.0 if self.wrong else 0.0))

    def __mul__(self, other):
        return self._new(self.a * other.a)

    def get(self):
        return self.a


def _fake_cupy(count=1, count_error=None, broken_matmul=None, wrong=False):
    def get_device_count():
        if count_error:
            raise count_error
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=runtime),
        asarray=lambda a: _FakeCupyArray(a, broken_matmul, wrong),
        sum=lambda x: x._new(x.a.sum()),
    )


def test_cupy_probe_passes_a_working_gpu():
    assert spec_cupy.SPEC.probe(_fake_cupy()) is None


@pytest.mark.parametrize("fake, reason", [
    (_fake_cupy(count_error=RuntimeError("cudaErrorNoDevice")), r"no CUDA GPU is usable .*cudaErrorNoDevice"),
    (_fake_cupy(count=0), r"this machine has no CUDA GPU"),
    (_fake_cupy(broken_matmul=RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")),
     r"sees 1 GPU\(s\) but cannot compute there .*CUBLAS_STATUS_NOT_INITIALIZED.*cupy-cuda12x or cupy-cuda13x"),
    (_fake_cupy(wrong=True), r"wrong numbers"),
], ids=["no-driver", "no-gpu", "no-cublas", "wrong-numbers"])
def test_cupy_probe_names_what_is_missing(fake, reason):
    got = spec_cupy.SPEC.probe(fake)
    assert got is not None
    assert re.search(reason, got), got


def test_device1_probe():
    strict = pytest.importorskip("array_api_strict")
    probe = spec_array_api_strict_device1.SPEC.probe
    if hasattr(strict, "Device"):
        assert probe(strict) is None
    no_devices = types.SimpleNamespace(__version__="2.0", Device=None)
    assert "has no Device('device1')" in probe(no_devices)

    lenient = types.SimpleNamespace(__version__="0", Device=lambda name: name, asarray=lambda v, device=None: v)
    assert "combines arrays of two devices silently" in probe(lenient)
