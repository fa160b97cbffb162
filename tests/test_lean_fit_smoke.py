"""benchmarks/lean_fit.py, the hand-written floor under the estimators' digits target: it must
train the network it claims to (so its time is a fair floor), here against scikit-learn's own
MLPClassifier trained alike."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from benchmarks import lean_fit


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lean_fit_learns_digits_like_scikit_learn(dtype):
    pytest.importorskip("sklearn", reason="scikit-learn is the oracle here")
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split((X / 16.0).astype(dtype), y, test_size=0.2, random_state=0, stratify=y)
    W, b = lean_fit.fit(Xtr, ytr, epochs=20, seed=0)
    assert W[0].dtype == np.dtype(dtype) and W[0].shape == (64, 100) and b[1].shape == (10,)
    ours = np.mean(lean_fit.predict(W, b, Xte) == yte)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPClassifier(max_iter=20, random_state=0).fit(Xtr, ytr).score(Xte, yte)
    assert ours > 0.9 and abs(ours - theirs) < 0.03
