"""Every refusal: a clear message, raised before any state changes (weights,
gradients and the kept forward pass are the same after the failing call)."""

from __future__ import annotations

import numpy as np
import pytest

import backends
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
                                   xp=be.xp, device=be.device, dtype="float64", seed=0)
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
                            xp=be.xp, device=be.device, dtype="float64", seed=0)
        ref.set_parameters(self.params)
        ref.forward(self.X)
        np.testing.assert_array_equal(dX, be.host(ref.backward(self.dY)))


@pytest.fixture
def f(be):
    return Fixture(be)


def _foreign(be, a):
    """``a`` as an array of some other installed library than ``be``'s."""
    for spec in backends.all_backends().values():
        if spec.module != be.spec.module and spec.unavailable() is None:
            xp = _compat.namespace(spec.load())
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
    model = nb.Sequential([nb.Dense(3, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = [be.host(p).copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(_f64(be, np.ones((5, 2))))
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
    with pytest.raises(TypeError, match="layer 1 must be an nnbackprop Layer .*got str"):
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
        nb.Sequential([nb.Dense(2, 2)], xp=be.xp, device=be.device, dtype="int32")


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


# devices -------------------------------------------------------------------------------------
def _other_device(be):
    """A device of be's namespace other than be.device (skip where it has none)."""
    for d in _compat.devices(be.xp):
        if d != be.device:
            return d
    pytest.skip(f"{be.name} lists no second device")


def test_device_named_as_a_string_is_the_same_device(be):
    """A device given by name (torch: "cpu") is the device the namespace reports, so
    arrays made on the default device are accepted everywhere the device is named."""
    name = str(be.device)
    try:
        be.xp.asarray(0.0, device=name)
    except Exception:
        pytest.skip(f"{be.name} does not name its default device {name!r} by a string")
    rng = np.random.default_rng(0)
    X, T = _f64(be, rng.standard_normal((4, 2))), _f64(be, rng.standard_normal((4, 2)))
    model = nb.Sequential([nb.Dense(2, 2)], xp=be.xp, dtype="float64", device=name, seed=0)
    assert model.device == be.device
    expected = be.host(X) @ be.host(model.layers[0].W) + be.host(model.layers[0].b)
    np.testing.assert_allclose(be.host(model.predict(X)), expected, rtol=1e-14)
    model.fit(X, T, loss="mse", optimizer="sgd", epochs=1, progress=False)
    assert _compat.resolve_device(be.xp, name) == be.device
    model.to(be.xp, device=name)
    assert model.device == be.device and tuple(model.predict(X).shape) == (4, 2)


def test_nonsense_device_is_named_in_the_error(be):
    with pytest.raises(ValueError, match=r"device 'nonsense' is not a device of .*its devices here"):
        nb.Sequential([nb.Dense(2, 2)], xp=be.xp, dtype="float64", device="nonsense")
    model = nb.Sequential([nb.Dense(2, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = [be.host(p).copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"device 'nonsense'"):
        model.to(be.xp, device="nonsense")
    assert model.device == be.device
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


def test_arrays_on_another_device_are_refused(be):
    other = _other_device(be)
    xp = be.xp
    model = nb.Sequential([nb.Dense(2, 3)], xp=xp, dtype="float64", device=other, seed=0)
    assert model.device == _compat.device_of(xp.asarray(0.0, device=other))
    assert model.device != be.device
    X = _f64(be, np.ones((4, 2)))  # on be.device
    T = _f64(be, np.ones((4, 3)))
    msg = r"X is on device .* but the model is on .*move one of them first"
    for call in (lambda: model.forward(X), lambda: model.predict(X),
                 lambda: model.evaluate(X, T, metrics=["mse"]),
                 lambda: model.fit(X, T, loss="mse", optimizer="sgd", progress=False),
                 lambda: model.train_step(X, T, nb.losses.MSE(), nb.optim.SGD(0.1))):
        with pytest.raises(ValueError, match=msg):
            call()
    assert model.optimizer is None
    # and the other way round: the model on be.device, T elsewhere
    here = nb.Sequential([nb.Dense(2, 3)], xp=xp, device=be.device, dtype="float64", seed=0)
    T_there = xp.asarray(np.ones((4, 3)), dtype=xp.float64, device=other)
    with pytest.raises(ValueError, match=r"T is on device .* but the model is on"):
        here.value_and_grad(X, T_there, nb.losses.MSE())


# the forward record and backward -------------------------------------------------------------
@pytest.mark.parametrize("step", ["value_and_grad", "train_step", "fit"])
def test_backward_after_a_training_step_is_refused_before_any_change(be, step):
    rng = np.random.default_rng(1)
    model = nb.Sequential([nb.Dense(2, 3, "relu"), nb.Dense(3, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X, T = _f64(be, rng.standard_normal((4, 2))), _f64(be, np.zeros((4, 2)))
    model.forward(X)  # a record the training step then consumes
    if step == "value_and_grad":
        model.value_and_grad(X, T, nb.losses.MSE())
    elif step == "train_step":
        model.train_step(X, T, nb.losses.MSE(), nb.optim.SGD(0.1))
    else:
        model.fit(X, T, loss="mse", optimizer="sgd", epochs=1, progress=False)
    before = [be.host(g).copy() for g in model.gradients()]
    with pytest.raises(RuntimeError, match=r"consumed by a training step.*run forward\(X\) again"):
        model.backward(_f64(be, np.full((4, 2), 100.0)))
    for a, b in zip(before, model.gradients(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))
    # forward again, and backward works: the gradients of an independent NumPy pass
    model.forward(X)
    dY = rng.standard_normal((4, 2))
    model.backward(_f64(be, dY))
    W0, b0, W1, _ = (be.host(p) for p in model.parameters())
    a = np.maximum(be.host(X) @ W0 + b0, 0)
    np.testing.assert_allclose(be.host(model.layers[1].dW), a.T @ dY, rtol=1e-13)
    np.testing.assert_allclose(be.host(model.layers[0].dW), be.host(X).T @ ((dY @ W1.T) * (a > 0)),
                               rtol=1e-13, atol=1e-15)


# train_step: what it checks without reading the data -----------------------------------------
def _step_fixture(be, last="identity"):
    model = nb.Sequential([nb.Dense(2, 3, last)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    return model, _f64(be, np.ones((4, 2))), [be.host(p).copy() for p in model.parameters()]


@pytest.mark.parametrize("what, make, loss, err, match", [
    ("T of another width", lambda be: _f64(be, np.ones((4, 1))), nb.losses.MSE(), ValueError,
     r"target shape \(4, 1\) does not match the output shape \(4, 3\)"),
    ("float32 T in a float64 model", lambda be: be.asarray(np.ones((4, 3)), "float32"), nb.losses.MSE(),
     TypeError, r"target dtype float32 does not match the model's float64"),
    ("T with one row", lambda be: _f64(be, np.ones((1, 3))), nb.losses.MSE(), ValueError,
     r"X has 4 rows but T has 1"),
    ("float labels", lambda be: _f64(be, [0, 1, 2, 0]), nb.losses.SoftmaxCrossEntropy(), TypeError,
     r"class labels and must be integers"),
], ids=["width", "dtype", "rows", "float-labels"])
def test_train_step_refuses_wrong_targets(be, what, make, loss, err, match):
    model, X, before = _step_fixture(be)
    opt = nb.optim.SGD(0.1)
    with pytest.raises(err, match=match):
        model.train_step(X, make(be), loss, opt)
    assert opt.state is None
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


def test_train_step_refuses_softmax_under_softmax_cross_entropy(be):
    model, X, before = _step_fixture(be, last="softmax")
    with pytest.raises(ValueError, match="double softmax"):
        model.train_step(X, be.asarray(np.array([0, 1, 2, 0]), "int64"), nb.losses.SoftmaxCrossEntropy(),
                         nb.optim.SGD(0.1))
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


def test_train_step_leaves_label_values_to_fit(be):
    """Label range needs a device read, so train_step does not check it (fit does,
    once per data set); an out-of-range label is then a zero one-hot row on every
    backend (no raw IndexError from NumPy's fast path)."""
    model, X, _ = _step_fixture(be)
    Xh = np.random.default_rng(2).standard_normal((4, 2))
    X = _f64(be, Xh)
    labels = np.array([0, 1, 7, -1])
    W, b = (be.host(p).copy() for p in model.parameters())
    J = float(model.train_step(X, be.asarray(labels, "int64"), nb.losses.SoftmaxCrossEntropy(),
                               nb.optim.SGD(0.0)))
    z = Xh @ W + b
    logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    onehot = np.stack([(np.arange(3) == t) for t in labels]).astype(float)  # rows of 7 and -1: zeros
    assert J == pytest.approx(-np.sum(onehot * logp) / 4, rel=1e-12)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 2\].*from -1 to 7"):
        model.fit(X, be.asarray(labels, "int64"), loss="softmax_cross_entropy", optimizer="sgd",
                  progress=False)


# empty data ---------------------------------------------------------------------------------
def test_zero_rows_are_refused(be):
    model = nb.Sequential([nb.Dense(2, 3)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X0, T0 = _f64(be, np.zeros((0, 2))), _f64(be, np.zeros((0, 3)))
    msg = r"X has 0 rows; need at least one"
    for call in (lambda: model.fit(X0, T0, loss="mse", optimizer="sgd", progress=False),
                 lambda: model.fit(X0, T0, loss="mse", optimizer="sgd", batch_size=4, progress=False),
                 lambda: model.evaluate(X0, T0, metrics=["mse"]),
                 lambda: model.value_and_grad(X0, T0, nb.losses.MSE()),
                 lambda: model.train_step(X0, T0, nb.losses.MSE(), nb.optim.SGD(0.1))):
        with pytest.raises(ValueError, match=msg):
            call()
    X, T = _f64(be, np.ones((3, 2))), _f64(be, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"X_val has 0 rows"):
        model.fit(X, T, loss="mse", optimizer="sgd", validation_data=(X0, T0), progress=False)
    assert model.optimizer is None
    # predicting nothing is fine: (0, 3) out
    assert tuple(model.predict(X0).shape) == (0, 3)
    assert tuple(model.predict(X0, batch_size=2).shape) == (0, 3)


# what each metric accepts -------------------------------------------------------------------
@pytest.mark.parametrize("metric, T, match", [
    ("mse", np.ones((4, 1)), r"mse: target shape \(4, 1\) does not match the output shape \(4, 3\)"),
    ("mae", np.ones((4, 1)), r"mae: target shape \(4, 1\)"),
    ("accuracy", np.array([0, 1, 9, -3]), r"accuracy: class labels must lie in \[0, 2\].*from -3 to 9"),
    ("accuracy", np.ones((4, 2)), r"accuracy: target shape \(4, 2\) does not fit the output shape \(4, 3\)"),
    ("accuracy", np.array([[0.5, -1.0, 2.0]] * 4), r"one-hot or class probabilities.*from -1 to 2"),
    ("accuracy", np.array([[0.2, 0.2, 0.2]] * 4), r"row sums off 1 by up to 0.4"),
], ids=["mse-width", "mae-width", "accuracy-labels", "accuracy-width", "accuracy-regression",
        "accuracy-row-sums"])
def test_evaluate_checks_the_target_each_metric_gets(be, metric, T, match):
    model = nb.Sequential([nb.Dense(2, 3)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X = _f64(be, np.ones((4, 2)))
    Ta = be.asarray(T, "int64") if T.dtype.kind == "i" else _f64(be, T)
    with pytest.raises(ValueError, match=match):
        model.evaluate(X, Ta, metrics=[metric])
    with pytest.raises(ValueError, match=match):  # the metric on bare arrays checks the same
        nb.metrics.get(metric)(model(X), Ta)


def test_fit_refuses_accuracy_on_regression_targets(be):
    model = nb.Sequential([nb.Dense(2, 3)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X = _f64(be, np.ones((4, 2)))
    T = _f64(be, np.random.default_rng(0).standard_normal((4, 3)))
    before = [be.host(p).copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"T: accuracy: \(4, 3\) targets must be one-hot or class probabilities"):
        model.fit(X, T, loss="mse", optimizer="sgd", metrics=["accuracy"], progress=False)
    assert model.optimizer is None
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, be.host(b))


def test_accuracy_on_one_output_needs_0_1_targets(be):
    model = nb.Sequential([nb.Dense(2, 1)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X = _f64(be, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"accuracy on a single output needs 0/1 targets, got values from "
                                         r"-1.5 to 2"):
        model.fit(X, _f64(be, [[2.0], [-1.5], [0.0], [1.0]]), loss="mse", optimizer="sgd",
                  metrics=["accuracy"], progress=False)
    assert model.optimizer is None
    with pytest.raises(ValueError, match=r"T_val: accuracy on a single output"):
        model.fit(X, _f64(be, [[1.0], [0.0], [0.0], [1.0]]), loss="mse", optimizer="sgd", metrics=["accuracy"],
                  validation_data=(X, _f64(be, [[0.3], [0.0], [0.0], [1.0]])), progress=False)
    # 0/1 targets as floats (N, 1) or integers (N,) are fine
    assert model.evaluate(X, _f64(be, [[1.0], [0.0], [0.0], [1.0]]))["accuracy"] in (0.5,)
    assert model.evaluate(X, be.asarray(np.array([1, 0, 0, 1]), "int64"))["accuracy"] == 0.5
