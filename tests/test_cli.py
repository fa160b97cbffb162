"""The ``nnbackprop`` command: train, evaluate and predict round trips, one-line
user errors, info and bench. Most tests call ``cli.main(argv)`` in-process."""

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnbackprop as nb
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
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 100, (80, 2))
    y = 3 * X[:, 0] - X[:, 1] + 1000.5
    np.savez(tmp_path / "r.npz", X=X, y=y)
    code, out, err = run(capsys, "train", "--data", tmp_path / "r.npz", "--hidden", "", "--lr", "0.05",
                         "--epochs", "200", "--out", tmp_path / "r_model.npz")
    assert code == 0, err and "regression" in out
    assert "test: MSE" in out and "MAE" in out
    model = nb.load(tmp_path / "r_model.npz")  # standardisation folded into the weights
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


def _write_csv(path, header, rows, bom=False):
    text = ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def test_a_class_per_row_is_refused_and_two_rows_per_class_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    ids = _write_csv(tmp_path / "ids.csv", ["x1", "x2", "name"],
                     [(a, b, f"id{i}") for i, (a, b) in enumerate(rng.standard_normal((30, 2)))])
    assert_user_error(capsys, "train", "--data", ids, "--out", tmp_path / "m.npz",
                      match="'name' has 30 classes in 30 rows: every class needs at least 2 rows")
    assert not (tmp_path / "m.npz").exists()
    pairs = _write_csv(tmp_path / "pairs.csv", ["x1", "x2", "k"],
                       [(a, b, f"c{i // 2}") for i, (a, b) in enumerate(rng.standard_normal((12, 2)))])
    code, out, err = run(capsys, "train", "--data", pairs, "--epochs", "2", "--out", tmp_path / "p.npz")
    assert code == 0 and err == "", err  # 6 classes of 2 rows: one of each held out
    assert "6 train / 6 test; 6 classes" in out


def test_numeric_target_with_missing_or_stray_cells_is_refused(tmp_path, capsys):
    rows = [(i, 2.5 * i + 0.1) for i in range(40)]
    rows[7], rows[20] = (7, ""), (20, "NA")
    gaps = _write_csv(tmp_path / "gaps.csv", ["a", "price"], rows)
    assert_user_error(capsys, "train", "--data", gaps, match="'price' has 2 missing value(s) (blank or NA) "
                      "at line 9, 22")
    rows[7], rows[20] = (7, 1.5), (20, "oops")
    stray = _write_csv(tmp_path / "stray.csv", ["a", "price"], rows)
    assert_user_error(capsys, "train", "--data", stray, match="holds numbers but also 'oops' (line 22)")


def _predict(capsys, model, data, *extra):
    code, out, err = run(capsys, "predict", model, data, *extra)
    assert code == 0, err
    return out.splitlines()[1:]


def test_predict_and_evaluate_match_columns_by_name(tmp_path, capsys, csv_data):
    path, X, label = csv_data
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", path, "--epochs", "40", "--lr", "0.01", "--out", model)[0] == 0
    expected = _predict(capsys, model, path)
    shuffled = _write_csv(tmp_path / "cab.csv", ["label", "c", "a", "b"],
                          [(lab, x[2], x[0], x[1]) for x, lab in zip(X, label)])
    assert _predict(capsys, model, shuffled) == expected
    positional = _write_csv(tmp_path / "pos.csv", ["a", "b", "c"], [(x[2], x[0], x[1]) for x in X])
    assert _predict(capsys, model, positional) != expected  # the same numbers, other names
    _, out, _ = run(capsys, "evaluate", model, "--data", path)
    _, again, _ = run(capsys, "evaluate", model, "--data", shuffled)
    assert out.splitlines()[-1].split(":")[1] == again.splitlines()[-1].split(":")[1]
    renamed = _write_csv(tmp_path / "abz.csv", ["a", "b", "z"], X)
    assert_user_error(capsys, "predict", model, renamed, match="missing 'c'; unexpected 'z'")
    assert_user_error(capsys, "evaluate", model, "--data", renamed, "--target", "b", match="missing 'b', 'c'")


def test_evaluate_split_test_uses_the_training_split(tmp_path, capsys):
    model = tmp_path / "iris.npz"
    code, out, err = run(capsys, "train", "--data", "iris", "--seed", "3", "--epochs", "5", "--out", model)
    assert code == 0, err
    test_line = next(ln for ln in out.splitlines() if ln.startswith("test:"))
    code, out, err = run(capsys, "evaluate", model, "--data", "iris", "--split", "test")
    assert code == 0, err
    assert out.splitlines()[-1] == "iris (test):" + test_line.split(":", 1)[1]


def test_evaluate_split_test_refuses_other_data_and_unrecorded_splits(tmp_path, capsys, csv_data):
    import nnbackprop as nb

    path, X, label = csv_data
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", path, "--epochs", "1", "--out", model)[0] == 0
    other = _write_csv(tmp_path / "other.csv", ["a", "b", "c", "label"],
                       [(x[0] + (i == 5), x[1], x[2], lab) for i, (x, lab) in enumerate(zip(X, label))])
    assert_user_error(capsys, "evaluate", model, "--data", other, "--split", "test",
                      match="other.csv is not the data this model was trained on")
    assert run(capsys, "evaluate", model, "--data", other)[0] == 0  # --split all is fine
    nb.Sequential([nb.Dense(2, 2)], seed=0).save(tmp_path / "py.npz")
    assert_user_error(capsys, "evaluate", tmp_path / "py.npz", "--data", "xor", "--split", "test",
                      match="does not record its train/test split")


def test_validation_rows_are_drawn_per_class(tmp_path, capsys, monkeypatch):
    from nnbackprop import training

    seen = {}
    real_fit = training.fit

    def spy(model, X, T, **kw):
        seen.update(X=X, T=T, val=kw["validation_data"])
        return real_fit(model, X, T, **kw)

    monkeypatch.setattr(training, "fit", spy)
    code, out, err = run(capsys, "train", "--data", "iris", "--validation-split", "0.2", "--epochs", "2",
                         "--out", tmp_path / "m.npz")
    assert code == 0, err
    t_fit, t_val = np.asarray(seen["T"]), np.asarray(seen["val"][1])
    # iris is sorted by class, 50 rows each: 12 of each held out for test, 8 of the other 38 for validation
    assert np.bincount(t_val).tolist() == [8, 8, 8] and np.bincount(t_fit).tolist() == [30, 30, 30]
    assert "90 train / 24 validation / 36 test" in out
    rows = {tuple(r) for r in np.asarray(seen["X"]).round(6)}
    assert not rows & {tuple(r) for r in np.asarray(seen["val"][0]).round(6)}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoints_get_the_mode_of_a_plain_open(tmp_path, capsys, umask):
    import nnbackprop as nb

    old = os.umask(umask)
    try:
        assert run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "m.npz")[0] == 0
        nb.Sequential([nb.Dense(2, 2)], seed=0).save(tmp_path / "py.npz")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    want = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert want == 0o666 & ~umask
    for name in ("m.npz", "py.npz"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == want
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "plain", "py.npz"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from nnbackprop.checkpoint import atomic_write

    path = tmp_path / "m.npz"
    path.write_bytes(b"old")

    def half(f):
        f.write(b"new, half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, half)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError) as info:  # os.replace fails: the error names our path
        atomic_write(tmp_path / "d.npz", lambda f: f.write(b"x"))
    assert info.value.filename == str(tmp_path / "d.npz")
    assert sorted(os.listdir(tmp_path)) == ["d.npz", "m.npz"]


@pytest.mark.parametrize("argv, match", [
    (["train", "--lr", "0"], "argument --lr: must be a positive number, got 0"),
    (["train", "--lr=-1e-3"], "argument --lr: must be a positive number"),
    (["train", "--lr", "nan"], "argument --lr"),
    (["train", "--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    (["train", "--validation-split", "1"], "argument --validation-split: must be in [0, 1)"),
    (["evaluate", "m.npz", "--data", "xor", "--seed", "1"], "unrecognized arguments: --seed 1"),
    (["bench", "--dtype", "float128"], "argument --dtype: invalid choice: 'float128'"),
    (["bench", "--steps", "0"], "argument --steps"),
    (["train", "--plot", "curve.xyz"], "argument --plot: curve.xyz: matplotlib cannot write .xyz"),
    (["train", "--plot", "curve"], "argument --plot: curve: no suffix"),
    (["train", "--out", "d.npz"], "argument --out: d.npz is a directory"),
    (["train", "--out", "f.txt/m.npz"], "f.txt is not a directory"),
    (["train", "--plot", "f.txt/c.png"], "argument --plot: cannot write f.txt/c.png"),
    (["predict", "m.npz", "x.csv", "--out", "d.npz"], "argument --out: d.npz is a directory"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "f.txt").write_text("a file")
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and err.splitlines() == [err.strip()], (status, out, err)
    assert err.startswith("nnbackprop: error: ") and match in err, err
    assert sorted(os.listdir(tmp_path)) == ["d.npz", "f.txt"]


def test_outputs_make_missing_directories_and_plots_take_the_suffix_format(tmp_path, capsys, csv_data):
    path, _, _ = csv_data
    model, curve = tmp_path / "runs" / "a" / "m.npz", tmp_path / "plots" / "curve.jpg"
    code, out, err = run(capsys, "train", "--data", path, "--epochs", "2", "--out", model, "--plot", curve)
    assert code == 0, err
    assert model.is_file() and curve.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG
    preds = tmp_path / "preds" / "p.csv"
    assert run(capsys, "predict", model, path, "--out", preds)[0] == 0
    assert len(preds.read_text().splitlines()) == 61
    (tmp_path / "dir.csv").mkdir()
    assert_user_error(capsys, "predict", model, tmp_path / "dir.csv", match="dir.csv: is a directory")


def test_predictions_are_quoted_csv_and_a_bom_is_not_part_of_a_name(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    label = np.where(X[:, 0] > 0, "yes", "no, never")
    data = _write_csv(tmp_path / "excel.csv", ["answer", "a", "b"],
                      [(f'"{lab}"', a, b) for lab, (a, b) in zip(label, X)], bom=True)
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", data, "--target", "answer", "--epochs", "30",
                         "--lr", "0.01", "--out", model)
    assert code == 0, err
    preds = tmp_path / "p.csv"
    assert run(capsys, "predict", model, data, "--out", preds)[0] == 0
    with open(preds, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction"] and all(len(r) == 1 for r in rows)
    got = np.array([r[0] for r in rows[1:]])
    assert set(got) <= {"yes", "no, never"} and np.mean(got == label) > 0.9


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "nnbackprop", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    with proc:
        proc.stdout.close()  # the reader is gone before the first line
        err = proc.stderr.read().decode()
    assert proc.returncode in (0, 141) and err == ""  # 141 = 128 + SIGPIPE, as a shell reports


def test_default_train_is_the_issue_s_main_job(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "--no-progress")
    assert code == 0, err
    assert "digits" in out and "64-128-64-10 relu" in out and "batch 64" in out
    test_line = next(ln for ln in out.splitlines() if ln.startswith("test:"))
    assert float(test_line.split()[2]) >= 0.95 and (tmp_path / "model.npz").is_file()
