"""The cost of weights, clipping and DP-SGD: each step against a plain step, interleaved.

Every case is one training step of the same network on the same batch through
fit's own per-batch path (``training._Plan``): forward, gradients, SGD update.

    plain      the ordinary step
    weighted   per-row weights (target <= 1.05x plain)
    clipped    clip_norm on the flat gradient buffer (target <= 1.05x plain)
    dp         DP-SGD: per-example norms, clip factors, weighted products, noise (target <= 1.5x plain)
    dp_clip    the same with sigma = 0: the per-example clipping alone, without drawing the noise
               (one standard normal per parameter per step, on the host)
    dp_loop    the reference: one row at a time, clipped and summed by hand (tiny size only)
    noise      the reference: DP-SGD's noise draw alone, sigma C xi added to the flat gradients
    bits       the reference: the random bits that draw takes alone (PCG64, 32 per normal): the
               floor of any exact Gaussian noise on this host

Ratios are medians over rounds of per-round ratios (paired.interleave), so drift cancels.
"""

from __future__ import annotations

import numpy as np

import nnbackprop as nb
from nnbackprop import _compat, training
from nnbackprop.privacy import DPSGD

from .paired import PLAN, interleave, summary
from .workloads import SIZES, Case, build_model, host_data

CLIP = 1.0


def _step_case(size, dtype, *, weighted=False, clip_norm=None, dp=None) -> Case:
    model = build_model(size, np, dtype)
    xp = model.xp
    Xh, yh = host_data(size)
    X = _compat.from_host(xp, Xh, model.dtype, model.device)
    y = _compat.from_host(xp, yh, xp.int64, model.device)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.01)
    w = _compat.from_host(xp, np.random.default_rng(1).uniform(0.5, 2.0, size.batch), model.dtype) \
        if weighted else None
    plan = training._Plan(model, X, y, loss, size.batch, w, None, clip_norm, None, dp)
    wb = plan.weight

    def fn():
        Y, tape = model._step_forward(X)
        J = plan.grads(model, Y, tape, y, loss, wb)
        opt.step(model)
        return J
    return Case(fn, state={"model": model})


def _dp_loop_case(size, dtype) -> Case:
    """DP-SGD the way a per-sample-gradient library without the norm identity does it:
    each row's gradient, clipped, summed (no noise: the loop's cost is the point)."""
    model = build_model(size, np, dtype)
    Xh, yh = host_data(size)
    X, y = Xh.astype(dtype), yh
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.01)

    def fn():
        acc = None
        for i in range(X.shape[0]):
            model._value_and_grad(X[i:i + 1], y[i:i + 1], loss)
            g = model.store.flat_grads
            c = min(1.0, CLIP / max(float(np.sqrt(g @ g)), 1e-12))
            acc = g * c if acc is None else acc + g * c
        model.store.flat_grads[...] = acc / X.shape[0]
        opt.step(model)
    return Case(fn, state={"model": model})


def _noise_case(size, dtype, bits_only=False) -> Case:
    model = build_model(size, np, dtype)
    g, normals = model.store.flat_grads, DPSGD(CLIP, 1.0, seed=0).normals
    bitgen, pairs = np.random.PCG64(0), (g.shape[0] + 1) // 2
    if bits_only:
        return Case(lambda: bitgen.random_raw(pairs), state={"model": model})
    return Case(lambda: normals.add_to(g, CLIP), state={"model": model})


def measure(size_name: str, dtype: str = "float32", plan: tuple | None = None) -> dict:
    """{"pairs": {case: summary of case / plain}, "plan": [...]} at ``size_name``."""
    size = SIZES[size_name]
    cases = {"plain": _step_case(size, dtype), "weighted": _step_case(size, dtype, weighted=True),
             "clipped": _step_case(size, dtype, clip_norm=CLIP),
             "dp": _step_case(size, dtype, dp=DPSGD(CLIP, 1.0, seed=0)),
             "dp_clip": _step_case(size, dtype, dp=DPSGD(CLIP, 0.0))}
    cases["noise"], cases["bits"] = _noise_case(size, dtype), _noise_case(size, dtype, bits_only=True)
    if size_name == "tiny":
        cases["dp_loop"] = _dp_loop_case(size, dtype)
    plan = tuple(plan or PLAN[size_name])
    times = interleave(cases, *plan)
    return {"pairs": {k: summary(times[k], times["plain"]) for k in cases if k != "plain"},
            "plain_s": float(np.median(times["plain"])), "plan": list(plan)}
