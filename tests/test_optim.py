"""Optimizers on every backend, against updates computed here in NumPy from the formulas."""

import json

import numpy as np
import pytest

import nnbackprop as nb
import nnbackprop.optim as optim
from nnbackprop import _compat
from nnbackprop import schedules as S

# Two parameters (W (2, 3), b (3,)) and their gradients at two steps.
P0 = [np.array([[0.5, -1.0, 2.0], [0.25, 0.0, -0.75]]), np.array([0.1, -0.2, 0.3])]
G = [
    [np.array([[0.1, -0.2, 0.3], [-0.4, 0.5, 0.0]]), np.array([1.0, -0.5, 0.25])],
    [np.array([[-0.3, 0.1, 0.2], [0.6, -0.1, 0.0]]), np.array([0.5, 0.5, -1.0])],
]


# --- references: each formula written out once more, in float64 NumPy --------------
def ref_sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    def run(P, grads):
        P, V = [p.copy() for p in P], [np.zeros_like(p) for p in P]
        for t, gs in enumerate(grads):
            for i, g in enumerate(gs):
                g = g + weight_decay * P[i]
                V[i] = momentum * V[i] - lr(t) * g
                P[i] = P[i] + momentum * V[i] - lr(t) * g if nesterov else P[i] + V[i]
        return P, {"velocity": V} if momentum else {}
    return run


def ref_adagrad(lr, eps=1e-10):
    def run(P, grads):
        P, Gs = [p.copy() for p in P], [np.zeros_like(p) for p in P]
        for t, gs in enumerate(grads):
            for i, g in enumerate(gs):
                Gs[i] = Gs[i] + g ** 2
                P[i] = P[i] - lr(t) * g / (np.sqrt(Gs[i]) + eps)
        return P, {"sum_sq": Gs}
    return run


def ref_rmsprop(lr, rho=0.9, eps=1e-8):
    def run(P, grads):
        P, Sq = [p.copy() for p in P], [np.zeros_like(p) for p in P]
        for t, gs in enumerate(grads):
            for i, g in enumerate(gs):
                Sq[i] = rho * Sq[i] + (1 - rho) * g ** 2
                P[i] = P[i] - lr(t) * g / (np.sqrt(Sq[i]) + eps)
        return P, {"sq_avg": Sq}
    return run


def ref_adam(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    def run(P, grads):
        P = [p.copy() for p in P]
        M, V = [np.zeros_like(p) for p in P], [np.zeros_like(p) for p in P]
        for t, gs in enumerate(grads):
            n = t + 1
            for i, g in enumerate(gs):
                M[i] = beta1 * M[i] + (1 - beta1) * g
                V[i] = beta2 * V[i] + (1 - beta2) * g ** 2
                mhat, vhat = M[i] / (1 - beta1 ** n), V[i] / (1 - beta2 ** n)
                P[i] = P[i] - lr(t) * (mhat / (np.sqrt(vhat) + eps) + weight_decay * P[i])
        return P, {"m": M, "v": V}
    return run


def const(x):
    return lambda t: x


CASES = {
    "sgd": (lambda: optim.SGD(0.1), ref_sgd(const(0.1))),
    "sgd_momentum": (lambda: optim.SGD(0.1, momentum=0.9), ref_sgd(const(0.1), 0.9)),
    "sgd_nesterov": (lambda: optim.SGD(0.1, momentum=0.8, nesterov=True), ref_sgd(const(0.1), 0.8, True)),
    "sgd_wd": (lambda: optim.SGD(0.1, weight_decay=0.05), ref_sgd(const(0.1), weight_decay=0.05)),
    "sgd_momentum_wd": (lambda: optim.SGD(0.1, momentum=0.9, weight_decay=0.05),
                        ref_sgd(const(0.1), 0.9, weight_decay=0.05)),
    "sgd_nesterov_wd": (lambda: optim.SGD(0.05, momentum=0.5, nesterov=True, weight_decay=0.1),
                        ref_sgd(const(0.05), 0.5, True, 0.1)),
    "adagrad": (lambda: optim.Adagrad(0.5), ref_adagrad(const(0.5))),
    "rmsprop": (lambda: optim.RMSprop(0.01, rho=0.8, eps=1e-6), ref_rmsprop(const(0.01), 0.8, 1e-6)),
    "adam": (lambda: optim.Adam(0.01), ref_adam(const(0.01))),
    "adam_betas": (lambda: optim.Adam(0.1, beta1=0.5, beta2=0.75, eps=1e-3),
                   ref_adam(const(0.1), 0.5, 0.75, 1e-3)),
    "adamw": (lambda: optim.AdamW(0.01, weight_decay=0.1), ref_adam(const(0.01), weight_decay=0.1)),
    "sgd_stepdecay": (lambda: optim.SGD(S.StepDecay(0.1, step_size=1, factor=0.5), momentum=0.9),
                      ref_sgd(lambda t: 0.1 * 0.5 ** t, 0.9)),
    "adam_cosine": (lambda: optim.Adam(S.Cosine(0.1, total_steps=2)),
                    ref_adam(lambda t: 0.1 * (1 + np.cos(np.pi * t / 2)) / 2)),
    "rmsprop_invscaling": (lambda: optim.RMSprop(S.InverseScaling(0.1)),
                           ref_rmsprop(lambda t: 0.1 / np.sqrt(t + 1))),
}
KINDS = {  # one of each optimizer, for the behaviour tests
    "sgd": lambda: optim.SGD(0.1),
    "sgd_nesterov_wd": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adagrad": lambda: optim.Adagrad(0.1),
    "rmsprop": lambda: optim.RMSprop(0.01),
    "adam": lambda: optim.Adam(0.01),
    "adamw": lambda: optim.AdamW(0.01, weight_decay=0.01),
}


def _host(xs):
    return [np.array(_compat.to_host(x)) for x in xs]


def _net(be, dtype="float64", seed=0):
    return nb.Sequential([nb.Dense(2, 6, "tanh"), nb.Dense(6, 1)], xp=be.xp, device=be.device, dtype=dtype, seed=seed)


def _data(be, dtype="float64", n=32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    T = np.sin(X[:, :1]) + 0.5 * X[:, 1:] ** 2
    return be.asarray(X, dtype), be.asarray(T, dtype)


# --- the update rules -----------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_two_steps_match_formulas(be, case):
    make, ref = CASES[case]
    opt = make()
    params = [be.asarray(p, "float64") for p in P0]
    state = opt.init(params)
    for gs in G:
        params, state = opt.update(params, [be.asarray(g, "float64") for g in gs], state)
    want_p, want_slots = ref(P0, G)
    assert state.t == 2 and set(state.slots) == set(want_slots)
    for got, want in zip(_host(params), want_p, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    for k, want in want_slots.items():
        for got, w in zip(_host(state.slots[k]), want, strict=True):
            np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-15)


def test_pinned_numbers(be):
    """Worked by hand: momentum W = 1, g = 0.5 twice, lr 0.1, mu 0.9; Adam's first step ~ -lr sign(g)."""
    opt = optim.SGD(0.1, momentum=0.9)
    p, st = [be.asarray(np.array([1.0]), "float64")], None
    st = opt.init(p)
    p, st = opt.update(p, [be.asarray(np.array([0.5]), "float64")], st)
    assert _host(p)[0][0] == pytest.approx(0.95, abs=1e-15)             # V = -0.05
    p, st = opt.update(p, [be.asarray(np.array([0.5]), "float64")], st)
    assert _host(st.slots["velocity"])[0][0] == pytest.approx(-0.095, abs=1e-15)
    assert _host(p)[0][0] == pytest.approx(0.855, abs=1e-15)
    adam = optim.Adam(0.001)
    p = [be.asarray(np.array([1.0, 1.0]), "float64")]
    p, _ = adam.update(p, [be.asarray(np.array([3.0, -0.02]), "float64")], adam.init(p))
    np.testing.assert_allclose(_host(p)[0], [0.999, 1.001], rtol=1e-9)


@pytest.mark.parametrize("kind", list(KINDS))
def test_update_never_mutates(be, kind):
    opt = KINDS[kind]()
    params = [be.asarray(p, "float64") for p in P0]
    grads = [be.asarray(g, "float64") for g in G[0]]
    state = opt.init(params)
    params, state = opt.update(params, grads, state)
    before = (_host(params), _host(grads), {k: _host(v) for k, v in state.slots.items()}, state.t)
    new_params, new_state = opt.update(params, grads, state)
    assert new_state is not state and state.t == before[3] and new_state.t == before[3] + 1
    for a, b in zip(_host(params) + _host(grads), before[0] + before[1], strict=True):
        np.testing.assert_array_equal(a, b)
    for k, v in state.slots.items():
        for a, b in zip(_host(v), before[2][k], strict=True):
            np.testing.assert_array_equal(a, b)
    assert all(n is not p for n, p in zip(new_params, params, strict=True))


def _slot_ids(opt):
    return [id(a) for v in (opt.state.slots.values() if opt.state else ()) for a in v]


@pytest.mark.parametrize("kind", list(KINDS))
def test_inplace_equals_functional(be, kind):
    if not be.spec.writeable:
        pytest.skip(f"{be.name} arrays are not updated in place")
    X, T = _data(be)
    loss = nb.losses.MSE()
    runs = {}
    for inplace in (True, False):
        model, opt = _net(be), KINDS[kind]()
        for _ in range(3):
            model.value_and_grad(X, T, loss)
            before = _slot_ids(opt)
            opt.step(model, inplace=inplace)
            if before:  # in place keeps the state's buffers; the functional path makes new ones
                assert (_slot_ids(opt) == before) is inplace
        runs[inplace] = (_host(model.parameters()), {k: _host(v) for k, v in opt.state.slots.items()})
    (p1, s1), (p2, s2) = runs[True], runs[False]
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    for k in s1:
        for a, b in zip(s1[k], s2[k], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_step_picks_a_path(be):
    """Writeable arrays: the default step works in place. Otherwise (array-api-strict,
    a read-only NumPy array) it builds new arrays, and inplace=True is refused."""
    X, T = _data(be)
    model, opt = _net(be), optim.Adam(0.01)
    if type(model.parameters()[0]) is np.ndarray:  # NumPy's may be made read-only: take that branch
        for p in model.parameters():
            p.setflags(write=False)
    model.value_and_grad(X, T, nb.losses.MSE())
    ids = [id(p) for p in model.parameters()]
    if _compat.is_writeable(model.parameters()[0]):
        opt.step(model)
        assert [id(p) for p in model.parameters()] == ids
    else:
        with pytest.raises(ValueError, match="read-only"):
            opt.step(model, inplace=True)
        opt.step(model)
        assert all(i != id(p) for i, p in zip(ids, model.parameters(), strict=True))
        assert opt.state.t == 1


# --- state ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["sgd_nesterov_wd", "adagrad", "rmsprop", "adam"])
def test_state_arrays_follow_the_model(be, kind, dtype):
    if not be.has(dtype):
        pytest.skip(f"{be.name} has no {dtype}")
    model, opt = _net(be, dtype), KINDS[kind]()
    assert opt.state is None
    model.train_step(*_data(be, dtype), nb.losses.MSE(), opt)
    assert opt.state.t == 1 and set(opt.state.slots) == set(opt.slot_names)
    for arrays in opt.state.slots.values():
        assert len(arrays) == len(model.parameters())
        for a, p in zip(arrays, model.parameters(), strict=True):
            assert _compat.namespace_of(a) is model.xp
            assert _compat.device_of(a) == _compat.device_of(p)
            assert a.dtype == model.dtype and tuple(a.shape) == tuple(p.shape)
    for p in model.parameters():
        assert p.dtype == model.dtype


@pytest.mark.parametrize("kind", list(KINDS) + ["adam_plateau"])
def test_state_dict_round_trip(be, kind):
    make = KINDS.get(kind) or (lambda: optim.Adam(S.ReduceOnPlateau(0.01, patience=0)))
    X, T = _data(be)
    loss = nb.losses.MSE()
    model, opt = _net(be), make()
    empty = opt.state_dict()
    assert empty["t"] == 0 and empty["slots"] == {}
    for _ in range(3):
        model.train_step(X, T, loss, opt)
    if kind == "adam_plateau":
        opt.lr.observe(1.0)
        opt.lr.observe(2.0)  # lowers the lr: the schedule's state must travel too
    sd = opt.state_dict()
    json.dumps(sd["config"])
    assert sd["name"] == opt.name and sd["t"] == 3 and set(sd["slots"]) == set(opt.slot_names)
    saved_params, saved_slots = _host(model.parameters()), {k: _host(v) for k, v in sd["slots"].items()}

    for _ in range(2):
        model.train_step(X, T, loss, opt)
    for k, v in sd["slots"].items():  # copies: later (in-place) steps leave them alone
        for a, b in zip(_host(v), saved_slots[k], strict=True):
            np.testing.assert_array_equal(a, b)

    other = optim.get(json.loads(json.dumps(sd["config"])))
    other.load_state_dict(sd)
    assert other.config() == sd["config"] and other.state.t == 3
    twin = _net(be)
    twin.set_parameters([be.asarray(p, "float64") for p in saved_params])
    for _ in range(2):
        twin.train_step(X, T, loss, other)
    for a, b in zip(_host(twin.parameters()), _host(model.parameters()), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert other.state_dict()["config"] == opt.state_dict()["config"]

    fresh = make()
    fresh.load_state_dict(empty)
    assert fresh.state is None


def test_load_state_dict_refuses_mismatches(be):
    model, opt = _net(be), optim.Adam()
    model.train_step(*_data(be), nb.losses.MSE(), opt)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="'adam' cannot be loaded into 'sgd'"):
        optim.SGD().load_state_dict(sd)
    with pytest.raises(ValueError, match="needs slots \\['m', 'v'\\]"):
        optim.Adam().load_state_dict({**sd, "slots": {"m": sd["slots"]["m"]}})
    with pytest.raises(ValueError, match="differ in length"):
        optim.Adam().load_state_dict({**sd, "slots": {"m": sd["slots"]["m"], "v": sd["slots"]["v"][:1]}})
    with pytest.raises(ValueError, match="t must be"):
        optim.Adam().load_state_dict({**sd, "t": -1})


def test_snapshot_restore(be):
    X, T = _data(be)
    model, opt = _net(be), optim.RMSprop(0.01)
    snap0 = opt.snapshot()
    model.train_step(X, T, nb.losses.MSE(), opt)
    snap = opt.snapshot()
    want = _host(opt.state.slots["sq_avg"])
    model.train_step(X, T, nb.losses.MSE(), opt)
    opt.restore(snap)
    assert opt.state.t == 1
    for a, b in zip(_host(opt.state.slots["sq_avg"]), want, strict=True):
        np.testing.assert_array_equal(a, b)
    opt.restore(snap0)
    assert opt.state is None


def test_to_moves_state(be):
    X, T = _data(be)
    model, opt = _net(be), optim.Adam(0.01)
    model.train_step(X, T, nb.losses.MSE(), opt)
    want = {k: _host(v) for k, v in opt.state.slots.items()}
    assert opt.to("numpy") is opt
    for k, v in opt.state.slots.items():
        for a, w in zip(v, want[k], strict=True):
            assert isinstance(a, np.ndarray) and a.dtype == w.dtype
            np.testing.assert_array_equal(a, w)
    if model.xp is not _compat.namespace(np):  # the state now lives in another library than the model
        model.value_and_grad(X, T, nb.losses.MSE())
        with pytest.raises(TypeError, match="state lives in"):
            opt.step(model)
    opt.to(be.xp, be.device)
    for a in opt.state.slots["m"]:
        assert _compat.namespace_of(a) is be.xp and a.dtype == model.dtype
    model.optimizer = opt  # model.to moves the optimizer's state along
    model.to("numpy")
    assert all(isinstance(a, np.ndarray) for a in opt.state.slots["v"])
    model.train_step(*(np.asarray(_compat.to_host(a)) for a in (X, T)), nb.losses.MSE(), opt)
    assert opt.state.t == 2


def test_optimizer_from_another_model_is_refused(be):
    X, T = _data(be)
    opt = optim.Adam()
    _net(be).train_step(X, T, nb.losses.MSE(), opt)
    bigger = nb.Sequential([nb.Dense(2, 7, "tanh"), nb.Dense(7, 1)], xp=be.xp, device=be.device,
                           dtype="float64", seed=0)
    with pytest.raises(ValueError, match="reset\\(\\)"):
        bigger.train_step(X, T, nb.losses.MSE(), opt)
    opt.reset()
    bigger.train_step(X, T, nb.losses.MSE(), opt)
    assert opt.state.t == 1


def test_checkpoint_keeps_optimizer_and_schedule(be, tmp_path):
    from nnbackprop import checkpoint
    X, T = _data(be)
    model = _net(be)
    opt = optim.Adam(S.ReduceOnPlateau(0.01, patience=0, min_delta=10.0))
    model.fit(X, T, loss=nb.losses.MSE(), optimizer=opt, epochs=3, progress=False)
    assert opt.lr(0) == pytest.approx(1e-4)  # two epochs without a 10.0 improvement
    path = checkpoint.save(model, tmp_path / "m.npz")
    back = nb.load(path, xp=be.xp, device=be.device)
    got, want = back.optimizer.state_dict(), opt.state_dict()
    assert got["config"] == want["config"] and got["t"] == want["t"]
    for k in want["slots"]:
        for a, b in zip(_host(got["slots"][k]), _host(want["slots"][k]), strict=True):
            np.testing.assert_array_equal(a, b)


# --- training ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_training_lowers_the_loss(be, kind):
    X, T = _data(be)
    model, opt, loss = _net(be), KINDS[kind](), nb.losses.MSE()
    losses = [float(model.train_step(X, T, loss, opt)) for _ in range(150)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


# --- construction --------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: optim.SGD(-0.1), "lr must be a finite number in \\[0, inf\\)"),
    (lambda: optim.SGD(float("nan")), "lr must be"),
    (lambda: optim.SGD(0.1, momentum=1.0), "momentum must be .* \\[0, 1\\)"),
    (lambda: optim.SGD(0.1, momentum=-0.5), "momentum must be"),
    (lambda: optim.SGD(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: optim.SGD(0.1, momentum=0.9, nesterov=1), "nesterov must be True or False"),
    (lambda: optim.SGD(0.1, weight_decay=-1e-4), "weight_decay must be"),
    (lambda: optim.Adagrad(-1.0), "lr must be"),
    (lambda: optim.Adagrad(eps=0.0), "eps must be .* \\(0, inf\\)"),
    (lambda: optim.RMSprop(rho=1.0), "rho must be"),
    (lambda: optim.Adam(-1e-3), "lr must be"),
    (lambda: optim.Adam(beta1=1.0), "beta1 must be .* \\[0, 1\\)"),
    (lambda: optim.Adam(beta1=-0.1), "beta1 must be"),
    (lambda: optim.Adam(beta2=1.5), "beta2 must be"),
    (lambda: optim.AdamW(beta2=1.0), "beta2 must be"),
    (lambda: optim.AdamW(weight_decay=-0.01), "weight_decay must be"),
    (lambda: optim.Adam(S.Cosine(-1.0, 10)), "lr must be"),
    (lambda: optim.get("lbfgs"), "unknown optimizer 'lbfgs'"),
    (lambda: optim.get({"lr": 0.1}), "needs a 'name'"),
    (lambda: optim.get("adam", betas=(0.9, 0.99)), "cannot build optimizer 'adam'"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_get_and_config():
    assert isinstance(optim.get("sgd"), optim.SGD)
    a = optim.get("Adam", lr=0.1)
    assert isinstance(a, optim.Adam) and a.lr(0) == 0.1
    s = optim.SGD(0.1, momentum=0.9)
    assert optim.get(s) is s
    with pytest.raises(TypeError):
        optim.get(s, lr=0.2)
    with pytest.raises(TypeError):
        optim.get(0.1)
    for opt in [optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4), optim.Adagrad(),
                optim.RMSprop(), optim.Adam(S.StepDecay(0.1, 10)), optim.AdamW(weight_decay=0.1),
                optim.SGD(S.ReduceOnPlateau(0.1))]:
        cfg = json.loads(json.dumps(opt.config()))
        again = optim.get(cfg)
        assert type(again) is type(opt) and again.config() == cfg and repr(again) == repr(opt)
    assert optim.SGD(0.1).config() == {"name": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": False,
                                       "weight_decay": 0.0}
    assert repr(optim.Adam(S.Cosine(0.1, 5))).startswith("Adam(lr=Cosine(lr=0.1, total_steps=5")
    assert optim.get({"name": "sgd", "lr": {"name": "step", "lr": 0.5, "step_size": 1}}).lr(1) == 0.05


# --- float16 ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["adam", "adamw", "rmsprop", "adagrad"])
def test_float16_model_trains(be, kind):
    """eps (1e-8, 1e-10) rounds to 0 in float16, and g^2 of a small gradient too:
    without a floor, 0 / 0 on the first step. XOR with a small tanh net learns."""
    if not be.has("float16"):
        pytest.skip(f"{be.name} has no float16")
    X = be.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], "float16")
    T = be.asarray([[0], [1], [1], [0]], "float16")
    model = nb.Sequential([nb.Dense(2, 8, "tanh"), nb.Dense(8, 1, "sigmoid")], xp=be.xp, device=be.device,
                          dtype="float16", seed=0)
    hist = model.fit(X, T, loss="mse", optimizer=optim.get(kind, lr=0.05), epochs=300, progress=False)
    losses = np.array(hist["loss"])
    assert np.all(np.isfinite(losses)) and all(np.all(np.isfinite(p)) for p in _host(model.parameters()))
    assert losses[-1] < 0.25 * losses[0]
    out = _host([model.predict(X)])[0][:, 0].astype(np.float64)
    assert list((out > 0.5).astype(int)) == [0, 1, 1, 0], out


def test_adam_eps_is_floored_at_the_smallest_float16_normal(be):
    """g = 1e-4: g^2 = 1e-8 underflows to 0 in float16, so sqrt(v) = 0 and the
    denominator is eps alone: max(1e-8 sqrt(1 - b2), 2^-14), not 0."""
    if not be.has("float16"):
        pytest.skip(f"{be.name} has no float16")
    p, g = be.asarray([1.0], "float16"), be.asarray([1e-4], "float16")
    opt = optim.Adam(0.01)
    (new,), _ = opt.update([p], [g], opt.init([p]))
    g64 = float(np.float16(1e-4))
    m, rc2, c1 = 0.1 * g64, np.sqrt(1 - 0.999), 0.1
    expected = 1.0 - 0.01 * rc2 / c1 * m / max(1e-8 * rc2, 2.0 ** -14)
    got = float(_host([new])[0][0])
    assert np.isfinite(got) and got == pytest.approx(expected, abs=1e-3)
    assert got < 1.0


def test_restore_puts_back_a_copy(be):
    """restore(snap) twice, with in-place steps between: the snapshot stays as taken."""
    X, T = _data(be)
    model, opt = _net(be), optim.Adam(0.01)
    model.train_step(X, T, nb.losses.MSE(), opt)
    snap = opt.snapshot()
    want = _host(opt.state.slots["m"])
    for _ in range(2):
        model.train_step(X, T, nb.losses.MSE(), opt)
        opt.restore(snap)
        model.train_step(X, T, nb.losses.MSE(), opt)  # in place where it can: on the restored arrays
        opt.restore(snap)
        assert opt.state.t == 1
        for a, b in zip(_host(opt.state.slots["m"]), want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_nesterov_matches_torch_sgd(be):
    """Oracle: torch.optim.SGD(nesterov=True) on the same parameters and gradients."""
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here")
    lr, mu, wd = 0.1, 0.9, 1e-3
    opt = optim.SGD(lr, momentum=mu, nesterov=True, weight_decay=wd)
    params = [be.asarray(p, "float64") for p in P0]
    state = opt.init(params)
    tp = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in P0]
    topt = torch.optim.SGD(tp, lr=lr, momentum=mu, nesterov=True, weight_decay=wd)
    for gs in G + G:  # four steps
        params, state = opt.update(params, [be.asarray(g, "float64") for g in gs], state)
        for p, g in zip(tp, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    for ours, theirs in zip(_host(params), tp):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-14)
