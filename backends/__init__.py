"""Backend specs, one file each (``backends/spec_*.py``), read by the tests,
the benchmarks and ``noxfile.py``. Adding a backend is adding one file.

Not shipped in the wheel: the library itself never names a backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Backend:
    """What tests, benchmarks and nox may ask of a backend. Ask these fields,
    never the name: a new backend is then a new file and nothing else."""

    name: str                       # what tests, benchmarks and nox call it
    module: str                     # the module a user imports (``xp=``)
    requirement: str                # pip requirement that installs it
    dtypes: tuple[str, ...]         # floating dtypes nnbackprop supports on it
    writeable: bool                 # the library may update its own arrays in place (x[...] = v, out=)
    device_kind: str = "cpu"        # kind of device its arrays live on: "cpu" or "cuda"
    base: bool = False              # installed with nnbackprop itself (a dependency in pyproject.toml)
    exact_pin: bool = False         # requirement must name one exact version (name==version)
    alternatives: tuple[str, ...] = ()  # other requirements for the same module (another CUDA build)
    benchmarked: bool = True        # timed by benchmarks/ (False: a test-only variant of another spec)
    # the device tests put arrays and models on, from the module; None: its default device
    device_factory: Callable[[ModuleType], Any] | None = None
    # makes an array read-only, for a spec whose test inputs are all read-only; None: left writeable
    freeze: Callable[[Any], None] | None = None
    sync: Callable[[ModuleType], None] = lambda mod: None  # wait for queued device work
    probe: Callable[[ModuleType], str | None] = lambda mod: None  # reason it is unusable

    @property
    def cpu(self) -> bool:
        """Runs on a machine with no accelerator (what CI runs)."""
        return self.device_kind == "cpu"

    @property
    def has_float16(self) -> bool:
        return "float16" in self.dtypes

    @property
    def readonly_inputs(self) -> bool:
        """Every array a test hands the library is read-only."""
        return self.freeze is not None

    def install_hint(self) -> str:
        """``pip install '...'``, with the alternatives where there are some."""
        others = "".join(f" (or '{r}')" for r in self.alternatives)
        return f"pip install '{self.requirement}'{others}"

    def unavailable(self) -> str | None:
        """None when usable here; otherwise why not, in words."""
        try:
            mod = importlib.import_module(self.module)
        except Exception as exc:
            return f"{self.module} is not installed ({type(exc).__name__}: {exc}); {self.install_hint()}"
        try:
            return self.probe(mod)
        except Exception as exc:
            return f"{self.module} imported but cannot run here: {type(exc).__name__}: {exc}"

    def load(self) -> ModuleType:
        reason = self.unavailable()
        if reason:
            raise RuntimeError(f"backend {self.name!r} is unavailable: {reason}")
        return importlib.import_module(self.module)


def is_exact_pin(requirement: str) -> bool:
    """Whether a pip requirement names exactly one version (``torch==2.13.0``)."""
    from packaging.requirements import Requirement

    specifiers = list(Requirement(requirement).specifier)
    return len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version


def all_backends() -> dict[str, Backend]:
    """Every spec under ``backends/``, by name, in file order."""
    found = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("spec_"):
            spec = importlib.import_module(f"{__name__}.{info.name}").SPEC
            found[spec.name] = spec
    order = ["numpy", "array_api_strict", "torch", "cupy"]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0])))


def get(name: str) -> Backend:
    backends = all_backends()
    if name not in backends:
        raise KeyError(f"no backend spec {name!r}; known: {', '.join(backends)}")
    return backends[name]
