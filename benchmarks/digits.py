"""End-to-end fit on scikit-learn's digits (bundled, offline) against ``MLPClassifier``.

Both train 64-128-10 (ReLU hidden, softmax cross-entropy), plain mini-batch
SGD (no momentum, no L2, constant learning rate), the same batch size and
number of epochs, shuffling every epoch, no early stopping, in float32, and
are scored on the same held-out 20 %. A timed call is a whole fit from a fresh
model: construction, all epochs, and nothing else (scoring is untimed).
"""

from __future__ import annotations

import warnings

import numpy as np

import nnbackprop as nb

from .workloads import Case, sgd

HIDDEN = 128
EPOCHS = 30
BATCH = 32
LR = 0.1
DTYPE = "float32"


def load(seed: int = 0):
    """(X_train, y_train, X_test, y_test): pixels scaled to [0, 1], stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(DTYPE)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    return Xtr, ytr.astype(np.int64), Xte, yte.astype(np.int64)


def uses_fit() -> bool:
    """``model.fit`` exists and so does the optimizer module it needs."""
    try:
        from nnbackprop import optim  # noqa: F401
    except ImportError:
        return False
    return hasattr(nb.Sequential, "fit")


def fit_nnbackprop(Xtr, ytr, epochs: int = EPOCHS, seed: int = 0):
    """A fitted 64-128-10 Sequential (NumPy). Uses ``model.fit`` once it exists."""
    model = nb.Sequential([nb.Dense(Xtr.shape[1], HIDDEN, activation="relu"),
                           nb.Dense(HIDDEN, 10)], dtype=DTYPE, seed=seed)
    loss = nb.losses.SoftmaxCrossEntropy()
    opt, _ = sgd(LR)
    if uses_fit():
        model.fit(Xtr, ytr, loss=loss, optimizer=opt, epochs=epochs, batch_size=BATCH,
                  shuffle=True, seed=seed, progress=False)
        return model
    rng = np.random.default_rng(seed)
    n = Xtr.shape[0]
    for _ in range(epochs):
        perm = rng.permutation(n)
        Xs, ys = Xtr[perm], ytr[perm]
        for start in range(0, n, BATCH):
            model.train_step(Xs[start:start + BATCH], ys[start:start + BATCH], loss, opt)
    return model


def fit_sklearn(Xtr, ytr, epochs: int = EPOCHS, seed: int = 0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
                        learning_rate="constant", learning_rate_init=LR, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, batch_size=BATCH, max_iter=epochs,
                        shuffle=True, random_state=seed, early_stopping=False, tol=0.0,
                        n_iter_no_change=epochs + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the plan, not a failure
        clf.fit(Xtr, ytr)
    return clf


def accuracy(impl: str, fitted, Xte, yte) -> float:
    if impl == "sklearn":
        return float(np.mean(fitted.predict(Xte) == yte))
    return float(np.mean(np.argmax(nb._compat.to_host(fitted(Xte)), axis=1) == yte))


def digits_case(impl: str, epochs: int = EPOCHS) -> Case:
    """``impl`` "nnbackprop" or "sklearn"; ``fn()`` fits once and returns the fitted model."""
    try:
        Xtr, ytr, Xte, yte = load()
    except ImportError as exc:
        from .workloads import Unavailable
        raise Unavailable(f"scikit-learn is not installed ({exc}); pip install scikit-learn") from exc
    fit = fit_nnbackprop if impl == "nnbackprop" else fit_sklearn
    info = {"impl": impl, "backend": "numpy", "phase": "fit", "epochs": epochs, "batch": BATCH,
            "hidden": HIDDEN, "lr": LR, "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])}
    if impl == "nnbackprop":
        info["uses_fit"] = uses_fit()

    def fn():
        return fit(Xtr, ytr, epochs=epochs)

    case = Case(fn, info=info)
    case.state["score"] = lambda fitted: accuracy(impl, fitted, Xte, yte)
    return case
