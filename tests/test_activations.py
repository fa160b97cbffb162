"""Activations: forward values against formulas computed here in NumPy/math,
derivatives against central differences of the forward function, and the
name table's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from finite_differences import central_difference

import nnbackprop as nb
from nnbackprop import activations as A

ALL = [
    A.Identity(), A.Sigmoid(), A.Tanh(), A.ReLU(), A.LeakyReLU(0.2), A.Softmax(),
]
IDS = [f"{a.name}" for a in ALL]


def _z(rng, shape=(4, 5)):
    # keep |z| away from 0 so relu kinks never sit inside a finite-difference step
    z = rng.standard_normal(shape) * 2.0
    return np.where(np.abs(z) < 1e-2, 0.5, z)


def _reference_forward(name, z, slope=0.2):
    """g(z) written independently, elementwise with math where possible."""
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return np.vectorize(lambda v: 1.0 / (1.0 + math.exp(-v)))(z)
    if name == "tanh":
        return np.vectorize(math.tanh)(z)
    if name == "relu":
        return np.vectorize(lambda v: v if v > 0 else 0.0)(z)
    if name == "leaky_relu":
        return np.vectorize(lambda v: v if v > 0 else slope * v)(z)
    if name == "softmax":
        out = np.empty_like(z)
        for i, row in enumerate(z):
            e = [math.exp(v) for v in row]
            s = math.fsum(e)
            out[i] = [v / s for v in e]
        return out
    raise AssertionError(name)


@pytest.mark.parametrize("act", ALL, ids=IDS)
def test_forward_matches_formula(be, act, rng):
    z = _z(rng)
    got = be.host(act.forward(be.asarray(z, "float64"), be.xp))
    np.testing.assert_allclose(got, _reference_forward(act.name, z), rtol=1e-14, atol=1e-15)


def test_forward_known_values(be):
    xp = be.xp
    z = be.asarray([[-2.0, 0.0, 3.0]], "float64")
    assert be.host(A.ReLU().forward(z, xp)).tolist() == [[0.0, 0.0, 3.0]]
    assert be.host(A.LeakyReLU(0.25).forward(z, xp)).tolist() == [[-0.5, 0.0, 3.0]]
    assert be.host(A.Identity().forward(z, xp)).tolist() == [[-2.0, 0.0, 3.0]]
    assert be.host(A.Sigmoid().forward(be.asarray([[0.0]], "float64"), xp)).tolist() == [[0.5]]
    # softmax of equal logits is uniform; of (0, log 3) is (1/4, 3/4)
    s = be.host(A.Softmax().forward(be.asarray([[1.0, 1.0, 1.0, 1.0], [0.0, math.log(3.0), -np.inf, -np.inf]],
                                               "float64"), xp))
    np.testing.assert_allclose(s, [[0.25] * 4, [0.25, 0.75, 0.0, 0.0]], rtol=1e-15, atol=0)


def test_sigmoid_stable_at_large_magnitude(be):
    z = be.asarray([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], "float64")
    a = be.host(A.Sigmoid().forward(z, be.xp))  # warnings are errors: any overflow warning fails
    assert np.all(np.isfinite(a))
    assert a[0, 0] == 0.0 and a[0, -1] == 1.0  # exact limits, not nan
    np.testing.assert_allclose(a[0, 1], math.exp(-50.0) / (1 + math.exp(-50.0)), rtol=1e-14)
    assert a[0, 2] == 0.5
    assert a[0, 3] == 1.0 / (1.0 + math.exp(-50.0))


def test_softmax_stable_at_large_logits(be):
    z = be.asarray([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0]], "float64")
    s = be.host(A.Softmax().forward(z, be.xp))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15, atol=0)


def _fd_delta(act, z, dA, be, h=1e-6):
    """delta_i = d/dz_i sum_j dA_j g(z)_j, by central differences of act.forward."""
    def f(zz):
        return float(np.sum(dA * be.host(act.forward(be.asarray(zz, "float64"), be.xp))))

    return central_difference(f, z, h)


@pytest.mark.parametrize("act", ALL, ids=IDS)
def test_backward_matches_finite_differences(be, act, rng):
    z = _z(rng, (3, 4))
    dA = rng.standard_normal(z.shape)
    zb = be.asarray(z, "float64")
    a = act.forward(zb, be.xp)
    delta = be.host(act.backward(be.asarray(dA, "float64"), zb, a, be.xp))
    np.testing.assert_allclose(delta, _fd_delta(act, z, dA, be), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, deriv", [
    ("identity", lambda z: np.ones_like(z)),
    ("sigmoid", lambda z: (1 / (1 + np.exp(-z))) * (1 - 1 / (1 + np.exp(-z)))),
    ("tanh", lambda z: 1 - np.tanh(z) ** 2),
    ("relu", lambda z: (z > 0).astype(np.float64)),
])
def test_elementwise_derivative_formulas(be, name, deriv, rng):
    z = _z(rng)
    act = nb.activations.get(name)
    zb = be.asarray(z, "float64")
    ones = be.asarray(np.ones_like(z), "float64")
    got = be.host(act.backward(ones, zb, act.forward(zb, be.xp), be.xp))
    np.testing.assert_allclose(got, deriv(z), rtol=1e-13, atol=1e-15)


def test_leaky_relu_slope_used(be):
    act = A.LeakyReLU(0.3)
    z = be.asarray([[-1.0, 2.0]], "float64")
    dA = be.asarray([[10.0, 10.0]], "float64")
    assert be.host(act.backward(dA, z, act.forward(z, be.xp), be.xp)).tolist() == [[3.0, 10.0]]
    assert act.config() == {"name": "leaky_relu", "slope": 0.3}
    assert nb.activations.get({"name": "leaky_relu", "slope": 0.3}) == act
    assert A.LeakyReLU().slope == 0.01


@pytest.mark.parametrize("slope", [-0.1, 1.0, 2.0])
def test_leaky_relu_bad_slope(slope):
    with pytest.raises(ValueError, match=r"slope must be in \[0, 1\)"):
        A.LeakyReLU(slope)


@pytest.mark.parametrize("name", ["step", "heaviside", "Heaviside"])
def test_step_refused(name):
    with pytest.raises(ValueError, match="no useful derivative"):
        nb.activations.get(name)
    with pytest.raises(ValueError, match="no useful derivative"):
        nb.Dense(2, 2, activation=name)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swishy'") as info:
        nb.activations.get("swishy")
    for valid in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"):
        assert valid in str(info.value)


def test_get_round_trips_and_defaults():
    assert isinstance(nb.activations.get(None), A.Identity)
    for act in ALL:
        assert nb.activations.get(act.config()) == act
        assert nb.activations.get(act) is act
    assert isinstance(nb.activations.get("TANH"), A.Tanh)
    with pytest.raises(TypeError, match="activation must be a name"):
        nb.activations.get(3)
