"""The table of timed cases: which implementation, phase and backend at each size.

``all_cases(sizes, dtypes)`` lists :class:`Spec` rows in run order (size, then
dtype, then case), so a library and its peers at one size run back to back and
their ratios come from neighbouring minutes of the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import backends

from . import peers
from .workloads import DTYPES, SIZES, Case, Size, nnbackprop_case


@dataclasses.dataclass(frozen=True)
class Spec:
    impl: str
    phase: str
    backend: str
    size: str
    dtype: str
    build: Callable[[Size, str], Case]

    @property
    def id(self) -> str:
        return f"{self.impl}-{self.phase}-{self.backend}-{self.size}-{self.dtype}"


def _nnb(phase, name):
    return lambda size, dtype: nnbackprop_case(phase, name, size, dtype)


def _floor(name):
    return lambda size, dtype: peers.gemm_floor(name, size, dtype)


def all_cases(sizes=tuple(SIZES), dtypes=DTYPES) -> list[Spec]:
    names = [name for name, spec in backends.all_backends().items() if spec.benchmarked]
    out = []
    for s in sizes:
        for dt in dtypes:
            for name in names:
                for phase in ("forward", "backward", "step"):
                    out.append(Spec("nnbackprop", phase, name, s, dt, _nnb(phase, name)))
                out.append(Spec("gemm_floor", "step", name, s, dt, _floor(name)))
            out.append(Spec("numpy_hand", "step", "numpy", s, dt, peers.numpy_hand))
            out.append(Spec("torch_eager", "step", "torch", s, dt, peers.torch_eager))
            out.append(Spec("jax_jit", "step", "jax", s, dt, peers.jax_jit))
            if s == "tiny":
                out.append(Spec("per_example", "step", "numpy", s, dt, peers.per_example))
    return out
