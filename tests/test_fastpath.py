"""The in-place kernels equal their generic Array API forms.

Each kernel sits beside its rule (activations, losses, layers, optim) and writes
into a buffer where :func:`nnbackprop._compat.writer` allows it. Each test runs
once with in-place writes on and once with ``_compat.INPLACE`` off (the generic
expressions every namespace gets), on every backend, and compares; where the
backend is writeable it also checks that the kernel did write in place.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import _compat, optim


@pytest.fixture
def generic(monkeypatch):
    """Call inside a test to switch the fast paths off for the rest of it."""
    return lambda: monkeypatch.setattr(_compat, "INPLACE", False)


def _z(be, rng, dtype, shape=(7, 5)):
    z = rng.standard_normal(shape)
    z[0, :2] = 0.0  # relu's kink, on both paths
    return be.asarray(z, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_in_place_equals_generic(be, rng, dtype, generic):
    xp = be.xp
    relu = nb.activations.ReLU()
    zh = be.host(_z(be, rng, dtype)).copy()
    dA = rng.standard_normal(zh.shape)
    z = be.asarray(zh.copy(), dtype)
    nb.activations._ZEROS.clear()
    fast = relu.forward(z, xp, out=z)
    assert (fast is z) == _compat.is_writeable(z)
    # host arrays take maximum(z, zeros): the kept zeros operand shows the fast path ran
    assert ((z.shape, z.dtype) in nb.activations._ZEROS) == (_compat.is_writeable(z) and _compat.on_host(z))
    big = be.asarray(np.zeros((nb.activations._ZEROS_MAX + 1,)), dtype)  # above the cap: the scalar form,
    np.testing.assert_array_equal(be.host(relu.forward(big, xp, out=big)), 0)  # no kept zeros of its size
    assert (tuple(big.shape), big.dtype) not in nb.activations._ZEROS and len(nb.activations._ZEROS) <= 8
    fast = be.host(fast).copy()
    a = be.asarray(fast.copy(), dtype)  # delta written over a (the training step's choice)
    fast_a = relu.backward(be.asarray(dA, dtype), None, a, xp, out=a)
    assert (fast_a is a) == _compat.is_writeable(a)
    fast_a = be.host(fast_a).copy()
    d = be.asarray(dA.copy(), dtype)  # delta written over dA
    fast_d = relu.backward(d, None, be.asarray(fast.copy(), dtype), xp, out=d)
    assert (fast_d is d) == _compat.is_writeable(d)
    fast_d = be.host(fast_d).copy()
    generic()
    slow = be.host(relu.forward(be.asarray(zh, dtype), xp, out=be.asarray(zh, dtype)))
    slow_b = be.host(relu.backward(be.asarray(dA, dtype), None, be.asarray(slow, dtype), xp))
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.maximum(zh, 0))
    np.testing.assert_array_equal(fast_a, slow_b)
    np.testing.assert_array_equal(fast_d, slow_b)
    np.testing.assert_array_equal(slow_b, dA.astype(dtype) * (zh > 0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_into_and_sum_rows_equal_the_plain_expressions(be, rng, dtype, generic):
    """Dense's kernels: a @ b and sum over rows, written into the caller's buffer
    where it may be written, bit-equal to ``a @ b`` and ``xp.sum(a, axis=0)``."""
    xp = be.xp
    ah, bh = rng.standard_normal((37, 5)), rng.standard_normal((5, 4))
    a, b = be.asarray(ah, dtype), be.asarray(bh, dtype)
    out, out_b = xp.zeros((37, 4), dtype=a.dtype), xp.zeros((5,), dtype=a.dtype)
    got = nb.layers.matmul_into(a, b, out)
    got_b = nb.layers.sum_rows(a, xp, out=out_b)
    assert (got is out) == (got_b is out_b) == _compat.is_writeable(out)
    assert _compat.namespace_of(got) is xp and got.dtype == a.dtype and got_b.shape == (5,)
    np.testing.assert_array_equal(be.host(got), be.host(a @ b))
    np.testing.assert_array_equal(be.host(got_b), be.host(xp.sum(a, axis=0)))
    np.testing.assert_allclose(be.host(got), ah @ bh, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(be.host(got_b), ah.sum(axis=0), rtol=1e-5, atol=1e-5)
    wrong = xp.zeros((36, 4), dtype=a.dtype)  # a buffer of another shape is never written
    np.testing.assert_array_equal(be.host(nb.layers.matmul_into(a, b, wrong)), be.host(a @ b))
    np.testing.assert_array_equal(be.host(wrong), np.zeros((36, 4)))
    c = be.asarray(rng.standard_normal(4), dtype)
    z_out = xp.zeros((37, 4), dtype=a.dtype)
    z = nb.layers.affine_into(a, b, c, z_out)  # Z = X W + b, fused where the module has addmm
    assert (z is z_out) == _compat.is_writeable(z_out)
    np.testing.assert_allclose(be.host(z), be.host(a @ b + c), rtol=1e-6 if dtype == "float32" else 1e-14,
                               atol=1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(be.host(nb.layers.affine_into(a, b, c, None)), be.host(z), rtol=0, atol=0)
    generic()
    np.testing.assert_array_equal(be.host(nb.layers.affine_into(a, b, c, z_out)), be.host(a @ b + c))
    np.testing.assert_array_equal(be.host(nb.layers.matmul_into(a, b, out)), be.host(got))
    np.testing.assert_array_equal(be.host(nb.layers.sum_rows(a, xp, out=out_b)), be.host(got_b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_xent_labels_equals_one_hot_form(be, rng, dtype, generic):
    xp = be.xp
    zh = rng.standard_normal((9, 4)) * 5
    labels = be.asarray(rng.integers(0, 4, size=9), "int64")
    loss = nb.losses.SoftmaxCrossEntropy()
    z = be.asarray(zh, dtype)
    J_fast, g_fast = (be.host(a).copy() for a in loss.value_and_grad(z, labels, xp))
    np.testing.assert_array_equal(be.host(z), zh.astype(dtype))  # logits left untouched without out=
    generic()
    J_slow, g_slow = (be.host(a) for a in loss.value_and_grad(z, labels, xp))
    tol = 1e-6 if dtype == "float32" else 1e-13
    assert J_fast.shape == () and J_fast.dtype == np.dtype(dtype)
    np.testing.assert_allclose(J_fast, J_slow, rtol=tol)
    np.testing.assert_allclose(g_fast, g_slow, rtol=tol, atol=tol)


@pytest.mark.parametrize("last", ["identity", "relu"])
def test_training_step_equals_generic(be, rng, last, generic):
    """value_and_grad and the outputs agree, fast paths on or off, float64."""
    X = be.asarray(rng.standard_normal((16, 6)), "float64")
    T = be.asarray(rng.integers(0, 3, size=16), "int64")

    def run():
        model = nb.Sequential([nb.Dense(6, 8, "relu"), nb.Dense(8, 5, "relu"), nb.Dense(5, 3, last)],
                              xp=be.xp, device=be.device, dtype="float64", seed=3)
        J = model.value_and_grad(X, T, nb.losses.SoftmaxCrossEntropy())
        return [be.host(J).copy(), be.host(model(X)).copy()] + [be.host(g).copy() for g in model.gradients()]

    fast = run()
    generic()
    for a, b in zip(fast, run()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_public_backward_leaves_dY_alone(be, rng):
    """model.backward(dY) never writes into the caller's dY, even under a relu output."""
    model = nb.Sequential([nb.Dense(4, 3, "relu"), nb.Dense(3, 2, "relu")], xp=be.xp, device=be.device,
                          dtype="float64", seed=1)
    X = be.asarray(rng.standard_normal((5, 4)), "float64")
    model(X)
    dYh = rng.standard_normal((5, 2))
    dY = be.asarray(dYh, "float64")
    model.backward(dY)
    np.testing.assert_array_equal(be.host(dY), dYh)


@pytest.mark.parametrize("a,b", [(1.0, -0.01), (0.9, 0.1), (1.0, 1.0), (0.999, -3e-4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_axpby_in_blocks_equals_the_plain_expression(be, a, b, dtype):
    """The optimizer's in-place update gives exactly a x + b y, the functional form,
    with b y written into scratch kept by the caller: in blocks for large arrays in
    host memory (here 6 blocks through one block-sized buffer), else one buffer of
    y's shape, which the next call reuses."""
    rng = np.random.default_rng(1)
    xh, yh = rng.standard_normal((300, 700)), rng.standard_normal((300, 700))
    x, y = be.asarray(xh, dtype), be.asarray(yh, dtype)
    expected = be.host(optim.axpby(x, a, b, y))
    np.testing.assert_allclose(expected, a * xh.astype(dtype) + b * yh.astype(dtype), rtol=1e-5, atol=1e-6)
    if not _compat.is_writeable(x):  # no in-place path here: the functional form above is the update
        return
    scratch = {}
    out = optim.axpby_(x, a, b, y, scratch)
    assert out is x
    np.testing.assert_array_equal(be.host(out), expected)
    kept = [] if b == 1.0 else [(optim._BLOCK,)] if _compat.on_host(x) else [(300, 700)]  # b = 1: no temporary
    assert [tuple(t.shape) for t in scratch.values()] == kept
    again = optim.axpby_(be.asarray(xh, dtype), a, b, y, scratch)
    np.testing.assert_array_equal(be.host(again), expected)
    assert [tuple(t.shape) for t in scratch.values()] == kept


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_xent_in_place_equals_one_hot_form(be, rng, dtype, generic):
    """value_and_grad_ (the training step's, on an identity output) may write dJ/dz
    over z: same J and gradient as the generic form; on NumPy in z's own buffer."""
    xp = be.xp
    zh = rng.standard_normal((9, 4)) * 5
    labels = be.asarray(rng.integers(0, 4, size=9), "int64")
    loss = nb.losses.SoftmaxCrossEntropy()
    z = be.asarray(zh.copy(), dtype)  # written over: never the host reference itself
    J_fast, g = loss.value_and_grad(z, labels, xp, out=z)
    if _compat.on_host(z) and _compat.is_writeable(z):  # the host kernel (integer gathers)
        assert g is z
    J_fast, g_fast = be.host(J_fast).copy(), be.host(g).copy()
    generic()
    J_slow, g_slow = (be.host(a) for a in loss.value_and_grad(be.asarray(zh, dtype), labels, xp))
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(J_fast, J_slow, rtol=tol)
    np.testing.assert_allclose(g_fast, g_slow, rtol=tol, atol=tol)


def test_softmax_xent_labels_out_of_range_equals_one_hot_form(be, rng, generic):
    """Labels outside [0, C) (train_step does not check values): the NumPy fast path
    gives way to the one-hot form, a zero row for such a label, as on every backend;
    never an IndexError, never a negative label wrapping round to the last class."""
    xp = be.xp
    zh = rng.standard_normal((4, 3))
    labels_h = np.array([0, 2, 5, -1])
    z, labels = be.asarray(zh, "float64"), be.asarray(labels_h, "int64")
    loss = nb.losses.SoftmaxCrossEntropy()
    J, g = (be.host(a).copy() for a in loss.value_and_grad(z, labels, xp))
    p = np.exp(zh - zh.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    t = np.zeros((4, 3))
    t[0, 0] = t[1, 2] = 1.0
    np.testing.assert_allclose(J, -np.sum(t * np.log(p)) / 4, rtol=1e-13)
    np.testing.assert_allclose(g, (p - t) / 4, rtol=1e-13, atol=1e-15)
    generic()
    J2, g2 = (be.host(a) for a in loss.value_and_grad(z, labels, xp))
    np.testing.assert_allclose(J, J2, rtol=1e-14)
    np.testing.assert_allclose(g, g2, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("classes", [3, nb.losses._FEW_CLASSES, nb.losses._FEW_CLASSES + 1])
def test_row_max_equals_numpy_row_max(rng, classes):
    """The host kernel's row max (a transposed copy reduced down its columns for few
    classes): bit-equal to ``z.max(axis=1)``, NaN and infinities included, both forms."""
    z = rng.standard_normal((37, classes)) * 10
    z[1, 0], z[2, -1], z[3, :] = np.nan, np.inf, -np.inf
    for dtype in ("float32", "float64"):
        zd = z.astype(dtype)
        got = nb.losses._row_max(zd)
        assert got.shape == (37, 1) and got.dtype == zd.dtype
        np.testing.assert_array_equal(got, zd.max(axis=1, keepdims=True))
        assert np.isnan(got[1, 0]) and got[2, 0] == np.inf and got[3, 0] == -np.inf


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_l2_squares_over_the_flat_buffer_equal_each_parameters_own(be, dtype, generic):
    """The L2 penalty's ||W||^2, one square over the flat buffer's decaying slice and a
    sum per parameter: bit-equal to xp.sum(W * W) parameter by parameter."""
    model = nb.mlp([7, 9, 6, 3], "relu", xp=be.xp, device=be.device, dtype=dtype, seed=4)
    xp = be.xp
    expected = [be.host(xp.sum(la.W * la.W)) for la in model.layers]
    fast = [be.host(s) for s in model.store.decaying_sq_norms()]
    generic()
    slow = [be.host(s) for s in model.store.decaying_sq_norms()]
    for f, s, e in zip(fast, slow, expected, strict=True):
        np.testing.assert_array_equal(f, e)
        np.testing.assert_array_equal(s, e)
    J = model.l2_penalty(0.5)
    np.testing.assert_allclose(float(J), 0.25 * sum(float(np.sum(be.host(la.W).astype(np.float64) ** 2))
                                                    for la in model.layers), rtol=1e-5)
