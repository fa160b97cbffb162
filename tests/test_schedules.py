"""Learning-rate schedules against their formulas; ReduceOnPlateau's behaviour."""

import json
import math

import numpy as np
import pytest

import nnbackprop as nb
import nnbackprop.optim  # noqa: F401  (nb.optim)
from nnbackprop import schedules as S

TS = [0, 1, 2, 3, 9, 10, 11, 50, 99, 100, 101, 1000]


@pytest.mark.parametrize("sched, formula", [
    (S.Constant(0.3), lambda t: 0.3),
    (S.StepDecay(0.5, step_size=10), lambda t: 0.5 * 0.1 ** (t // 10)),
    (S.StepDecay(0.5, step_size=3, factor=0.5), lambda t: 0.5 * 0.5 ** math.floor(t / 3)),
    (S.ExponentialDecay(0.2, rate=0.9), lambda t: 0.2 * 0.9 ** t),
    (S.ExponentialDecay(0.2, rate=0.5, decay_steps=10), lambda t: 0.2 * 0.5 ** (t / 10)),
    (S.InverseScaling(0.1), lambda t: 0.1 / math.sqrt(t + 1)),
    (S.InverseScaling(0.1, power=1.0), lambda t: 0.1 / (t + 1)),
    (S.Cosine(0.4, total_steps=100), lambda t: 0.4 * (1 + math.cos(math.pi * min(t, 100) / 100)) / 2),
    (S.Cosine(0.4, total_steps=10, min_lr=0.1),
     lambda t: 0.1 + 0.3 * (1 + math.cos(math.pi * min(t, 10) / 10)) / 2),
], ids=lambda x: repr(x) if isinstance(x, S.Schedule) else "")
def test_schedule_matches_formula(sched, formula):
    for t in TS:
        lr = sched(t)
        assert type(lr) is float  # a host float: no device array, no sync
        assert lr == pytest.approx(formula(t), rel=1e-14, abs=1e-300)


def test_cosine_endpoints():
    c = S.Cosine(1.0, total_steps=8, min_lr=0.25)
    assert c(0) == 1.0 and c(4) == pytest.approx(0.625) and c(8) == 0.25 and c(10_000) == 0.25


def test_config_round_trip_is_json():
    for sched in [S.Constant(0.1), S.StepDecay(0.1, 5, 0.5), S.ExponentialDecay(0.1, 0.9, 3),
                  S.InverseScaling(0.1, 0.25), S.Cosine(0.1, 50, 0.01), S.ReduceOnPlateau(0.1, patience=2)]:
        cfg = json.loads(json.dumps(sched.config()))
        again = S.get(cfg)
        assert type(again) is type(sched) and again == sched
        assert [again(t) for t in TS] == [sched(t) for t in TS]


def test_get():
    assert S.get(0.25) == S.Constant(0.25) and S.get(1) == S.Constant(1.0)
    c = S.Cosine(0.1, 10)
    assert S.get(c) is c
    assert S.get({"name": "step", "lr": 0.1, "step_size": 2})(2) == pytest.approx(0.01)
    assert isinstance(S.get({"name": "Cosine", "lr": 1.0, "total_steps": 3}), S.Cosine)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        S.get("linear")
    with pytest.raises(ValueError, match="needs a 'name'"):
        S.get({"lr": 0.1})
    with pytest.raises(ValueError, match="cannot build schedule 'cosine'"):
        S.get("cosine")  # total_steps missing
    with pytest.raises(TypeError, match="learning rate must be"):
        S.get([0.1])
    with pytest.raises(TypeError):
        S.get(True)


@pytest.mark.parametrize("make, match", [
    (lambda: S.Constant(-0.1), "lr must be a finite number in \\[0, inf\\)"),
    (lambda: S.Constant(float("nan")), "lr must be"),
    (lambda: S.Constant(float("inf")), "lr must be"),
    (lambda: S.Constant("0.1"), "lr must be"),
    (lambda: S.StepDecay(0.1, 0), "step_size must be an integer"),
    (lambda: S.StepDecay(0.1, 2.5), "step_size must be an integer"),
    (lambda: S.StepDecay(0.1, 2, factor=0.0), "factor must be"),
    (lambda: S.StepDecay(0.1, 2, factor=1.5), "factor must be"),
    (lambda: S.ExponentialDecay(0.1, rate=0.0), "rate must be"),
    (lambda: S.ExponentialDecay(0.1, rate=1.1), "rate must be"),
    (lambda: S.ExponentialDecay(0.1, rate=0.9, decay_steps=0), "decay_steps must be"),
    (lambda: S.InverseScaling(0.1, power=-1), "power must be"),
    (lambda: S.Cosine(0.1, total_steps=0), "total_steps must be"),
    (lambda: S.Cosine(0.1, total_steps=10, min_lr=0.2), "min_lr must be .* \\[0, 0.1\\]"),
    (lambda: S.ReduceOnPlateau(0.1, factor=1.0), "factor must be"),
    (lambda: S.ReduceOnPlateau(0.1, patience=-1), "patience must be"),
    (lambda: S.ReduceOnPlateau(0.1, min_delta=-1e-3), "min_delta must be"),
    (lambda: S.ReduceOnPlateau(0.1, min_lr=1.0), "min_lr must be"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_numpy_scalars_accepted():
    s = S.StepDecay(np.float64(0.1), np.int64(3), np.float32(0.5))
    assert type(s.lr) is float and type(s.step_size) is int
    json.dumps(s.config())


# --- ReduceOnPlateau ----------------------------------------------------------------
def test_reduce_on_plateau_waits_patience_epochs():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=2, min_delta=0.01)
    seen = []
    for loss in [1.0, 0.9, 0.895, 0.9, 0.8, 0.85, 0.81, 0.9, 0.95, 0.7]:
        s.observe(loss)
        seen.append(s(123))
    # 0.895 and 0.9 are within min_delta of best 0.9: two bad epochs -> halve;
    # 0.8 improves; 0.85, 0.81 bad -> halve; 0.9, 0.95 bad -> halve; 0.7 improves.
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert s.best == 0.7 and s.wait == 0


def test_reduce_on_plateau_floor_nan_and_patience_zero():
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=0, min_lr=0.05)
    s.observe(1.0)
    s.observe(float("nan"))  # NaN is no improvement
    assert s(0) == pytest.approx(0.1)
    s.observe(2.0)
    assert s(0) == 0.05
    s.observe(3.0)
    assert s(0) == 0.05  # never below min_lr
    s.observe(np.float64(0.5))
    assert s.best == 0.5 and type(s(0)) is float


def test_reduce_on_plateau_state_round_trip():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=3)
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0]:
        s.observe(loss)
    assert (s(0), s.best, s.wait) == (0.5, 1.0, 1)
    cfg = json.loads(json.dumps(s.config()))
    assert cfg["state"] == {"lr": 0.5, "best": 1.0, "wait": 1}
    r = S.get(cfg)
    assert (r(0), r.best, r.wait) == (0.5, 1.0, 1)
    for x in (1.0, 1.0):
        s.observe(x)
        r.observe(x)
    assert r.state_dict() == s.state_dict() == {"lr": 0.25, "best": 1.0, "wait": 0}
    with pytest.raises(ValueError, match="keys 'lr', 'best', 'wait'"):
        r.load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match="state\\['lr'\\] must be"):
        r.load_state_dict({"lr": 2.0, "best": None, "wait": 0})


def test_fit_calls_observe_once_per_epoch(be):
    """The fit loop tells a ReduceOnPlateau each epoch's loss; with lr 0 nothing improves."""
    rng = np.random.default_rng(0)
    X = be.asarray(rng.standard_normal((20, 2)), "float64")
    T = be.asarray(rng.standard_normal((20, 1)), "float64")
    model = nb.Sequential([nb.Dense(2, 1)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    sched = S.ReduceOnPlateau(1e-12, factor=0.5, patience=1, min_delta=1.0)
    model.fit(X, T, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=sched), epochs=5, progress=False)
    # epoch 1 sets best; epochs 2..5 are 4 bad epochs -> 4 halvings (patience 1)
    assert sched(0) == pytest.approx(1e-12 / 16)
