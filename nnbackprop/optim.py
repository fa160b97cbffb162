"""Optimizers, decoupled from layers (after optax).

Each optimizer is a pair of pure functions over lists of arrays in parameter
order (``[W0, b0, W1, b1, ...]``), plus a stateful convenience for models::

    state = opt.init(params)                              # OptState(t=0, slots={...})
    params, state = opt.update(params, grads, state)      # never mutates its inputs
    opt.step(model)                                       # the same, on model.parameters()

The update rules, with g the gradient, lr = schedule(t) computed on the host
for the step count t = 0, 1, ... and n = t + 1 the number of this update:

    SGD       V <- mu V - lr g;  W <- W + V     (nesterov: W <- W + mu V - lr g)
              weight_decay adds wd W to g; with mu = 0, W <- W - lr g
    Adagrad   G <- G + g^2;  W <- W - lr g / (sqrt(G) + eps)
    RMSprop   S <- rho S + (1 - rho) g^2;  W <- W - lr g / (sqrt(S) + eps)
    Adam      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
              m^ = m / (1 - b1^n);  v^ = v / (1 - b2^n)
              W <- W - lr m^ / (sqrt(v^) + eps)
    AdamW     as Adam, then W <- W - lr (m^ / (sqrt(v^) + eps) + wd W)

Every ``eps`` is floored at the smallest normal number of the parameter's dtype
(float16: 6.1e-5), so float16 never rounds it to 0 and divides 0 by 0.

Every rule is a chain of ``x <- a x + b y`` steps with host scalars a, b. The
rule is written once, in terms of that one operation; :meth:`Optimizer.step`
runs it in place (:func:`axpby_`: parameters and slot buffers reused) when
every array is writeable, and as fresh arrays (:func:`axpby`) otherwise. Both
do the same floating-point operations in the same order, so they agree bit for
bit. On a model whose parameters are views of one flat buffer
(:mod:`nnbackprop.store`) the slots are laid out the same way, and the rule
runs once over the whole buffer: a handful of array operations per step,
whatever the number of parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import _compat
from . import schedules as _schedules
from .registry import resolve
from .schedules import _number

__all__ = ["OptState", "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "get"]


class OptState(NamedTuple):
    """``t``: updates done so far (host int); ``slots``: {slot name: tuple of arrays
    in parameter order, each shaped like its parameter}."""

    t: int
    slots: dict


def axpby(x: Any, a: float, b: float, y: Any) -> Any:
    """``a x + b y`` as a new array (the functional path)."""
    return (x if a == 1.0 else a * x) + (y if b == 1.0 else b * y)


_BLOCK = 40 << 10  # most elements per block of axpby_ (160 KiB in float32): scratch that stays in cache


def axpby_(x: Any, a: float, b: float, y: Any, scratch: dict | None = None) -> Any:
    """x <- a x + b y in x's own buffer (x, y of one shape, x writeable); returns x.

    The same operations as :func:`axpby` in the same order, so the same numbers.
    With a ``scratch`` dict (the caller's, kept across calls) ``b * y`` is written
    into a buffer kept there instead of a new full-size temporary each call: in
    host memory in equal blocks of at most 40 Ki elements through one block-sized
    buffer (one pass less over memory; the peak grows by one block, not by the
    whole array), elsewhere (a device, or a library that allocates each temporary
    afresh) into one buffer of y's size.
    """
    if a != 1.0:
        x *= a
    if b == 1.0:
        x += y
        return x
    m = None if scratch is None or y.dtype != x.dtype else _compat.writer(x)
    if m is None:
        x += b * y
        return x
    if _compat.on_host(x) and _compat.on_host(y):
        if x.size <= _BLOCK or not (x.flags.c_contiguous and y.flags.c_contiguous):
            x += b * y
            return x
        xf, yf = x.reshape(-1), y.reshape(-1)
        step = -(-xf.size // -(-xf.size // _BLOCK))  # ceil(size / number of blocks)
        tmp = scratch.get(x.dtype)
        if tmp is None or tmp.size < step:
            tmp = scratch[x.dtype] = m.empty(_BLOCK, dtype=x.dtype)
        for i in range(0, xf.size, step):
            xs, ys = xf[i:i + step], yf[i:i + step]
            xs += m.multiply(ys, b, out=tmp[:ys.size])
        return x
    key = (x.dtype, _compat.device_of(x), tuple(y.shape))
    tmp = scratch.get(key)
    if tmp is None:
        tmp = scratch[key] = m.empty_like(y)
    x += m.multiply(y, b, out=tmp)
    return x


Axpby = Callable[[Any, float, float, Any], Any]


class Optimizer:
    """Base class. Subclasses set ``name``, ``slot_names``, ``_hyper`` and ``_rule``."""

    name = "optimizer"
    slot_names: tuple[str, ...] = ()
    _hyper: tuple[str, ...] = ()

    def __init__(self, lr: Any):
        self.lr = _schedules.get(lr)  # the fit loop calls self.lr.observe(loss) if it exists
        self.state: OptState | None = None
        self._scratch: dict = {}  # the in-place update's block buffer (see axpby_)
        self._flat: tuple | None = None  # (store, slot buffers (n,), their first views): see _flat_slots
        self._checked: tuple | None = None  # (store, state) that the last step's checks passed for

    def _axpby_(self, x: Any, a: float, b: float, y: Any) -> Any:
        """``x <- a x + b y`` in x's own buffer (the in-place path); returns x."""
        return axpby_(x, a, b, y, self._scratch)

    def _rule(self, ax: Axpby, xp: Any, p: Any, g: Any, slots: tuple, lr: float,
              n: int) -> tuple[Any, tuple]:
        """One parameter's update: new (p, slots) from p, its gradient g (same shape)
        and slot arrays, the step's lr and update number n >= 1, via ``ax``."""
        raise NotImplementedError  # pragma: no cover

    # functional core -----------------------------------------------------------
    def init(self, params: Sequence[Any]) -> OptState:
        """Zeroed slots shaped (and typed, placed) like each parameter; t = 0."""
        params = list(params)
        xp = _compat.namespace_of(*params) if params else None
        return OptState(0, {s: tuple(xp.zeros_like(p) for p in params) for s in self.slot_names})

    def update(self, params: Sequence[Any], grads: Sequence[Any],
               state: OptState) -> tuple[list[Any], OptState]:
        """``(new_params, new_state)`` for one step; ``params``, ``grads`` and ``state``
        are left untouched (works with immutable arrays)."""
        return self._apply_checked(params, grads, state, axpby)

    def _apply_checked(self, params, grads, state, ax):
        """The update after checking that ``grads`` and ``state`` fit ``params``."""
        params, grads = list(params), list(grads)
        self._check(params, grads, state)
        if not params:
            return params, OptState(state.t + 1, dict(state.slots))
        return self._apply_trusted(params, grads, state, ax, _compat.namespace_of(params[0]))

    def _apply_trusted(self, params, grads, state, ax, xp):
        """The update without checks: for arrays the caller has already checked."""
        lr = float(self.lr(state.t))  # host float: no device sync
        n, rule, names = state.t + 1, self._rule, self.slot_names
        if not names:  # stateless (plain SGD): the per-step path stays short
            return [rule(ax, xp, p, g, (), lr, n)[0] for p, g in zip(params, grads)], OptState(n, {})
        cols = [state.slots[k] for k in names]
        out = [rule(ax, xp, p, g, tuple(c[i] for c in cols), lr, n)
               for i, (p, g) in enumerate(zip(params, grads))]
        slots = {k: tuple(s[j] for _, s in out) for j, k in enumerate(names)}
        return [p for p, _ in out], OptState(n, slots)

    def _check(self, params, grads, state):
        if not isinstance(state, OptState):
            raise TypeError(f"state must be the OptState from init(), got {type(state).__name__}")
        if len(grads) != len(params):
            raise ValueError(f"got {len(params)} parameters but {len(grads)} gradients")
        for k in self.slot_names:
            if len(state.slots.get(k, ())) != len(params):
                raise ValueError(
                    f"the optimizer state holds {len(state.slots.get(k, ()))} {k!r} arrays but "
                    f"there are {len(params)} parameters: it belongs to another model; call "
                    f"reset() or use a new optimizer"
                )
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            shapes = [tuple(p.shape), tuple(g.shape)] + [tuple(state.slots[k][i].shape)
                                                         for k in self.slot_names]
            if len(set(shapes)) != 1:
                raise ValueError(
                    f"parameter {i} has shape {shapes[0]} but its gradient and optimizer state "
                    f"have shapes {shapes[1:]}; a state from another model needs reset()"
                )

    # stateful convenience --------------------------------------------------------
    def step(self, model: Any, *, inplace: bool | None = None) -> None:
        """Update ``model``'s parameters from its gradients (``model.store``).

        The state is created on the first call. ``inplace=None`` updates the
        parameter and slot arrays in place when all are writeable (no new arrays
        per step): where the model's parameters are views of one flat buffer, as
        one rule over that buffer. Otherwise it builds new arrays. True or False
        forces a path.
        """
        store = model.store
        if not store.has_grads:
            raise RuntimeError("no gradients yet: run backward (or value_and_grad) first")
        if self.state is None:
            self.state = self._init_for(store)
        writeable = store.writeable()
        if inplace and not writeable:
            raise ValueError("inplace=True but some parameter or state arrays are read-only")
        in_place = writeable if inplace is None else inplace
        if self._checked is None or self._checked[0] is not store or self._checked[1] is not self.state:
            self._check_for(model)
        t = self.state.t
        if in_place:
            slots = self._flat_slots(store)
            if slots is not None:  # one update over all parameters laid end to end
                self._rule(self._axpby_, model.xp, store.flat_params, store.flat_grads, slots,
                           float(self.lr(t)), t + 1)
                self.state = OptState(t + 1, self.state.slots)
                self._checked = (store, self.state)
                return
        params, grads = model.parameters(), model.gradients()
        new_params, self.state = self._apply_trusted(params, grads, self.state,
                                                     self._axpby_ if in_place else axpby, model.xp)
        self._checked = (store, self.state)
        store.assign(new_params)

    def _check_for(self, model: Any) -> None:
        """The checks of :meth:`update` for ``model``, and that the state lives in its namespace."""
        params = model.parameters()
        if self.slot_names and self.state.slots.get(self.slot_names[0]):
            held = _compat.namespace_of(self.state.slots[self.slot_names[0]][0])
            if held is not model.xp:
                raise TypeError(
                    f"the optimizer state lives in {held.__name__} but the model in "
                    f"{model.xp.__name__}; move both with model.to(...) or the state with opt.to(...)"
                )
        self._check(params, model.gradients(), self.state)

    # the flat layout (nnbackprop.store) ----------------------------------------------
    def _init_for(self, store: Any) -> OptState:
        """:meth:`init` for a model's store; where the store is flat, the slots are laid
        out the same way (views of one buffer per slot)."""
        self._flat = None
        if not store.flat or not self.slot_names:
            return self.init(list(store.params.values()))
        return self._lay_out(store, OptState(0, {}))

    def _lay_out(self, store: Any, state: OptState) -> OptState:
        """``state`` with its slots copied into views of one buffer per slot, tiled like
        ``store``'s flat parameters (zeros where ``state`` has no slots yet)."""
        bases = tuple(store.xp.zeros_like(store.flat_params) for _ in self.slot_names)
        views = {k: tuple(store.tile(b)) for k, b in zip(self.slot_names, bases)}
        for k in self.slot_names:
            for view, a in zip(views[k], state.slots.get(k, ())):
                view[...] = a
        self._flat = (store, bases, tuple(views[k][0] for k in self.slot_names))
        return OptState(state.t, views)

    def _flat_slots(self, store: Any) -> tuple | None:
        """The slot buffers (one per slot, laid out like ``store.flat_params``) for a
        flat update, laying the state out anew where it is not (a state that was
        loaded, restored or moved); None where the store is not flat."""
        if not store.flat:
            return None
        if not self.slot_names:
            return ()
        flat = self._flat
        if flat is None or flat[0] is not store or any(
                self.state.slots[k][0] is not f for k, f in zip(self.slot_names, flat[2])):
            self.state = self._lay_out(store, self.state)
            self._checked = (store, self.state)
            flat = self._flat
        return flat[1]

    def reset(self) -> None:
        """Forget the state (it is rebuilt on the next :meth:`step`)."""
        self.state = None
        self._flat = None

    def state_dict(self) -> dict:
        """``{"name", "config", "t", "slots": {slot: [arrays in parameter order]}}``.

        The arrays are copies (later in-place steps do not change them);
        ``slots`` is ``{}`` and ``t`` 0 before the first step.
        """
        if self.state is None:
            return {"name": self.name, "config": self.config(), "t": 0, "slots": {}}
        return {"name": self.name, "config": self.config(), "t": self.state.t,
                "slots": {k: [_copy(a) for a in v] for k, v in self.state.slots.items()}}

    def load_state_dict(self, d: dict) -> None:
        """Restore hyperparameters (schedule state included), t and slot arrays
        (copied, kept in their own namespace) from :meth:`state_dict`'s dict."""
        if not isinstance(d, dict) or not {"name", "t", "slots"} <= set(d):
            raise ValueError("an optimizer state dict needs 'name', 't' and 'slots'")
        if str(d["name"]).lower() != self.name:
            raise ValueError(f"state dict of optimizer {d['name']!r} cannot be loaded into {self.name!r}")
        t = _number("t", d["t"], lo=0, integer=True)
        slots = d["slots"]
        if not isinstance(slots, dict):
            raise ValueError(f"'slots' must be a dict of lists of arrays, got {type(slots).__name__}")
        if set(slots) != set(self.slot_names) and not (t == 0 and not slots):
            raise ValueError(f"{self.name} state needs slots {list(self.slot_names)}, got {list(slots)}")
        lengths = {len(v) for v in slots.values()}
        if len(lengths) > 1:
            raise ValueError(f"slot lists differ in length: { {k: len(v) for k, v in slots.items()} }")
        if d.get("config") is not None:
            other = get({"name": self.name, **d["config"]})
            for k in ("lr",) + self._hyper:
                setattr(self, k, getattr(other, k))
        if t == 0 and not slots:
            self.state = None
        else:
            self.state = OptState(t, {k: tuple(_copy(a) for a in slots[k]) for k in self.slot_names})

    def snapshot(self) -> tuple:
        """A copy of the state for :meth:`restore` (the fit loop's undo on divergence)."""
        return (_copy_state(self.state),)

    def restore(self, snap: tuple) -> None:
        """Put back a copy of :meth:`snapshot`'s state (``snap`` stays usable)."""
        self.state = _copy_state(snap[0])

    def to(self, xp: Any, device: Any = None) -> Optimizer:
        """Move the slot arrays to namespace ``xp`` on ``device`` (its default if None),
        keeping their dtype; returns self."""
        xp = _compat.namespace(xp)
        device = _compat.resolve_device(xp, device)

        def move(a):
            dtype = _compat.resolve_dtype(xp, _compat.dtype_name(_compat.namespace_of(a), a.dtype), device)
            return _compat.from_host(xp, _compat.to_host(a), dtype, device)

        if self.state is not None:
            self.state = OptState(self.state.t, {k: tuple(move(a) for a in v)
                                                 for k, v in self.state.slots.items()})
        return self

    # description -------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able: name, lr (a float, or the schedule's config) and hyperparameters."""
        lr = self.lr.lr if isinstance(self.lr, _schedules.Constant) else self.lr.config()
        return {"name": self.name, "lr": lr, **{k: getattr(self, k) for k in self._hyper}}

    def __repr__(self) -> str:
        lr = self.lr.lr if isinstance(self.lr, _schedules.Constant) else self.lr
        args = [f"lr={lr!r}"] + [f"{k}={getattr(self, k)!r}" for k in self._hyper]
        return f"{type(self).__name__}({', '.join(args)})"


def _copy(a: Any) -> Any:
    return _compat.namespace_of(a).asarray(a, copy=True)


def _copy_state(state: OptState | None) -> OptState | None:
    if state is None:
        return None
    return OptState(state.t, {k: tuple(_copy(a) for a in v) for k, v in state.slots.items()})


def _eps(xp: Any, p: Any, eps: float) -> float:
    """``eps`` as the denominator's floor, never below the smallest normal number of
    p's dtype: float16 rounds 1e-8 to 0, and sqrt(v) + 0 lets 0 / 0 through."""
    return max(eps, _compat.tiny(xp, p.dtype))


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum and L2 weight decay.

    ``V <- mu V - lr (g + wd W);  W <- W + V`` (nesterov: ``W <- W + mu V - lr (g + wd W)``).
    """

    name, _hyper = "sgd", ("momentum", "nesterov", "weight_decay")

    def __init__(self, lr: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = _number("momentum", momentum, lo=0.0, hi=1.0, hi_open=True)
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = nesterov
        self.weight_decay = _number("weight_decay", weight_decay, lo=0.0)
        self.slot_names = ("velocity",) if self.momentum else ()

    def _rule(self, ax, xp, p, g, slots, lr, n):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return ax(p, 1.0, -lr, g), ()
        v = ax(slots[0], self.momentum, -lr, g)
        if self.nesterov:
            return ax(ax(p, 1.0, self.momentum, v), 1.0, -lr, g), (v,)
        return ax(p, 1.0, 1.0, v), (v,)


class Adagrad(Optimizer):
    """``G <- G + g^2;  W <- W - lr g / (sqrt(G) + eps)``."""

    name, slot_names, _hyper = "adagrad", ("sum_sq",), ("eps",)

    def __init__(self, lr: Any = 0.01, eps: float = 1e-10):
        super().__init__(lr)
        self.eps = _number("eps", eps, lo=0.0, lo_open=True)

    def _rule(self, ax, xp, p, g, slots, lr, n):
        G = ax(slots[0], 1.0, 1.0, g * g)
        return ax(p, 1.0, -lr, g / (xp.sqrt(G) + _eps(xp, p, self.eps))), (G,)


class RMSprop(Optimizer):
    """``S <- rho S + (1 - rho) g^2;  W <- W - lr g / (sqrt(S) + eps)``."""

    name, slot_names, _hyper = "rmsprop", ("sq_avg",), ("rho", "eps")

    def __init__(self, lr: Any = 0.01, rho: float = 0.9, eps: float = 1e-8):
        super().__init__(lr)
        self.rho = _number("rho", rho, lo=0.0, hi=1.0, hi_open=True)
        self.eps = _number("eps", eps, lo=0.0, lo_open=True)

    def _rule(self, ax, xp, p, g, slots, lr, n):
        S = ax(slots[0], self.rho, 1.0 - self.rho, g * g)
        return ax(p, 1.0, -lr, g / (xp.sqrt(S) + _eps(xp, p, self.eps))), (S,)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction.

    ``m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  W <- W - lr m^ / (sqrt(v^) + eps)``
    with ``m^ = m / (1-b1^n)``, ``v^ = v / (1-b2^n)``, computed as the equal
    ``W - (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2))`` (c1, c2 host scalars).
    """

    name, slot_names, _hyper = "adam", ("m", "v"), ("beta1", "beta2", "eps")
    _decay = 0.0  # decoupled weight decay (AdamW)

    def __init__(self, lr: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1 = _number("beta1", beta1, lo=0.0, hi=1.0, hi_open=True)
        self.beta2 = _number("beta2", beta2, lo=0.0, hi=1.0, hi_open=True)
        self.eps = _number("eps", eps, lo=0.0, lo_open=True)

    def _rule(self, ax, xp, p, g, slots, lr, n):
        m = ax(slots[0], self.beta1, 1.0 - self.beta1, g)
        v = ax(slots[1], self.beta2, 1.0 - self.beta2, g * g)
        c1, rc2 = 1.0 - self.beta1 ** n, math.sqrt(1.0 - self.beta2 ** n)
        step = m / (xp.sqrt(v) + _eps(xp, p, self.eps * rc2))
        return ax(p, 1.0 - lr * self._decay, -lr * rc2 / c1, step), (m, v)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``W <- W - lr (m^ / (sqrt(v^) + eps) + wd W)``."""

    name, _hyper = "adamw", ("beta1", "beta2", "eps", "weight_decay")

    def __init__(self, lr: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = _number("weight_decay", weight_decay, lo=0.0)

    @property
    def _decay(self) -> float:
        return self.weight_decay


_OPTIMIZERS = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW)}


def get(spec: Any, **kwargs: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``), a config dict (``{"name": "sgd", "lr": 0.1}``)
    or an instance; ``kwargs`` override or add hyperparameters."""
    return resolve("optimizer", spec, _OPTIMIZERS, Optimizer, overrides=kwargs)
