"""The ``nnbackprop`` command: train, evaluate and predict round trips, one-line
user errors, info and bench. Most tests call ``cli.main(argv)`` in-process."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnbackprop import cli

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, *argv, match, code=None):
    status, out, err = run(capsys, *argv)
    assert status != 0 and (code is None or status == code), (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnbackprop: error: "), err
    assert "Traceback" not in err + out
    assert match in lines[0], lines[0]


@pytest.fixture
def csv_data(tmp_path):
    """60 rows, features a, b, c and a text class column ``label``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{x[0]},{x[1]},{x[2]},{lab}\n" for x, lab in zip(X, label)))
    return path, X, label


def test_train_xor_saves_a_checkpoint_and_reports(tmp_path, capsys):
    out_path = tmp_path / "xor.npz"
    code, out, err = run(capsys, "train", "--data", "xor", "--hidden", "8", "--activation", "tanh",
                         "--lr", "0.05", "--epochs", "300", "--batch-size", "4", "--out", out_path,
                         "--backend", "numpy")
    assert code == 0, err
    assert "backend: numpy" in out and "test: accuracy 1.0000" in out
    assert out_path.exists()
    code, out, err = run(capsys, "evaluate", out_path, "--data", "xor")
    assert code == 0 and "accuracy 1.0000" in out


def test_backend_auto_says_what_it_picked(tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "m.npz")
    assert code == 0 and "backend: " in out and "(auto: " in out


def test_csv_train_evaluate_predict_round_trip(tmp_path, capsys, csv_data):
    path, X, label = csv_data
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", path, "--epochs", "40", "--lr", "0.01",
                         "--hidden", "16", "--out", model, "--plot", tmp_path / "curve.png")
    assert code == 0, err
    assert "2 classes" in out and (tmp_path / "curve.png").stat().st_size > 0
    test_line = next(ln for ln in out.splitlines() if ln.startswith("test:"))
    code, out, _ = run(capsys, "evaluate", model, "--data", path, "--split", "test")
    assert code == 0 and out.splitlines()[-1].split(":", 1)[1].split("(")[0] == \
        test_line.split(":", 1)[1].split("(")[0]  # the same held-out rows, the same scores
    preds = tmp_path / "p.csv"
    code, out, err = run(capsys, "predict", model, path, "--out", preds)  # label column is dropped
    assert code == 0, err
    lines = preds.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 61 and set(lines[1:]) <= {"yes", "no"}
    assert np.mean(np.array(lines[1:]) == label) > 0.8
    np.savez(tmp_path / "x.npz", X=X[:5])
    code, out, _ = run(capsys, "predict", model, tmp_path / "x.npz")
    assert code == 0 and out.splitlines()[1:] == lines[1:6]


def test_regression_reports_mse_and_checkpoint_takes_raw_features(tmp_path, capsys):
    import nnbackprop.checkpoint as ckpt

    rng = np.random.default_rng(1)
    X = rng.uniform(0, 100, (80, 2))
    y = 3 * X[:, 0] - X[:, 1] + 1000.5
    np.savez(tmp_path / "r.npz", X=X, y=y)
    code, out, err = run(capsys, "train", "--data", tmp_path / "r.npz", "--hidden", "", "--lr", "0.05",
                         "--epochs", "200", "--out", tmp_path / "r_model.npz")
    assert code == 0, err and "regression" in out
    assert "test: MSE" in out and "MAE" in out
    model = ckpt.load(tmp_path / "r_model.npz")  # standardisation folded into the weights
    pred = model.predict(X.astype(np.float32))[:, 0]
    assert np.max(np.abs(pred - y)) < 5.0


@pytest.mark.parametrize("argv, match", [
    (["train", "--data", "missing.csv"], "missing.csv: no such file"),
    (["train", "--data", "data.txt"], "--data must be one of"),
    (["train", "--optimizer", "nope", "--data", "xor"], "unknown optimizer 'nope'"),
    (["train", "--activation", "nope", "--data", "xor"], "unknown activation 'nope'"),
    (["train", "--epochs", "zero"], "invalid int value"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--backend", "jax"], "invalid choice"),
    (["train", "--hidden", "8,x", "--data", "xor"], "--hidden"),
    (["train", "--out", "model.pkl"], ".npz"),
    (["evaluate", "nothere.npz", "--data", "xor"], "no such checkpoint file"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_user_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    assert_user_error(capsys, *argv, match=match)


def test_data_errors_are_one_line(tmp_path, capsys, csv_data):
    path, X, _ = csv_data
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    assert_user_error(capsys, "train", "--data", ragged, match="line 3 has 1 fields")
    text = tmp_path / "text.csv"
    text.write_text("a,b\n1,x\n2,3\n")
    assert_user_error(capsys, "train", "--data", text, "--target", "a", match="non-numeric value 'x'")
    assert_user_error(capsys, "train", "--data", path, "--target", "zz", match="no column 'zz'")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_user_error(capsys, "train", "--data", empty, match="header row")
    bad_npz = tmp_path / "bad.npz"
    bad_npz.write_bytes(b"not a zip")
    assert_user_error(capsys, "train", "--data", bad_npz, match="not a readable .npz")
    assert_user_error(capsys, "evaluate", path, "--data", "xor", match="not a readable checkpoint")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", path, "--epochs", "1", "--out", model)[0] == 0
    np.savez(tmp_path / "wide.npz", X=np.ones((3, 5)))
    assert_user_error(capsys, "predict", model, tmp_path / "wide.npz",
                      match="5 feature columns but the model expects 3")
    other = tmp_path / "other.csv"
    other.write_text("a,b,c,label\n1,2,3,maybe\n")
    assert_user_error(capsys, "evaluate", model, "--data", other, match="never saw")


def test_info_and_bench(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0 and "nnbackprop 0.1.0" in out and "numpy" in out and "--backend auto picks" in out
    code, out, _ = run(capsys, "bench", "--batch-size", "16", "--hidden", "8", "--steps", "2")
    assert code == 0 and "numpy" in out and "ms/step" in out


def test_python_dash_m_entry_point(tmp_path):
    res = subprocess.run([sys.executable, "-m", "nnbackprop", "train", "--data", str(tmp_path / "no.csv")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"nnbackprop: error: {tmp_path / 'no.csv'}: no such file"]
    res = subprocess.run([sys.executable, "-m", "nnbackprop", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0 and "train" in res.stdout
