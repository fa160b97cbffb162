"""Initialisers: the draws themselves, how a model uses them, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import init as I


def test_glorot_uniform_bounds_and_draw():
    W = I.GlorotUniform()(np.random.default_rng(0), 30, 20)
    r = math.sqrt(6.0 / 50)
    assert W.shape == (30, 20) and W.dtype == np.float64
    assert np.all(np.abs(W) <= r)
    assert np.abs(W).max() > 0.9 * r  # it fills the range
    np.testing.assert_array_equal(W, np.random.default_rng(0).uniform(-r, r, size=(30, 20)))


def test_he_normal_scale():
    W = I.HeNormal()(np.random.default_rng(1), 200, 300)
    assert W.shape == (200, 300)
    # 60,000 draws: the sample std is within 2% of sqrt(2 / n_in) by a wide margin
    assert W.std() == pytest.approx(math.sqrt(2.0 / 200), rel=0.02)
    assert abs(W.mean()) < 0.005


def test_uniform_and_normal():
    W = I.Uniform(-0.5, 2.0)(np.random.default_rng(2), 50, 40)
    assert W.min() >= -0.5 and W.max() < 2.0 and W.min() < -0.4 and W.max() > 1.9
    N = I.Normal(0.5)(np.random.default_rng(3), 100, 100)
    assert N.std() == pytest.approx(0.5, rel=0.03)


def test_default_choice_follows_activation():
    assert isinstance(I.get(None, "relu"), I.HeNormal)
    assert isinstance(I.get(None, "leaky_relu"), I.HeNormal)
    for act in ("sigmoid", "tanh", "identity", "softmax"):
        assert isinstance(I.get(None, act), I.GlorotUniform)
    assert isinstance(nb.Dense(2, 3, "relu").init, I.HeNormal)
    assert isinstance(nb.Dense(2, 3, "tanh").init, I.GlorotUniform)


def test_get_by_name_and_config():
    assert isinstance(I.get("he_normal"), I.HeNormal)
    u = I.get({"name": "uniform", "low": -2.0, "high": 3.0})
    assert (u.low, u.high) == (-2.0, 3.0)
    assert u.config() == {"name": "uniform", "low": -2.0, "high": 3.0}
    assert I.get(u) is u


@pytest.mark.parametrize("name", ["zeros", "zero", "ones", "constant"])
def test_constant_init_refused_for_symmetry(name):
    with pytest.raises(ValueError, match="symmetry"):
        I.get(name)
    with pytest.raises(ValueError, match="symmetry"):
        nb.Dense(3, 2, init=name)


def test_zero_scale_refused():
    with pytest.raises(ValueError, match="symmetry"):
        I.Normal(0.0)
    with pytest.raises(ValueError, match="low < high"):
        I.Uniform(0.0, 0.0)
    with pytest.raises(ValueError, match="low < high"):
        I.Uniform(1.0, -1.0)


def test_unknown_init_lists_valid_names():
    with pytest.raises(ValueError) as info:
        I.get("orthogonal")
    for valid in ("he_normal", "glorot_uniform", "uniform", "normal"):
        assert valid in str(info.value)


def test_model_weights_are_the_seeded_host_draws(be):
    layers = [nb.Dense(3, 4, "relu"), nb.Dense(4, 2, "tanh"), nb.Dense(2, 5, init=I.Uniform(-1, 1))]
    m = nb.Sequential(layers, xp=be.xp, device=be.device, dtype="float64", seed=7)
    rng = np.random.default_rng(7)  # the layers draw one after another from one generator
    expected = [
        rng.standard_normal((3, 4)) * math.sqrt(2.0 / 3),
        rng.uniform(-math.sqrt(6.0 / 6), math.sqrt(6.0 / 6), size=(4, 2)),
        rng.uniform(-1.0, 1.0, size=(2, 5)),
    ]
    for layer, W in zip(m.layers, expected, strict=True):
        np.testing.assert_array_equal(be.host(layer.W), W)  # bit-identical on every backend
        np.testing.assert_array_equal(be.host(layer.b), np.zeros(layer.n_out))


def test_seed_reproducible_and_distinct(be):
    def weights(seed):
        m = nb.Sequential([nb.Dense(3, 4, "tanh"), nb.Dense(4, 2)], xp=be.xp, device=be.device,
                          dtype="float64", seed=seed)
        return [be.host(p).copy() for p in m.parameters()]

    a, b, c = weights(3), weights(3), weights(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_float32_weights_are_rounded_float64_draws(be):
    m32 = nb.Sequential([nb.Dense(3, 4, "tanh")], xp=be.xp, device=be.device, dtype="float32", seed=5)
    draw = I.GlorotUniform()(np.random.default_rng(5), 3, 4)
    W = be.host(m32.layers[0].W)
    assert W.dtype == np.float32
    np.testing.assert_array_equal(W, draw.astype(np.float32))
