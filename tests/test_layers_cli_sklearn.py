"""Dropout and normalisation from the builders: nb.mlp(norm=, dropout=), the command
line's --norm and --dropout, and the estimators' dropout=."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import cli


def test_mlp_places_norm_and_dropout_after_each_hidden_layer():
    m = nb.mlp([4, 8, 6, 3], "relu", norm="batch", dropout=0.25, seed=0)
    assert [type(la).__name__ for la in m.layers] == ["Dense", "BatchNorm", "Dropout", "Dense", "BatchNorm",
                                                      "Dropout", "Dense"]
    assert nb.mlp([4, 8, 3], norm="layer").layers[1].config() == {"type": "LayerNorm", "n": 8, "eps": 1e-5}
    # no norm and p = 0 add nothing: the same network as before, weights included
    plain, same = nb.mlp([4, 8, 3], seed=1), nb.mlp([4, 8, 3], seed=1, norm=None, dropout=0.0)
    assert same.config() == plain.config()
    for a, b in zip(plain.parameters(), same.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the Dense weights are the plain network's: norms and dropout draw nothing at init
    normed = nb.mlp([4, 8, 3], seed=1, norm="batch", dropout=0.5)
    np.testing.assert_array_equal(normed.layers[0].W, plain.layers[0].W)
    np.testing.assert_array_equal(normed.layers[3].W, plain.layers[1].W)
    with pytest.raises(ValueError, match="norm must be None, 'layer' or 'batch'"):
        nb.mlp([4, 8, 3], norm="group")
    with pytest.raises(ValueError, match="0 <= p < 1"):
        nb.mlp([4, 8, 3], dropout=1.0)


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_cli_trains_with_norm_and_dropout_and_the_checkpoint_predicts_raw_rows(tmp_path, capsys, norm):
    path = tmp_path / "m.npz"
    code, out, err = _run(capsys, "train", "--data", "iris", "--hidden", "16", "--norm", norm, "--dropout",
                          "0.1", "--epochs", "40", "--lr", "0.01", "--batch-size", "16", "--backend", "numpy",
                          "--no-progress", "--out", path)
    assert code == 0, err
    assert f"{norm} norm, dropout 0.1" in out
    model = nb.load(path)
    kinds = [type(la).__name__ for la in model.layers]
    assert kinds == ["Dense", {"layer": "LayerNorm", "batch": "BatchNorm"}[norm], "Dropout", "Dense"]
    acc = float(out.split("test: accuracy ")[1].split()[0])
    assert acc > 0.85
    code, out2, err = _run(capsys, "evaluate", path, "--data", "iris", "--split", "test")
    assert code == 0 and f"accuracy {acc:.4f}" in out2  # inference mode: no dropout, the same numbers


def test_cli_batch_norm_skips_a_last_batch_of_one_row(tmp_path, capsys):
    """xor's 4 rows split 3 train / 1 test (stratified); --batch-size 2 leaves a last batch of 1."""
    path = tmp_path / "m.npz"
    code, out, err = _run(capsys, "train", "--data", "xor", "--hidden", "4", "--norm", "batch", "--epochs", "2",
                          "--batch-size", "2", "--backend", "numpy", "--no-progress", "--out", path)
    assert code == 0, err


@pytest.mark.parametrize(("argv", "match"), [(["--dropout", "1"], "must be in [0, 1)"),
                                             (["--norm", "group"], "invalid choice: 'group'")])
def test_cli_refuses_bad_flags(tmp_path, capsys, argv, match):
    code, out, err = _run(capsys, "train", *argv, "--out", tmp_path / "m.npz")
    assert code == 2 and match in err and not (tmp_path / "m.npz").exists()


def _blobs(n=80, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.standard_normal((n, 4)) + 2.0 * y[:, None], y


def test_estimators_take_dropout():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    from nnbackprop.sklearn import MLPClassifier, MLPRegressor

    X, y = _blobs()
    clf = MLPClassifier(hidden_layer_sizes=(16,), dropout=0.2, max_iter=80, learning_rate_init=0.01,
                        random_state=0)
    with pytest.warns(ConvergenceWarning):  # dropout keeps the loss noisy: no plateau in 80 epochs
        clf.fit(X, y)
    assert [type(la).__name__ for la in clf.model_.layers] == ["Dense", "Dropout", "Dense"]
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)] and len(clf.intercepts_) == 2
    assert clf.score(X, y) > 0.9
    assert clone(clf).get_params()["dropout"] == 0.2
    # pickling keeps the generator: the next training forward draws the same masks
    again = pickle.loads(pickle.dumps(clf))
    Xm = clf.model_.xp.asarray(X, dtype=clf.model_.dtype)
    np.testing.assert_array_equal(clf.model_.forward(Xm, training=True), again.model_.forward(Xm, training=True))
    with pytest.warns(ConvergenceWarning):
        plain = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y.astype(float))
    assert [type(la).__name__ for la in plain.model_.layers] == ["Dense", "Dense"]
    with pytest.raises(ValueError, match="The 'dropout' parameter of MLPClassifier"):
        MLPClassifier(dropout=1.0).fit(X, y)
