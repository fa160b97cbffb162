"""nnbackprop.sklearn: scikit-learn's own estimator checks, composition with
Pipeline and GridSearchCV, accuracy against sklearn's MLPClassifier as an oracle,
and the Array API path under ``array_api_dispatch``."""

import os
import pickle

import numpy as np
import pytest

# scipy reads this once, at import; sklearn's array_api_dispatch needs it
os.environ.setdefault("SCIPY_ARRAY_API", "1")
sklearn = pytest.importorskip("sklearn", minversion="1.6",
                              reason="scikit-learn >= 1.6 is the optional 'examples' extra")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nnbackprop import _compat  # noqa: E402
from nnbackprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

FAST = dict(hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=0.01)


# Hitting max_iter warns ConvergenceWarning, as sklearn's MLP does; the checks
# train for a few epochs on purpose, so that warning is expected here. No check is
# expected to fail: the dtype follows X (float64 checks compute in float64), and the
# array_api_support tag adds scikit-learn's Array API checks on every installed namespace.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST),
                          MLPClassifier(**FAST, solver="sgd", learning_rate="adaptive")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n=200, seed=0):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=3,
                               random_state=seed)


def test_convergence_warning_when_max_iter_is_hit():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(max_iter=2, random_state=0).fit(X, y)


def test_fitted_attributes_and_stopping_rule():
    X, y = _blobs()
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, tol=1e-2,
                        n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 200 and clf.n_iter_ == len(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.validation_loss_curve_ is None
    assert list(clf.classes_) == [0, 1, 2] and clf.n_features_in_ == 6
    assert [w.shape for w in clf.coefs_] == [(6, 32), (32, 3)]
    assert all(isinstance(w, np.ndarray) for w in clf.coefs_ + clf.intercepts_)
    P = clf.predict_proba(X)
    assert P.shape == (200, 3) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # may or may not stop early
def test_early_stopping_keeps_validation_curves():
    X, y = _blobs(300)
    clf = MLPClassifier(early_stopping=True, n_iter_no_change=3, max_iter=100, learning_rate_init=0.01,
                        random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    reg = MLPRegressor(early_stopping=True, n_iter_no_change=3, max_iter=100, random_state=0)
    reg.fit(X, y.astype(float))
    assert len(reg.validation_scores_) == reg.n_iter_


def test_partial_fit_and_warm_start():
    X, y = _blobs()
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    warm = MLPClassifier(max_iter=5, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X, y)
    first = warm.coefs_[0].copy()
    with pytest.warns(ConvergenceWarning):
        warm.fit(X, y)
    assert warm.n_iter_ == 10 and not np.allclose(first, warm.coefs_[0])


def test_pickle_round_trip_predicts_the_same():
    X, y = _blobs()
    reg = MLPRegressor(hidden_layer_sizes=(8, 8), max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, np.c_[y, -y].astype(float))
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    assert reg.predict(X).shape == (200, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short runs in the grid
def test_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _blobs()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=200, learning_rate_init=0.01, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.85
    grid = GridSearchCV(MLPClassifier(max_iter=100, learning_rate_init=0.01, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-2]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"hidden_layer_sizes", "alpha"} and grid.best_score_ > 0.6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # both MLPs, fixed epochs
@pytest.mark.parametrize("name", ["iris", "digits"])
def test_accuracy_comparable_to_sklearn(name):
    """Oracle: sklearn's own MLPClassifier with the same settings, same split."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    kw = dict(hidden_layer_sizes=(64,), max_iter=150, learning_rate_init=0.01, random_state=0)
    ours = MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
    theirs = SkMLP(**kw).fit(Xtr, ytr).score(Xte, yte)
    assert ours > 0.9 and ours >= theirs - 0.04, (ours, theirs)


def _dispatch_or_skip():
    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except Exception as exc:
        pytest.skip(f"scikit-learn cannot enable array_api_dispatch here: {exc}")


def test_array_api_dispatch_keeps_the_namespace(be):
    _dispatch_or_skip()
    X, y = _blobs(120)
    Xb, yb = be.asarray(X, "float32"), be.asarray(y.astype(np.int64))
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01, random_state=0)
        with pytest.warns(ConvergenceWarning):
            clf.fit(Xb, yb)
        pred, proba = clf.predict(Xb), clf.predict_proba(Xb)
        reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
        with pytest.warns(ConvergenceWarning):
            reg.fit(Xb, be.asarray(y.astype(np.float64), "float32"))
        out = reg.predict(Xb)
    for a in (pred, proba, out):
        assert type(a).__module__.split(".")[0] == type(Xb).__module__.split(".")[0]
        assert _compat.device_of(a) == be.device
    assert tuple(proba.shape) == (120, 3) and tuple(out.shape) == (120,)
    assert proba.dtype == Xb.dtype
    assert float(np.mean(be.host(pred) == y)) > 0.8
    assert _compat.namespace_of(clf.coefs_[0]) is be.xp and _compat.device_of(clf.coefs_[0]) == be.device


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_array_api_dispatch_with_text_labels(be):
    """Text labels stay on the host: predict maps the argmax of predict_proba to them."""
    _dispatch_or_skip()
    X, y = _blobs(120)
    names = np.array(["cat", "dog", "emu"])
    Xb = be.asarray(X, "float32")
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01, random_state=0)
        clf.fit(Xb, names[y])
        pred, proba = clf.predict(Xb), be.host(clf.predict_proba(Xb))
        score = clf.score(Xb, names[y])
    assert isinstance(pred, np.ndarray) and pred.tolist() == names[proba.argmax(axis=1)].tolist()
    assert score == np.mean(pred == names[y]) and score > 0.8


@pytest.mark.parametrize("param, value", [("batch_size", 0), ("batch_size", -3), ("n_iter_no_change", 0),
                                          ("tol", -1.0), ("momentum", 1.5), ("max_iter", 0),
                                          ("learning_rate_init", 0.0), ("activation", "softsign")])
def test_bad_parameters_are_refused_at_fit_as_scikit_learn_does(param, value):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = _blobs(40)
    with pytest.raises(ValueError, match=f"The '{param}' parameter of MLPClassifier") as theirs:
        SkMLP(**{param: value}).fit(X, y)
    ours = MLPClassifier(**{param: value})  # accepted until fit, as in scikit-learn
    with pytest.raises(type(theirs.value), match=f"The '{param}' parameter of MLPClassifier"):
        ours.fit(X, y)
    assert not hasattr(ours, "model_")


def _held_out_classes(monkeypatch, clf, X, y):
    """Class indices of the early-stopping rows ``clf.fit`` passes to training.fit."""
    from nnbackprop import training

    seen, real_fit = {}, training.fit

    def spy(model, X, T, **kw):
        seen["val"] = kw["validation_data"]
        return real_fit(model, X, T, **kw)

    monkeypatch.setattr(training, "fit", spy)
    clf.fit(X, y)
    return np.asarray(seen["val"][1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_holds_out_each_class_in_its_share(monkeypatch):
    X, _ = _blobs(300)
    y = np.repeat([0, 1, 2], 100)  # sorted by class, 100 rows each
    clf = MLPClassifier(early_stopping=True, validation_fraction=0.2, max_iter=3, random_state=0)
    val = _held_out_classes(monkeypatch, clf, X, y)
    assert np.bincount(val).tolist() == [20, 20, 20]
    lone = np.r_[y[:59], 3]  # a class of one row cannot be in both parts: a plain random split
    val = _held_out_classes(monkeypatch, clf, X[:60], lone)
    assert val.size == 12 and set(val.tolist()) <= {0, 1, 2, 3}


@pytest.mark.parametrize("loss, name", [("squared_error", "mse"), ("huber", "huber"), ("absolute_error", "l1"),
                                        ({"name": "pinball", "quantile": 0.9}, "pinball")])
def test_regressor_loss_parameter(loss, name):
    from nnbackprop.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 1))
    y = X[:, 0] + rng.standard_normal(300) * 0.3
    est = MLPRegressor((16,), activation="tanh", loss=loss, max_iter=60, random_state=0, learning_rate_init=0.02,
                       dtype="float64").fit(X, y)
    assert est.model_.loss.name == name and est.model_.loss.l2 == est.alpha
    if name == "pinball":
        assert 0.85 <= np.mean(y <= est.predict(X)) <= 0.95


def test_regressor_bad_loss_is_refused_before_fitting():
    from nnbackprop.sklearn import MLPRegressor

    est = MLPRegressor(loss="poisson")
    with pytest.raises(ValueError, match="loss='poisson' is not supported"):
        est.fit(np.ones((4, 2)), np.ones(4))
    assert not hasattr(est, "model_")
