"""One resolver for the things a user names: activations, initialisers, losses,
metrics, optimizers and schedules.

Each of those modules keeps a table {name: class} and a ``get(spec)`` that calls
:func:`resolve`, which accepts the same three forms everywhere:

    "relu"                              a name, looked up case-insensitively
    {"name": "leaky_relu", "slope": 0.1}  a config dict: the name and constructor arguments
    LeakyReLU(0.1)                      an instance of the kind's base class, returned as is

and raises the same errors everywhere: ``unknown <kind> 'x'; valid names: ...``
(ValueError), ``cannot build <kind> 'x' from {...}: ...`` (ValueError, when the
constructor refuses the arguments) and ``<kind> must be a name, a config dict or
<Base>, got <type>`` (TypeError). What only one kind does (a bare float as a
constant learning rate, an initialiser that depends on the activation) stays in
that kind's ``get``.

This module imports nothing of nnbackprop, so every module may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["resolve"]

T = TypeVar("T")


def resolve(kind: str, spec: Any, table: Mapping[str, type[T]], base: type[T], *,
            overrides: Mapping[str, Any] | None = None,
            refused: Mapping[str, str] | None = None) -> T:
    """An instance of ``base`` from a name, a config dict or an instance.

    kind       the noun the messages use ("activation", "optimizer", ...)
    spec       a name (str), ``{"name": ..., **kwargs}``, or an instance of ``base``
    table      {lower-case name: class}; its order is the order the messages list
    overrides  keyword arguments that override or add to the config (refused
               with an instance, which is already built)
    refused    {lower-case name: reason}: names users reach for that cannot work,
               refused with ``<kind> '<name>': <reason>`` rather than "unknown"
    """
    overrides = dict(overrides or {})
    if isinstance(spec, base):
        if overrides:
            raise TypeError(f"cannot apply keyword arguments to {_a(kind)} instance; build a new one")
        return spec
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, dict):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if name is None:
            raise ValueError(f"{_a(kind)} config needs a 'name' (one of {_names(table)}), got {spec!r}")
    else:
        raise TypeError(f"{kind} must be a name, a config dict or {_a(base.__name__)}, "
                        f"got {type(spec).__name__}")
    key = name.lower() if isinstance(name, str) else None
    if refused and key in refused:
        raise ValueError(f"{kind} {name!r}: {refused[key]}; valid names: {_names(table)}")
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {_names(table)}")
    kwargs.update(overrides)
    try:
        return table[key](**kwargs)
    except TypeError as exc:  # a missing or unexpected argument
        raise ValueError(f"cannot build {kind} {name!r} from {kwargs!r}: {exc}") from exc


def _names(table: Mapping[str, type]) -> str:
    return ", ".join(table)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
