"""The flat store: parameters, gradients and optimizer slots laid end to end, so an
optimizer updates all of them in one go. It must change speed only, never numbers:
every optimizer is checked bit for bit against its pure per-parameter ``update``."""

from __future__ import annotations

import numpy as np
import pytest
from test_optim import KINDS as OPTIMIZERS

import nnbackprop as nb
from nnbackprop import optim


def _net(be):
    return nb.Sequential([nb.Dense(6, 9, "relu"), nb.Dense(9, 7, "tanh"), nb.Dense(7, 3)],
                         xp=be.xp, device=be.device, dtype="float64", seed=3)


def _data(be, rng):
    return be.asarray(rng.standard_normal((20, 6)), "float64"), be.asarray(rng.integers(0, 3, 20), "int64")


def _host(arrays, be):
    return [be.host(a).copy() for a in arrays]


def _reference(be, rng, kind, steps, between=None):
    """The same training with the pure, per-parameter ``update`` (never in place)."""
    X, T = _data(be, rng)
    model, opt = _net(be), OPTIMIZERS[kind]()
    loss = nb.losses.SoftmaxCrossEntropy()
    state = opt.init(model.parameters())
    for k in range(steps):
        if between:
            between(model, k)
        model.value_and_grad(X, T, loss)
        params, state = opt.update(model.parameters(), model.gradients(), state)
        model.set_parameters(params)
    return _host(model.parameters(), be), {s: _host(v, be) for s, v in state.slots.items()}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_flat_update_equals_per_parameter_update(be, kind):
    rng = np.random.default_rng(0)
    X, T = _data(be, rng)
    model, opt = _net(be), OPTIMIZERS[kind]()
    loss = nb.losses.SoftmaxCrossEntropy()
    for _ in range(5):
        model.train_step(X, T, loss, opt)
    params, slots = _reference(be, np.random.default_rng(0), kind, 5)
    for a, b in zip(_host(model.parameters(), be), params, strict=True):
        np.testing.assert_array_equal(a, b)
    for s, v in slots.items():
        for a, b in zip(_host(opt.state.slots[s], be), v, strict=True):
            np.testing.assert_array_equal(a, b)


def test_parameters_gradients_and_slots_tile_one_buffer_each(be):
    """On every backend that writes in place, parameters, gradients and each optimizer
    slot are views tiling one flat buffer each (the layout the one-go update runs on):
    writing 0, 1, 2, ... into a buffer shows up, in order, in its views."""
    rng = np.random.default_rng(4)
    model, opt = _net(be), optim.Adam(0.01)
    model.train_step(*_data(be, rng), nb.losses.SoftmaxCrossEntropy(), opt)
    store = model.store
    assert store.flat == be.spec.writeable
    if not be.spec.writeable:  # separate arrays, replaced at each update
        assert store.flat_params is None and opt._flat is None
        return
    bases = [store.flat_params, store.flat_grads] + list(opt._flat[1])
    groups = [model.parameters(), model.gradients()] + [list(v) for v in opt.state.slots.values()]
    for base, arrays in zip(bases, groups, strict=True):
        assert sum(int(np.prod(a.shape)) for a in arrays) == base.shape[0]
        base[...] = be.xp.arange(base.shape[0], dtype=base.dtype, device=be.device)
        seen = np.sort(np.concatenate([be.host(a).reshape(-1) for a in arrays]))
        np.testing.assert_array_equal(seen, np.arange(base.shape[0]))  # disjoint, and covering it


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_weights_set_mid_training_and_a_plain_backward_keep_the_numbers(be, kind):
    """Setting W, and a user's forward/backward (which makes new gradient arrays)
    between steps: training goes on exactly as the per-parameter reference."""
    rng = np.random.default_rng(1)
    X, T = _data(be, rng)
    W_new = be.asarray(np.random.default_rng(9).standard_normal((9, 7)) * 0.1, "float64")
    loss = nb.losses.SoftmaxCrossEntropy()

    def between(model, k):
        if k == 2:
            model.layers[1].W = W_new

    model, opt = _net(be), OPTIMIZERS[kind]()
    for k in range(5):
        between(model, k)
        if k == 3:  # the public backward: new gradient arrays, then the optimizer's step
            Y = model.forward(X)
            model.backward(loss.grad(Y, T))
            opt.step(model)
        else:
            model.train_step(X, T, loss, opt)
    params, _ = _reference(be, np.random.default_rng(1), kind, 5, between)
    for a, b in zip(_host(model.parameters(), be), params, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(be.host(W_new), np.random.default_rng(9).standard_normal((9, 7)) * 0.1)


def _spy_rule(monkeypatch, opt):
    """Record the shape of the parameter array each call of the optimizer's rule gets."""
    calls = []
    rule = type(opt)._rule

    def spy(self, ax, xp, p, g, slots, lr, n):
        calls.append(tuple(p.shape))
        return rule(self, ax, xp, p, g, slots, lr, n)

    monkeypatch.setattr(type(opt), "_rule", spy)
    return calls


@pytest.mark.parametrize("how", ["fit", "train_step", "own_loop"])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_the_flat_update_ran(be, monkeypatch, how, l2, kind):
    """On every backend that writes in place, each update is ONE call of the rule over
    the whole flat buffer (parameters, gradients, slots), however training is driven:
    fit, train_step, or a user's own forward / backward / optimizer.step loop; with
    and without L2. Elsewhere it runs once per parameter. The numbers are the
    per-parameter reference's either way (checked above and in test_layer_protocol)."""
    rng = np.random.default_rng(5)
    X, T = _data(be, rng)
    model, opt = _net(be), OPTIMIZERS[kind]()
    loss = nb.losses.SoftmaxCrossEntropy(l2=l2)
    calls = _spy_rule(monkeypatch, opt)
    steps = 3
    if how == "fit":
        model.fit(X, T, loss=loss, optimizer=opt, epochs=1, batch_size=7, progress=False)  # 3 batches of 20 rows
    elif how == "train_step":
        for _ in range(steps):
            model.train_step(X, T, loss, opt)
    else:
        for _ in range(steps):
            Y = model.forward(X)
            model.backward(loss.grad(Y, T))
            opt.step(model)
    n = sum(int(np.prod(p.shape)) for p in model.parameters())
    if be.spec.writeable:
        assert calls == [(n,)] * steps
        assert model.store.flat and opt.state.t == steps
    else:
        assert calls == [tuple(p.shape) for p in model.parameters()] * steps
