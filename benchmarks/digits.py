"""End-to-end fit on scikit-learn's digits (bundled, offline) against ``MLPClassifier``.

Both train 64-128-10 (ReLU hidden, softmax cross-entropy) with the same
optimizer, batch size and number of epochs, shuffling every epoch, no L2, no
early stopping, in float32, and are scored on the same held-out 20 %. Two
configurations (:data:`CONFIGS`):

- ``sgd``: plain mini-batch SGD, lr 0.1, batch 32, 30 epochs;
- ``adam``: scikit-learn's defaults (Adam, lr 1e-3, batch 200) run for the 137
  epochs its default stopping rule takes on this data set.

A timed call is a whole fit from a fresh model: construction and all epochs,
nothing else. Each call uses the next seed (initial weights and shuffling), so
the accuracy is a mean over seeds, not one draw; scoring is untimed.

:func:`estimator_case` times the estimators instead, each at its own defaults
(issue 15's target): ``nnbackprop.sklearn.MLPClassifier(random_state=seed)``
against ``sklearn.neural_network.MLPClassifier(random_state=seed)``, 100 ReLU
units, Adam lr 1e-3, batch 200, alpha 1e-4, at most 200 epochs with
scikit-learn's stopping rule, on X in float64 or float32 (each computes in X's
dtype), ``ConvergenceWarning`` silenced. A timed call is ``fit`` itself,
validation included.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np

import nnbackprop as nb

from .workloads import Case, Unavailable

HIDDEN = 128
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    solver: str       # "sgd" or "adam", the same for both libraries
    lr: float
    batch: int
    epochs: int


CONFIGS = {c.name: c for c in (Config("sgd", "sgd", 0.1, 32, 30), Config("adam", "adam", 1e-3, 200, 137))}


def load(seed: int = 0, dtype: str = DTYPE):
    """(X_train, y_train, X_test, y_test): pixels scaled to [0, 1], stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    return Xtr, ytr.astype(np.int64), Xte, yte.astype(np.int64)


def fit_nnbackprop(Xtr, ytr, cfg: Config, seed: int = 0):
    """A 64-128-10 Sequential (NumPy) after ``model.fit`` with ``cfg``."""
    model = nb.mlp([Xtr.shape[1], HIDDEN, 10], "relu", dtype=DTYPE, seed=seed)
    opt = nb.optim.SGD(cfg.lr) if cfg.solver == "sgd" else nb.optim.Adam(cfg.lr)
    model.fit(Xtr, ytr, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=cfg.epochs,
              batch_size=cfg.batch, shuffle=True, seed=seed, progress=False)
    return model


def fit_sklearn(Xtr, ytr, cfg: Config, seed: int = 0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver=cfg.solver,
                        learning_rate="constant", learning_rate_init=cfg.lr, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, batch_size=cfg.batch, max_iter=cfg.epochs,
                        shuffle=True, random_state=seed, early_stopping=False, tol=0.0,
                        n_iter_no_change=cfg.epochs + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the plan, not a failure
        clf.fit(Xtr, ytr)
    return clf


def accuracy(impl: str, fitted, Xte, yte) -> float:
    if impl == "sklearn":
        return float(np.mean(fitted.predict(Xte) == yte))
    return float(np.mean(np.argmax(nb._compat.to_host(fitted(Xte)), axis=1) == yte))


def digits_case(impl: str, config: str = "sgd", epochs: int | None = None) -> Case:
    """``impl`` "nnbackprop" or "sklearn"; ``fn()`` fits once (next seed) and returns the model.

    ``case.state["scores"]()`` gives the test accuracy of every fit so far.
    """
    try:
        Xtr, ytr, Xte, yte = load()
    except ImportError as exc:
        raise Unavailable(f"scikit-learn is not installed ({exc}); pip install scikit-learn") from exc
    cfg = CONFIGS[config]
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    fit = fit_nnbackprop if impl == "nnbackprop" else fit_sklearn
    seeds, fitted = itertools.count(), []

    def fn():
        model = fit(Xtr, ytr, cfg, seed=next(seeds))
        fitted.append(model)
        return model

    info = {"impl": impl, "backend": "numpy", "phase": "fit", "config": cfg.name, "solver": cfg.solver,
            "epochs": cfg.epochs, "batch": cfg.batch, "hidden": HIDDEN, "lr": cfg.lr,
            "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])}
    case = Case(fn, info=info)
    case.state["scores"] = lambda: [accuracy(impl, m, Xte, yte) for m in fitted]
    return case


ESTIMATOR_DTYPES = ("float64", "float32")


def estimator_case(impl: str, dtype: str = "float64", max_iter: int | None = None) -> Case:
    """``impl`` "nnbackprop" or "sklearn": its ``MLPClassifier`` at the defaults, X in
    ``dtype``; ``fn()`` fits one (next seed, ``random_state=seed``) and returns it.
    "lean": the floor, :mod:`benchmarks.lean_fit` for the epochs scikit-learn's
    defaults run here (all 200), ``fn()`` returning its (W, b).
    ``max_iter`` other than the default 200 only for smoke tests.

    ``case.state["scores"]()`` gives the test accuracy of every fit so far.
    """
    try:
        Xtr, ytr, Xte, yte = load(dtype=dtype)
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier as SklearnMLP
    except ImportError as exc:
        raise Unavailable(f"scikit-learn is not installed ({exc}); pip install scikit-learn") from exc
    if impl == "lean":
        return _lean_case(Xtr, ytr, Xte, yte, dtype, max_iter or 200)
    if impl == "nnbackprop":
        from nnbackprop.sklearn import MLPClassifier as Estimator
    else:
        Estimator = SklearnMLP
    kw = {} if max_iter is None else {"max_iter": max_iter}
    seeds, fitted = itertools.count(), []

    def fn():
        est = Estimator(random_state=next(seeds), **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: not the question
            est.fit(Xtr, ytr)
        fitted.append(est)
        return est

    defaults = Estimator(**kw)
    info = {"impl": impl, "backend": "numpy", "phase": "estimator_fit", "dtype": dtype,
            "solver": defaults.solver, "hidden": list(defaults.hidden_layer_sizes),
            "batch": min(200, int(Xtr.shape[0])), "lr": defaults.learning_rate_init,
            "max_iter": defaults.max_iter, "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])}
    case = Case(fn, info=info)
    case.state["scores"] = lambda: [float(np.mean(est.predict(Xte) == yte)) for est in fitted]
    case.state["epochs"] = lambda: [int(est.n_iter_) for est in fitted]
    return case


def _lean_case(Xtr, ytr, Xte, yte, dtype: str, epochs: int) -> Case:
    from . import lean_fit

    seeds, fitted = itertools.count(), []

    def fn():
        wb = lean_fit.fit(Xtr, ytr, epochs=epochs, seed=next(seeds))
        fitted.append(wb)
        return wb

    info = {"impl": "lean", "backend": "numpy", "phase": "estimator_fit", "dtype": dtype, "solver": "adam",
            "hidden": [100], "batch": min(200, int(Xtr.shape[0])), "lr": 1e-3, "max_iter": epochs,
            "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])}
    case = Case(fn, info=info)
    case.state["scores"] = lambda: [float(np.mean(lean_fit.predict(W, b, Xte) == yte)) for W, b in fitted]
    case.state["epochs"] = lambda: [epochs for _ in fitted]
    return case
