"""save / load / to: pickle-free files, safe writes, any backend to any backend."""

import json
import os

import numpy as np
import pytest
from conftest import Backend

import backends
import nnbackprop as nb


def _data(be, n=24, dtype="float64"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    return be.asarray(X, dtype), be.asarray(y)


def _model(be, dtype="float64"):
    return nb.Sequential([nb.Dense(3, 6, "relu"), nb.Dense(6, 5, "leaky_relu"), nb.Dense(5, 3)],
                         xp=be.xp, device=be.device, dtype=dtype, seed=4)


def _train(model, X, y, epochs, opt=None):
    return model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), epochs=epochs, batch_size=8,
                     shuffle=False, progress=False,
                     optimizer=opt if opt is not None else nb.optim.Adam(lr=1e-2))


@pytest.fixture
def numpy_be():
    return Backend(backends.get("numpy"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_here_load_on_numpy_and_back(be, numpy_be, tmp_path, dtype):
    X, y = _data(be, dtype=dtype)
    model = _model(be, dtype)
    _train(model, X, y, 2)
    path = model.save(tmp_path / "m.npz")
    there = nb.load(path, xp="numpy")
    for p, q in zip(there.parameters(), model.parameters()):  # the very same weights
        np.testing.assert_array_equal(np.asarray(p), be.host(q))
    Xn, _ = _data(numpy_be, dtype=dtype)
    # predictions agree up to the other library's rounding in its matrix products
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(nb._compat.to_host(there.predict(Xn)), be.host(model.predict(X)),
                               rtol=tol, atol=tol)
    back = nb.load(path, xp=be.xp, device=be.device)
    assert back.xp is be.xp and back.dtype == model.dtype
    np.testing.assert_array_equal(be.host(back.predict(X)), be.host(model.predict(X)))


def test_file_is_pickle_free(be, tmp_path):
    X, y = _data(be)
    model = _model(be)
    _train(model, X, y, 1)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    config = json.loads(str(contents["config"]))
    assert config["dtype"] == "float64"
    assert [layer["activation"]["name"] for layer in config["model"]["layers"]] == \
        ["relu", "leaky_relu", "identity"]
    assert config["optimizer"]["name"] == "adam"
    np.testing.assert_array_equal(contents["param/0.W"], be.host(model.layers[0].W))


def test_optimizer_state_survives_a_round_trip(be, tmp_path):
    """2 epochs, save, load, 1 more epoch == 3 epochs straight (Adam's m, v and t kept)."""
    X, y = _data(be)
    straight = _model(be)
    _train(straight, X, y, 3)
    resumed = _model(be)
    _train(resumed, X, y, 2)
    resumed.save(tmp_path / "m.npz")
    loaded = nb.load(tmp_path / "m.npz", xp=be.xp, device=be.device)
    assert loaded.optimizer is not None
    _train(loaded, X, y, 1, opt=loaded.optimizer)
    for p, q in zip(straight.parameters(), loaded.parameters()):
        np.testing.assert_allclose(be.host(q), be.host(p), rtol=1e-12, atol=1e-14)


def test_crash_mid_save_keeps_the_old_checkpoint(be, tmp_path, monkeypatch):
    X, y = _data(be)
    model = _model(be)
    path = model.save(tmp_path / "m.npz")
    old = path.read_bytes()
    _train(model, X, y, 1)

    def broken(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_bad_files_are_clear_errors(tmp_path):
    model = nb.Sequential([nb.Dense(2, 2)], seed=0)
    good = model.save(tmp_path / "good.npz")
    raw = good.read_bytes()

    with pytest.raises(FileNotFoundError, match="missing.npz"):
        nb.load(tmp_path / "missing.npz")

    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(nb.CheckpointError, match=r"trunc\.npz.*truncated or corrupted"):
        nb.load(trunc)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(nb.CheckpointError, match="garbage.npz"):
        nb.load(garbage)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(nb.CheckpointError, match=r"foreign\.npz.*not an nnbackprop checkpoint"):
        nb.load(foreign)

    with np.load(good, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["__nnbackprop__"] = np.asarray("nnbackprop-checkpoint/99")
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(nb.CheckpointError, match=r"future\.npz.*version 99"):
        nb.load(future)

    arrays["__nnbackprop__"] = np.asarray("nnbackprop-checkpoint/1")
    arrays["param/0.W"] = np.zeros((5, 5))
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **arrays)
    with pytest.raises(nb.CheckpointError, match=r"wrong\.npz.*0\.W"):
        nb.load(wrong)

    with pytest.raises(ValueError, match=r"\.npz"):
        model.save(tmp_path / "model.pkl")


def test_to_moves_weights_gradients_and_optimizer_state(be, numpy_be):
    Xn, yn = _data(numpy_be)
    model = nb.Sequential([nb.Dense(3, 6, "relu"), nb.Dense(6, 3)], dtype="float64", seed=4)
    _train(model, Xn, yn, 1)
    weights = [np.array(p) for p in model.parameters()]
    grads = [np.array(g) for g in model.gradients()]
    model.to(be.xp, device=be.device)
    assert model.xp is be.xp
    for p, w in zip(model.parameters(), weights):
        assert nb._compat.namespace_of(p) is be.xp
        np.testing.assert_array_equal(be.host(p), w)
    for g, w in zip(model.gradients(), grads):
        np.testing.assert_array_equal(be.host(g), w)
    for slot in model.optimizer.state_dict()["slots"].values():
        for a in slot:
            assert nb._compat.namespace_of(a) is be.xp
    # and training carries on there, matching the same steps on NumPy
    X, y = _data(be)
    _train(model, X, y, 1, opt=model.optimizer)
    ref = nb.Sequential([nb.Dense(3, 6, "relu"), nb.Dense(6, 3)], dtype="float64", seed=4)
    _train(ref, Xn, yn, 1)
    _train(ref, Xn, yn, 1, opt=ref.optimizer)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(be.host(p), np.asarray(q), rtol=1e-12, atol=1e-14)


# --- every malformed file: a CheckpointError naming the path and what is wrong -------------------

@pytest.fixture
def trained_file(tmp_path):
    """A checkpoint of a 2 -> 3 -> 2 model trained 2 epochs with Adam, and its arrays."""
    model = nb.Sequential([nb.Dense(2, 3, "relu"), nb.Dense(3, 2)], dtype="float64", seed=0)
    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=2, progress=False)
    path = model.save(tmp_path / "good.npz")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return path, arrays


def _edited(tmp_path, arrays, name, edit=None, **changes):
    a = dict(arrays)
    if edit is not None:
        cfg = json.loads(str(a["config"]))
        edit(cfg)
        a["config"] = np.asarray(json.dumps(cfg))
    for k, v in changes.items():
        k = k.replace("__", "/").replace("_dot_", ".")
        if v is None:
            a.pop(k)
        else:
            a[k] = v
    path = tmp_path / f"{name}.npz"
    np.savez(path, **a)
    return path


def _set(key_path, value):
    def edit(cfg):
        d = cfg
        for k in key_path[:-1]:
            d = d[k]
        d[key_path[-1]] = value
    return edit


MALFORMED = {
    "string parameter": (dict(param__0_dot_W=np.asarray([["a", "b", "c"]] * 2)),
                         r"parameter 0\.W holds <U1 values, expected real numbers"),
    "missing parameter": (dict(param__1_dot_b=None), r"parameter 1\.b is missing"),
    "slot of the wrong shape": (dict(opt__m__0=np.zeros((5, 5))),
                                r"optimizer slot m/0 has shape \(5, 5\), the saved architecture needs \(2, 3\)"),
    "slot missing": (dict(opt__v__3=None), r"optimizer slot v/3 is missing"),
    "slot count": (dict(config=_set(("optimizer", "slots", "m"), 7)),
                   r"optimizer slot 'm' holds 7 arrays, the model has 4 parameters"),
    "bad t": (dict(config=_set(("optimizer", "t"), "x")), r"damaged optimizer state .*t must be an integer"),
    "unknown optimizer": (dict(config=_set(("optimizer", "config", "name"), "lbfgs")),
                          r"damaged optimizer config .*unknown optimizer 'lbfgs'"),
    "unknown loss": (dict(config=_set(("loss",), {"name": "hinge"})), r"damaged loss config .*unknown loss 'hinge'"),
    "bad activation": (dict(config=_set(("model", "layers", 0, "activation"), {"name": "step"})),
                       r"damaged architecture"),
    "no layers": (dict(config=_set(("model", "layers"), [])), r"damaged architecture"),
    "bad dtype": (dict(config=_set(("dtype",), "float99")), r"dtype 'float99'"),
    "config not JSON": (dict(config=lambda cfg: None, _raw_config="{not json"), r"config is not JSON"),
    "config a list": (dict(config=lambda cfg: None, _raw_config="[1, 2]"), r"config is a list"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_checkpoints_are_checkpoint_errors(trained_file, tmp_path, case):
    _, arrays = trained_file
    changes, match = MALFORMED[case]
    changes = dict(changes)
    edit = changes.pop("config", None)
    raw = changes.pop("_raw_config", None)
    if raw is not None:
        changes["config"], edit = np.asarray(raw), None
    path = _edited(tmp_path, arrays, "bad", edit, **changes)
    with pytest.raises(nb.CheckpointError, match=rf"{path.name}: .*{match}"):
        nb.load(path)


def test_files_that_are_not_npz_archives(tmp_path):
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))  # a .npy renamed .npz
    with pytest.raises(nb.CheckpointError, match=r"array\.npz: not an nnbackprop checkpoint \(one \.npy array"):
        nb.load(npy)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    with pytest.raises(nb.CheckpointError, match=r"pickled\.npz"):
        nb.load(pickled)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(nb.CheckpointError, match=r"empty\.npz"):
        nb.load(empty)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    with pytest.raises(nb.CheckpointError, match=r"folder\.npz: is a directory"):
        nb.load(folder)


def test_a_good_file_loads_with_a_device_named_as_a_string(be, trained_file):
    path, arrays = trained_file
    name = str(be.device)
    try:
        be.xp.asarray(0.0, device=name)
    except Exception:
        pytest.skip(f"{be.name} does not name its default device {name!r} by a string")
    model = nb.load(path, xp=be.xp, device=name)
    assert model.device == be.device
    X = be.asarray(np.ones((3, 2)), "float64")
    h = np.maximum(np.ones((3, 2)) @ arrays["param/0.W"] + arrays["param/0.b"], 0)
    np.testing.assert_allclose(be.host(model.predict(X)), h @ arrays["param/1.W"] + arrays["param/1.b"],
                               rtol=1e-14)
    for k, v in model.optimizer.state.slots.items():
        for i, a in enumerate(v):
            np.testing.assert_array_equal(be.host(a), arrays[f"opt/{k}/{i}"])
