"""Per-row weights: the weighted mean of every loss, fit's sample_weight and class_weight,
evaluate's sample_weight; against repeated rows, hand-computed means and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import losses as L
from nnbackprop.weights import class_weight_rows


def _data(be, n=40, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def _net(be, seed=0, dtype="float64", n_out=3):
    return nb.Sequential([nb.Dense(3, 6, "tanh"), nb.Dense(6, n_out)], xp=be.xp, device=be.device,
                         dtype=dtype, seed=seed)


def _weights(model):
    return [np.array(nb._compat.to_host(p)) for p in model.parameters()]


def _fit(be, model, X, y, **kw):
    kw.setdefault("batch_size", None)
    return model.fit(be.asarray(X, model.dtype_name), be.asarray(y), loss="softmax_cross_entropy",
                     optimizer=nb.optim.Adam(0.05), epochs=kw.pop("epochs", 5), seed=1, progress=False, **kw)


# losses -------------------------------------------------------------------------------------
def _row_losses(name, z, t):
    """Each row's own loss, written out on the host (float64)."""
    if name == "mse":
        return 0.5 * ((z - t) ** 2).sum(axis=1)
    if name == "binary_cross_entropy":
        return (np.logaddexp(0, z) - t * z).sum(axis=1)
    if name == "softmax_cross_entropy":
        zs = z - z.max(axis=1, keepdims=True)
        return -(t * (zs - np.log(np.exp(zs).sum(axis=1, keepdims=True)))).sum(axis=1)
    if name == "huber":
        a = np.abs(z - t)
        return np.where(a < 1.0, 0.5 * a * a, a - 0.5).sum(axis=1)
    if name == "l1":
        return np.abs(z - t).sum(axis=1)
    if name == "pinball":
        r = t - z
        return np.maximum(0.5 * r, -0.5 * r).sum(axis=1)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy", "softmax_cross_entropy", "huber", "l1",
                                  "pinball"])
def test_weighted_loss_is_the_weighted_mean_of_row_losses(be, name):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 3)) * 2
    t = rng.random((6, 3)) if name != "softmax_cross_entropy" else np.eye(3)[rng.integers(0, 3, 6)]
    w = np.array([0.0, 1.0, 2.5, 0.5, 3.0, 1.0])
    loss = L.get(name)
    pred, target = be.asarray(z, "float64"), be.asarray(t, "float64")
    J = float(loss(pred, target, weight=be.asarray(w, "float64")))
    np.testing.assert_allclose(J, (w * _row_losses(name, z, t)).sum() / w.sum(), rtol=1e-13)
    # integer weights: the same as the rows repeated
    wi = np.array([0, 1, 2, 1, 3, 1])
    rep = np.repeat(np.arange(6), wi)
    Jw = float(loss(pred, target, weight=be.asarray(wi)))
    Jr = float(loss(be.asarray(z[rep], "float64"), be.asarray(t[rep], "float64")))
    assert Jw == pytest.approx(Jr, rel=1e-13)
    # the gradient: row n's gradient times w_n / sum w (the plain mean's gradient of repeated rows, summed)
    Gw = be.host(loss.grad(pred, target, weight=be.asarray(wi)))
    Gr = be.host(loss.grad(be.asarray(z[rep], "float64"), be.asarray(t[rep], "float64")))
    G_sum = np.zeros_like(z)
    np.add.at(G_sum, rep, Gr)
    np.testing.assert_allclose(Gw, G_sum, rtol=1e-12, atol=1e-15)


def test_all_ones_loss_weight_is_the_unweighted_path(be):
    z = be.asarray(np.random.default_rng(0).standard_normal((5, 2)), "float64")
    t = be.asarray(np.random.default_rng(1).standard_normal((5, 2)), "float64")
    for loss in (L.MSE(), L.Huber(0.3), L.L1()):
        assert float(loss(z, t, weight=be.asarray(np.ones(5)))) == float(loss(z, t))
        assert np.array_equal(be.host(loss.grad(z, t, weight=be.asarray(np.ones(5, np.int64)))),
                              be.host(loss.grad(z, t)))


# fit ---------------------------------------------------------------------------------------------
def test_all_ones_weights_are_bit_identical_to_none(be):
    X, y = _data(be)
    ref = _net(be, dtype="float32")
    _fit(be, ref, X, y, batch_size=8)
    for kw in ({"sample_weight": be.asarray(np.ones(40), "float32")},
               {"sample_weight": be.asarray(np.ones(40, np.int64))},
               {"class_weight": {0: 1, 1: 1.0, 2: 1}}):
        m = _net(be, dtype="float32")
        _fit(be, m, X, y, batch_size=8, **kw)
        for a, b in zip(_weights(ref), _weights(m)):
            assert np.array_equal(a, b), kw


def test_integer_weights_equal_repeated_rows(be):
    X, y = _data(be)
    w = np.random.default_rng(5).integers(0, 4, 40)
    w[0] = 2
    rep = np.repeat(np.arange(40), w)
    a, b = _net(be), _net(be)
    ha = _fit(be, a, X, y, sample_weight=be.asarray(w), epochs=8)
    hb = _fit(be, b, X[rep], y[rep], epochs=8)
    for p, q in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-10)


def test_minibatch_epoch_loss_is_the_weighted_mean(be):
    X, y = _data(be)
    w = np.linspace(0.1, 3.0, 40)
    m = _net(be)
    h = _fit(be, m, X, y, sample_weight=be.asarray(w), epochs=1, batch_size=40, shuffle=False)
    # one full batch: the epoch loss is the weighted loss of the starting weights, by hand
    start = _net(be)
    z = be.host(start.predict(be.asarray(X, "float64")))
    t = np.eye(3)[y]
    assert h["loss"][0] == pytest.approx((w * _row_losses("softmax_cross_entropy", z, t)).sum() / w.sum(),
                                         rel=1e-12)


def test_balanced_class_weight_is_scikit_learns(be):
    sk = pytest.importorskip("sklearn.utils.class_weight")
    X, y = _data(be)
    y[:3] = 2  # three classes, unequal counts
    classes = np.unique(y)
    ref = sk.compute_class_weight("balanced", classes=classes, y=y)
    np.testing.assert_allclose(class_weight_rows(be.asarray(y), "balanced", 3), ref[y], rtol=1e-15)
    # one-hot targets give the same classes
    np.testing.assert_allclose(class_weight_rows(be.asarray(np.eye(3)[y], "float64"), "balanced", 3), ref[y],
                               rtol=1e-15)
    a, b = _net(be), _net(be)
    _fit(be, a, X, y, class_weight="balanced", batch_size=10)
    _fit(be, b, X, y, sample_weight=be.asarray(ref[y], "float64"), batch_size=10)
    for p, q in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)


def test_class_weight_dict_times_sample_weight(be):
    X, y = _data(be)
    sw = np.linspace(0.5, 2.0, 40)
    a, b = _net(be), _net(be)
    _fit(be, a, X, y, class_weight={1: 3.0}, sample_weight=be.asarray(sw, "float64"))
    _fit(be, b, X, y, sample_weight=be.asarray(sw * np.where(y == 1, 3.0, 1.0), "float64"))
    for p, q in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (np.r_[-1.0, np.ones(39)], "negative"),
    (np.r_[np.nan, np.ones(39)], "NaN or infinite"),
    (np.r_[np.inf, np.ones(39)], "NaN or infinite"),
    (np.ones(39), r"shape \(40,\)"),
    (np.ones((40, 1)), r"shape \(40,\)"),
    (np.zeros(40), "all zero"),
])
def test_bad_weights_are_refused_before_any_change(be, bad, match):
    X, y = _data(be)
    m = _net(be)
    before = _weights(m)
    with pytest.raises(ValueError, match=match):
        _fit(be, m, X, y, sample_weight=be.asarray(bad, "float64"))
    assert m.optimizer is None
    for a, b in zip(before, _weights(m)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cw, match", [({5: 1.0}, "not a class index"), ({0: -1.0}, ">= 0"),
                                       ("even", "balanced")])
def test_bad_class_weight_is_refused(be, cw, match):
    X, y = _data(be)
    m = _net(be)
    with pytest.raises(ValueError, match=match):
        _fit(be, m, X, y, class_weight=cw)
    assert m.optimizer is None


def test_class_weight_needs_a_classification_loss(be):
    m = nb.Sequential([nb.Dense(3, 1)], xp=be.xp, device=be.device, dtype="float64")
    X = be.asarray(np.ones((4, 3)), "float64")
    with pytest.raises(ValueError, match="classification loss"):
        m.fit(X, be.asarray(np.ones((4, 1)), "float64"), loss="mse", optimizer="sgd", class_weight="balanced",
              progress=False)


# evaluate ------------------------------------------------------------------------------------------
def test_evaluate_sample_weight_against_scikit_learn(be):
    metrics = pytest.importorskip("sklearn.metrics")
    X, y = _data(be)
    m = _net(be)
    _fit(be, m, X, y)
    w = np.linspace(0.0, 2.0, 40)
    res = m.evaluate(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy",
                     metrics=["accuracy"], sample_weight=be.asarray(w, "float64"))
    z = be.host(m.predict(be.asarray(X, "float64")))
    assert res["accuracy"] == pytest.approx(metrics.accuracy_score(y, z.argmax(axis=1), sample_weight=w),
                                            rel=1e-12)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert res["loss"] == pytest.approx(metrics.log_loss(y, p, sample_weight=w), rel=1e-9)
    plain = m.evaluate(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy")
    ones = m.evaluate(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy",
                      sample_weight=be.asarray(np.ones(40)))
    assert plain == ones
    with pytest.raises(ValueError, match="negative"):
        m.evaluate(be.asarray(X, "float64"), be.asarray(y), sample_weight=be.asarray(-w, "float64"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weighted_softmax_xent_labels_kernel_equals_generic(be, dtype, monkeypatch):
    rng = np.random.default_rng(2)
    z = be.asarray(rng.standard_normal((9, 4)) * 5, dtype)
    labels = be.asarray(rng.integers(0, 4, size=9))
    w = rng.uniform(0, 2, 9)
    s = be.asarray(w / w.sum(), dtype)
    loss = L.SoftmaxCrossEntropy()
    ran = L.softmax_xent_labels(z, labels, row_scale=s) is not None
    assert ran == nb._compat.on_host(z)  # the host kernel runs wherever the arrays are NumPy's
    J_fast, g_fast = (be.host(a).copy() for a in loss.value_and_grad(z, labels, be.xp, row_scale=s))
    monkeypatch.setattr(nb._compat, "INPLACE", False)
    J_slow, g_slow = (be.host(a) for a in loss.value_and_grad(z, labels, be.xp, row_scale=s))
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(J_fast, J_slow, rtol=tol)
    np.testing.assert_allclose(g_fast, g_slow, rtol=tol, atol=tol)


def test_validation_split_cuts_the_weights_with_the_rows(be):
    X, y = _data(be)
    w = np.linspace(0.2, 2.0, 40)
    a, b = _net(be), _net(be)
    ha = _fit(be, a, X, y, sample_weight=be.asarray(w, "float64"), validation_split=0.25)
    hb = _fit(be, b, X[:30], y[:30], sample_weight=be.asarray(w[:30], "float64"),
              validation_data=(be.asarray(X[30:], "float64"), be.asarray(y[30:])))
    assert ha["loss"] == hb["loss"] and ha["val_loss"] == hb["val_loss"]
    for p, q in zip(_weights(a), _weights(b)):
        assert np.array_equal(p, q)


# estimators ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, bad, match", [
    ("sample_weight", np.r_[-1.0, np.ones(39)], "negative"),
    ("sample_weight", np.r_[np.nan, np.ones(39)], "NaN or infinite"),
    ("sample_weight", np.zeros(40), "all zero"),
    ("class_weight", {0: -1.0}, ">= 0"),
    ("class_weight", {0: 0.0, 1: 0.0, 2: 0}, "all zero"),
])
def test_estimator_refuses_bad_weights_before_replacing_the_fitted_net(kind, bad, match):
    pytest.importorskip("sklearn")
    import warnings

    from nnbackprop.sklearn import MLPClassifier

    X, y = _data(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    coefs, curve, model = [c.copy() for c in est.coefs_], list(est.loss_curve_), est.model_
    with pytest.raises(ValueError, match=match):
        if kind == "sample_weight":
            est.fit(X, y, sample_weight=bad)
        else:
            est.set_params(class_weight=bad).fit(X, y)
    assert est.model_ is model and est.loss_curve_ == curve
    for a, b in zip(coefs, est.coefs_):
        assert np.array_equal(a, b)


def test_weights_all_zero_on_the_training_rows_are_refused_before_any_change(be):
    """validation_split keeps the last rows' weights for validation: zero weights on every training
    row leave nothing to train on, refused up front (not a divergence after an epoch)."""
    X, y = _data(be)
    m = _net(be)
    before = _weights(m)
    w = np.r_[np.zeros(30), np.ones(10)]
    with pytest.raises(ValueError, match="all zero"):
        _fit(be, m, X, y, sample_weight=be.asarray(w, "float64"), validation_split=0.25)
    assert m.optimizer is None
    for a, b in zip(before, _weights(m)):
        assert np.array_equal(a, b)
