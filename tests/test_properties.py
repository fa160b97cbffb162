"""Property-based tests over shapes, depths, activations, losses and dtypes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbackprop as nb
from nnbackprop import _compat
from nnbackprop import activations as A
from nnbackprop import losses as L

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)

SMOOTH = ["identity", "sigmoid", "tanh", "softmax", "leaky_relu"]


@st.composite
def problems(draw, activations=("relu", *SMOOTH)):
    n = draw(st.integers(1, 6))
    depth = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1))
    acts = draw(st.lists(st.sampled_from(activations), min_size=depth, max_size=depth))
    kind = draw(st.sampled_from(["mse", "bce", "sce_labels", "sce_probs"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, widths, acts, kind, seed


def _build(be, problem, dtype):
    n, widths, acts, kind, seed = problem
    forbidden = {"bce": "sigmoid", "sce_labels": "softmax", "sce_probs": "softmax"}.get(kind)
    layers = []
    for i, act in enumerate(acts):
        if i == len(acts) - 1 and act == forbidden:
            act = "identity"
        a = A.LeakyReLU(0.2) if act == "leaky_relu" else act
        layers.append(nb.Dense(widths[i], widths[i + 1], activation=a))
    model = nb.Sequential(layers, xp=be.xp, device=be.device, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # nonzero biases keep relu-like units off their kink
        layer.b = be.asarray(0.5 * rng.standard_normal(layer.n_out), dtype)
    X = be.asarray(rng.standard_normal((n, widths[0])), dtype)
    c = widths[-1]
    if kind == "mse":
        loss, T = L.MSE(), be.asarray(rng.standard_normal((n, c)), dtype)
    elif kind == "bce":
        loss, T = L.BinaryCrossEntropy(), be.asarray(rng.random((n, c)), dtype)
    elif kind == "sce_labels":
        loss, T = L.SoftmaxCrossEntropy(), be.asarray(rng.integers(0, c, size=n), "int64")
    else:
        t = rng.random((n, c)) + 0.01
        loss, T = L.SoftmaxCrossEntropy(), be.asarray(t / t.sum(axis=1, keepdims=True), dtype)
    return model, loss, X, T


def _kind(x, model, shape):
    assert _compat.namespace_of(x) is model.xp
    assert _compat.device_of(x) == model.device
    assert x.dtype == model.dtype
    assert tuple(x.shape) == shape


@SETTINGS
@given(problem=problems(), dtype=st.sampled_from(["float32", "float64"]))
def test_shapes_and_dtypes(be, problem, dtype):
    model, loss, X, T = _build(be, problem, dtype)
    n, widths = problem[0], problem[1]
    Y = model(X)
    _kind(Y, model, (n, widths[-1]))
    assert np.all(np.isfinite(be.host(Y)))
    J = model.value_and_grad(X, T, loss)
    _kind(J, model, ())
    assert np.isfinite(float(J)) and float(J) >= -1e-6  # every loss here is >= 0 (round-off aside)
    for i, layer in enumerate(model.layers):
        _kind(layer.dW, model, (widths[i], widths[i + 1]))
        _kind(layer.db, model, (widths[i + 1],))
    model.forward(X)
    dX = model.backward(be.asarray(np.ones((n, widths[-1])), dtype))
    _kind(dX, model, (n, widths[0]))
    # J equals the loss of a forward pass written out here in float64 NumPy, on the very
    # weights and data (to float32 precision for a float32 model)
    params = [be.host(p).astype(np.float64) for p in model.parameters()]
    Jref = _numpy_loss(model, params, be.host(X).astype(np.float64), be.host(T), problem[3])
    assert abs(float(J) - Jref) <= (1e-4 if dtype == "float32" else 1e-12) * max(1.0, abs(Jref))


def _numpy_forward(model, params, X):
    """The network's outputs from its activation names and weights, in NumPy."""
    a = X
    for layer, W, b in zip(model.layers, params[0::2], params[1::2], strict=True):
        z = a @ W + b
        name = layer.activation.name
        if name == "identity":
            a = z
        elif name == "sigmoid":
            a = 1 / (1 + np.exp(-z))
        elif name == "tanh":
            a = np.tanh(z)
        elif name == "relu":
            a = np.maximum(z, 0)
        elif name == "leaky_relu":
            a = np.where(z > 0, z, layer.activation.slope * z)
        else:
            e = np.exp(z - z.max(1, keepdims=True))
            a = e / e.sum(1, keepdims=True)
    return a


def _numpy_loss(model, params, X, T, kind):
    y = _numpy_forward(model, params, X)
    n = X.shape[0]
    if kind == "mse":
        return np.sum((y - T) ** 2) / (2 * n)
    if kind == "bce":
        return np.sum(np.logaddexp(0, y) - T * y) / n
    z = y - y.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    t = np.eye(y.shape[1])[T] if kind == "sce_labels" else T
    return -np.sum(t * logp) / n


@SETTINGS
@given(problem=problems(activations=SMOOTH))
def test_gradient_check(be, problem):
    model, loss, X, T = _build(be, problem, "float64")
    # eps = 1e-5: stacked sigmoids shrink gradients until round-off in J / eps shows at 1e-6
    assert nb.gradient_check(model, loss, X, T, eps=1e-5) < 1e-5


@SETTINGS
@given(problem=problems(), lam=st.floats(0.01, 2.0))
def test_l2_adds_lambda_W(be, problem, lam):
    model, loss, X, T = _build(be, problem, "float64")
    J0 = float(model.value_and_grad(X, T, loss))
    g0 = [be.host(g).copy() for g in model.gradients()]
    J = float(model.value_and_grad(X, T, type(loss)(l2=lam)))
    Ws = [be.host(layer.W) for layer in model.layers]
    assert abs(J - (J0 + lam / 2 * sum(np.sum(W * W) for W in Ws))) <= 1e-12 * max(1.0, abs(J))
    for i, g in enumerate(model.gradients()):
        extra = lam * Ws[i // 2] if i % 2 == 0 else 0.0
        np.testing.assert_allclose(be.host(g), g0[i] + extra, rtol=1e-12, atol=1e-14)
