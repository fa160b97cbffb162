"""Huber, L1 and Pinball: value and gradient against PyTorch's huber_loss / l1_loss
(autograd) and the pinball formula, central differences, and fit."""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import central_difference

import nnbackprop as nb
from nnbackprop import losses as L


def _pair(rng, n=7, c=2):
    z = rng.standard_normal((n, c)) * 2
    t = rng.standard_normal((n, c)) * 2
    t[0, 0] = z[0, 0]  # a zero residual: the subgradient's convention
    return z, t


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_equals_torch(be, delta):
    torch = pytest.importorskip("torch")
    z, t = _pair(np.random.default_rng(0))
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.huber_loss(zt, torch.tensor(t), reduction="sum", delta=delta) / z.shape[0]
    ref.backward()
    loss = L.Huber(delta)
    pred, target = be.asarray(z, "float64"), be.asarray(t, "float64")
    assert float(loss(pred, target)) == pytest.approx(ref.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(be.host(loss.grad(pred, target)), zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_huber_one_output_equals_torch_mean(be):
    torch = pytest.importorskip("torch")
    z, t = _pair(np.random.default_rng(1), c=1)
    ref = torch.nn.functional.huber_loss(torch.tensor(z), torch.tensor(t), reduction="mean", delta=0.7)
    assert float(L.Huber(0.7)(be.asarray(z, "float64"), be.asarray(t, "float64"))) == \
        pytest.approx(ref.item(), rel=1e-12)


def test_l1_equals_torch(be):
    torch = pytest.importorskip("torch")
    z, t = _pair(np.random.default_rng(2))
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.l1_loss(zt, torch.tensor(t), reduction="sum") / z.shape[0]
    ref.backward()
    pred, target = be.asarray(z, "float64"), be.asarray(t, "float64")
    assert float(L.L1()(pred, target)) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(be.host(L.L1().grad(pred, target)), zt.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_pinball_formula_and_scikit_learn(be, q):
    z, t = _pair(np.random.default_rng(3), c=1)
    pred, target = be.asarray(z, "float64"), be.asarray(t, "float64")
    loss = L.Pinball(q)
    r = t - z
    by_hand = np.where(r >= 0, q * r, (q - 1) * r).sum() / z.shape[0]
    assert float(loss(pred, target)) == pytest.approx(by_hand, rel=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert float(loss(pred, target)) == pytest.approx(metrics.mean_pinball_loss(t, z, alpha=q), rel=1e-12)
    g = be.host(loss.grad(pred, target))
    np.testing.assert_allclose(g, (np.where(z > t, 1.0, 0.0) - q) / z.shape[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss", [L.Huber(0.8), L.L1(), L.Pinball(0.25)], ids=["huber", "l1", "pinball"])
def test_gradients_against_central_differences(be, loss):
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 3))
    t = z + rng.choice([-1, 1], (5, 3)) * rng.uniform(0.1, 2.0, (5, 3))  # away from every kink
    target = be.asarray(t, "float64")
    g = be.host(loss.grad(be.asarray(z, "float64"), target))
    fd = central_difference(lambda a: float(loss(be.asarray(a, "float64"), target)), z, h=1e-7)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="delta"):
        L.Huber(0.0)
    with pytest.raises(ValueError, match="quantile"):
        L.Pinball(1.0)
    assert isinstance(L.get({"name": "pinball", "quantile": 0.9}), L.Pinball)
    assert L.get({"name": "huber", "delta": 2.0}).delta == 2.0
    assert L.get("l1").name == "l1"


def test_pinball_fit_learns_the_quantile(be):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 1))
    y = X + rng.standard_normal((400, 1)) * 0.3
    m = nb.mlp([1, 16, 1], "tanh", xp=be.xp, device=be.device, dtype="float64", seed=0)
    m.fit(be.asarray(X, "float64"), be.asarray(y, "float64"), loss=L.Pinball(0.9), optimizer=nb.optim.Adam(0.02),
          epochs=60, batch_size=64, seed=0, progress=False)
    cover = float(np.mean(y <= be.host(m.predict(be.asarray(X, "float64")))))
    assert 0.85 <= cover <= 0.95
