"""Backpropagated gradients against central differences for every activation
x every loss x depth 1-4, the L2 penalty, and torch autograd as an oracle."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from finite_differences import central_difference

import nnbackprop as nb
from nnbackprop import activations as A
from nnbackprop import losses as L

ACTS = {
    "identity": A.Identity(), "sigmoid": A.Sigmoid(), "tanh": A.Tanh(), "relu": A.ReLU(),
    "leaky_relu_0.2": A.LeakyReLU(0.2), "softmax": A.Softmax(),
}
LOSSES = ["mse", "bce", "sce_labels", "sce_onehot", "sce_probs"]
N, N_IN, WIDTHS, N_OUT = 5, 3, (4, 3, 4), 3


def _f64(be, a):
    return be.asarray(np.asarray(a, dtype=np.float64), "float64")


def _problem(be, kind, rng):
    """(loss, T) for N rows and N_OUT outputs."""
    if kind == "mse":
        return L.MSE(), _f64(be, rng.standard_normal((N, N_OUT)))
    if kind == "bce":
        return L.BinaryCrossEntropy(), _f64(be, rng.random((N, N_OUT)))
    labels = rng.integers(0, N_OUT, size=N)
    if kind == "sce_labels":
        return L.SoftmaxCrossEntropy(), be.asarray(labels, "int64")
    if kind == "sce_onehot":
        return L.SoftmaxCrossEntropy(), _f64(be, np.eye(N_OUT)[labels])
    t = rng.random((N, N_OUT))
    return L.SoftmaxCrossEntropy(), _f64(be, t / t.sum(axis=1, keepdims=True))


def _net(be, act, depth, loss, seed=0):
    """depth Dense layers of act; the last one identity where the loss forbids act."""
    sizes = [N_IN, *WIDTHS[: depth - 1], N_OUT]
    forbidden = {L.BinaryCrossEntropy: "sigmoid", L.SoftmaxCrossEntropy: "softmax"}.get(type(loss))
    layers = []
    for i in range(depth):
        a = act
        if i == depth - 1 and act.name == forbidden:
            a = A.Identity()
        layers.append(nb.Dense(sizes[i], sizes[i + 1], activation=a))
    model = nb.Sequential(layers, xp=be.xp, device=be.device, dtype="float64", seed=seed)
    # nonzero biases: with the default zero biases a row of dead relus feeds the
    # next layer z = 0 exactly, the kink, where no finite difference agrees
    brng = np.random.default_rng(seed + 100)
    for layer in model.layers:
        layer.b = _f64(be, 0.5 * brng.standard_normal(layer.n_out))
    return model


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("act_name", list(ACTS))
def test_gradient_check_grid(be, act_name, kind, depth):
    rng = np.random.default_rng(zlib.crc32(f"{act_name}/{kind}/{depth}".encode()))
    loss, T = _problem(be, kind, rng)
    model = _net(be, ACTS[act_name], depth, loss, seed=depth)
    X = _f64(be, rng.standard_normal((N, N_IN)))
    before = [be.host(p).copy() for p in model.parameters()]
    # eps = 1e-5 rather than the default 1e-6: four stacked sigmoids shrink the
    # first layer's gradient to ~1e-5, where round-off in J / eps would dominate
    err = nb.gradient_check(model, loss, X, T, eps=1e-5)
    assert err < 1e-6, f"{act_name}/{kind}/depth {depth}: relative error {err:.2e}"
    # gradient_check works on a copy: the model's weights are untouched
    for p, q in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(p, be.host(q))


def test_gradient_check_detects_a_wrong_rule(be, monkeypatch):
    """The check can fail: break tanh's derivative and it reports a large error."""
    rng = np.random.default_rng(0)
    loss, T = _problem(be, "mse", rng)
    model = _net(be, A.Tanh(), 2, loss)
    X = _f64(be, rng.standard_normal((N, N_IN)))
    monkeypatch.setattr(A.Tanh, "backward", lambda self, dA, z, a, xp, out=None: dA * (1 - a))
    assert nb.gradient_check(model, loss, X, T) > 1e-2


@pytest.mark.parametrize("kind", ["mse", "bce", "sce_labels"])
def test_l2_penalty_value_and_gradient(be, kind):
    rng = np.random.default_rng(11)
    lam = 0.3
    loss, T = _problem(be, kind, rng)
    loss_l2 = type(loss)(l2=lam)
    model = _net(be, A.Tanh(), 3, loss, seed=2)
    X = _f64(be, rng.standard_normal((N, N_IN)))

    J0 = float(model.value_and_grad(X, T, loss))
    g0 = [be.host(g).copy() for g in model.gradients()]
    J = float(model.value_and_grad(X, T, loss_l2))
    g = [be.host(gg).copy() for gg in model.gradients()]

    Ws = [be.host(layer.W) for layer in model.layers]
    penalty = lam / 2 * sum(float(np.sum(W * W)) for W in Ws)  # biases excluded
    assert penalty > 0
    assert J == pytest.approx(J0 + penalty, rel=1e-13)
    for i, W in enumerate(Ws):
        np.testing.assert_allclose(g[2 * i], g0[2 * i] + lam * W, rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(g[2 * i + 1], g0[2 * i + 1])  # db carries no penalty
    assert nb.gradient_check(model, loss_l2, X, T) < 1e-6


def test_backward_input_gradient_matches_finite_differences(be):
    """model.backward(dY) returns dJ/dX; check it for J = sum(dY * forward(X))."""
    rng = np.random.default_rng(4)
    model = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2, "sigmoid")],
                          xp=be.xp, device=be.device, dtype="float64", seed=1)
    Xh = rng.standard_normal((N, 3))
    dYh = rng.standard_normal((N, 2))
    model.forward(_f64(be, Xh))
    dX = be.host(model.backward(_f64(be, dYh)))
    num = central_difference(lambda Xv: float(np.sum(dYh * be.host(model.forward(_f64(be, Xv))))), Xh)
    np.testing.assert_allclose(dX, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind", ["mse", "bce", "sce_labels"])
def test_two_layer_network_against_torch_autograd(be, kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(21)
    loss, T = _problem(be, kind, rng)
    model = nb.Sequential([nb.Dense(N_IN, 4, "tanh"), nb.Dense(4, N_OUT, "identity")],
                          xp=be.xp, device=be.device, dtype="float64", seed=9)
    Xh = rng.standard_normal((N, N_IN))
    # nonzero biases so db matters in the forward pass too
    model.layers[0].b = _f64(be, rng.standard_normal(4))
    model.layers[1].b = _f64(be, rng.standard_normal(N_OUT))
    params = [torch.tensor(be.host(p), dtype=torch.float64, requires_grad=True)
              for p in model.parameters()]
    W0, b0, W1, b1 = params
    Y = torch.tanh(torch.tensor(Xh) @ W0 + b0) @ W1 + b1
    Th = torch.tensor(be.host(T))
    if kind == "mse":
        ref = ((Y - Th) ** 2).sum() / (2 * N)
    elif kind == "bce":
        ref = F.binary_cross_entropy_with_logits(Y, Th, reduction="sum") / N
    else:
        ref = F.cross_entropy(Y, Th.long())
    ref.backward()

    J = float(model.value_and_grad(_f64(be, Xh), T, loss))
    assert J == pytest.approx(ref.item(), rel=1e-13)
    for got, p in zip(model.gradients(), params, strict=True):
        np.testing.assert_allclose(be.host(got), p.grad.numpy(), rtol=1e-12, atol=1e-14)
