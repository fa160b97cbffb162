"""Losses: hand-worked numbers, stable extremes, gradients against central
differences, and torch as an independent oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from finite_differences import central_difference

from nnbackprop import losses as L


def _f64(be, a):
    return be.asarray(np.asarray(a, dtype=np.float64), "float64")


def _labels(be, a):
    return be.asarray(np.asarray(a, dtype=np.int64), "int64")


# hand-worked values ---------------------------------------------------------------
def test_mse_hand_worked(be):
    # residuals (1, 0; 2, 3): squares sum to 1 + 0 + 4 + 9 = 14; J = 14 / (2 * 2) = 3.5
    pred = _f64(be, [[1.0, 2.0], [3.0, 4.0]])
    target = _f64(be, [[0.0, 2.0], [1.0, 1.0]])
    loss = L.MSE()
    J = loss(pred, target)
    assert J.shape == ()
    assert float(J) == 3.5
    # dJ/dpred = residual / N
    assert be.host(loss.grad(pred, target)).tolist() == [[0.5, 0.0], [1.0, 1.5]]


def test_bce_hand_worked(be):
    # z = 0: log(1 + e^0) - t*0 = log 2 for each entry, whatever t; N = 1, two entries
    pred = _f64(be, [[0.0, 0.0]])
    target = _f64(be, [[0.0, 1.0]])
    assert float(L.BinaryCrossEntropy()(pred, target)) == pytest.approx(2 * math.log(2), rel=1e-15)
    # grad = (sigma(0) - t) / N = (0.5, -0.5)
    assert be.host(L.BinaryCrossEntropy().grad(pred, target)).tolist() == [[0.5, -0.5]]


def _bce_reference(z, t):
    # log(1 + e^z) - t z written as max(z, 0) + log1p(e^-|z|) - t z
    return np.sum(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - t * z) / z.shape[0]


def test_bce_extreme_logits(be):
    z = np.array([[200.0, -200.0], [-200.0, 200.0], [3.0, -4.0]])
    t = np.array([[0.0, 1.0], [0.0, 1.0], [0.25, 0.5]])
    loss = L.BinaryCrossEntropy()
    J = float(loss(_f64(be, z), _f64(be, t)))  # warnings are errors: no overflow allowed
    assert math.isfinite(J)
    np.testing.assert_allclose(J, _bce_reference(z, t), rtol=1e-14)
    # entries on the wrong side cost 200 each (two in row 0), the right side about e^-200
    assert J == pytest.approx((400.0 + _bce_reference(z[2:], t[2:]) * 1) / 3, rel=1e-14)
    g = be.host(loss.grad(_f64(be, z), _f64(be, t)))
    assert np.all(np.isfinite(g))
    sig = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    np.testing.assert_allclose(g, (sig - t) / 3, rtol=1e-14, atol=1e-300)
    assert g[0, 0] == pytest.approx(1 / 3) and g[0, 1] == pytest.approx(-1 / 3)


def test_softmax_ce_hand_worked(be):
    # equal logits over 4 classes: p = 1/4 each, J = log 4; grad = (1/4 - onehot) / N
    pred = _f64(be, np.zeros((2, 4)))
    labels = _labels(be, [1, 3])
    loss = L.SoftmaxCrossEntropy()
    assert float(loss(pred, labels)) == pytest.approx(math.log(4), rel=1e-15)
    assert be.host(loss.grad(pred, labels)).tolist() == [[0.125, -0.375, 0.125, 0.125],
                                                        [0.125, 0.125, 0.125, -0.375]]


def test_softmax_ce_labels_equal_one_hot(be, rng):
    z = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 4, size=6)
    onehot = np.eye(4)[y]
    loss = L.SoftmaxCrossEntropy()
    J1, g1 = float(loss(_f64(be, z), _labels(be, y))), be.host(loss.grad(_f64(be, z), _labels(be, y)))
    J2, g2 = float(loss(_f64(be, z), _f64(be, onehot))), be.host(loss.grad(_f64(be, z), _f64(be, onehot)))
    assert J1 == pytest.approx(J2, rel=1e-15)
    np.testing.assert_allclose(g1, g2, rtol=0, atol=1e-16)
    # and both match -mean log softmax computed here with math
    ref = -sum(z[n, y[n]] - math.log(math.fsum(math.exp(v) for v in z[n])) for n in range(6)) / 6
    assert J1 == pytest.approx(ref, rel=1e-13)


def test_softmax_ce_extreme_logits(be):
    z = np.array([[1000.0, 0.0, -1000.0]])
    loss = L.SoftmaxCrossEntropy()
    assert float(loss(_f64(be, z), _labels(be, [0]))) == 0.0
    assert float(loss(_f64(be, z), _labels(be, [1]))) == pytest.approx(1000.0, rel=1e-15)
    assert float(loss(_f64(be, z), _labels(be, [2]))) == pytest.approx(2000.0, rel=1e-15)


def test_softmax_ce_probability_targets(be, rng):
    z = rng.standard_normal((3, 5))
    t = rng.random((3, 5))
    t /= t.sum(axis=1, keepdims=True)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    got = float(L.SoftmaxCrossEntropy()(_f64(be, z), _f64(be, t)))
    assert got == pytest.approx(-np.sum(t * logp) / 3, rel=1e-13)


# gradients against central differences -------------------------------------------
def _targets(be, kind, rng, shape):
    if kind == "mse":
        return L.MSE(), _f64(be, rng.standard_normal(shape))
    if kind == "bce":
        return L.BinaryCrossEntropy(), _f64(be, rng.random(shape))
    if kind == "sce_labels":
        return L.SoftmaxCrossEntropy(), _labels(be, rng.integers(0, shape[1], size=shape[0]))
    if kind == "sce_probs":
        t = rng.random(shape)
        return L.SoftmaxCrossEntropy(), _f64(be, t / t.sum(axis=1, keepdims=True))
    raise AssertionError(kind)


KINDS = ["mse", "bce", "sce_labels", "sce_probs"]


@pytest.mark.parametrize("kind", KINDS)
def test_grad_matches_finite_differences(be, kind, rng):
    loss, T = _targets(be, kind, rng, (4, 3))
    z = rng.standard_normal((4, 3)) * 2
    g = be.host(loss.grad(_f64(be, z), T))
    num = central_difference(lambda zv: float(loss(_f64(be, zv), T)), z)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_value_and_grad_agree_with_checked_api(be, kind, rng):
    loss, T = _targets(be, kind, rng, (5, 3))
    z = _f64(be, rng.standard_normal((5, 3)))
    J, g = loss.value_and_grad(z, T, be.xp)
    assert float(J) == float(loss(z, T))
    np.testing.assert_array_equal(be.host(g), be.host(loss.grad(z, T)))


# torch as an oracle ----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_against_torch(be, kind, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    loss, T = _targets(be, kind, rng, (5, 4))
    z = rng.standard_normal((5, 4)) * 3
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    Th = be.host(T)
    if kind == "mse":
        ref = F.mse_loss(zt, torch.tensor(Th), reduction="sum") / (2 * 5)
    elif kind == "bce":
        ref = F.binary_cross_entropy_with_logits(zt, torch.tensor(Th), reduction="sum") / 5
    elif kind == "sce_labels":
        ref = F.cross_entropy(zt, torch.tensor(Th, dtype=torch.int64), reduction="mean")
    else:
        ref = F.cross_entropy(zt, torch.tensor(Th), reduction="sum") / 5
    ref.backward()
    J = float(loss(_f64(be, z), T))
    g = be.host(loss.grad(_f64(be, z), T))
    assert J == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


# config and lookup -------------------------------------------------------------------
def test_get_and_config():
    assert isinstance(L.get("mse"), L.MSE)
    l2 = L.get({"name": "binary_cross_entropy", "l2": 0.5})
    assert isinstance(l2, L.BinaryCrossEntropy) and l2.l2 == 0.5
    assert L.get(l2) is l2
    assert L.SoftmaxCrossEntropy(l2=0.1).config() == {"name": "softmax_cross_entropy", "l2": 0.1}
    with pytest.raises(ValueError, match="valid names: mse, binary_cross_entropy, softmax_cross_entropy"):
        L.get("hinge")
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        L.MSE(l2=-1.0)
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        L.MSE(l2=float("nan"))
