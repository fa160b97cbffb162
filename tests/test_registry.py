"""The one resolver behind every ``get``: the same forms and the same errors for all six kinds."""

from __future__ import annotations

import re

import pytest

import nnbackprop as nb
from nnbackprop.registry import resolve

# (kind in messages, get, a name with its class, its valid names in order, the base class)
KINDS = {
    "activation": (nb.activations.get, "tanh", nb.activations.Tanh,
                   "identity, sigmoid, tanh, relu, leaky_relu, softmax", nb.activations.Activation),
    "init": (nb.init.get, "normal", nb.init.Normal, "he_normal, glorot_uniform, uniform, normal",
             nb.init.Initializer),
    "loss": (nb.losses.get, "mse", nb.losses.MSE,
             "mse, binary_cross_entropy, softmax_cross_entropy, huber, l1, pinball", nb.losses.Loss),
    "metric": (nb.metrics.get, "mae", nb.metrics.MeanAbsoluteError,
               "accuracy, acc, mse, mean_squared_error, mae, mean_absolute_error", nb.metrics.Metric),
    "optimizer": (nb.optim.get, "rmsprop", nb.optim.RMSprop, "sgd, adagrad, rmsprop, adam, adamw",
                  nb.optim.Optimizer),
    "schedule": (nb.schedules.get, "inverse_scaling", None,
                 "constant, step, exponential, inverse_scaling, cosine, reduce_on_plateau",
                 nb.schedules.Schedule),
}


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_name_lists_the_valid_ones(kind):
    get, *_, valid, _ = KINDS[kind]
    with pytest.raises(ValueError) as info:
        get("nope")
    assert str(info.value) == f"unknown {kind} 'nope'; valid names: {valid}"
    with pytest.raises(ValueError, match=re.escape(f"unknown {kind} 'nope'; valid names: {valid}")):
        get({"name": "nope"})


@pytest.mark.parametrize("kind", KINDS)
def test_config_without_a_name(kind):
    get, *_, valid, _ = KINDS[kind]
    with pytest.raises(ValueError) as info:
        get({"scale": 1.0})
    article = "an" if kind[0] in "aeiou" else "a"
    assert str(info.value) == f"{article} {kind} config needs a 'name' (one of {valid}), got {{'scale': 1.0}}"


@pytest.mark.parametrize("kind", KINDS)
def test_arguments_the_class_does_not_take(kind):
    get, name, *_ = KINDS[kind]
    cfg = {"name": name.upper(), "lr": 0.1, "no_such_argument": 1}
    expected = rf"cannot build {kind} '{name.upper()}' from \{{.*'no_such_argument': 1\}}: "
    with pytest.raises(ValueError, match=expected) as info:
        get(cfg)
    assert isinstance(info.value.__cause__, TypeError)
    assert cfg == {"name": name.upper(), "lr": 0.1, "no_such_argument": 1}  # the caller's dict is untouched


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "schedule"])
def test_names_are_case_insensitive_and_instances_pass_through(kind):
    get, name, cls, _, base = KINDS[kind]
    for spelled in (name, name.upper(), name.title()):
        assert type(get(spelled)) is cls
    built = cls()
    assert get(built) is built
    with pytest.raises(TypeError) as info:
        get(3.5)
    article = "an" if base.__name__[0] in "AEIOU" else "a"
    assert str(info.value) == (f"{kind} must be a name, a config dict or {article} {base.__name__}, "
                               f"got float")


def test_config_dicts_for_every_kind():
    assert nb.activations.get({"name": "Leaky_ReLU", "slope": 0.25}).slope == 0.25
    assert nb.init.get({"name": "normal", "scale": 0.5}).scale == 0.5
    assert nb.losses.get({"name": "MSE", "l2": 0.5}).l2 == 0.5
    assert nb.metrics.get({"name": "acc", "threshold": 0.25}).threshold == 0.25
    opt = nb.optim.get({"name": "SGD", "lr": 0.5, "momentum": 0.5}, momentum=0.25)  # kwargs win
    assert (opt.lr(0), opt.momentum) == (0.5, 0.25)
    assert nb.schedules.get({"name": "STEP", "lr": 1.0, "step_size": 2, "factor": 0.5})(5) == 0.25


def test_refused_names_say_why_and_list_the_valid_ones():
    with pytest.raises(ValueError) as info:
        nb.activations.get({"name": "Sign"})
    msg = str(info.value)
    assert msg.startswith("activation 'Sign': it has no useful derivative")
    assert msg.endswith("; valid names: identity, sigmoid, tanh, relu, leaky_relu, softmax")
    with pytest.raises(ValueError, match=r"^init 'Ones': all-zero weights are refused: .*symmetry"):
        nb.init.get("Ones")


# the resolver itself, on a table of its own ------------------------------------------
class Base:
    def __init__(self, k=0):
        self.k = k


class One(Base):
    pass


class Two(Base):
    def __init__(self, k=0, j=1):
        super().__init__(k)
        self.j = j


TABLE = {"one": One, "two": Two}


def test_resolve_forms():
    assert type(resolve("thing", "TWO", TABLE, Base)) is Two
    two = resolve("thing", {"name": "two", "k": 3}, TABLE, Base, overrides={"j": 4})
    assert (two.k, two.j) == (3, 4)
    one = One()
    assert resolve("thing", one, TABLE, Base) is one
    with pytest.raises(TypeError, match="^cannot apply keyword arguments to a thing instance; build a new one$"):
        resolve("thing", one, TABLE, Base, overrides={"k": 1})
    with pytest.raises(ValueError, match="^unknown thing 'three'; valid names: one, two$"):
        resolve("thing", "three", TABLE, Base)
    with pytest.raises(ValueError, match="^unknown thing 2; valid names: one, two$"):
        resolve("thing", {"name": 2}, TABLE, Base)
    with pytest.raises(ValueError, match="^thing 'Zero': not a thing; valid names: one, two$"):
        resolve("thing", "Zero", TABLE, Base, refused={"zero": "not a thing"})
    with pytest.raises(ValueError, match=r"^cannot build thing 'one' from \{'j': 1\}: "):
        resolve("thing", "one", TABLE, Base, overrides={"j": 1})
    with pytest.raises(TypeError, match="^thing must be a name, a config dict or a Base, got list$"):
        resolve("thing", ["one"], TABLE, Base)


def test_registry_imports_nothing_of_the_package():
    import ast
    from pathlib import Path

    import nnbackprop.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m.startswith("nnbackprop")]
    assert all(n.level == 0 for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
