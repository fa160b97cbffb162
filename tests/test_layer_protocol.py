"""A layer written by a user, against the documented protocol (nb.Layer), gets the
flat store, every optimizer, checkpoints, gradient_check, .to() and every backend
without further code: the README's example, checked here."""

from __future__ import annotations

import numpy as np
import pytest
from test_optim import KINDS as OPTIMIZERS

import nnbackprop as nb
from nnbackprop import _compat


class Scale(nb.Layer):
    """A = X * s: an elementwise learnable scale, s (n,) (the README's example)."""

    def __init__(self, n):
        self.n_in = self.n_out = n

    def param_shapes(self):
        return {"s": (self.n_in,)}

    def init_params(self, rng):
        return {"s": 1.0 + 0.1 * rng.standard_normal(self.n_in)}

    def forward(self, X, ctx, ws):
        if ctx is not None:
            ctx["X"] = X
        return X * self.params["s"]

    def backward(self, dA, ctx, ws, *, input_grad):
        self.grads["s"] = self.xp.sum(dA * ctx["X"], axis=0)  # a new array: the model copies it into its view
        return dA * self.params["s"] if input_grad else None

    def config(self):
        return {"type": "Scale", "n": self.n_in}


def _net(be, dtype="float64", seed=3):
    return nb.Sequential([nb.Dense(4, 6, "tanh"), Scale(6), nb.Dense(6, 3)],
                         xp=be.xp, dtype=dtype, device=be.device, seed=seed)


def _data(be, rng=None, dtype="float64"):
    rng = rng or np.random.default_rng(0)
    return be.asarray(rng.standard_normal((12, 4)), dtype), be.asarray(rng.integers(0, 3, 12), "int64")


def _host(arrays, be):
    return [be.host(a).copy() for a in arrays]


def test_parameters_by_name_in_layer_order(be):
    model = _net(be)
    assert [n for n, _ in model.named_parameters()] == ["0.W", "0.b", "1.s", "2.W", "2.b"]
    # drawn from the model's seeded host generator, after the first layer's weights
    rng = np.random.default_rng(3)
    model.layers[0].init(rng, 4, 6)
    np.testing.assert_array_equal(be.host(model.layers[1].params["s"]), 1.0 + 0.1 * rng.standard_normal(6))


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradient_check_through_the_user_layer(be, l2):
    X, T = _data(be)
    assert nb.gradient_check(_net(be), nb.losses.SoftmaxCrossEntropy(l2=l2), X, T) < 1e-7


def test_the_penalty_spares_the_user_layer(be):
    """L2 applies to the parameters each layer names in ``decay``: Dense's W, not s."""
    X, T = _data(be)
    plain, penalised = _net(be), _net(be)
    J0 = float(plain.value_and_grad(X, T, nb.losses.SoftmaxCrossEntropy()))
    J1 = float(penalised.value_and_grad(X, T, nb.losses.SoftmaxCrossEntropy(l2=0.1)))
    W = [be.host(penalised.layers[i].W) for i in (0, 2)]
    assert J1 == pytest.approx(J0 + 0.05 * sum(float(np.sum(w * w)) for w in W), rel=1e-12)
    g0, g1 = dict(zip([n for n, _ in plain.named_parameters()], _host(plain.gradients(), be))), \
        dict(zip([n for n, _ in penalised.named_parameters()], _host(penalised.gradients(), be)))
    np.testing.assert_array_equal(g1["1.s"], g0["1.s"])
    np.testing.assert_allclose(g1["0.W"], g0["0.W"] + 0.1 * W[0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_every_optimizer_equals_the_per_parameter_update(be, kind):
    """train_step (the flat update where the backend writes in place) gives bit for bit
    the pure per-parameter ``update``, the user layer's parameter included."""
    X, T = _data(be)
    loss = nb.losses.SoftmaxCrossEntropy(l2=0.01)
    model, opt = _net(be), OPTIMIZERS[kind]()
    for _ in range(4):
        model.train_step(X, T, loss, opt)
    ref, ref_opt = _net(be), OPTIMIZERS[kind]()
    state = ref_opt.init(ref.parameters())
    for _ in range(4):
        ref.value_and_grad(X, T, loss)
        params, state = ref_opt.update(ref.parameters(), ref.gradients(), state)
        ref.set_parameters(params)
    for a, b in zip(_host(model.parameters(), be), _host(ref.parameters(), be), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_round_trip_and_to(be, tmp_path):
    X, T = _data(be)
    model = _net(be)
    model.fit(X, T, loss="softmax_cross_entropy", optimizer=nb.optim.Adam(0.01), epochs=3, batch_size=5,
              seed=1, progress=False)
    want = be.host(model.predict(X)).copy()
    path = model.save(tmp_path / "scale.npz")
    back = nb.load(path, xp=be.xp, device=be.device)
    assert isinstance(back.layers[1], Scale) and back.config() == model.config()
    np.testing.assert_array_equal(be.host(back.predict(X)), want)
    # training goes on from the saved optimizer state exactly as the original does
    for m in (model, back):
        m.fit(X, T, loss="softmax_cross_entropy", optimizer=m.optimizer, epochs=1, batch_size=5, seed=2,
              progress=False)
    for a, b in zip(_host(model.parameters(), be), _host(back.parameters(), be), strict=True):
        np.testing.assert_array_equal(a, b)
    model.to("numpy")
    assert all(isinstance(p, np.ndarray) for p in model.parameters())
    np.testing.assert_allclose(model.predict(np.asarray(be.host(X))),
                               be.host(back.predict(X)), rtol=1e-12, atol=1e-14)
    model.to(be.xp, be.device)
    assert _compat.namespace_of(model.layers[1].params["s"]) is be.xp
    np.testing.assert_array_equal(be.host(model.predict(X)), be.host(back.predict(X)))


def test_unknown_layer_type_in_a_config_is_refused():
    with pytest.raises(ValueError, match="unknown layer type 'Nope'.*Dense"):
        nb.Sequential.from_config({"layers": [{"type": "Nope"}]})


def test_init_params_must_match_param_shapes():
    class Bad(Scale):
        def init_params(self, rng):
            return {"s": np.ones(self.n_in + 1)}

    with pytest.raises(ValueError, match=r"init_params gave s of shape \(5,\), param_shapes declares \(4,\)"):
        nb.Sequential([Bad(4)])
