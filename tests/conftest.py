"""One ``xp`` fixture over every backend in ``backends/``.

``--backends numpy,torch`` (or NNBACKPROP_BACKENDS) picks some; by default all
are tried. A backend that cannot run here (CuPy without a GPU) is skipped with
its reason, shown in the report header and in the skip list; with
``--require-backends`` (what each nox session passes for its own backend) an
unavailable backend fails instead, so nothing is skipped silently.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backends  # noqa: E402
import nnbackprop._compat as compat  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--backends", default=os.environ.get("NNBACKPROP_BACKENDS", ""),
                     help="comma-separated backend names from backends/ (default: all)")
    parser.addoption("--require-backends", action="store_true",
                     help="fail, rather than skip, when a chosen backend is unavailable")


def _chosen(config):
    names = [n for n in config.getoption("--backends").split(",") if n]
    known = backends.all_backends()
    for n in names:
        if n not in known:
            raise pytest.UsageError(f"unknown backend {n!r}; known: {', '.join(known)}")
    return [known[n] for n in (names or known)]


def pytest_report_header(config):
    lines = []
    for spec in _chosen(config):
        reason = spec.unavailable()
        lines.append(f"  {spec.name}: " + ("available" if reason is None else f"UNAVAILABLE - {reason}"))
    return ["nnbackprop backends:"] + lines


class Backend:
    """What a test needs of a backend: its namespace, the device its arrays and
    models go on, and host<->array helpers. Ask ``spec`` what it can do
    (``be.spec.writeable``, ``be.spec.has_float16``), never its name."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.module = spec.load()
        self.xp = compat.namespace(self.module)
        chosen = spec.device_factory(self.module) if spec.device_factory else None
        self.device = compat.resolve_device(self.xp, chosen)  # pass to every model: device=be.device

    def asarray(self, a, dtype=None):
        """Host data -> a new array of this backend on ``be.device`` (``dtype`` a
        name like "float64"), read-only where the spec's inputs are. Always a
        copy: the caller's host array is never frozen, and stays a reference
        the library cannot have written into."""
        a = np.array(a)
        dt = getattr(self.xp, dtype) if isinstance(dtype, str) else dtype
        x = compat.from_host(self.xp, a, dt, self.device)
        if self.spec.freeze is not None:
            self.spec.freeze(x)
        return x

    def host(self, x):
        return compat.to_host(x)

    def has(self, dtype_name):
        return dtype_name in self.spec.dtypes

    def __repr__(self):
        return self.name


def pytest_generate_tests(metafunc):
    if "be" in metafunc.fixturenames:
        specs = _chosen(metafunc.config)
        metafunc.parametrize("be", specs, ids=[s.name for s in specs], indirect=True, scope="session")


_cache: dict = {}


@pytest.fixture(scope="session")
def be(request):
    """The backend under test (``be.xp`` is its namespace)."""
    spec = request.param
    reason = spec.unavailable()
    if reason is not None:
        if request.config.getoption("--require-backends"):
            pytest.fail(f"backend {spec.name} required but unavailable: {reason}")
        pytest.skip(f"backend {spec.name} unavailable: {reason}")
    if spec.name not in _cache:
        _cache[spec.name] = Backend(spec)
    return _cache[spec.name]


@pytest.fixture
def xp(be):
    return be.xp


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
