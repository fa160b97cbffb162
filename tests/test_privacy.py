"""Per-example gradient norms (Dense: ||x||^2 ||delta||^2 + ||delta||^2) and DP-SGD, against an
explicit per-example loop (one row at a time, seed 001's form), and the accountant's epsilon."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop.privacy import DPSGD


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * 2
    y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1).astype(np.int64))
    return X, y


def _net(be, acts=("tanh", "relu"), seed=0):
    return nb.Sequential([nb.Dense(3, 5, acts[0]), nb.Dense(5, 4, acts[1]), nb.Dense(4, 3)], xp=be.xp,
                         device=be.device, dtype="float64", seed=seed)


def _flat(arrays):
    return np.concatenate([np.asarray(nb._compat.to_host(a)).ravel() for a in arrays])


def _per_example_grads(be, model, X, y, loss):
    """Each row's own gradient, one row at a time (the per-example loop): (N, P) on the host."""
    out = []
    for i in range(X.shape[0]):
        model.value_and_grad(be.asarray(X[i:i + 1], "float64"), be.asarray(y[i:i + 1]), loss)
        out.append(_flat(model.gradients()))
    return np.stack(out)


@pytest.mark.parametrize("acts", [("tanh", "relu"), ("sigmoid", "leaky_relu")])
def test_per_example_norms_equal_the_loop(be, acts):
    X, y = _data()
    m = _net(be, acts)
    loss = nb.losses.SoftmaxCrossEntropy()
    norms = be.host(nb.per_example.grad_norms(m, be.asarray(X, "float64"), be.asarray(y), loss))
    ref = np.linalg.norm(_per_example_grads(be, m, X, y, loss), axis=1)
    assert norms.shape == (20,)
    np.testing.assert_allclose(norms, ref, rtol=1e-12, atol=0)


def test_per_example_norms_regression_losses(be):
    X, _ = _data()
    T = np.stack([X[:, 0], X[:, 1] * X[:, 2], np.cos(X[:, 0])], axis=1)
    m = _net(be)
    for loss in (nb.losses.MSE(), nb.losses.Huber(0.5), nb.losses.Pinball(0.8)):
        norms = be.host(nb.per_example.grad_norms(m, be.asarray(X, "float64"), be.asarray(T, "float64"), loss))
        rows = []
        for i in range(20):
            m.value_and_grad(be.asarray(X[i:i + 1], "float64"), be.asarray(T[i:i + 1], "float64"), loss)
            rows.append(np.linalg.norm(_flat(m.gradients())))
        np.testing.assert_allclose(norms, rows, rtol=1e-12, atol=0)


def _dp_fit(be, m, X, y, dp, lr=0.5, epochs=1, batch_size=None, l2=0.0):
    return m.fit(be.asarray(X, "float64"), be.asarray(y), loss=nb.losses.SoftmaxCrossEntropy(l2=l2),
                 optimizer=nb.optim.SGD(lr), epochs=epochs, batch_size=batch_size, shuffle=False,
                 progress=False, dp=dp)


@pytest.mark.parametrize("C", [0.05, 0.5, 100.0])
def test_dp_sgd_without_noise_equals_the_clip_and_sum_loop(be, C):
    X, y = _data()
    m, ref = _net(be), _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    lr, B = 0.5, 10
    start = _flat(ref.parameters())
    p = start.copy()
    for s in range(0, 20, B):  # two batches of the loop, the weights set between them
        ref.set_parameters(_unflat(be, ref, p))
        g = _per_example_grads(be, ref, X[s:s + B], y[s:s + B], loss)
        c = np.minimum(1.0, C / np.linalg.norm(g, axis=1))
        p = p - lr * (c[:, None] * g).sum(axis=0) / B
    _dp_fit(be, m, X, y, DPSGD(clip=C, noise=0.0), lr=lr, batch_size=B)
    np.testing.assert_allclose(_flat(m.parameters()), p, rtol=0, atol=1e-10)
    if C < 1:
        assert np.abs(p - start).max() <= 2 * lr * C + 1e-12  # each batch moved at most lr C


def _unflat(be, model, p):
    out, i = [], 0
    for q in model.parameters():
        n = math.prod(q.shape)
        out.append(be.asarray(p[i:i + n].reshape(tuple(q.shape)), "float64"))
        i += n
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dp_noise_is_sigma_C_times_the_seeds_normals(be, dtype):
    X, y = _data()
    C, sigma, lr, seed = 0.5, 1.3, 0.1, 7

    def net():
        return nb.Sequential([nb.Dense(3, 5, "tanh"), nb.Dense(5, 3)], xp=be.xp, device=be.device, dtype=dtype,
                             seed=0)

    quiet, noisy = net(), net()
    for m, dp in ((quiet, DPSGD(C, 0.0)), (noisy, DPSGD(C, sigma, seed=seed))):
        m.fit(be.asarray(X, dtype), be.asarray(y), loss="softmax_cross_entropy", optimizer=nb.optim.SGD(lr),
              shuffle=False, progress=False, dp=dp)
    # the same seed's stream, drawn by a fresh net's store into its zero gradients: xi (by parameter)
    ref = net()
    ref.store.add_noise(DPSGD(C, sigma, seed=seed).normals, 1.0)
    xi = _flat([ref.store.grads[name] for name in ref.store.names]).astype(np.float64)
    diff = _flat(noisy.parameters()).astype(np.float64) - _flat(quiet.parameters())
    np.testing.assert_allclose(diff, -lr * sigma * C * xi / 20, rtol=0, atol=1e-12 if dtype == "float64" else 2e-6)
    assert np.abs(diff).max() > 1e-3


def test_dp_refuses_a_layer_that_is_not_separable(be):
    class UnmarkedScale(nb.Layer):  # mixes nothing, but is not marked separable: refused
        def __init__(self, n):
            self.n_in = self.n_out = n

        def param_shapes(self):
            return {"s": (self.n_in,)}

        def init_params(self, rng):
            return {"s": np.ones(self.n_in)}

        def forward(self, X, ctx, ws):
            if ctx is not None:
                ctx["X"] = X
            return X * self.params["s"]

        def backward(self, dA, ctx, ws, *, input_grad):
            self.grads["s"] = self.xp.sum(dA * ctx["X"], axis=0)
            return dA * self.params["s"]

    m = nb.Sequential([nb.Dense(3, 4, "tanh"), UnmarkedScale(4), nb.Dense(4, 3)], xp=be.xp, device=be.device,
                      dtype="float64", seed=0)
    X, y = _data()
    before = _flat(m.parameters())
    with pytest.raises(ValueError, match=r"layer 1 \(UnmarkedScale\) is not marked per_example_separable"):
        _dp_fit(be, m, X, y, DPSGD(1.0, 1.0))
    with pytest.raises(ValueError, match="per_example_separable"):
        nb.per_example.grad_norms(m, be.asarray(X, "float64"), be.asarray(y), "softmax_cross_entropy")
    assert m.optimizer is None
    np.testing.assert_array_equal(_flat(m.parameters()), before)


@pytest.mark.parametrize("kw, match", [({"clip_norm": 1.0}, "without clip_norm"),
                                       ({"sample_weight": None, "class_weight": "balanced"}, "class_weight")])
def test_dp_refuses_other_clipping_and_weights(be, kw, match):
    X, y = _data()
    m = _net(be)
    with pytest.raises(ValueError, match=match):
        m.fit(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy", optimizer="sgd",
              progress=False, dp=DPSGD(1.0, 1.0), **kw)
    with pytest.raises(ValueError, match="clip"):
        DPSGD(0.0, 1.0)
    with pytest.raises(ValueError, match="noise"):
        DPSGD(1.0, -1.0)
    with pytest.raises(ValueError, match="sampling"):
        DPSGD(1.0, 1.0, sampling="uniform")


def test_poisson_batches(be):
    X, y = _data(n=200)
    dp = DPSGD(1.0, 1.0, sampling="poisson", seed=3)
    idx, spans = dp.poisson_batches(200, 20)
    assert len(spans) == 10 and spans[-1][1] == idx.shape[0]
    assert 0.6 * 200 < idx.shape[0] < 1.4 * 200  # 10 steps of about 20 rows
    m, used = _net(be), DPSGD(1.0, 0.5, sampling="poisson", seed=3)
    h = m.fit(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy", optimizer=nb.optim.SGD(0.1),
              epochs=2, batch_size=20, progress=False, dp=used)
    assert used.steps == 20 and np.all(np.isfinite(_flat(m.parameters()))) and len(h["loss"]) == 2


def test_epsilon_in_history_from_dp_accounting(be):
    dp_accounting = pytest.importorskip("dp_accounting", reason="the 'dp' extra (dp-accounting) is not installed")
    X, y = _data(n=100)
    m = _net(be)
    dp = DPSGD(1.0, 1.1, delta=1e-5, seed=0)
    h = _dp_fit(be, m, X, y, dp, lr=0.1, epochs=3, batch_size=10)
    assert dp.steps == 30
    eps = h["epsilon"]
    assert eps[0] < eps[1] < eps[2]
    # the same budget from dp-accounting's other accountant (PLD): within a few percent, never far below
    pld = dp_accounting.pld.PLDAccountant()
    pld.compose(dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(1.1)), 30)
    assert pld.get_epsilon(1e-5) <= eps[2] <= 1.5 * pld.get_epsilon(1e-5)
    assert DPSGD(1.0, 0.0, delta=1e-5).epsilon(10, 0.1) == math.inf


def test_epsilon_counts_only_the_training_rows(be):
    pytest.importorskip("dp_accounting", reason="the 'dp' extra (dp-accounting) is not installed")
    X, y = _data(n=100)
    a = _net(be)
    da = DPSGD(1.0, 1.1, delta=1e-5, seed=0)
    ha = a.fit(be.asarray(X, "float64"), be.asarray(y), loss="softmax_cross_entropy", optimizer=nb.optim.SGD(0.1),
               batch_size=10, epochs=2, progress=False, dp=da, validation_split=0.2)
    assert da.steps == 16  # 80 training rows in batches of 10, two epochs
    assert ha["epsilon"][-1] == da.epsilon(16, 10 / 80)
    assert da.epsilon(16, 10 / 100) < ha["epsilon"][-1]  # a smaller rate would have been too kind


def test_resume_refuses_a_dpsgd_that_has_not_taken_the_runs_steps(be):
    """A resumed DP run with a fresh DPSGD would report epsilon for the resumed steps only and,
    seeded alike, draw the first steps' noise again: refused before any change. The run's own
    DPSGD (after an interrupt) resumes, and its epsilon counts every step."""
    pytest.importorskip("dp_accounting", reason="the 'dp' extra (dp-accounting) is not installed")
    X, y = _data(n=40)
    kw = dict(loss="softmax_cross_entropy", batch_size=10, seed=1, progress=False)
    m = _net(be)
    dp = DPSGD(1.0, 1.1, delta=1e-5, seed=0)
    m.fit(be.asarray(X, "float64"), be.asarray(y), optimizer=nb.optim.SGD(0.1), epochs=1, dp=dp, **kw)
    assert m.fit_state["dp_steps"] == 4
    before = _flat(m.parameters())
    with pytest.raises(ValueError, match="4 DP-SGD steps"):
        m.fit(be.asarray(X, "float64"), be.asarray(y), optimizer=m.optimizer, epochs=1, resume=True,
              dp=DPSGD(1.0, 1.1, delta=1e-5, seed=0), **kw)
    np.testing.assert_array_equal(_flat(m.parameters()), before)
    h = m.fit(be.asarray(X, "float64"), be.asarray(y), optimizer=m.optimizer, epochs=1, resume=True, dp=dp, **kw)
    assert dp.steps == 8 and h["epsilon"][-1] == dp.epsilon(8, 10 / 40)


def test_dp_refuses_batch_norm_by_name(be):
    m = nb.mlp([3, 5, 3], "tanh", norm="batch", xp=be.xp, device=be.device, dtype="float64", seed=0)
    X, y = _data()
    before = _flat(m.parameters())
    with pytest.raises(ValueError, match=r"layer 1 \(BatchNorm\) is not marked per_example_separable"):
        _dp_fit(be, m, X, y, DPSGD(1.0, 1.0), batch_size=10)
    assert m.optimizer is None
    np.testing.assert_array_equal(_flat(m.parameters()), before)


def test_epsilon_composes_fits_at_different_sampling_rates(be):
    """One DPSGD through two fits (batches of 50, then of 10, of 100 rows): History's epsilon is the
    composition of 2 steps at q = 0.5 and 10 at q = 0.1, not 12 steps at the last rate."""
    dpa = pytest.importorskip("dp_accounting", reason="the 'dp' extra (dp-accounting) is not installed")
    X, y = _data(n=100)
    m = _net(be)
    dp = DPSGD(1.0, 1.1, delta=1e-5, seed=0)
    _dp_fit(be, m, X, y, dp, lr=0.1, batch_size=50)
    h = _dp_fit(be, m, X, y, dp, lr=0.1, batch_size=10)
    assert dp.steps == 12
    pld = dpa.pld.PLDAccountant()
    pld.compose(dpa.PoissonSampledDpEvent(0.5, dpa.GaussianDpEvent(1.1)), 2)
    pld.compose(dpa.PoissonSampledDpEvent(0.1, dpa.GaussianDpEvent(1.1)), 10)
    assert pld.get_epsilon(1e-5) <= h["epsilon"][-1] <= 1.5 * pld.get_epsilon(1e-5)
    assert h["epsilon"][-1] > dp.epsilon(12, 0.1)
