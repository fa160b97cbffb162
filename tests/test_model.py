"""The model end to end: seed 001's worked example pinned for one step, a tiny
network worked by hand, the same numbers on every backend, and namespace,
device and dtype kept through every pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import _compat


def _f64(be, a):
    return be.asarray(np.asarray(a, dtype=np.float64), "float64")


# seed 001 (shared/seeds/001_*.txt, lines 229-360) ----------------------------------
def _seed001_reference():
    """The seed's NumPy loop, one iteration: bias folded into the weights through
    a column of ones, 3 sigmoid hidden units, identity output, per-example
    outer-product gradients averaged with np.average, alpha = 0.1."""

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    state = np.random.get_state()
    try:
        np.random.seed(1)
        X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]])
        y = np.array([[0, 1, 0, 1, 1, 0]]).T
        alpha, num_hidden = 0.1, 3
        hidden_weights = 2 * np.random.random((X.shape[1] + 1, num_hidden)) - 1
        output_weights = 2 * np.random.random((num_hidden + 1, y.shape[1])) - 1
    finally:
        np.random.set_state(state)
    start = (hidden_weights.copy(), output_weights.copy())

    input_layer_outputs = np.hstack((np.ones((X.shape[0], 1)), X))
    hidden_layer_outputs = np.hstack(
        (np.ones((X.shape[0], 1)), sigmoid(np.dot(input_layer_outputs, hidden_weights))))
    output_layer_outputs = np.dot(hidden_layer_outputs, output_weights)
    output_error = output_layer_outputs - y
    hidden_error = (hidden_layer_outputs[:, 1:] * (1 - hidden_layer_outputs[:, 1:])
                    * np.dot(output_error, output_weights.T[:, 1:]))
    hidden_pd = input_layer_outputs[:, :, np.newaxis] * hidden_error[:, np.newaxis, :]
    output_pd = hidden_layer_outputs[:, :, np.newaxis] * output_error[:, np.newaxis, :]
    total_hidden_gradient = np.average(hidden_pd, axis=0)
    total_output_gradient = np.average(output_pd, axis=0)
    hidden_weights += -alpha * total_hidden_gradient
    output_weights += -alpha * total_output_gradient
    return dict(X=X, y=y, start=start, outputs=output_layer_outputs,
                grads=(total_hidden_gradient, total_output_gradient),
                updated=(hidden_weights, output_weights))


def test_seed001_one_gradient_descent_step(be):
    ref = _seed001_reference()
    hw, ow = ref["start"]
    model = nb.Sequential([nb.Dense(3, 3, "sigmoid"), nb.Dense(3, 1, "identity")],
                          xp=be.xp, device=be.device, dtype="float64", seed=0)
    h, o = model.layers
    h.W, h.b = _f64(be, hw[1:]), _f64(be, hw[0])
    o.W, o.b = _f64(be, ow[1:]), _f64(be, ow[0])
    X, T = _f64(be, ref["X"]), _f64(be, ref["y"])

    # nnbackprop's MSE is 1/(2N) sum ||yhat - y||^2, so dJ/dyhat = (yhat - y) / N:
    # exactly the seed's averaged per-example gradient
    J = float(model.value_and_grad(X, T, nb.losses.MSE()))
    np.testing.assert_allclose(be.host(model.forward(X)), ref["outputs"], rtol=0, atol=1e-12)
    assert J == pytest.approx(np.sum((ref["outputs"] - ref["y"]) ** 2) / 12, rel=1e-12)

    gh, go = ref["grads"]
    np.testing.assert_allclose(be.host(h.dW), gh[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(h.db), gh[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(o.dW), go[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(o.db), go[0], rtol=0, atol=1e-12)

    for layer in model.layers:
        layer.W = layer.W - 0.1 * layer.dW
        layer.b = layer.b - 0.1 * layer.db
    uh, uo = ref["updated"]
    np.testing.assert_allclose(be.host(h.W), uh[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(h.b), uh[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(o.W), uo[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(be.host(o.b), uo[0], rtol=0, atol=1e-12)
    assert not np.allclose(uh, hw)  # the step moved the weights


def test_seed001_weights_are_the_seed_draws():
    # pinned: np.random.seed(1); 2 * np.random.random((4, 3)) - 1 starts -0.16595599
    hw, ow = _seed001_reference()["start"]
    assert hw.shape == (4, 3) and ow.shape == (4, 1)
    assert hw[0, 0] == pytest.approx(-0.165955990594852, abs=1e-15)
    assert hw[0, 1] == pytest.approx(0.440648986884316, abs=1e-15)


# a tiny network by hand ---------------------------------------------------------------
def test_hand_worked_tiny_network(be):
    """x = 2 -> Dense(1, 1, sigmoid) W0 = 0, b0 = 0 -> Dense(1, 1) W1 = 2, b1 = 0.5; t = 1.

    forward:  z0 = 0, a0 = sigmoid(0) = 0.5; y = 2 * 0.5 + 0.5 = 1.5
    J = 1/(2N) (y - t)^2 = 1/2 * 0.25 = 0.125
    backward: dJ/dy = (y - t)/N = 0.5
              dW1 = a0 * 0.5 = 0.25, db1 = 0.5
              delta0 = 0.5 * W1 * a0 (1 - a0) = 0.5 * 2 * 0.25 = 0.25
              dW0 = x * delta0 = 0.5, db0 = 0.25, dJ/dx = delta0 * W0 = 0
    All are binary fractions, so equality is exact.
    """
    model = nb.Sequential([nb.Dense(1, 1, "sigmoid"), nb.Dense(1, 1)], xp=be.xp, device=be.device,
                          dtype="float64", seed=0)
    l0, l1 = model.layers
    l0.W, l0.b = _f64(be, [[0.0]]), _f64(be, [0.0])
    l1.W, l1.b = _f64(be, [[2.0]]), _f64(be, [0.5])
    X, T = _f64(be, [[2.0]]), _f64(be, [[1.0]])
    assert be.host(model.forward(X)).tolist() == [[1.5]]
    assert float(model.value_and_grad(X, T, nb.losses.MSE())) == 0.125
    assert [be.host(g).tolist() for g in model.gradients()] == [[[0.5]], [0.25], [[0.25]], [0.5]]
    model.forward(X)
    assert be.host(model.backward(_f64(be, [[0.5]]))).tolist() == [[0.0]]


def test_single_sigmoid_unit(be):
    """Dense(1, 1, sigmoid), W = 0, b = 0: output 0.5 for any x; with W = 1, b = 0
    at x = log 3 the output is 1 / (1 + 1/3) = 0.75."""
    model = nb.Sequential([nb.Dense(1, 1, "sigmoid")], xp=be.xp, device=be.device, dtype="float64", seed=0)
    layer = model.layers[0]
    layer.W, layer.b = _f64(be, [[0.0]]), _f64(be, [0.0])
    assert be.host(model.forward(_f64(be, [[-3.0], [7.0]]))).tolist() == [[0.5], [0.5]]
    layer.W = _f64(be, [[1.0]])
    assert be.host(model.forward(_f64(be, [[math.log(3.0)]])))[0, 0] == pytest.approx(0.75, rel=1e-15)


def test_forward_matches_numpy_composition(be, rng):
    model = nb.Sequential([nb.Dense(3, 5, "relu"), nb.Dense(5, 4, "tanh"), nb.Dense(4, 2, "softmax")],
                          xp=be.xp, device=be.device, dtype="float64", seed=2)
    Xh = rng.standard_normal((6, 3))
    W = [be.host(p) for p in model.parameters()]
    a = np.maximum(Xh @ W[0] + W[1], 0)
    a = np.tanh(a @ W[2] + W[3])
    z = a @ W[4] + W[5]
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(be.host(model(_f64(be, Xh))), expected, rtol=1e-13, atol=1e-15)


def test_parameters_and_gradients_order(be, rng):
    model = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2)], xp=be.xp, device=be.device, dtype="float64", seed=1)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.W", "0.b", "1.W", "1.b"]
    assert [tuple(p.shape) for p in model.parameters()] == [(3, 4), (4,), (4, 2), (2,)]
    with pytest.raises(RuntimeError, match="no gradients yet"):
        model.gradients()
    model.value_and_grad(_f64(be, rng.standard_normal((5, 3))), _f64(be, rng.standard_normal((5, 2))),
                         nb.losses.MSE())
    grads = model.gradients()
    assert [tuple(g.shape) for g in grads] == [(3, 4), (4,), (4, 2), (2,)]
    assert grads[0] is model.layers[0].dW and grads[3] is model.layers[1].db


def test_backward_equals_value_and_grad(be, rng):
    """model.backward(dJ/dY) fills the same dW, db as value_and_grad."""
    model = nb.Sequential([nb.Dense(3, 4, "sigmoid"), nb.Dense(4, 2)], xp=be.xp, device=be.device,
                          dtype="float64", seed=3)
    X, T = _f64(be, rng.standard_normal((5, 3))), _f64(be, rng.standard_normal((5, 2)))
    model.value_and_grad(X, T, nb.losses.MSE())
    g1 = [be.host(g).copy() for g in model.gradients()]
    Y = model.forward(X)
    model.backward(nb.losses.MSE().grad(Y, T))
    for a, b in zip(g1, model.gradients(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


# the same numbers on every backend ----------------------------------------------------
def _reference_run(xp, device, asarray, host):
    model = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 4, "leaky_relu"), nb.Dense(4, 3)],
                          xp=xp, device=device, dtype="float64", seed=42)
    rng = np.random.default_rng(42)
    X = asarray(rng.standard_normal((5, 3)))
    labels = asarray(rng.integers(0, 3, size=5), int_=True)
    init = [host(p).copy() for p in model.parameters()]
    out = host(model(X)).copy()
    J = float(model.value_and_grad(X, labels, nb.losses.SoftmaxCrossEntropy()))
    grads = [host(g).copy() for g in model.gradients()]
    model.forward(X)
    dX = host(model.backward(asarray(np.ones((5, 3))))).copy()
    return init, out, J, grads, dX


def test_same_numbers_as_numpy(be):
    def be_asarray(a, int_=False):
        return be.asarray(a, "int64" if int_ else "float64")

    def np_asarray(a, int_=False):
        return np.asarray(a, dtype=np.int64 if int_ else np.float64)

    got = _reference_run(be.xp, be.device, be_asarray, be.host)
    ref = _reference_run(np, None, np_asarray, np.asarray)
    for a, b in zip(got[0], ref[0], strict=True):
        np.testing.assert_array_equal(a, b)  # initial weights bit-identical
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-14)
    assert got[2] == pytest.approx(ref[2], rel=1e-12)
    for a, b in zip(got[3], ref[3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[4], ref[4], rtol=1e-12, atol=1e-14)


# namespace, device and dtype kept --------------------------------------------------------
def _check_kind(x, model, dtype, shape):
    assert _compat.namespace_of(x) is model.xp
    assert _compat.device_of(x) == model.device
    assert x.dtype == dtype
    assert tuple(x.shape) == shape


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_namespace_device_dtype_preserved(be, dtype, rng):
    model = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2, "sigmoid")], xp=be.xp, device=be.device,
                          dtype=dtype, seed=0)
    dt = getattr(be.xp, dtype)
    assert model.dtype == dt and model.dtype_name == dtype
    assert model.xp is be.xp and model.device == be.device
    X = be.asarray(rng.standard_normal((5, 3)), dtype)
    T = be.asarray(rng.random((5, 2)), dtype)
    for p in model.parameters():
        _check_kind(p, model, dt, tuple(p.shape))
    _check_kind(model(X), model, dt, (5, 2))
    J = model.value_and_grad(X, T, nb.losses.MSE(l2=0.1))
    _check_kind(J, model, dt, ())
    for layer in model.layers:
        _check_kind(layer.dW, model, dt, (layer.n_in, layer.n_out))
        _check_kind(layer.db, model, dt, (layer.n_out,))
    model.forward(X)
    _check_kind(model.backward(be.asarray(np.ones((5, 2)), dtype)), model, dt, (5, 3))
    # float32 results agree with a float64 run to float32 precision
    m64 = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2, "sigmoid")],
                        xp=be.xp, device=be.device, dtype="float64", seed=0)
    y64 = be.host(m64(be.asarray(be.host(X), "float64")))
    np.testing.assert_allclose(be.host(model(X)), y64, rtol=1e-5 if dtype == "float32" else 1e-15)


def test_float16_forward(be, rng):
    if not be.has("float16"):  # refused up front with the dtypes that exist
        with pytest.raises(ValueError, match=r"float16.*expected one of \['float32', 'float64'\]"):
            nb.Sequential([nb.Dense(3, 4)], xp=be.xp, device=be.device, dtype="float16")
        return
    layers = [nb.Dense(3, 4, "tanh"), nb.Dense(4, 2, "softmax")]
    model = nb.Sequential(layers, xp=be.xp, device=be.device, dtype="float16", seed=0)
    X = be.asarray(rng.standard_normal((5, 3)), "float16")
    Y = model(X)
    _check_kind(Y, model, be.xp.float16, (5, 2))
    m64 = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2, "softmax")],
                        xp=be.xp, device=be.device, dtype="float64", seed=0)
    y64 = be.host(m64(be.asarray(be.host(X).astype(np.float64), "float64")))
    np.testing.assert_allclose(be.host(Y).astype(np.float64), y64, rtol=0, atol=1e-2)


def test_sequential_defaults():
    model = nb.Sequential([nb.Dense(2, 3)], seed=0)
    assert model.dtype_name == "float32"
    assert _compat.namespace_of(model.layers[0].W) is _compat.namespace(np)
    assert model.n_in == 2 and model.n_out == 3


# live arrays: copies taken with xp.asarray(copy=True) are the caller's ---------------------------
def test_copies_of_parameters_and_gradients_outlive_training_steps(be, rng):
    """parameters() and gradients() are the model's live arrays (a training step may
    update them in place, on some backends); copies stay what they were."""
    xp = be.xp
    model = nb.Sequential([nb.Dense(3, 4, "relu"), nb.Dense(4, 2)], xp=xp, device=be.device, dtype="float64", seed=0)
    X, T = _f64(be, rng.standard_normal((6, 3))), _f64(be, rng.standard_normal((6, 2)))
    loss, opt = nb.losses.MSE(), nb.optim.SGD(0.1, momentum=0.5)
    model.train_step(X, T, loss, opt)
    params = [xp.asarray(p, copy=True) for p in model.parameters()]
    grads = [xp.asarray(g, copy=True) for g in model.gradients()]
    host_params = [be.host(p).copy() for p in params]
    host_grads = [be.host(g).copy() for g in grads]
    for _ in range(3):
        model.train_step(X * 2, T, loss, opt)
    for a, h in zip(params + grads, host_params + host_grads, strict=True):
        np.testing.assert_array_equal(be.host(a), h)
    # and the model did move on: its live arrays differ from the copies
    assert not all(np.array_equal(be.host(p), h) for p, h in zip(model.parameters(), host_params))
    assert not all(np.array_equal(be.host(g), h) for g, h in zip(model.gradients(), host_grads))


# the layer's forward and backward, with fresh and with reused buffers ------------------------------
def test_dense_forward_backward_by_the_formulas_fresh_or_reused_buffers(be, rng):
    """Dense's forward and backward (the protocol the model calls) give the delta
    rule's numbers, with fresh buffers (public calls) and with reused ones (the
    training step: the second step writes into the first step's arrays); X is
    never written."""
    model = nb.Sequential([nb.Dense(3, 4, "relu")], xp=be.xp, device=be.device, dtype="float64", seed=0)
    layer = model.layers[0]
    Xh, dAh = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    X = _f64(be, Xh)
    W, b = be.host(layer.W).copy(), be.host(layer.b).copy()
    A_ref = np.maximum(Xh @ W + b, 0)
    delta = dAh * (A_ref > 0)
    for reuse in (False, True):
        ws = nb.layers.Workspace(be.xp, model.dtype, model.device, reuse=reuse)
        for _ in range(2):
            ctx = {}
            A = layer.forward(X, ctx, ws)
            np.testing.assert_allclose(be.host(A), A_ref, rtol=1e-14)
            dX = layer.backward(_f64(be, dAh), ctx, ws, input_grad=True)
            np.testing.assert_allclose(be.host(layer.grads["W"]), Xh.T @ delta, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(be.host(layer.grads["b"]), delta.sum(0), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(be.host(dX), delta @ W.T, rtol=1e-13, atol=1e-15)
            np.testing.assert_array_equal(be.host(X), Xh)
        ctx = {}
        layer.forward(X, ctx, ws)
        assert layer.backward(_f64(be, dAh), ctx, ws, input_grad=False) is None
