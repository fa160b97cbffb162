"""BatchNorm's cost: a Dense+ReLU+BatchNorm step against the plain step and PyTorch eager, interleaved.

    plain      nnbackprop's ordinary step (``train_step``, SGD) on the size's ReLU network
    batchnorm  the same network with a BatchNorm after each hidden layer (``nb.mlp(norm="batch")``):
               target <= 1.3x plain at the medium size
    torch_bn   PyTorch eager on the same network (Linear, ReLU, BatchNorm1d), F.cross_entropy,
               torch.optim.SGD: target batchnorm <= 1.0x torch_bn

Ratios are medians over rounds of per-round ratios (paired.interleave), so drift cancels.
"""

from __future__ import annotations

import numpy as np

import nnbackprop as nb
from nnbackprop import _compat

from .paired import PLAN, interleave, summary
from .peers import torch_eager, torch_step
from .workloads import LR, SIZES, Case, Unavailable, backend, check_dtype, host_data, nnbackprop_case


def _bn_case(size, dtype) -> Case:
    model = nb.mlp(size.layers, "relu", norm="batch", dtype=dtype, seed=0)
    Xh, yh = host_data(size)
    X = _compat.from_host(model.xp, Xh, model.dtype, model.device)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(lr=LR)

    def fn():
        return model.train_step(X, yh, loss, opt)

    return Case(fn, state={"model": model})


def _torch_bn_case(size, dtype) -> Case:
    spec, torch, _ = backend("torch")
    check_dtype(spec, dtype)
    mods = []
    for i, (a, b) in enumerate(zip(size.layers, size.layers[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(size.layers) - 2:
            mods += [torch.nn.ReLU(), torch.nn.BatchNorm1d(b)]
    return torch_step(torch.nn.Sequential(*mods), size, dtype)


def measure(size_name: str, dtype: str = "float32", plan: tuple | None = None) -> dict:
    """{"pairs": {"batchnorm/plain": ..., "batchnorm/torch_bn": ..., "torch_bn/torch_eager": ...},
    "skipped": {case: why}, "plan": [...]} at ``size_name``."""
    size = SIZES[size_name]
    cases = {"plain": nnbackprop_case("step", "numpy", size, dtype), "batchnorm": _bn_case(size, dtype)}
    skipped = {}
    for name, build in (("torch_bn", _torch_bn_case), ("torch_eager", torch_eager)):
        try:
            cases[name] = build(size, dtype)
        except Unavailable as exc:
            skipped[name] = str(exc)
    plan = tuple(plan or PLAN[size_name])
    times = interleave(cases, *plan)
    pairs = [("batchnorm", "plain"), ("batchnorm", "torch_bn"), ("torch_bn", "torch_eager")]
    return {"pairs": {f"{a}/{b}": summary(times[a], times[b]) for a, b in pairs if a in times and b in times},
            "skipped": skipped, "plan": list(plan), "plain_s": float(np.median(times["plain"]))}
