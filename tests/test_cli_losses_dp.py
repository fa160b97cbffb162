"""The command line's --loss huber|l1|pinball --quantile and --dp-clip --dp-noise --dp-delta."""

import os

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def noisy(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (600, 2))
    y = X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(600) * 0.5
    np.savez(tmp_path / "noisy.npz", X=X, y=y)
    return tmp_path / "noisy.npz", X, y


def test_pinball_quantile_from_the_command_line(tmp_path, capsys, noisy):
    path, X, y = noisy
    code, out, err = run(capsys, "train", "--data", path, "--loss", "pinball", "--quantile", "0.9", "--hidden", "16",
                         "--lr", "0.01", "--epochs", "40", "--out", tmp_path / "q.npz", "--backend", "numpy",
                         "--no-progress")
    assert code == 0, err
    assert "pinball" in out
    model = nb.load(tmp_path / "q.npz")
    assert model.loss.name == "pinball" and model.loss.quantile == 0.9
    cover = float(np.mean(y <= model.predict(X.astype(np.float32))[:, 0]))
    assert 0.85 <= cover <= 0.95


@pytest.mark.parametrize("loss", ["huber", "l1"])
def test_robust_losses_train_and_save(tmp_path, capsys, noisy, loss):
    path, _, _ = noisy
    code, out, err = run(capsys, "train", "--data", path, "--loss", loss, "--hidden", "8", "--epochs", "2",
                         "--out", tmp_path / "m.npz", "--backend", "numpy", "--no-progress")
    assert code == 0, err
    assert nb.load(tmp_path / "m.npz").loss.name == loss


def test_dp_sgd_reports_epsilon(tmp_path, capsys):
    pytest.importorskip("dp_accounting", reason="the 'dp' extra (dp-accounting) is not installed")
    pytest.importorskip("sklearn", reason="scikit-learn provides the iris set")
    code, out, err = run(capsys, "train", "--data", "iris", "--hidden", "8", "--epochs", "3", "--batch-size", "16",
                         "--dp-clip", "1.0", "--dp-noise", "1.1", "--dp-delta", "1e-5", "--out", tmp_path / "m.npz",
                         "--backend", "numpy", "--no-progress", "--lr", "0.01")
    assert code == 0, err
    line = [ln for ln in out.splitlines() if ln.startswith("DP-SGD:")]
    assert len(line) == 1 and "noise 1.1" in line[0] and "epsilon" in line[0] and "delta 1e-05" in line[0], out
    # the number itself: 114 training rows of iris's 150, 3 epochs of ceil(114 / 16) = 8 steps at q = 16 / 114;
    # between dp-accounting's PLD bound and 1.5 times it (the RDP bound is the looser of the two)
    import re

    import dp_accounting as dpa

    steps, eps = re.search(r"(\d+) steps, epsilon ([0-9.]+) at", line[0]).groups()
    assert int(steps) == 24, line[0]
    pld = dpa.pld.PLDAccountant()
    pld.compose(dpa.PoissonSampledDpEvent(16 / 114, dpa.GaussianDpEvent(1.1)), 24)
    assert pld.get_epsilon(1e-5) <= float(eps) <= 1.5 * pld.get_epsilon(1e-5), line[0]


@pytest.mark.parametrize("argv, match", [
    (["train", "--loss", "quantile"], "invalid choice"),
    (["train", "--loss", "pinball", "--quantile", "1.5"], "argument --quantile"),
    (["train", "--quantile", "0.5"], "only with --loss pinball"),
    (["train", "--dp-clip", "1.0"], "both --dp-clip and --dp-noise"),
    (["train", "--dp-clip", "0", "--dp-noise", "1"], "argument --dp-clip"),
    (["train", "--dp-clip", "1", "--dp-noise", "-1"], "argument --dp-noise"),
    (["train", "--dp-clip", "1", "--dp-noise", "1", "--dp-delta", "2"], "argument --dp-delta"),
])
def test_bad_flags_are_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and err.startswith("nnbackprop: error: ") and match in err, (status, err)
    assert os.listdir(tmp_path) == []


def test_dp_noise_is_not_seeded_by_the_recorded_seed(tmp_path, capsys, noisy):
    """--seed (weights, split, shuffling) is written into the checkpoint; noise drawn from it could
    be drawn again by anyone holding the checkpoint and subtracted, leaving no privacy. Two runs with
    the same --seed give the same weights without noise and different ones with it."""
    path, _, _ = noisy

    def weights(noise, name):
        code, out, err = run(capsys, "train", "--data", path, "--hidden", "4", "--epochs", "1", "--batch-size", "100",
                             "--dp-clip", "1.0", "--dp-noise", noise, "--out", tmp_path / name, "--backend", "numpy",
                             "--no-progress", "--seed", "3")
        assert code == 0, err
        return np.concatenate([np.ravel(p) for p in nb.load(tmp_path / name).parameters()])

    assert np.array_equal(weights("0", "a.npz"), weights("0", "b.npz"))
    assert not np.allclose(weights("1.0", "c.npz"), weights("1.0", "d.npz"))
