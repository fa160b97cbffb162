"""Hostile files, interrupted runs and big data (issue 11): nothing a user has is lost,
nothing a file says is trusted.

Every crafted file is made here, by the test that uses it; the kill loop and the memory
probes are bounded in count, size and time (the whole module runs in well under a minute).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import _atomic, cli, datasets, training
from nnbackprop import _cli_model as cm

ROOT = Path(__file__).resolve().parents[1]


# --- crafting files ------------------------------------------------------------------------------

def _npy(a) -> bytes:
    """The .npy bytes of ``a`` (no pickle)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _npy_header(shape, descr="<f8") -> bytes:
    """A bare .npy header declaring ``shape`` of ``descr`` (no data after it)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _config(layers, optimizer=None, dtype="float64", loss=None):
    return {"format": 1, "model": {"layers": layers}, "dtype": dtype, "optimizer": optimizer, "loss": loss}


def _dense(n_in, n_out):
    return {"type": "Dense", "n_in": n_in, "n_out": n_out, "activation": "identity", "init": None}


def _craft(path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    """A zip at ``path`` with ``members`` {name without .npy: bytes or array or config dict}."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, v in members.items():
            if isinstance(v, dict):
                v = np.asarray(json.dumps(v))
            zf.writestr(name + ".npy", v if isinstance(v, bytes) else _npy(v))
    return Path(path)


def _checkpoint(path, config, **arrays) -> Path:
    members = {"__nnbackprop__": np.asarray("nnbackprop-checkpoint/1"), "config": config}
    members.update({k.replace("__", "/").replace("_dot_", "."): v for k, v in arrays.items()})
    return _craft(path, members)


def _patch_central(path, member: str, **fields) -> None:
    """Overwrite fields of ``member``'s central-directory record (what zipfile trusts):
    flags, method, compress_size, file_size."""
    offsets = {"flags": (8, "<H"), "method": (10, "<H"), "compress_size": (20, "<I"), "file_size": (24, "<I")}
    data = bytearray(Path(path).read_bytes())
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + n].decode() == member + ".npy":
            break
        at += 4
    for k, v in fields.items():
        off, fmt = offsets[k]
        struct.pack_into(fmt, data, at + off, v)
    Path(path).write_bytes(bytes(data))


@pytest.fixture
def good(tmp_path):
    """A checkpoint of a 2 -> 3 -> 2 float64 model trained 2 epochs with Adam, and its arrays."""
    model = nb.Sequential([nb.Dense(2, 3, "relu"), nb.Dense(3, 2)], dtype="float64", seed=0)
    X, y = np.random.default_rng(0).standard_normal((8, 2)), np.array([0, 1] * 4)
    model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=2, progress=False, seed=1)
    path = model.save(tmp_path / "good.npz")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return path, arrays, model


def _rewrite(tmp_path, arrays, name="bad", drop=(), **changes) -> Path:
    members = {k: v for k, v in arrays.items() if k not in drop}
    members.update(changes)
    return _craft(tmp_path / f"{name}.npz", members)


def _peak_during(fn):
    """(result or exception, peak bytes Python allocated while fn ran)."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - the caller asserts on it
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- 1. checkpoints never trusted before checked ------------------------------------------------

def test_a_huge_declared_layer_without_weights_is_refused_with_bounded_memory(tmp_path):
    path = _checkpoint(tmp_path / "tiny.npz", _config([_dense(30000, 30000)]))
    assert path.stat().st_size < 2000
    err, peak = _peak_during(lambda: nb.load(path))
    assert isinstance(err, nb.CheckpointError), err
    assert "tiny.npz" in str(err) and "parameter 0.W is missing" in str(err)
    assert peak < 4 << 20, peak  # before: 7.2 GB of initial weights drawn first


def test_a_member_whose_header_declares_more_than_it_holds_is_refused_before_allocating(tmp_path):
    path = _checkpoint(tmp_path / "liar.npz", _config([_dense(30000, 30000)]),
                       param__0_dot_W=_npy_header((30000, 30000)) + b"\0" * 64,
                       param__0_dot_b=np.zeros(30000))
    err, peak = _peak_during(lambda: nb.load(path))
    assert isinstance(err, nb.CheckpointError) and "liar.npz" in str(err), err
    assert "'param/0.W' is" in str(err) and "header declares" in str(err)
    assert peak < 4 << 20, peak


def test_the_total_size_limit_is_checked_before_reading(good, tmp_path):
    path, _, _ = good
    with pytest.raises(nb.CheckpointError, match=r"good\.npz: its arrays declare \d+ bytes, more than the "
                                                 r"limit of 100"):
        nb.load(path, max_bytes=100)
    assert nb.load(path, max_bytes=10_000) is not None


def test_a_highly_compressed_extra_member_is_never_inflated(good, tmp_path):
    _, arrays, model = good
    path = tmp_path / "bomb.npz"
    _craft(path, arrays)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open("zeros.npy", "w", force_zip64=True) as f:
        f.write(_npy_header((64 << 20,), "|u1"))
        chunk = bytes(1 << 20)
        for _ in range(64):
            f.write(chunk)
    assert path.stat().st_size < 1 << 20  # 64 MiB inside 1 MiB (before: inflated on load)
    loaded, peak = _peak_during(lambda: nb.load(path))
    assert isinstance(loaded, nb.Sequential), loaded
    assert peak < 4 << 20, peak
    for a, b in zip(loaded.parameters(), model.parameters()):
        np.testing.assert_array_equal(a, b)


def test_a_member_that_claims_more_than_deflate_can_give_is_refused(good, tmp_path):
    _, arrays, _ = good
    path = _craft(tmp_path / "ratio.npz", arrays, compression=zipfile.ZIP_DEFLATED)
    _patch_central(path, "param/0.W", file_size=3 << 30)
    err, peak = _peak_during(lambda: nb.load(path))
    assert isinstance(err, nb.CheckpointError) and "ratio.npz" in str(err), err
    assert "'param/0.W' declares 3221225472 bytes" in str(err)
    assert peak < 4 << 20


@pytest.mark.parametrize("fields, match", [
    (dict(method=12), r"'param/0\.W' uses zip compression method 12"),     # bzip2: known to zipfile, not to us
    (dict(method=99), r"'param/0\.W' uses zip compression method 99"),     # AES: NotImplementedError before
    (dict(flags=1), r"'param/0\.W' is encrypted"),
])
def test_unknown_compression_and_encryption_are_checkpoint_errors(good, tmp_path, fields, match):
    _, arrays, _ = good
    path = _craft(tmp_path / "zip.npz", arrays)
    _patch_central(path, "param/0.W", **fields)
    with pytest.raises(nb.CheckpointError, match=r"zip\.npz: .*" + match):
        nb.load(path)


def _cfg(arrays):
    return json.loads(str(arrays["config"]))


def _edit(arrays, *keys, value):
    cfg = _cfg(arrays)
    d = cfg
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value
    return np.asarray(json.dumps(cfg))


BAD_FIELDS = {  # what is changed: (keys, value, what the message names)
    "model not a dict": (("model",), "x", r"config\.model is str"),
    "layers not a list": (("model", "layers"), {"a": 1}, r"config\.model\.layers is dict"),
    "optimizer a number": (("optimizer",), 5, r"config\.optimizer is int"),
    "optimizer name a number": (("optimizer", "name"), 3, r"config\.optimizer\.name is int"),
    "optimizer config a list": (("optimizer", "config"), [], r"config\.optimizer\.config is list"),
    "slots a list": (("optimizer", "slots"), [1], r"config\.optimizer\.slots is list"),
    "slot count text": (("optimizer", "slots", "m"), "4", r"config\.optimizer\.slots\.m is str"),
    "slot count a bool": (("optimizer", "slots", "m"), True, r"config\.optimizer\.slots\.m is bool"),
    "negative t": (("optimizer", "t"), -1, r"t must be an integer >= 0"),
    "t a float": (("optimizer", "t"), 2.5, r"t must be an integer >= 0"),
    "loss a number": (("loss",), 5, r"config\.loss is int"),
    "format text": (("format",), "1", r"config\.format is str"),
    "fit_state a list": (("optimizer", "fit_state"), [1], r"config\.optimizer\.fit_state is list"),
    "n_in a float": (("model", "layers", 0, "n_in"), 1e30, r"damaged architecture .*n_in must be a positive integer"),
    "n_in negative": (("model", "layers", 0, "n_in"), -5, r"damaged architecture"),
    "n_in huge": (("model", "layers", 0, "n_in"), 10 ** 30, r"parameter 0\.W has shape"),
    "layers do not chain": (("model", "layers", 1, "n_in"), 7, r"damaged architecture .*layer 0 gives 3 outputs"),
    "layer a list": (("model", "layers", 0), [1, 2], r"damaged architecture"),
    "layer type a list": (("model", "layers", 0, "type"), ["Dense"], r"damaged architecture"),
    "dtype a list": (("dtype",), ["float32"], r"dtype \['float32'\]"),
    "unknown slot name": (("optimizer", "slots"), {"q": 4, "v": 4}, r"adam needs slots \['m', 'v'\]"),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_wrong_types_in_every_metadata_field_are_checkpoint_errors(good, tmp_path, case):
    _, arrays, _ = good
    keys, value, match = BAD_FIELDS[case]
    path = _rewrite(tmp_path, arrays, config=_edit(arrays, *keys, value=value))
    with pytest.raises(nb.CheckpointError, match=r"bad\.npz: .*" + match):
        nb.load(path)


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, r"config is nested too deeply"),
    ('{"model": {"layers": ' + "[" * 80 + "]" * 80 + "}}", r"config is nested deeper than 64 levels"),
    ("x" * ((4 << 20) + 1), r"'config' declares 4194305 characters, at most 4194304"),
])
def test_deep_or_huge_json_configs_are_checkpoint_errors(good, tmp_path, text, match):
    _, arrays, _ = good
    path = _rewrite(tmp_path, arrays, config=np.asarray(text))
    with pytest.raises(nb.CheckpointError, match=r"bad\.npz: .*" + match):
        nb.load(path)


@pytest.mark.parametrize("member, value, match", [
    ("__nnbackprop__", np.asarray(7), r"'__nnbackprop__' is a int64 array of shape \(\), expected one text value"),
    ("config", np.asarray(["{}", "{}"]), r"'config' is a <U2 array of shape \(2,\)"),
    ("param/0.W", np.zeros((2, 3), dtype=[("a", "<f8")]), r"'param/0\.W' holds \[\('a', '<f8'\)\] values"),
    ("param/0.W", np.zeros((2, 3), dtype=">f8"), r"'param/0\.W' holds >f8 values"),
    ("param/0.W", np.zeros((2, 3), dtype=np.complex128), r"parameter 0\.W holds complex128 values"),
    ("param/0.W", _npy_header((2, 3), "|O") + b"\0" * 48, r"'param/0\.W' holds object values"),
    ("param/0.W", b"\x93NUMPY\x01\x00" + b"\xff\xff" + b"{" * 100, r"'param/0\.W' has no valid \.npy header"),
    ("param/0.W", b"\x93NUMPY\x03\x00" + b"\x00" * 20, r"'param/0\.W' has no valid \.npy header"),
    ("param/0.W", _npy(np.zeros((2, 3)))[:-8], r"'param/0\.W' is 168 bytes but its header declares 128 \+ 48"),
])
def test_members_of_the_wrong_kind_are_checkpoint_errors(good, tmp_path, member, value, match):
    _, arrays, _ = good
    path = _rewrite(tmp_path, arrays, **{member: value})
    with pytest.raises(nb.CheckpointError, match=r"bad\.npz: .*" + match):
        nb.load(path)


def test_a_duplicated_member_is_refused(good, tmp_path):
    _, arrays, _ = good
    path = _craft(tmp_path / "dup.npz", arrays)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("param/0.W.npy", _npy(np.ones((2, 3))))
    with pytest.raises(nb.CheckpointError, match=r"dup\.npz: .*'param/0\.W' appears twice"):
        nb.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_unless_opted_in(tmp_path, bad):
    model = nb.Sequential([nb.Dense(2, 2)], dtype="float64", seed=0)
    W, b = (np.array(p) for p in model.parameters())
    W[1, 0] = bad
    model.set_parameters([W, b])
    path = model.save(tmp_path / "nan.npz")
    with pytest.raises(nb.CheckpointError, match=r"nan\.npz: parameter 0\.W holds NaN or infinite values"):
        nb.load(path)
    loaded = nb.load(path, allow_nonfinite=True)
    np.testing.assert_array_equal(loaded.parameters()[0], W)


def test_a_malformed_checkpoint_is_one_line_in_the_cli_never_internal_error(good, tmp_path, capsys):
    _, arrays, _ = good
    rows = tmp_path / "rows.csv"
    rows.write_text("x0,x1\n1,2\n")
    cases = [_rewrite(tmp_path, arrays, "nest", config=np.asarray("[" * 50_000 + "]" * 50_000)),
             _rewrite(tmp_path, arrays, "types", config=_edit(arrays, "optimizer", "slots", value=[])),
             _rewrite(tmp_path, arrays, "meta", cli_meta=np.asarray(json.dumps({"classes": 5}))),
             _rewrite(tmp_path, arrays, "meta2", cli_meta=np.asarray(json.dumps({"features": [1, 2]}))),
             _rewrite(tmp_path, arrays, "meta3", cli_meta=np.asarray(json.dumps({"split": {"seed": "x"}}))),
             _rewrite(tmp_path, arrays, "meta4", cli_meta=np.asarray("[" * 50_000 + "]" * 50_000))]
    for path in cases:
        status = cli.main(["predict", str(path), str(rows), "--backend", "numpy"])
        out, err = capsys.readouterr()
        assert status == 1, (path, err)
        assert err.startswith(f"nnbackprop: error: {path}") and err.count("\n") == 1, err
        assert "internal error" not in err and "Traceback" not in err
    with pytest.raises(nb.CheckpointError, match=r"meta\.npz: damaged cli_meta\.classes"):
        cm.read_meta(tmp_path / "meta.npz")
    with pytest.raises(nb.CheckpointError, match=r"meta2\.npz: damaged cli_meta\.features"):
        cm.read_meta(tmp_path / "meta2.npz")
    with pytest.raises(nb.CheckpointError, match=r"meta3\.npz: damaged cli_meta\.split\.seed"):
        cm.read_meta(tmp_path / "meta3.npz")


# --- 2. atomic, tidy, faithful saves -------------------------------------------------------------

_SAVER = """
import sys, numpy as np, nnbackprop as nb
path = sys.argv[1]
models = [nb.Sequential([nb.Dense(200, 400), nb.Dense(400, 200)], dtype="float64", seed=s) for s in (1, 2)]
print("ready", flush=True)
i = 0
while True:
    models[i % 2].save(path)
    i += 1
"""


def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_file_and_no_pile_of_temporaries(tmp_path):
    path = tmp_path / "m.npz"
    expected = [nb.Sequential([nb.Dense(200, 400), nb.Dense(400, 200)], dtype="float64", seed=s)
                for s in (1, 2)]
    expected[0].save(path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = np.random.default_rng(0)
    stray_seen, deadline = 0, time.monotonic() + 60
    for _ in range(6):  # six kills, each at a random moment of a save loop
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], env=env, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        loaded = nb.load(path)  # whole: one of the two models, never a mix or a torn file
        assert any(all(np.array_equal(a, b) for a, b in zip(loaded.parameters(), m.parameters()))
                   for m in expected)
        stray_seen += len([n for n in os.listdir(tmp_path) if n.endswith(".tmp")])
        assert time.monotonic() < deadline
    expected[1].save(path)  # the next save removes what killed saves left
    assert sorted(os.listdir(tmp_path)) == ["m.npz"], (stray_seen, os.listdir(tmp_path))


def test_stale_temporaries_go_but_a_live_writers_stays(tmp_path):
    path = tmp_path / "m.npz"
    stale = tmp_path / ".m.npz.0123abcd.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".other.npz.0123abcd.tmp"  # another file's: not ours to remove
    other.write_bytes(b"x")
    fd, live = _atomic._new_temp(path)  # a writer that is still running holds its lock
    try:
        _atomic.atomic_write(path, lambda f: f.write(b"new"))
        assert path.read_bytes() == b"new" and not stale.exists() and live.exists() and other.exists()
    finally:
        os.close(fd)
    _atomic.atomic_write(path, lambda f: f.write(b"newer"))
    assert not live.exists() and other.exists()


def test_saving_over_a_file_keeps_its_permission_bits(tmp_path):
    model = nb.Sequential([nb.Dense(2, 2)], seed=0)
    path = model.save(tmp_path / "m.npz")
    os.chmod(path, 0o600)
    model.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o640)
    cli_out = tmp_path / "cli.npz"
    cm.save(model, cli_out, {"task": "regression"})
    os.chmod(cli_out, 0o604)
    cm.save(model, cli_out, {"task": "regression"})
    assert stat.S_IMODE(os.stat(cli_out).st_mode) == 0o604
    umask = os.umask(0)
    os.umask(umask)
    new = model.save(tmp_path / "new.npz")
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o666 & ~umask


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    model = nb.Sequential([nb.Dense(2, 2)], dtype="float64", seed=0)
    real = tmp_path / "store" / "real.npz"
    real.parent.mkdir()
    nb.Sequential([nb.Dense(2, 2)], dtype="float64", seed=5).save(real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(nb.load(real).parameters()[0], model.parameters()[0])
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "store"]
    assert os.listdir(real.parent) == ["real.npz"]
    dangling = tmp_path / "dangling.npz"  # a link to a file not made yet: made there, as open() would
    dangling.symlink_to(tmp_path / "store" / "later.npz")
    model.save(dangling)
    assert dangling.is_symlink() and (real.parent / "later.npz").is_file()


def test_a_name_at_the_length_limit_saves_whenever_open_could_make_it(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    model = nb.Sequential([nb.Dense(2, 2)], dtype="float64", seed=0)
    name = "m" * (limit - 4) + ".npz"
    with open(tmp_path / name, "wb"):
        pass
    model.save(tmp_path / name)
    np.testing.assert_array_equal(nb.load(tmp_path / name).parameters()[0], model.parameters()[0])
    assert sorted(os.listdir(tmp_path)) == [name]
    (tmp_path / name).unlink()
    model.save(tmp_path / name)  # a new file too
    too_long = "m" * (limit - 3) + ".npz"
    with pytest.raises(OSError) as plain:
        open(tmp_path / too_long, "wb")
    with pytest.raises(OSError) as ours:
        model.save(tmp_path / too_long)
    assert ours.value.errno == plain.value.errno and ours.value.filename == str(tmp_path / too_long)


def test_the_cli_writes_weights_and_metadata_in_one_atomic_write(tmp_path, capsys, monkeypatch):
    calls = []  # every rename onto a file: one per atomic write, whoever makes it
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b, **kw: calls.append(Path(b)) or real(a, b, **kw))
    out = tmp_path / "xor.npz"
    assert cli.main(["train", "--data", "xor", "--epochs", "2", "--out", str(out), "--backend", "numpy",
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert calls == [out]
    with zipfile.ZipFile(out) as zf:
        assert {"config.npy", "cli_meta.npy", "param/0.W.npy"} <= set(zf.namelist())
    assert cm.read_meta(out)["task"] == "classification"


# --- 3. outputs never overwrite inputs -----------------------------------------------------------

@pytest.fixture
def trained_cli(tmp_path, capsys):
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--data", str(data), "--epochs", "2", "--out", str(model), "--backend", "numpy",
                     "--no-progress"]) == 0
    capsys.readouterr()
    return data, model


def _refused(capsys, argv, match):
    status = cli.main([str(a) for a in argv])
    _, err = capsys.readouterr()
    assert status == 2 and err.startswith("nnbackprop: error: ") and match in err, (status, err)


def test_an_output_that_is_an_input_is_refused_before_any_work(trained_cli, tmp_path, capsys):
    data, model = trained_cli
    before = {p: p.read_bytes() for p in (data, model)}
    _refused(capsys, ["predict", model, data, "--out", data], "is the same file as")
    _refused(capsys, ["predict", model, data, "--out", model], "is the same file as")
    link = tmp_path / "link.npz"
    link.symlink_to(data)
    _refused(capsys, ["predict", model, data, "--out", link], "is the same file as")
    hard = tmp_path / "hard.npz"
    os.link(model, hard)
    _refused(capsys, ["predict", model, data, "--out", hard], "is the same file as")
    (tmp_path / "sub").mkdir()
    _refused(capsys, ["predict", model, data, "--out", tmp_path / "sub" / ".." / "d.npz"], "is the same file as")
    _refused(capsys, ["train", "--data", data, "--out", data, "--backend", "numpy"], "is the same file as")
    (tmp_path / "curve.png").symlink_to(data)
    _refused(capsys, ["train", "--data", data, "--out", tmp_path / "n.npz", "--plot", tmp_path / "curve.png"],
             "is the same file as")
    assert {p: p.read_bytes() for p in (data, model)} == before


def test_csv_predictions_are_safe_against_formula_injection(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    names = np.array(["=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "plain"])
    label = names[(X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)]
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n" + "".join(f"{x[0]},{x[1]},{lab}\n" for x, lab in zip(X, label)))
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--data", str(data), "--epochs", "30", "--lr", "0.05", "--out", str(model),
                     "--backend", "numpy", "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert cli.main(["predict", str(model), str(data), "--out", str(out), "--backend", "numpy"]) == 0
    cells = out.read_text().splitlines()[1:]
    assert cells and all(not c.lstrip('"').startswith(("=", "+", "-", "@")) for c in cells), cells[:5]
    assert {c.strip('"').lstrip("'") for c in cells} <= {n.replace('"', '""') for n in names} | set(names)
    assert cli._cell("-1.5") == "-1.5" and cli._cell("+3e5") == "+3e5"  # numbers stay numbers
    assert cli._cell("\tx") == "'\tx" and cli._cell("=1+1") == "'=1+1" and cli._cell("a=b") == "a=b"


# --- 4. interruption and resume ------------------------------------------------------------------

def _resume_data(be):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((37, 3))
    return be.asarray(X, "float64"), be.asarray((X[:, 0] + X[:, 2] > 0).astype(np.int64) + (X[:, 1] > 0))


def _resume_model(be):
    return nb.Sequential([nb.Dense(3, 8, "tanh"), nb.Dense(8, 3)], xp=be.xp, device=be.device,
                         dtype="float64", seed=2)


def _fit(model, X, y, epochs, optimizer, **kw):
    return model.fit(X, y, loss="softmax_cross_entropy", optimizer=optimizer, epochs=epochs, batch_size=5,
                     shuffle=True, seed=11, progress=False, **kw)


def _host_state(be, model):
    opt = model.optimizer
    return ([be.host(p).copy() for p in model.parameters()], opt.state.t,
            {k: [be.host(a).copy() for a in v] for k, v in opt.state.slots.items()})


def _same(a, b):
    (pa, ta, sa), (pb, tb, sb) = a, b
    return ta == tb and all(np.array_equal(x, y) for x, y in zip(pa, pb)) and sa.keys() == sb.keys() and \
        all(np.array_equal(x, y) for k in sa for x, y in zip(sa[k], sb[k]))


def test_training_in_parts_with_a_save_and_load_between_equals_training_straight_through(be, tmp_path):
    X, y = _resume_data(be)
    straight = _resume_model(be)
    _fit(straight, X, y, 5, nb.optim.Adam(1e-2))
    part = _resume_model(be)
    _fit(part, X, y, 2, nb.optim.Adam(1e-2))
    path = part.save(tmp_path / "mid.npz")
    again = nb.load(path, xp=be.xp, device=be.device)
    assert again.fit_state["epochs"] == 2 and again.fit_state["seed"] == 11
    _fit(again, X, y, 3, again.optimizer, resume=True)
    assert _same(_host_state(be, again), _host_state(be, straight))  # bit for bit, shuffled batches included
    fresh = nb.load(path, xp=be.xp, device=be.device)  # without resume: today's behaviour, orders start over
    _fit(fresh, X, y, 3, fresh.optimizer)
    assert not _same(_host_state(be, fresh), _host_state(be, straight))


def test_resume_refuses_another_run(be, tmp_path):
    X, y = _resume_data(be)
    model = _resume_model(be)
    with pytest.raises(ValueError, match="records no run to resume"):
        _fit(model, X, y, 1, nb.optim.Adam(1e-2), resume=True)
    _fit(model, X, y, 1, nb.optim.Adam(1e-2))
    with pytest.raises(ValueError, match="pass optimizer=model.optimizer"):
        _fit(model, X, y, 1, nb.optim.Adam(1e-2), resume=True)
    with pytest.raises(ValueError, match=r"on 20 rows in batches of 5, but the run had 37 rows"):
        _fit(model, X[:20, ...], y[:20, ...], 1, model.optimizer, resume=True)


class _Interrupting(nb.optim.Adam):
    """Adam that raises KeyboardInterrupt in the middle of its update number ``at``
    (after some of the rule's in-place operations have run): Ctrl-C mid-step."""

    def __init__(self, lr, at):
        super().__init__(lr)
        self.at, self.calls, self.ops = at, 0, 0

    def _rule(self, ax, xp, p, g, slots, lr, n):
        if n == self.at:
            self.calls += 1

        def counting(*args):
            out = ax(*args)
            if n == self.at:
                self.ops += 1
                if self.ops == 3:
                    raise KeyboardInterrupt
            return out
        return super()._rule(counting, xp, p, g, slots, lr, n)


def test_ctrl_c_mid_step_leaves_a_whole_state_and_fit_carries_on(be):
    X, y = _resume_data(be)
    batches = 8  # 37 rows in batches of 5
    one = _resume_model(be)
    _fit(one, X, y, 1, nb.optim.Adam(1e-2))
    straight = _resume_model(be)
    _fit(straight, X, y, 3, nb.optim.Adam(1e-2))

    model = _resume_model(be)
    opt = _Interrupting(1e-2, at=batches + 3)  # the 4th step of the 2nd epoch, part-way through its rule
    with pytest.raises(KeyboardInterrupt):
        _fit(model, X, y, 3, opt)
    assert opt.ops == 3  # it did stop part-way through an update
    assert _same(_host_state(be, model), _host_state(be, one))  # params, slots and t of a whole epoch
    assert model.fit_state["epochs"] == 1
    opt.at = None
    _fit(model, X, y, 2, model.optimizer, resume=True)
    assert _same(_host_state(be, model), _host_state(be, straight))


_TRAINER = """
import sys, numpy as np, nnbackprop as nb
rng = np.random.default_rng(3)
X = rng.standard_normal((600, 8)); y = (X[:, 0] > 0).astype(np.int64)
model = nb.Sequential([nb.Dense(8, 64, "tanh"), nb.Dense(64, 2)], dtype="float64", seed=2)
print("ready", flush=True)
try:
    model.fit(X, y, loss="softmax_cross_entropy", optimizer=nb.optim.Adam(1e-3), epochs=100000, batch_size=4,
              seed=5, progress=False)
except KeyboardInterrupt:
    model.save(sys.argv[1])
    print("saved", model.fit_state["epochs"], flush=True)
"""


def test_a_real_ctrl_c_leaves_a_checkpoint_that_resumes_exactly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = np.random.default_rng(1)
    rng_X = np.random.default_rng(3)
    X = rng_X.standard_normal((600, 8))
    y = (X[:, 0] > 0).astype(np.int64)
    for i in range(2):  # two interrupts at random moments, each bounded in time
        path = tmp_path / f"run{i}.npz"
        proc = subprocess.Popen([sys.executable, "-c", _TRAINER, str(path)], env=env, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.3, 1.0))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.startswith(b"saved"), out
        epochs = int(out.split()[1])
        assert epochs >= 1  # an epoch takes milliseconds; the interrupt came after 0.3 s at least
        saved = nb.load(path)
        straight = nb.Sequential([nb.Dense(8, 64, "tanh"), nb.Dense(64, 2)], dtype="float64", seed=2)
        straight.fit(X, y, loss="softmax_cross_entropy", optimizer=nb.optim.Adam(1e-3), epochs=epochs,
                     batch_size=4, seed=5, progress=False)
        assert saved.optimizer.state.t == straight.optimizer.state.t == epochs * 150
        for a, b in zip(saved.parameters(), straight.parameters()):  # a whole epoch's weights, not a torn step
            np.testing.assert_array_equal(a, b)
        saved.fit(X, y, loss="softmax_cross_entropy", optimizer=saved.optimizer, epochs=1, batch_size=4,
                  progress=False, resume=True)
        straight.fit(X, y, loss="softmax_cross_entropy", optimizer=straight.optimizer, epochs=1, batch_size=4,
                     progress=False, resume=True)
        for a, b in zip(saved.parameters(), straight.parameters()):
            np.testing.assert_array_equal(a, b)


# --- 5. arrays that carry autograd ----------------------------------------------------------------

def _autograd(be, a):
    x = be.asarray(a, "float64")
    if not hasattr(x, "requires_grad_"):
        pytest.skip(f"arrays of {be.name} carry no autograd flag")
    return x.requires_grad_(True)


def test_arrays_that_require_grad_are_refused_before_any_change(be):
    X = np.random.default_rng(0).standard_normal((8, 2))
    y = be.asarray(np.array([0, 1] * 4))
    model = nb.Sequential([nb.Dense(2, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = [be.host(p).copy() for p in model.parameters()]
    Xg = _autograd(be, X)
    for call in (lambda: model.fit(Xg, y, loss="softmax_cross_entropy", optimizer="sgd", progress=False),
                 lambda: model.predict(Xg), lambda: model.evaluate(Xg, y),
                 lambda: model.train_step(Xg, y, nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD()),
                 lambda: model.set_parameters([_autograd(be, b) for b in before])):
        with pytest.raises(TypeError, match=r"requires grad .*detach\(\)"):
            call()
    assert all(np.array_equal(be.host(p), b) for p, b in zip(model.parameters(), before))
    assert not any(p.requires_grad for p in model.parameters())
    model.fit(Xg.detach(), y, loss="softmax_cross_entropy", optimizer="sgd", progress=False)  # the way out
    assert not any(p.requires_grad for p in model.parameters())


# --- 6. the same checks everywhere ----------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_evaluate_and_predict_refuse_non_finite_inputs_like_fit(be, bad):
    model = nb.Sequential([nb.Dense(2, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    X = np.ones((5, 2))
    X[3, 1] = bad
    Xb, y = be.asarray(X, "float64"), be.asarray(np.array([0, 1, 0, 1, 0]))
    for call in (lambda: model.predict(Xb), lambda: model.predict(Xb, batch_size=2),
                 lambda: model.evaluate(Xb, y, loss="softmax_cross_entropy")):
        with pytest.raises(ValueError, match=r"X holds 1 NaN or infinite values in 1 rows"):
            call()
    T = np.zeros((5, 2))
    T[0, 0] = bad
    with pytest.raises(ValueError, match=r"T holds 1 NaN or infinite values in 1 rows"):
        model.evaluate(be.asarray(np.ones((5, 2)), "float64"), be.asarray(T, "float64"), loss="mse",
                       metrics=["mse"])


def test_drop_last_with_fewer_rows_than_a_batch_is_an_error_before_any_change(be):
    model = nb.Sequential([nb.Dense(2, 2)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = [be.host(p).copy() for p in model.parameters()]
    X, y = be.asarray(np.ones((5, 2)), "float64"), be.asarray(np.array([0, 1, 0, 1, 0]))
    with pytest.raises(ValueError, match=r"drop_last with batch_size=8 > 5 rows leaves no batch"):
        model.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", batch_size=8, drop_last=True,
                  progress=False)
    assert all(np.array_equal(be.host(p), b) for p, b in zip(model.parameters(), before))
    assert model.optimizer is None
    hist = model.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", batch_size=2, drop_last=True,
                     progress=False, shuffle=False)  # 5 rows, batches of 2: two batches, the fifth row skipped
    assert model.optimizer.state.t == 2 and len(hist["loss"]) == 1


def test_target_for_a_bundled_data_set_is_refused_unless_it_is_its_target(tmp_path, capsys):
    status = cli.main(["train", "--data", "xor", "--target", "x1", "--epochs", "1", "--backend", "numpy",
                       "--out", str(tmp_path / "m.npz")])
    _, err = capsys.readouterr()
    assert status == 1 and not (tmp_path / "m.npz").exists()
    assert "--target 'x1': the bundled 'xor' data set has one target, 'xor'" in err
    assert datasets.load("xor", "xor").target == "xor"


@pytest.mark.parametrize("sizes", [(2.5,), 2.5, (10, 3.7), ("8",), (True,)])
def test_estimators_refuse_non_integer_hidden_layer_sizes(sizes):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from nnbackprop.sklearn import MLPClassifier, MLPRegressor

    X, y = np.random.default_rng(0).standard_normal((20, 2)), np.array([0, 1] * 10)
    for est in (MLPClassifier(hidden_layer_sizes=sizes, max_iter=2),
                MLPRegressor(hidden_layer_sizes=sizes, max_iter=2)):
        with pytest.raises(ValueError, match="hidden_layer_sizes"):
            est.fit(X, y.astype(float) if isinstance(est, MLPRegressor) else y)


# --- 7. big data in bounded memory ----------------------------------------------------------------

def _wide_model():
    return nb.Sequential([nb.Dense(16, 256, "relu"), nb.Dense(256, 4)], seed=0)  # NumPy, float32


def _extra_peak(fn, result_bytes):
    out, peak = _peak_during(fn)
    assert not isinstance(out, Exception), out
    return peak - result_bytes(out)


def test_predict_and_evaluate_work_in_blocks_by_default():  # host memory: NumPy, seen by tracemalloc
    model = _wide_model()
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (40_000, 160_000):
        X = rng.standard_normal((n, 16)).astype(np.float32)
        y = rng.integers(0, 4, n)
        peaks["predict", n] = _extra_peak(lambda X=X: model.predict(X), lambda Y: Y.nbytes)
        peaks["evaluate", n] = _extra_peak(
            lambda X=X, y=y: model.evaluate(X, y, loss="softmax_cross_entropy"), lambda r: 0)
        if n == 40_000:  # a block at a time gives the same numbers as one pass, to rounding
            np.testing.assert_allclose(model.predict(X), model.predict(X, batch_size=n), rtol=1e-6, atol=1e-6)
            whole = training._evaluate(model, X, y, nb.losses.SoftmaxCrossEntropy(),
                                       [nb.metrics.get("accuracy").for_model(model)], None)
            got = model.evaluate(X, y, loss="softmax_cross_entropy")
            assert got["accuracy"] == whole["accuracy"]
            assert got["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    block = training.block_rows(model) * 256 * 4  # one block of the hidden layer, float32
    for what in ("predict", "evaluate"):
        assert peaks[what, 160_000] < 4 * block, peaks  # before: 160_000 x 256 x 4 bytes = 164 MB
        assert peaks[what, 160_000] < peaks[what, 40_000] + block, peaks  # independent of N


def test_the_cli_predicts_and_evaluates_in_blocks(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 3))
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--data", str(data), "--epochs", "1", "--out", str(model), "--backend", "numpy",
                     "--no-progress"]) == 0
    monkeypatch.setattr(training, "block_rows", lambda m: 1000)
    sizes = []
    real = training.predict
    monkeypatch.setattr(training, "predict", lambda m, A, **kw: sizes.append(A.shape[0]) or real(m, A, **kw))
    out = tmp_path / "p.npz"
    assert cli.main(["predict", str(model), str(data), "--out", str(out), "--backend", "numpy"]) == 0
    assert sizes == [1000, 1000, 1000]
    with np.load(out) as f:
        direct = nb.load(model).predict(X.astype(np.float32)).argmax(axis=1)
        np.testing.assert_array_equal(f["y"], direct.astype(str))
    capsys.readouterr()
    real_eval, sizes = training.evaluate, []
    monkeypatch.setattr(training, "evaluate",
                        lambda m, A, T, **kw: sizes.append(A.shape[0]) or real_eval(m, A, T, **kw))
    assert cli.main(["evaluate", str(model), "--data", str(data), "--backend", "numpy"]) == 0
    assert sizes == [1000, 1000, 1000]
    accuracy = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(np.mean(direct == (X[:, 0] > 0)), abs=5e-5)


def test_fit_input_checks_make_no_full_size_temporary():
    model = _wide_model()
    X = np.random.default_rng(0).standard_normal((200_000, 16)).astype(np.float32)
    y = np.zeros(200_000, dtype=np.int64)
    _, peak = _peak_during(lambda: training.check_data(model, X, y, nb.losses.SoftmaxCrossEntropy()))
    assert peak < X.nbytes / 4, (peak, X.nbytes)


def test_reading_a_csv_streams_it_into_arrays(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 20_000, 20
    X = rng.standard_normal((n, d))
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write(",".join(f"f{i}" for i in range(d)) + ",label\n")
        f.writelines(",".join(f"{v:.6f}" for v in x) + (",yes\n" if x[0] > 0 else ",no\n") for x in X)
    table, peak = _peak_during(lambda: datasets.read_csv(path))
    np.testing.assert_allclose(table.X, X, atol=1e-6)
    assert list(table.y[:3]) == ["yes" if v > 0 else "no" for v in X[:3, 0]]
    assert peak < 3 * (table.X.nbytes + table.y.nbytes), peak / (table.X.nbytes + table.y.nbytes)  # before: 12x
