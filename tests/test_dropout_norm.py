"""Dropout, LayerNorm and BatchNorm in a Sequential: modes, the seeded masks, buffers,
checkpoints, .to(), gradient_check and every optimizer, on every backend."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from test_optim import KINDS as OPTIMIZERS

import nnbackprop as nb

CE = nb.losses.SoftmaxCrossEntropy()


def _net(be, p=0.25, seed=2, dtype="float64"):
    return nb.Sequential([nb.Dense(4, 8, "relu"), nb.BatchNorm(8), nb.Dropout(p), nb.Dense(8, 6, "tanh"),
                          nb.LayerNorm(6), nb.Dense(6, 3)], xp=be.xp, dtype=dtype, device=be.device, seed=seed)


def _data(be, n=20, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    return be.asarray(rng.standard_normal((n, 4)), dtype), be.asarray(rng.integers(0, 3, n), "int64")


class _NUMPY:  # what _net needs of a backend: plain NumPy on the host
    xp, device = "numpy", None


def _host(arrays, be):
    return [be.host(a).copy() for a in arrays]


# ---------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_dropout_p_is_checked(p):
    with pytest.raises(ValueError, match="0 <= p < 1"):
        nb.Dropout(p)


def test_dropout_takes_its_neighbours_width():
    m = nb.Sequential([nb.Dropout(0.2), nb.Dense(3, 5), nb.Dropout(0.5), nb.Dropout(0.1), nb.Dense(5, 2)])
    assert [(la.n_in, la.n_out) for la in m.layers] == [(3, 3), (3, 5), (5, 5), (5, 5), (5, 2)]
    assert m.config()["layers"][2] == {"type": "Dropout", "p": 0.5}
    with pytest.raises(ValueError, match="no layer of the model has a fixed width"):
        nb.Sequential([nb.Dropout(0.2)])


def test_dropout_zero_is_bit_identical_to_no_layer(be):
    """p = 0 draws nothing and passes X on: the same fit, bit for bit."""
    X, T = _data(be)
    plain = nb.Sequential([nb.Dense(4, 8, "sigmoid"), nb.Dense(8, 3)], xp=be.xp, dtype="float32",
                          device=be.device, seed=5)
    dropped = nb.Sequential([nb.Dense(4, 8, "sigmoid"), nb.Dropout(0.0), nb.Dense(8, 3), nb.Dropout(0)],
                            xp=be.xp, dtype="float32", device=be.device, seed=5)
    X32 = be.asarray(be.host(X), "float32")
    for m in (plain, dropped):
        m.fit(X32, T, loss=CE, optimizer=nb.optim.Adam(0.01), epochs=4, batch_size=6, seed=1, progress=False)
    for a, b in zip(_host(plain.parameters(), be), _host(dropped.parameters(), be), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dropout_mask_scales_and_is_the_same_on_every_backend(be):
    """Training: each unit is 0 or X / (1 - p), kept with probability about 1 - p,
    drawn from the model's seeded host generator (so NumPy gives the same mask);
    inference: the identity."""
    p = 0.4
    Xh = np.random.default_rng(3).uniform(1.0, 2.0, (400, 10))
    model = nb.Sequential([nb.Dropout(p), nb.Dense(10, 2)], xp=be.xp, dtype="float64", device=be.device, seed=7)
    ref = nb.Sequential([nb.Dropout(p), nb.Dense(10, 2)], xp="numpy", dtype="float64", seed=7)
    ctx_ref = []
    for m, X in ((model, be.asarray(Xh, "float64")), (ref, Xh)):
        tape = []
        m._forward(X, tape, m._fresh, True)
        ctx_ref.append(tape[0]["M"])
    M, M_ref = be.host(ctx_ref[0]), ctx_ref[1]
    np.testing.assert_array_equal(M, M_ref)
    assert set(np.unique(M)) == {0.0, 1 / (1 - p)}
    assert abs((M > 0).mean() - (1 - p)) < 0.02
    X = be.asarray(Xh, "float64")
    no_dropout = nb.Sequential([nb.Dense(10, 2)], xp=be.xp, dtype="float64", device=be.device, seed=7)
    np.testing.assert_array_equal(be.host(model.predict(X)), be.host(no_dropout.predict(X)))
    np.testing.assert_array_equal(be.host(model.forward(X)), be.host(no_dropout.predict(X)))


def test_one_seed_gives_the_same_trained_weights_on_every_backend(be):
    X, T = _data(be)
    ref = _net(_NUMPY, p=0.5)
    model = _net(be, p=0.5)
    for m, (Xm, Tm) in ((model, (X, T)), (ref, (be.host(X), be.host(T)))):
        m.fit(Xm, Tm, loss=CE, optimizer=nb.optim.SGD(0.05, momentum=0.9), epochs=3, batch_size=7, seed=3,
              progress=False)
    for a, b in zip(_host(model.parameters(), be), ref.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- modes
def test_forward_defaults_to_inference_and_predict_leaves_buffers_alone(be):
    X, T = _data(be)
    model = _net(be)
    model.fit(X, T, loss=CE, optimizer="adam", epochs=2, batch_size=5, progress=False)
    before = _host([b for _, b in model.named_buffers()], be)
    Y = be.host(model.predict(X))
    np.testing.assert_array_equal(be.host(model.forward(X)), Y)
    model.evaluate(X, T, loss=CE)
    for a, b in zip(before, _host([b for _, b in model.named_buffers()], be)):
        np.testing.assert_array_equal(a, b)
    Yt = be.host(model.forward(X, training=True))  # batch statistics and a dropout mask
    assert not np.allclose(Yt, Y)
    assert not np.array_equal(before[0], be.host(model.named_buffers()[0][1]))  # running mean moved
    with pytest.raises(TypeError, match="training must be True or False"):
        model.forward(X, training=1)


def test_plain_networks_are_the_same_in_both_modes(be):
    X, _ = _data(be)
    m = nb.mlp([4, 8, 3], "tanh", xp=be.xp, dtype="float64", device=be.device, seed=0)
    np.testing.assert_array_equal(be.host(m.forward(X, training=True)), be.host(m.forward(X)))


def test_fit_changes_the_running_statistics_as_the_formula_says(be):
    """BatchNorm first: after one full-batch step the running statistics are
    0.9 * (0, 1) + 0.1 * (mean, unbiased variance) of X, whatever the optimizer."""
    X, T = _data(be, n=10)
    model = nb.Sequential([nb.BatchNorm(4), nb.Dense(4, 3)], xp=be.xp, dtype="float64", device=be.device, seed=0)
    assert [n for n, _ in model.named_parameters()] == ["0.gamma", "0.beta", "1.W", "1.b"]
    assert [n for n, _ in model.named_buffers()] == ["0.running_mean", "0.running_var"]
    model.fit(X, T, loss=CE, optimizer=nb.optim.Adam(0.1), epochs=1, progress=False)
    Xh = be.host(X)
    bufs = dict(model.named_buffers())
    np.testing.assert_allclose(be.host(bufs["0.running_mean"]), 0.1 * Xh.mean(axis=0), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(be.host(bufs["0.running_var"]), 0.9 + 0.1 * Xh.var(axis=0, ddof=1), rtol=1e-13)


def test_batchnorm_refuses_one_row_batches_before_any_change(be):
    X, T = _data(be, n=11)
    model = _net(be)
    before = _host(model.parameters(), be)
    with pytest.raises(ValueError, match="batch of 1 row.*at least 2"):
        model.fit(X, T, loss=CE, optimizer="sgd", batch_size=5, progress=False)
    with pytest.raises(ValueError, match="needs at least 2"):
        model.train_step(X[:1, ...], T[:1], CE, nb.optim.SGD(0.1))
    with pytest.raises(ValueError, match="needs at least 2"):
        model.forward(X[:1, ...], training=True)
    for a, b in zip(before, _host(model.parameters(), be)):
        np.testing.assert_array_equal(a, b)
    model.fit(X, T, loss=CE, optimizer="sgd", batch_size=5, drop_last=True, progress=False)
    assert model.predict(X[:1, ...]).shape == (1, 3)  # inference takes any number of rows


@pytest.mark.parametrize(("n", "kw", "match"), [
    (0, {}, "n must be a positive integer"), (3, {"eps": 0.0}, "eps must be a number > 0"),
    (3, {"momentum": 1.5}, "momentum must be a number >= 0.0 and <= 1.0"),
])
def test_norm_arguments_are_checked(n, kw, match):
    with pytest.raises(ValueError, match=match):
        nb.BatchNorm(n, **kw)
    if "momentum" not in kw:
        with pytest.raises(ValueError, match=match):
            nb.LayerNorm(n, **kw)


# ---------------------------------------------------------------- everything else
@pytest.mark.parametrize("training", [True, False])
def test_gradient_check_in_both_modes(be, training):
    X, T = _data(be, n=9)
    model = _net(be)
    model.fit(X, T, loss=CE, optimizer="adam", epochs=2, batch_size=3, progress=False)
    assert nb.gradient_check(model, nb.losses.SoftmaxCrossEntropy(l2=0.01), X, T, training=training) < 1e-6


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_every_optimizer_equals_the_per_parameter_update(be, kind):
    """train_step's update (flat where the backend writes) equals the pure per-parameter
    ``update`` for gamma and beta too; the running statistics are not among the parameters."""
    X, T = _data(be)
    loss = nb.losses.SoftmaxCrossEntropy(l2=0.01)
    model, opt = _net(be), OPTIMIZERS[kind]()
    for _ in range(3):
        model.train_step(X, T, loss, opt)
    ref, ref_opt = _net(be), OPTIMIZERS[kind]()
    state = ref_opt.init(ref.parameters())
    for _ in range(3):
        ref.value_and_grad(X, T, loss)
        params, state = ref_opt.update(ref.parameters(), ref.gradients(), state)
        ref.set_parameters(params)
    for a, b in zip(_host(model.parameters(), be), _host(ref.parameters(), be), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(model.parameters()) == 10 and model.store.size == 4 * 8 + 8 + 2 * 8 + 8 * 6 + 6 + 2 * 6 + 6 * 3 + 3


def test_checkpoint_keeps_buffers_and_generator_and_to_moves_them(be, tmp_path):
    X, T = _data(be)
    model = _net(be)
    model.fit(X, T, loss=CE, optimizer=nb.optim.Adam(0.01), epochs=2, batch_size=5, seed=1, progress=False)
    path = model.save(tmp_path / "m.npz")
    back = nb.load(path, xp=be.xp, device=be.device)
    for (n, a), (m, b) in zip(model.named_buffers(), back.named_buffers(), strict=True):
        assert n == m
        np.testing.assert_array_equal(be.host(a), be.host(b))
    np.testing.assert_array_equal(be.host(back.predict(X)), be.host(model.predict(X)))
    # training goes on with the same masks and statistics: the same weights
    for m in (model, back):
        m.fit(X, T, loss=CE, optimizer=m.optimizer, epochs=1, batch_size=5, seed=2, progress=False)
    for a, b in zip(_host(model.parameters() + [v for _, v in model.named_buffers()], be),
                    _host(back.parameters() + [v for _, v in back.named_buffers()], be), strict=True):
        np.testing.assert_array_equal(a, b)
    want = be.host(model.predict(X)).copy()
    model.to("numpy")
    assert all(isinstance(b, np.ndarray) for _, b in model.named_buffers())
    np.testing.assert_allclose(model.predict(be.host(X)), want, rtol=1e-12, atol=1e-14)
    model.to(be.xp, be.device)
    np.testing.assert_array_equal(be.host(model.predict(X)), want)


def _rewrite(src, dst, drop_key=None, drop_config=None):
    """A copy of the checkpoint ``src`` without entry ``drop_key`` or config key ``drop_config``."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != drop_key}
    if drop_config:
        config = json.loads(str(arrays["config"]))
        del config[drop_config]
        arrays["config"] = np.asarray(json.dumps(config))
    np.savez(dst, **arrays)
    return dst


def test_checkpoints_from_before_still_load_and_a_missing_buffer_is_named(tmp_path):
    X = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    plain = nb.mlp([4, 5, 3], seed=0)
    old = _rewrite(plain.save(tmp_path / "p.npz"), tmp_path / "old.npz", drop_config="rng")
    with zipfile.ZipFile(old) as z:
        assert not any(n.startswith("buffer/") for n in z.namelist())
    np.testing.assert_array_equal(nb.load(old).predict(X), plain.predict(X))
    bn = nb.Sequential([nb.Dense(4, 5), nb.BatchNorm(5), nb.Dense(5, 3)], seed=0)
    bad = _rewrite(bn.save(tmp_path / "bn.npz"), tmp_path / "bad.npz", drop_key="buffer/1.running_var")
    with pytest.raises(nb.CheckpointError, match=r"buffer 1.running_var is missing"):
        nb.load(bad)


def test_a_user_layer_without_a_width_is_told_what_to_define():
    class NoWidth(nb.Layer):
        pass

    with pytest.raises(TypeError, match=r"NoWidth has no n_in: set n_in and n_out, or define set_width"):
        nb.Sequential([nb.Dense(3, 4), NoWidth()])


def test_a_diverged_epoch_puts_back_the_running_statistics_and_the_generator(be):
    X, T = _data(be)
    model = _net(be)
    model.fit(X, T, loss=CE, optimizer=nb.optim.SGD(0.01), epochs=1, batch_size=5, progress=False)
    before = _host([b for _, b in model.named_buffers()], be)
    rng_state = model.rng.bit_generator.state
    with pytest.raises(nb.TrainingDiverged):
        model.fit(X * 1e200, T, loss=CE, optimizer=nb.optim.SGD(1e300), epochs=1, batch_size=5, progress=False)
    for a, b in zip(before, _host([b for _, b in model.named_buffers()], be), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.rng.bit_generator.state == rng_state
