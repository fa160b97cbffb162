"""fit's clip_norm= and clip_value=: trajectories against torch.nn.utils.clip_grad_norm_ /
clip_grad_value_ followed by the same torch optimizer, and the flat buffer's one reduction."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import clipping


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * 3
    T = np.stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])], axis=1) * 4
    return X, T


def _net(be):
    return nb.Sequential([nb.Dense(3, 6, "tanh"), nb.Dense(6, 2)], xp=be.xp, device=be.device,
                         dtype="float64", seed=0)


def _weights(model):
    return [np.array(nb._compat.to_host(p)) for p in model.parameters()]


def _torch_trajectory(torch, start, X, T, epochs, batch, opt_name, lr, l2, clip_norm, clip_value):
    params = [torch.tensor(p, requires_grad=True) for p in start]
    W0, b0, W1, b1 = params
    opt = torch.optim.SGD(params, lr=lr) if opt_name == "sgd" else torch.optim.Adam(params, lr=lr)
    Xt, Tt = torch.tensor(X), torch.tensor(T)
    for _ in range(epochs):
        for s in range(0, X.shape[0], batch):
            xb, tb = Xt[s:s + batch], Tt[s:s + batch]
            y = torch.tanh(xb @ W0 + b0) @ W1 + b1
            loss = ((y - tb) ** 2).sum() / (2 * xb.shape[0]) + l2 / 2 * ((W0 ** 2).sum() + (W1 ** 2).sum())
            opt.zero_grad()
            loss.backward()
            if clip_value is not None:
                torch.nn.utils.clip_grad_value_(params, clip_value)
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [{"clip_norm": 0.5}, {"clip_value": 0.05}, {"clip_norm": 0.3, "clip_value": 0.1}],
                         ids=["norm", "value", "both"])
def test_trajectory_equals_torch(be, opt_name, clip):
    torch = pytest.importorskip("torch")
    X, T = _data()
    m = _net(be)
    start = _weights(m)
    lr, l2 = (0.05, 1e-3)
    opt = nb.optim.SGD(lr) if opt_name == "sgd" else nb.optim.Adam(lr)
    m.fit(be.asarray(X, "float64"), be.asarray(T, "float64"), loss=nb.losses.MSE(l2=l2), optimizer=opt,
          epochs=4, batch_size=8, shuffle=False, progress=False, **clip)
    ref = _torch_trajectory(torch, start, X, T, 4, 8, opt_name, lr, l2, clip.get("clip_norm"),
                            clip.get("clip_value"))
    unclipped = _net(be)
    unclipped.fit(be.asarray(X, "float64"), be.asarray(T, "float64"), loss=nb.losses.MSE(l2=l2),
                  optimizer=nb.optim.SGD(lr) if opt_name == "sgd" else nb.optim.Adam(lr), epochs=4, batch_size=8,
                  shuffle=False, progress=False)
    assert max(np.abs(a - b).max() for a, b in zip(_weights(unclipped), ref)) > 1e-3  # clipping bit
    for a, b in zip(_weights(m), ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_clip_grad_norm_on_the_store(be):
    m = _net(be)
    X, T = _data()
    m.value_and_grad(be.asarray(X, "float64"), be.asarray(T, "float64"), nb.losses.MSE())
    g = np.concatenate([be.host(g).ravel() for g in m.gradients()])
    norm = clipping.clip_grad_norm_(m.store, 0.1)
    assert float(norm) == pytest.approx(np.linalg.norm(g), rel=1e-13)
    after = np.concatenate([be.host(g).ravel() for g in m.gradients()])
    np.testing.assert_allclose(after, g * (0.1 / (np.linalg.norm(g) + 1e-6)), rtol=1e-13)
    if m.store.flat:  # one buffer: the views show what was written into it
        assert np.linalg.norm(be.host(m.store.flat_grads)) == pytest.approx(np.linalg.norm(after), rel=1e-14)
    # below the bound: unchanged
    before = [be.host(g).copy() for g in m.gradients()]
    clipping.clip_grad_norm_(m.store, 1e6)
    for a, b in zip(before, m.gradients()):
        np.testing.assert_array_equal(a, be.host(b))


def test_sq_norm_fast_and_generic_agree(be):
    x = be.asarray(np.random.default_rng(0).standard_normal(1000), "float64")
    fast = float(clipping.sq_norm(x, be.xp))
    nb._compat.INPLACE = False
    try:
        generic = float(clipping.sq_norm(x, be.xp))
    finally:
        nb._compat.INPLACE = True
    assert fast == pytest.approx(generic, rel=1e-13)
    assert fast == pytest.approx(float(np.sum(be.host(x) ** 2)), rel=1e-13)


@pytest.mark.parametrize("kw", [{"clip_norm": 0.0}, {"clip_norm": -1}, {"clip_value": float("nan")},
                                {"clip_value": float("inf")}])
def test_bad_thresholds_are_refused_before_any_change(be, kw):
    X, T = _data()
    m = _net(be)
    before = _weights(m)
    with pytest.raises(ValueError, match="finite number > 0"):
        m.fit(be.asarray(X, "float64"), be.asarray(T, "float64"), loss="mse", optimizer="sgd", progress=False, **kw)
    assert m.optimizer is None
    for a, b in zip(before, _weights(m)):
        assert np.array_equal(a, b)
