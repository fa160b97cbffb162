"""Test matrix across backends, read from backends/.

    nox                 # the sessions that run on a CPU machine
    nox -s "tests(torch)"  # one backend (the session of each is tests(<backend>))
    nox -s lint
    nox -s bench        # benchmarks -> benchmarks/results/cpu.json, BENCHMARKS.md, PNG
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

sys.path.insert(0, str(Path(__file__).parent))
import backends  # noqa: E402

nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

BACKENDS = backends.all_backends()
PYTHON = "3.11"
JAX = "jax"  # a peer in the benchmarks only: plain jax brings the CPU jaxlib, never CUDA


def _check_pin(session, spec):
    """A spec that must be pinned (torch: the CPU build on the reference machines,
    never a plain `torch`) names exactly one version."""
    if spec.exact_pin and not backends.is_exact_pin(spec.requirement):
        session.error(f"{spec.name} must be pinned to one exact version (name==version), spec says {spec.requirement}")


def _install_backend(session, spec):
    """The spec's own requirement, unless nnbackprop's dependencies bring it."""
    _check_pin(session, spec)
    if not spec.base:
        session.install(spec.requirement)


def _install_for(session, spec):
    session.install("-e", ".[test,examples,dp,onnx]")
    _install_backend(session, spec)


@nox.session(python=PYTHON)
@nox.parametrize("backend", list(BACKENDS), ids=list(BACKENDS))
def tests(session, backend):
    """The whole suite on one backend.

    A CPU backend that turns out unavailable fails the session; an accelerator
    backend (CuPy) on a machine without one skips every test with the reason.
    """
    spec = BACKENDS[backend]
    _install_for(session, spec)
    require = ["--require-backends"] if spec.cpu else []
    session.run("pytest", "--backends", backend, *require, *session.posargs)


@nox.session(python=PYTHON)
def mpi(session):
    """Data-parallel training: mpiexec with 2 and 3 ranks and torchrun (gloo), on
    NumPy, PyTorch CPU tensors and array-api-strict, against one process."""
    session.install("-e", ".[test,mpi]")
    torch = BACKENDS["torch"]
    _install_backend(session, torch)
    session.run("pytest", "tests/test_distributed.py", "--backends", "numpy,torch,array_api_strict",
                "--require-backends", *session.posargs)
    session.run("mpiexec", "-n", "2", "python", "examples/distributed.py", str(Path(session.create_tmp()) / "m.npz"))


@nox.session(python=PYTHON)
def lint(session):
    session.install("ruff>=0.4")
    session.run("ruff", "check", "nnbackprop", "backends", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session(python=PYTHON)
def bench(session):
    """The benchmark suite on every backend installable here, then the report.

    Backends come from their specs (an ``exact_pin`` spec such as torch's must
    name one version: ``torch==2.13.0``, the CPU build on the reference
    machines). Results: ``benchmarks/results/$BENCH_LABEL.json`` (default
    ``cpu``) and ``BENCHMARKS.md`` at the root. Extra arguments go to pytest,
    e.g. ``nox -s bench -- --bench-sizes tiny,medium``.
    """
    session.install("-e", ".[test,examples,plot]")
    for spec in BACKENDS.values():
        if spec.cpu and spec.benchmarked:
            _install_backend(session, spec)
    try:  # the JAX jit peer (CPU jaxlib, ~600 MB); without it its cases skip with the reason
        session.install(JAX)
    except CommandFailed:
        session.warn(f"could not install {JAX}: the JAX jit peer will be skipped")
    label = os.environ.get("BENCH_LABEL", "cpu")
    out = f"benchmarks/results/{label}.json"
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    session.run("pytest", "benchmarks", "-p", "no:cacheprovider", f"--benchmark-json={out}",
                "--benchmark-columns=median,iqr,rounds,iterations", "--benchmark-group-by=group",
                *session.posargs)
    try:  # data-parallel on loopback: mpiexec from the mpich wheels
        session.install("-e", ".[mpi]")
        session.run("python", "-m", "benchmarks.distributed", "benchmarks/results/distributed.json",
                    "--sizes", os.environ.get("BENCH_SIZES", "tiny,medium,large"))
    except CommandFailed:
        session.warn("no MPI here: the data-parallel section of BENCHMARKS.md is left out")
    session.run("python", "-m", "benchmarks.report", out)


nox.options.sessions = [f"tests({name})" for name, spec in BACKENDS.items() if spec.cpu] + ["mpi", "lint"]
