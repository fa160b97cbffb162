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
                         xp=be.xp, dtype=dtype, seed=4)


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
    back = nb.load(path, xp=be.xp)
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
    loaded = nb.load(tmp_path / "m.npz", xp=be.xp)
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
    model.to(be.xp)
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
