"""Every refusal: a clear message, raised before any state changes (weights,
gradients and the kept forward pass are the same after the failing call)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import _compat


def _f64(be, a):
    return be.asarray(np.asarray(a, dtype=np.float64), "float64")


class Fixture:
    """A trained-once 3 -> 4 -> 3 model with its data and a state snapshot."""

    def __init__(self, be, last="identity"):
        self.be = be
        rng = np.random.default_rng(0)
        self.model = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 3, last)],
                                   xp=be.xp, dtype="float64", seed=0)
        self.X = _f64(be, rng.standard_normal((5, 3)))
        self.T = _f64(be, rng.random((5, 3)))
        self.labels = be.asarray(np.array([0, 2, 1, 1, 0]), "int64")
        self.model.value_and_grad(self.X, self.T, nb.losses.MSE())
        self.model.forward(self.X)
        self.dY = _f64(be, rng.standard_normal((5, 3)))
        self.params = [p for p in self.model.parameters()]
        self.grads = [g for g in self.model.gradients()]
        self.values = [be.host(a).copy() for a in self.params + self.grads]

    def assert_unchanged(self):
        be, model = self.be, self.model
        assert all(a is b for a, b in zip(model.parameters(), self.params, strict=True))
        assert all(a is b for a, b in zip(model.gradients(), self.grads, strict=True))
        for a, b in zip(self.values, model.parameters() + model.gradients(), strict=True):
            np.testing.assert_array_equal(a, be.host(b))
        # the kept forward pass is still that of self.X: backward gives the same as a fresh run
        dX = be.host(model.backward(self.dY))
        ref = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 3, model.layers[-1].activation)],
                            xp=be.xp, dtype="float64", seed=0)
        ref.set_parameters(self.params)
        ref.forward(self.X)
        np.testing.assert_array_equal(dX, be.host(ref.backward(self.dY)))


@pytest.fixture
def f(be):
    return Fixture(be)


def _foreign(be, a):
    """``a`` as an array of some other installed library than ``be``'s."""
    if be.name != "numpy":
        return np.asarray(a, dtype=np.float64)
    for name in ("array_api_strict", "torch"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        xp = _compat.namespace(mod)
        return xp.asarray(np.asarray(a, dtype=np.float64), dtype=xp.float64)
    pytest.skip("no second array library installed to build a foreign array")


# inputs -----------------------------------------------------------------------------------
def test_input_width_mismatch(f):
    bad = _f64(f.be, np.ones((5, 7)))
    for call in (lambda: f.model.forward(bad), lambda: f.model(bad),
                 lambda: f.model.value_and_grad(bad, f.T, nb.losses.MSE()),
                 lambda: nb.gradient_check(f.model, nb.losses.MSE(), bad, f.T)):
        with pytest.raises(ValueError, match=r"X has 7 features per row but the first layer expects 3"):
            call()
    f.assert_unchanged()


def test_input_not_2d(f):
    with pytest.raises(ValueError, match=r"X must be 2-D \(N, 3\), got shape \(3,\)"):
        f.model.forward(_f64(f.be, np.ones(3)))
    f.assert_unchanged()


def test_integer_inputs_refused(f):
    Xi = f.be.asarray(np.ones((5, 3), dtype=np.int64), "int64")
    with pytest.raises(TypeError, match=r"X has dtype int64 but inputs must be floating"):
        f.model.forward(Xi)
    with pytest.raises(TypeError, match="must be floating"):
        f.model.value_and_grad(Xi, f.T, nb.losses.MSE())
    f.assert_unchanged()


def test_input_dtype_mismatch(f):
    X32 = f.be.asarray(np.ones((5, 3)), "float32")
    with pytest.raises(TypeError, match=r"X has dtype float32 but the model is float64"):
        f.model.forward(X32)
    with pytest.raises(TypeError, match="float32"):
        f.model.value_and_grad(X32, f.T, nb.losses.MSE())
    f.assert_unchanged()


def test_mixed_namespaces(f):
    X = _foreign(f.be, np.ones((5, 3)))
    with pytest.raises(TypeError, match=r"X is an array of .* but the model lives in"):
        f.model.forward(X)
    T = _foreign(f.be, np.ones((5, 3)))
    with pytest.raises(TypeError, match=r"T is an array of .* but the model lives in"):
        f.model.value_and_grad(f.X, T, nb.losses.MSE())
    with pytest.raises(TypeError, match=r"dY is an array of"):
        f.model.backward(_foreign(f.be, np.ones((5, 3))))
    with pytest.raises(TypeError, match=r"W is an array of"):
        f.model.layers[0].W = _foreign(f.be, np.ones((3, 4)))
    with pytest.raises(TypeError, match=r"target is an array of"):
        nb.losses.MSE()(f.model(f.X), _foreign(f.be, np.ones((5, 3))))
    f.model.forward(f.X)
    f.assert_unchanged()


def test_namespace_of_reports_mixing(be):
    a = _f64(be, [1.0])
    with pytest.raises(TypeError, match="arrays from different libraries cannot be mixed"):
        _compat.namespace_of(a, _foreign(be, [1.0]))


def test_python_list_refused(f):
    with pytest.raises(TypeError, match=r"X must be an array of .*got list"):
        f.model.forward([[1.0, 2.0, 3.0]])
    f.assert_unchanged()


# targets ----------------------------------------------------------------------------------
def test_target_shape_mismatch(f):
    with pytest.raises(ValueError, match=r"target shape \(5, 2\) does not match the output shape \(5, 3\)"):
        f.model.value_and_grad(f.X, _f64(f.be, np.zeros((5, 2))), nb.losses.MSE())
    with pytest.raises(ValueError, match=r"X has 5 rows but T has 4"):
        f.model.value_and_grad(f.X, _f64(f.be, np.zeros((4, 3))), nb.losses.MSE())
    with pytest.raises(ValueError, match=r"does not match the output shape"):
        nb.losses.BinaryCrossEntropy()(_f64(f.be, np.zeros((5, 3))), _f64(f.be, np.zeros((5, 1))))
    f.assert_unchanged()


def test_target_dtype_mismatch(f):
    T32 = f.be.asarray(np.zeros((5, 3)), "float32")
    with pytest.raises(TypeError, match=r"target dtype float32 does not match the model's float64"):
        f.model.value_and_grad(f.X, T32, nb.losses.MSE())
    f.assert_unchanged()


@pytest.mark.parametrize("labels, lo, hi", [([0, 3, 1, 1, 0], 0, 3), ([0, -1, 1, 1, 0], -1, 1)])
def test_labels_out_of_range(f, labels, lo, hi):
    T = f.be.asarray(np.array(labels), "int64")
    msg = rf"class labels must lie in \[0, 2\] for 3 output units, got labels from {lo} to {hi}"
    with pytest.raises(ValueError, match=msg):
        f.model.value_and_grad(f.X, T, nb.losses.SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match=msg):
        nb.losses.SoftmaxCrossEntropy()(f.model(f.X), T)
    f.model.forward(f.X)
    f.assert_unchanged()


def test_labels_wrong_length_or_float(f):
    with pytest.raises(ValueError, match=r"X has 5 rows but T has 4"):
        f.model.value_and_grad(f.X, f.be.asarray(np.array([0, 1, 2, 0]), "int64"),
                               nb.losses.SoftmaxCrossEntropy())
    with pytest.raises(TypeError, match=r"class labels and must be integers, got float64"):
        f.model.value_and_grad(f.X, _f64(f.be, [0, 1, 2, 0, 1]), nb.losses.SoftmaxCrossEntropy())
    f.assert_unchanged()


def test_bce_targets_outside_unit_interval(f):
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        f.model.value_and_grad(f.X, _f64(f.be, np.full((5, 3), 1.5)), nb.losses.BinaryCrossEntropy())
    f.assert_unchanged()


def test_negative_probability_targets(f):
    T = np.full((5, 3), 0.5)
    T[0, 0] = -0.1
    with pytest.raises(ValueError, match="probability targets must be >= 0"):
        f.model.value_and_grad(f.X, _f64(f.be, T), nb.losses.SoftmaxCrossEntropy())
    f.assert_unchanged()


def test_pred_not_2d(be):
    with pytest.raises(ValueError, match=r"pred must be 2-D"):
        nb.losses.MSE()(_f64(be, [1.0, 2.0]), _f64(be, [1.0, 2.0]))


# the loss on top of the last layer ----------------------------------------------------------
def test_double_softmax_refused(be):
    f = Fixture(be, last="softmax")
    msg = r"softmax_cross_entropy on a last layer with activation='softmax'.*double"
    with pytest.raises(ValueError, match=msg):
        f.model.value_and_grad(f.X, f.labels, nb.losses.SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="double softmax"):
        nb.gradient_check(f.model, nb.losses.SoftmaxCrossEntropy(), f.X, f.labels)
    f.assert_unchanged()


def test_sigmoid_before_bce_refused(be):
    f = Fixture(be, last="sigmoid")
    with pytest.raises(ValueError, match=r"binary_cross_entropy on a last layer with activation='sigmoid'"):
        f.model.value_and_grad(f.X, f.T, nb.losses.BinaryCrossEntropy())
    f.assert_unchanged()


# passes in the wrong order ---------------------------------------------------------------------
def test_backward_before_forward(be):
    model = nb.Sequential([nb.Dense(3, 2)], xp=be.xp, dtype="float64", seed=0)
    before = [be.host(p).copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(_f64(be, np.ones((5, 2))))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.layers[0].backward(_f64(be, np.ones((5, 2))))
    with pytest.raises(RuntimeError, match="no gradients yet"):
        model.gradients()
    assert model.layers[0].dW is None and model.layers[0].db is None
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


def test_backward_wrong_dY(f):
    with pytest.raises(ValueError, match=r"dY must have the output's shape \(5, 3\), got \(5, 2\)"):
        f.model.backward(_f64(f.be, np.ones((5, 2))))
    with pytest.raises(TypeError, match=r"dY must have dtype float64, got float32"):
        f.model.backward(f.be.asarray(np.ones((5, 3)), "float32"))
    f.assert_unchanged()


# building and replacing parameters ------------------------------------------------------------
def test_widths_must_chain():
    with pytest.raises(ValueError, match=r"layer 1 gives 4 outputs but layer 2 expects 5 inputs"):
        nb.Sequential([nb.Dense(2, 3), nb.Dense(3, 4), nb.Dense(5, 1)])


def test_bad_layer_lists():
    with pytest.raises(ValueError, match="at least one layer"):
        nb.Sequential([])
    with pytest.raises(TypeError, match="layer 1 must be a Dense, got str"):
        nb.Sequential([nb.Dense(2, 2), "relu"])
    d = nb.Dense(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        nb.Sequential([d, d])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            nb.Dense(bad, 2)


def test_zero_init_refused():
    with pytest.raises(ValueError, match="symmetry"):
        nb.Sequential([nb.Dense(2, 3, init="zeros"), nb.Dense(3, 1)])


def test_unavailable_dtype(be):
    with pytest.raises(ValueError, match=r"dtype 'int32' is not available"):
        nb.Sequential([nb.Dense(2, 2)], xp=be.xp, dtype="int32")


def test_replace_W_wrong_shape(f):
    layer = f.model.layers[0]
    with pytest.raises(ValueError, match=r"W must have shape \(3, 4\), got \(4, 3\)"):
        layer.W = _f64(f.be, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\), got \(3,\)"):
        layer.b = _f64(f.be, np.ones(3))
    with pytest.raises(TypeError, match=r"W must have dtype float64, got float32"):
        layer.W = f.be.asarray(np.ones((3, 4)), "float32")
    f.assert_unchanged()


def test_set_parameters_checks_all_first(f):
    good = [f.be.asarray(f.be.host(p) + 1.0, "float64") for p in f.params]
    bad = good[:-1] + [_f64(f.be, np.ones(7))]  # only the last one is wrong
    with pytest.raises(ValueError, match=r"b must have shape \(3,\), got \(7,\)"):
        f.model.set_parameters(bad)
    with pytest.raises(ValueError, match="expected 4 parameters, got 3"):
        f.model.set_parameters(good[:3])
    f.assert_unchanged()


def test_set_W_before_build(be):
    with pytest.raises(RuntimeError, match="not built yet"):
        nb.Dense(2, 2).W = _f64(be, np.ones((2, 2)))
