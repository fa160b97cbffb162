"""nnbackprop.sklearn as a drop-in for scikit-learn's MLPs: every parameter of theirs,
training trajectories equal to scikit-learn's own MLP from the same weights (float64),
the dtype following X, sample and class weights, Array API dispatch checked by
scikit-learn's own check_array_api_input, and the meta-estimators."""

import os
import pickle
import warnings

import numpy as np
import pytest

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scipy reads this once; array_api_dispatch needs it
sklearn = pytest.importorskip("sklearn", minversion="1.6",
                              reason="scikit-learn >= 1.6 is the optional 'examples' extra")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from nnbackprop import _compat  # noqa: E402
from nnbackprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

TOL = 1e-10  # weights after a trajectory, where the formulas agree (float64)


def _data(n=120, seed=0):
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=n, n_features=5, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=seed)
    return StandardScaler().fit_transform(X), y


def _quiet_fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


def _same_start(ours, theirs, X, y, **fit_kw):
    """One epoch each (so both are fitted), then ours takes scikit-learn's weights and
    its best loss: from here both continue from the same state."""
    for est in (ours, theirs):
        est.set_params(max_iter=1, warm_start=True)
        _quiet_fit(est, X, y, **fit_kw)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    ours.best_loss_, ours.loss_curve_ = theirs.best_loss_, list(theirs.loss_curve_)
    assert ours.t_ == theirs.t_ == X.shape[0]


def _assert_same_weights(ours, theirs, tol=TOL):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


COMMON = dict(hidden_layer_sizes=(7,), activation="tanh", alpha=0.0, batch_size=32, shuffle=False,
              random_state=0)
TRAJECTORIES = {  # name: (estimator kwargs, epochs)
    "sgd_nesterov": (dict(solver="sgd", learning_rate_init=0.05, momentum=0.9), 15),
    "sgd_momentum": (dict(solver="sgd", learning_rate_init=0.05, momentum=0.8, nesterovs_momentum=False), 15),
    "sgd_plain": (dict(solver="sgd", learning_rate_init=0.1, momentum=0.0), 15),
    "sgd_invscaling": (dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.4), 15),
    # tol so large that every epoch counts as no improvement: the lr falls by 5 every 3 epochs until it
    # is <= 1e-6, then training stops (27 epochs), before max_iter
    "sgd_adaptive": (dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, tol=10.0,
                          n_iter_no_change=2), 60),
    # epsilon placement differs (ours: after the bias correction): a tiny epsilon makes it vanish
    "adam": (dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-30), 15),
}


@pytest.mark.parametrize("case", list(TRAJECTORIES))
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_trajectory_equals_scikit_learn(case, kind):
    kw, epochs = TRAJECTORIES[case]
    X, y = _data()
    if kind == "classifier":
        ours, theirs = MLPClassifier(**COMMON, **kw), SkClassifier(**COMMON, **kw)
    else:
        y = X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + np.sin(X[:, 0])
        ours, theirs = MLPRegressor(**COMMON, **kw), SkRegressor(**COMMON, **kw)
    _same_start(ours, theirs, X, y)
    ours.set_params(max_iter=epochs)
    theirs.set_params(max_iter=epochs)
    _quiet_fit(ours, X, y)
    _quiet_fit(theirs, X, y)
    assert ours.model_.dtype_name == "float64"  # float64 X: float64 network
    _assert_same_weights(ours, theirs)
    assert len(ours.loss_curve_) == len(theirs.loss_curve_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.t_ == theirs.t_
    if case == "sgd_adaptive":
        assert len(theirs.loss_curve_) == 1 + 27 and ours._optimizer.lr.current < 1e-6
    np.testing.assert_allclose(ours.predict(X) if kind == "regressor" else ours.predict_proba(X),
                               theirs.predict(X) if kind == "regressor" else theirs.predict_proba(X),
                               rtol=0, atol=1e-9)


def test_sample_weight_trajectory_equals_scikit_learn():
    """scikit-learn 1.9's MLP takes sample_weight with the same weighted mean; the
    weights, not the loss curve (scikit-learn averages batch losses by rows), agree."""
    X, y = _data()
    w = np.random.default_rng(1).integers(0, 4, X.shape[0]).astype(float)
    kw = dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, tol=0.0, n_iter_no_change=1000)
    ours, theirs = MLPClassifier(**COMMON, **kw), SkClassifier(**COMMON, **kw)
    try:
        _same_start(ours, theirs, X, y, sample_weight=w)
    except TypeError as exc:  # scikit-learn < 1.7 has no sample_weight in MLP.fit
        pytest.skip(f"this scikit-learn's MLP takes no sample_weight ({exc})")
    for est in (ours, theirs):
        est.set_params(max_iter=10)
        _quiet_fit(est, X, y, sample_weight=w)
    _assert_same_weights(ours, theirs)


def test_class_weight_is_sample_weight_by_label():
    """class_weight={label: w} trains as scikit-learn's MLP does with those weights as
    sample_weight (its MLP has no class_weight); 'balanced' is scikit-learn's formula."""
    from sklearn.utils.class_weight import compute_class_weight

    X, y = _data()
    labels = np.array(["a", "b", "c"])[y]
    kw = dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, tol=0.0, n_iter_no_change=1000)
    cw = {"a": 2.0, "c": 0.5}
    for class_weight, per_class in [(cw, np.array([2.0, 1.0, 0.5])),
                                    ("balanced", compute_class_weight("balanced", classes=np.unique(labels),
                                                                      y=labels))]:
        ours = MLPClassifier(**COMMON, **kw, class_weight=class_weight)
        ref = MLPClassifier(**COMMON, **kw)
        _quiet_fit(ours.set_params(max_iter=8), X, labels)
        _quiet_fit(ref.set_params(max_iter=8), X, labels, sample_weight=per_class[y])
        _assert_same_weights(ours, ref, tol=1e-12)
    with pytest.raises(ValueError, match="class_weight has label 'z'"):
        MLPClassifier(class_weight={"z": 1.0}).fit(X, labels)


def test_partial_fit_invscaling_and_sample_weight_follow_scikit_learn():
    """partial_fit: one epoch per call, the invscaling rate from the rows seen so far (t_)."""
    X, y = _data()
    w = np.linspace(0.5, 2.0, X.shape[0])
    kw = dict(COMMON, solver="sgd", learning_rate="invscaling", learning_rate_init=0.3, power_t=0.5,
              momentum=0.0)
    ours, theirs = MLPClassifier(**kw), SkClassifier(**kw)
    try:
        theirs.partial_fit(X, y, sample_weight=w, classes=[0, 1, 2])
    except TypeError as exc:
        pytest.skip(f"this scikit-learn's MLP takes no sample_weight ({exc})")
    ours.partial_fit(X, y, sample_weight=w, classes=[0, 1, 2])
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    for _ in range(5):
        ours.partial_fit(X, y, sample_weight=w)
        theirs.partial_fit(X, y, sample_weight=w)
    assert ours.t_ == theirs.t_ == 6 * X.shape[0]
    _assert_same_weights(ours, theirs)


def test_every_scikit_learn_parameter_is_accepted():
    for ours, theirs in [(MLPClassifier(), SkClassifier()), (MLPRegressor(), SkRegressor())]:
        missing = set(theirs.get_params()) - set(ours.get_params())
        assert not missing, missing
        ours_defaults = ours.get_params()
        for k, v in theirs.get_params().items():
            if k != "loss":  # the regressor's loss has more options here, the same default
                assert ours_defaults[k] == v, (k, ours_defaults[k], v)


def test_lbfgs_is_refused_with_a_clear_error_and_max_fun_is_accepted():
    X, y = _data(40)
    est = MLPClassifier(solver="lbfgs")
    with pytest.raises(ValueError, match="solver='lbfgs' is not supported"):
        est.fit(X, y)
    assert not hasattr(est, "model_")
    _quiet_fit(MLPClassifier(max_fun=10, max_iter=2), X, y)


@pytest.mark.parametrize("param, value", [("learning_rate", "cyclic"), ("power_t", -1.0), ("beta_1", 1.0),
                                          ("beta_2", -0.1), ("epsilon", 0.0), ("nesterovs_momentum", "yes"),
                                          ("max_fun", 0), ("validation_fraction", 1.0)])
def test_new_parameters_are_refused_as_scikit_learn_does(param, value):
    X, y = _data(40)
    with pytest.raises(ValueError, match=f"The '{param}' parameter of MLPClassifier") as theirs:
        SkClassifier(**{param: value}).fit(X, y)
    ours = MLPClassifier(**{param: value})
    with pytest.raises(type(theirs.value), match=f"The '{param}' parameter of MLPClassifier"):
        ours.fit(X, y)
    assert not hasattr(ours, "model_")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_follows_X_unless_set(dtype):
    X, y = _data(60)
    X = X.astype(dtype)
    for est in (MLPClassifier(hidden_layer_sizes=(4,), max_iter=2), MLPRegressor(hidden_layer_sizes=(4,), max_iter=2)):
        _quiet_fit(est, X, y if est._is_classifier else y.astype(dtype))
        assert est.model_.dtype_name == dtype and est.coefs_[0].dtype == np.dtype(dtype)
        out = est.predict_proba(X) if est._is_classifier else est.predict(X)
        assert out.dtype == np.dtype(dtype)  # as scikit-learn's MLP: results in X's dtype
    # an int X computes in float64, as in scikit-learn; dtype= overrides, results promoted with X
    est = _quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2), np.rint(X * 3).astype(np.int64), y * 1.0)
    assert est.model_.dtype_name == "float64"
    est = _quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype="float32"), X, y * 1.0)
    assert est.model_.dtype_name == "float32" and est.predict(X).dtype == np.dtype(dtype)


def test_batch_size_larger_than_the_data_warns_and_is_clipped():
    X, y = _data(40)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        _quiet_fit(MLPClassifier(batch_size=500, max_iter=2), X, y)


# --- Array API dispatch ------------------------------------------------------------------

def _dispatch_or_skip():
    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except Exception as exc:
        pytest.skip(f"scikit-learn cannot enable array_api_dispatch here: {exc}")


def _api_namespaces():
    out = []
    for name in ("array_api_strict", "torch"):
        try:
            __import__(name)
            out.append(name)
        except ImportError:
            pass
    return out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("namespace", ["array_api_strict", "torch"])
@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_scikit_learns_check_array_api_input_with_values(Est, namespace):
    """scikit-learn's own check: fitted arrays and every method's output in X's
    namespace and device, equal (values checked) to the NumPy fit's."""
    from sklearn.utils.estimator_checks import check_array_api_input

    _dispatch_or_skip()
    pytest.importorskip(namespace, reason=f"{namespace} is not installed")
    est = Est(hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.01)
    check_array_api_input(Est.__name__, est, array_namespace=namespace, dtype_name="float64",
                          check_values=True, check_sample_weight=True)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_dispatch_keeps_fitted_arrays_in_the_namespace(be):
    _dispatch_or_skip()
    X, y = _data(90)
    Xb, yb, wb = be.asarray(X, "float32"), be.asarray(y.astype(np.int64)), be.asarray(np.ones(90) * 2, "float32")
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.02, random_state=0)
        clf.fit(Xb, yb, sample_weight=wb)
        score = clf.score(Xb, yb)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        reg.fit(Xb, be.asarray(X[:, 0] * 2, "float32"))
        again = pickle.loads(pickle.dumps(clf))
        same = np.array_equal(be.host(again.predict_proba(Xb)), be.host(clf.predict_proba(Xb)))
    assert type(score) is float and score > 0.7
    for a in clf.coefs_ + clf.intercepts_ + reg.coefs_ + [clf.classes_]:
        assert _compat.namespace_of(a) is be.xp and _compat.device_of(a) == be.device
    assert clf.coefs_[0].dtype == Xb.dtype
    assert same and _compat.device_of(again.classes_) == be.device
    assert _compat.device_of(again.model_.parameters()[0]) == be.device
    # without dispatch: NumPy in, NumPy out, as before
    host = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.01, random_state=0)
    host.fit(X, y)
    assert all(isinstance(a, np.ndarray) for a in host.coefs_ + [host.classes_, host.predict_proba(X)])


# --- meta-estimators -----------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
# StandardScaler's own variance on array-api-strict divides 0 by 0 for its first partial batch
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@pytest.mark.parametrize("namespace", [None] + _api_namespaces())
def test_pipeline_grid_search_and_calibration(namespace):
    """Pipeline(StandardScaler(), ...), GridSearchCV(n_jobs=2) and CalibratedClassifierCV,
    on NumPy without dispatch and on each namespace with it; clone keeps the parameters."""
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(150)
    yr = X[:, 0] - X[:, 1]
    ctx = sklearn.config_context(array_api_dispatch=namespace is not None)
    if namespace is not None:
        _dispatch_or_skip()
        xp = _compat.namespace(namespace)
        X, y, yr = xp.asarray(X), xp.asarray(y), xp.asarray(yr)
    kw = dict(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01, random_state=0)
    with ctx:
        pipe = make_pipeline(StandardScaler(), MLPClassifier(**kw)).fit(X, y)
        assert pipe.score(X, y) > 0.8
        reg = make_pipeline(StandardScaler(), MLPRegressor(**kw)).fit(X, yr)
        assert reg.score(X, yr) > 0.8
        grid = GridSearchCV(MLPClassifier(**kw), {"alpha": [1e-4, 1e-2], "solver": ["adam", "sgd"]},
                            cv=2, n_jobs=2).fit(X, y)
        assert set(grid.best_params_) == {"alpha", "solver"} and grid.best_score_ > 0.6
        # scikit-learn's sigmoid and isotonic calibration are NumPy-only; its temperature
        # scaling (scikit-learn >= 1.8) runs under dispatch
        method = "sigmoid" if namespace is None else "temperature"
        if method in str(CalibratedClassifierCV._parameter_constraints["method"]):
            cal = CalibratedClassifierCV(MLPClassifier(**kw), cv=3, method=method).fit(X, y)
            P = cal.predict_proba(X)
            assert _compat.namespace_of(P) is _compat.namespace_of(X)
            np.testing.assert_allclose(_compat.to_host(P).sum(axis=1), 1.0, rtol=1e-6)
            assert cal.score(X, y) > 0.75
    est = clone(grid.best_estimator_)
    assert est.get_params() == grid.best_estimator_.get_params() and not hasattr(est, "model_")


def _held_out_rows(n, random_state, strata, fraction):
    """The early-stopping rows of a first fit: the estimator draws the network's seed from
    its RandomState, then splits with scikit-learn's train_test_split."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    rs = check_random_state(random_state)
    rs.randint(2**31 - 1)
    return train_test_split(np.arange(n), stratify=strata, test_size=fraction, random_state=rs)[1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_scores_as_scikit_learn_with_weights_and_several_outputs():
    """The validation score is scikit-learn's: accuracy weighted by the held-out rows'
    weights; R^2 averaged over outputs. The best epoch's weights are restored, so the
    best score is the final model's score on the held-out rows (scikit-learn's metrics)."""
    from sklearn.metrics import accuracy_score, r2_score

    X, y = _data(200)
    w = np.random.default_rng(2).uniform(0.0, 3.0, 200)
    kw = dict(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.25, max_iter=30,
              learning_rate_init=0.01, random_state=3)
    clf = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    va = _held_out_rows(200, 3, y, 0.25)
    assert clf.best_validation_score_ == pytest.approx(
        accuracy_score(y[va], clf.predict(X[va]), sample_weight=w[va]), abs=1e-12)
    Y = np.c_[X[:, 0] - X[:, 1], 10 * X[:, 2]]  # two outputs of different scales
    reg = MLPRegressor(**kw).fit(X, Y)
    va = _held_out_rows(200, 3, None, 0.25)
    assert reg.best_validation_score_ == pytest.approx(r2_score(Y[va], reg.predict(X[va])), abs=1e-10)


@pytest.mark.parametrize("cls", ["MLPClassifier", "MLPRegressor"])
def test_partial_fit_refuses_early_stopping_as_scikit_learn_does(cls):
    from sklearn import neural_network

    import nnbackprop.sklearn as nbs

    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    kw = {"classes": [0, 1]} if cls == "MLPClassifier" else {}
    with pytest.raises(ValueError) as theirs:
        getattr(neural_network, cls)(early_stopping=True).partial_fit(X, y, **kw)
    est = getattr(nbs, cls)(early_stopping=True)
    with pytest.raises(ValueError, match=str(theirs.value)):
        est.partial_fit(X, y, **kw)
    assert not hasattr(est, "model_")
