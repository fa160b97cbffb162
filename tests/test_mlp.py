"""``nb.mlp``: the one builder of a Dense stack from layer sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackprop as nb


def _host(model):
    return [np.asarray(nb._compat.to_host(p)) for p in model.parameters()]


def test_layers_sizes_and_activations():
    model = nb.mlp([5, 7, 3, 2], "tanh", output="sigmoid", xp="numpy")
    assert [(layer.n_in, layer.n_out) for layer in model.layers] == [(5, 7), (7, 3), (3, 2)]
    assert [layer.activation.name for layer in model.layers] == ["tanh", "tanh", "sigmoid"]
    assert [layer.init.name for layer in model.layers] == ["glorot_uniform"] * 3
    assert [p.shape for p in model.parameters()] == [(5, 7), (7,), (7, 3), (3,), (3, 2), (2,)]

    default = nb.mlp([4, 6, 6, 1])  # relu hidden layers, identity output, float32
    assert [layer.activation.name for layer in default.layers] == ["relu", "relu", "identity"]
    assert [layer.init.name for layer in default.layers] == ["he_normal", "he_normal", "glorot_uniform"]
    assert default.dtype_name == "float32"

    single = nb.mlp(np.array([3, 2]), "tanh", output="softmax")  # no hidden layer: `activation` unused
    assert [(la.n_in, la.n_out, la.activation.name) for la in single.layers] == [(3, 2, "softmax")]


def test_init_applies_to_every_layer():
    model = nb.mlp([3, 4, 2], init={"name": "uniform", "low": -0.5, "high": 0.5}, seed=0, xp="numpy")
    assert [layer.init.config() for layer in model.layers] == [
        {"name": "uniform", "low": -0.5, "high": 0.5}] * 2
    W0, _, W1, _ = _host(model)
    assert np.all(np.abs(W0) <= 0.5) and np.all(np.abs(W1) <= 0.5)


def test_seeded_weights_match_the_hand_built_network(be):
    dtype = "float64"
    built = nb.mlp([6, 5, 4, 3], "leaky_relu", output="identity", xp=be.xp, dtype=dtype, seed=7)
    by_hand = nb.Sequential([nb.Dense(6, 5, "leaky_relu"), nb.Dense(5, 4, "leaky_relu"), nb.Dense(4, 3)],
                            xp=be.xp, dtype=dtype, seed=7)
    assert built.xp is by_hand.xp and built.device == by_hand.device and built.dtype == by_hand.dtype
    for a, b in zip(_host(built), _host(by_hand), strict=True):
        np.testing.assert_array_equal(a, b)

    # and both equal the draws computed here: one host generator, layer after layer, in float64
    rng = np.random.default_rng(7)
    W0 = rng.standard_normal((6, 5)) * math.sqrt(2 / 6)       # he_normal for leaky_relu
    W1 = rng.standard_normal((5, 4)) * math.sqrt(2 / 5)
    r = math.sqrt(6 / (4 + 3))
    W2 = rng.uniform(-r, r, size=(4, 3))                      # glorot_uniform for identity
    expected = [W0, np.zeros(5), W1, np.zeros(4), W2, np.zeros(3)]
    for a, b in zip(_host(built), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_float32_weights_are_the_float64_draws_rounded(be):
    w32 = _host(nb.mlp([4, 3, 2], xp=be.xp, dtype="float32", seed=1))
    w64 = _host(nb.mlp([4, 3, 2], xp=be.xp, dtype="float64", seed=1))
    assert all(a.dtype == np.float32 for a in w32)
    for a, b in zip(w32, w64, strict=True):
        np.testing.assert_array_equal(a, b.astype(np.float32))


def test_different_seeds_differ():
    a, b = _host(nb.mlp([4, 3, 2], seed=1)), _host(nb.mlp([4, 3, 2], seed=2))
    assert not np.array_equal(a[0], b[0])


@pytest.mark.parametrize("sizes, error, match", [
    ([], ValueError, r"at least n_in and n_out, got \[\]"),
    ([3], ValueError, r"at least n_in and n_out, got \[3\]"),
    ([3, 0, 2], ValueError, r"positive integers, got \[3, 0, 2\] \(entry 1 is 0\)"),
    ([3, -4], ValueError, r"\(entry 1 is -4\)"),
    ([3, 2.0], ValueError, r"\(entry 1 is 2.0\)"),
    ([True, 2], ValueError, r"\(entry 0 is True\)"),
    ([3, "2"], ValueError, r"\(entry 1 is '2'\)"),
    (5, TypeError, r"mlp sizes must be a list of layer sizes \[n_in, hidden..., n_out\], got int"),
    ("3,2", TypeError, r"got str"),
])
def test_bad_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        nb.mlp(sizes)


def test_bad_activation_names_reach_the_user():
    with pytest.raises(ValueError, match="activation 'step': it has no useful derivative"):
        nb.mlp([2, 3, 1], "step")
    with pytest.raises(ValueError, match="unknown activation 'soft'"):
        nb.mlp([2, 3, 1], output="soft")
    with pytest.raises(ValueError, match="unknown init 'lecun'"):
        nb.mlp([2, 3, 1], init="lecun")
