"""Test matrix across backends, read from backends/.

    nox                 # the sessions that run on a CPU machine
    nox -s tests-torch  # one backend
    nox -s lint
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
import backends  # noqa: E402

nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

BACKENDS = backends.all_backends()
PYTHON = "3.11"


def _install_for(session, spec):
    session.install("-e", ".[test,examples]")
    if spec.name != "numpy":
        session.install(spec.requirement)


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
def lint(session):
    session.install("ruff>=0.4")
    session.run("ruff", "check", "nnbackprop", "backends", "tests", "benchmarks", "examples", "noxfile.py")


nox.options.sessions = [f"tests({name})" for name, spec in BACKENDS.items() if spec.cpu] + ["lint"]
