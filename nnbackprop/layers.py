"""Layers: the protocol every layer of a :class:`~nnbackprop.Sequential` follows, and Dense.

A layer declares its parameters by name and shape, draws their initial values
from the model's seeded host generator, and computes its forward pass and its
hand-written backward pass. The model owns everything else: the parameters
and gradients (views of one flat buffer each, see :mod:`nnbackprop.store`),
what forward keeps for backward (``ctx``, a dict per layer and pass), and the
step's reusable buffers (``ws``, see :class:`Workspace`).

    class Scale(nb.Layer):                      # A = X * s, s (n,) learnable
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
            return dA * self.params["s"] if input_grad else None
        def config(self):
            return {"type": "Scale", "n": self.n_in}

Such a layer gets the flat store, every optimizer, checkpoints (its class must
be defined, i.e. imported, before ``nb.load``), ``gradient_check``, ``.to()``
and every backend without further code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import _compat
from . import activations as _activations
from . import init as _init

#: every Layer subclass by its class name: what a config's "type" may name
LAYERS: dict[str, type[Layer]] = {}


class Layer:
    """The layer protocol.

    A subclass sets ``n_in`` and ``n_out`` (features in and out per row) and defines:

    ``param_shapes() -> {name: shape}``
        its parameters, in a fixed order (default: none).
    ``init_params(rng) -> {name: host array}``
        initial values drawn from ``rng`` (a ``numpy.random.Generator``), float64
        NumPy arrays of those shapes; the model moves them to its namespace.
    ``forward(X, ctx, ws) -> A``
        A (N, n_out) for X (N, n_in). ``ctx`` is a dict for what backward will
        need (None when no backward follows: prediction); ``ws`` gives buffers,
        the pass's mode ``ws.training`` (True in ``fit``, ``train_step`` and
        ``forward(X, training=True)``; False in ``predict``, ``evaluate`` and a
        plain ``forward``) and ``ws.rng``, the model's seeded host generator
        (what a random layer such as Dropout draws from).
    ``backward(dA, ctx, ws, *, input_grad) -> dJ/dX or None``
        from dJ/dA (N, n_out): writes the gradient of each parameter into
        ``self.grads[name]`` (in place where it can, or by assigning a new array)
        and returns dJ/dX (N, n_in), or None when ``input_grad`` is False.
        ``dA`` and the arrays forward created (its output A) belong to the model
        and are dead afterwards, so backward may write over them; never over X.
    ``config() -> dict``
        JSON-able, with ``"type"`` the class name; ``from_config`` rebuilds the layer.
    ``decay``
        names of the parameters the loss's L2 penalty applies to (default none).
    ``per_example_separable``
        True only for a layer whose row n of output depends on row n of input
        alone and whose parameter gradient is a sum over rows of per-row terms
        (Dense). Such a layer also defines ``per_example_backward``,
        ``per_example_sq_norms`` and ``weighted_backward`` (see Dense), which
        per-example gradient norms and DP-SGD use; every other layer (one that
        mixes rows, as batch normalisation does) is refused there.
    ``buffer_shapes() -> {name: shape}``, ``init_buffers() -> {name: host array}``
        non-trained state (BatchNorm's running statistics; default none): saved
        in checkpoints and moved by ``.to()``, never touched by an optimizer.
        ``self.buffers[name]`` is the live array; a layer updates it by
        assigning a new array.
    ``min_rows``
        the fewest rows a training batch may have (BatchNorm: 2); ``fit`` and
        ``train_step`` refuse smaller batches before any change.

    A layer whose width follows its neighbours (Dropout) leaves ``n_in`` and
    ``n_out`` None: the model sets both to the width of the layer before it
    (after it, for a first layer) through ``set_width(n)``.

    Once the layer is in a model, ``self.xp``, ``self.dtype``, ``self.device``,
    ``self.params``, ``self.grads`` and ``self.buffers`` (by name: the model's
    live arrays) are set.
    """

    n_in: int
    n_out: int
    decay: ClassVar[tuple[str, ...]] = ()
    per_example_separable: ClassVar[bool] = False
    min_rows: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYERS[cls.__name__] = cls

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {}

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init_buffers(self) -> dict[str, np.ndarray]:
        return {}

    def set_width(self, n: int) -> None:
        """Take the width ``n`` of the neighbouring layers (for a layer whose ``n_in`` is None)."""
        raise TypeError(f"{type(self).__name__} has no n_in: set n_in and n_out, or define set_width(n) "
                        f"to take the width of its neighbours")

    def forward(self, X: Any, ctx: dict | None, ws: Workspace) -> Any:
        raise NotImplementedError

    def backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> Any:
        raise NotImplementedError

    def config(self) -> dict:
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """The layer ``config()`` describes (its keys other than "type" are the
        constructor's arguments)."""
        return cls(**{k: v for k, v in config.items() if k != "type"})

    # set by the model -------------------------------------------------------------
    def _bind(self, xp: Any, dtype: Any, device: Any, params: Any, grads: Any,
              buffers: Any = None) -> None:
        self.xp, self.dtype, self.device = xp, dtype, device
        self.params, self.grads, self.buffers = params, grads, buffers

    def set_param(self, name: str, value: Any) -> None:
        """Replace parameter ``name`` by a copy of ``value`` (same shape, namespace,
        device and dtype; checked first): training may update it in place, never
        the caller's array."""
        if getattr(self, "params", None) is None:
            raise RuntimeError(f"this {type(self).__name__} layer is not built yet: put it in a "
                               f"Sequential before setting {name}")
        check_param(self, name, value)
        current = self.params[name]
        if _compat.writer(current) is not None:
            current[...] = value
        else:
            self.params[name] = self.xp.asarray(value, copy=True)


def check_param(layer: Layer, name: str, value: Any) -> None:
    """Refuse a value for ``layer``'s parameter ``name`` of another shape, dtype,
    namespace or device."""
    shape = tuple(layer.param_shapes()[name])
    _compat.check_array(value, name=name, xp=layer.xp, device=layer.device)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if value.dtype != layer.dtype:
        raise TypeError(f"{name} must have dtype {_compat.dtype_name(layer.xp, layer.dtype)}, "
                        f"got {_compat.dtype_name(layer.xp, value.dtype)}")


def layer_from_config(config: dict) -> Layer:
    """A layer from its ``config()`` (its "type" must name a defined Layer class)."""
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"a layer config is a dict with a 'type', got {config!r}")
    cls = LAYERS.get(config["type"])
    if cls is None:
        raise ValueError(f"unknown layer type {config['type']!r}; known: {', '.join(LAYERS)} "
                         f"(define or import a custom layer's class before loading)")
    return cls.from_config(config)


class Workspace:
    """The step's reusable buffers, owned by the model and handed to every layer.

    ``reuse=True`` (the training step, whose intermediate arrays nobody else
    keeps): a buffer asked for again with the same shape is the same array, so
    a step allocates nothing. ``reuse=False`` (public calls, whose results the
    caller keeps) and namespaces the library cannot write: always None, and the
    layer's operation makes a new array.

    ``training`` (the pass's mode) and ``rng`` (the model's seeded host
    generator) are set by the model before each pass.
    """

    def __init__(self, xp: Any, dtype: Any, device: Any, reuse: bool, rng: Any = None):
        self.xp, self.dtype, self.device = xp, dtype, device
        self.training = False
        self.rng = rng
        probe = xp.zeros((1,), dtype=dtype, device=device)
        self.reuse = reuse and _compat.writer(probe) is not None
        self._own: dict = {}
        self._shared: dict = {}

    def buffer(self, owner: Any, name: str, shape: tuple[int, ...]) -> Any:
        """``owner``'s buffer ``name`` of ``shape`` (kept across steps), or None."""
        if not self.reuse:
            return None
        key = (id(owner), name)
        buf = self._own.get(key)
        if buf is None or tuple(buf.shape) != shape:
            buf = self._own[key] = self.xp.empty(shape, dtype=self.dtype, device=self.device)
        return buf

    def shared(self, shape: tuple[int, ...], avoid: Any = None) -> Any:
        """A buffer of ``shape`` that every layer may use for a result that is dead
        once the next layer has read it (dJ/dX), never the array ``avoid``; or None."""
        if not self.reuse:
            return None
        buf = self._shared.get(shape)
        if buf is None or buf is avoid:
            buf = self._shared[shape] = self.xp.empty(shape, dtype=self.dtype, device=self.device)
        return buf


# kernels of the delta rule: in place where the array can be written, else new arrays ---------------
def matmul_into(a: Any, b: Any, out: Any) -> Any:
    """a (m, k) @ b (k, n), written into ``out`` (m, n) where it is given, of the
    result's shape and dtype, and writeable (:func:`nnbackprop._compat.writer`);
    otherwise a new array. ``out`` must not overlap ``a`` or ``b``."""
    m = None if out is None else _compat.writer(out)
    if m is None or tuple(out.shape) != (a.shape[0], b.shape[1]) or out.dtype != a.dtype:
        return a @ b
    return m.matmul(a, b, out=out)


def affine_into(X: Any, W: Any, b: Any, out: Any) -> Any:
    """Z = X W + b (N, n_out), written into ``out`` where :func:`matmul_into` would:
    one fused operation where the array's module has one (``addmm``: the bias
    taken into the matrix product), else the product and then ``Z += b`` in Z's
    own buffer (the same numbers as ``X @ W + b``)."""
    m = _compat.writer(X if out is None else out)
    fused = _compat.module_function(m, "addmm")
    if fused is not None and out is None:
        return fused(b, X, W)
    if fused is not None and tuple(out.shape) == (X.shape[0], W.shape[1]) and out.dtype == X.dtype:
        return fused(b, X, W, out=out)
    Z = matmul_into(X, W, out)
    Z += b  # Z is the caller's own: in place (rebinds where arrays are immutable)
    return Z


def sum_rows(a: Any, xp: Any, out: Any = None) -> Any:
    """sum over the rows of a (N, n): (n,), written into ``out`` where it is given and
    writeable, else a new array (``xp.sum(a, axis=0)``; the same numbers either way)."""
    m = None if out is None else _compat.writer(out)
    if m is None:
        return xp.sum(a, axis=0)
    reduce = getattr(getattr(m, "add", None), "reduce", None)  # a ufunc's own: no wrapper per call
    if reduce is not None:
        return reduce(a, axis=0, out=out)
    return m.sum(a, axis=0, out=out)


class Dense(Layer):
    """``Dense(n_in, n_out, activation="identity", init=None)``: a fully connected layer.

    Forward, for a batch X of N rows (N, n_in), W (n_in, n_out), b (n_out,):

        Z = X W + b,  A = g(Z)                 (N, n_out)

    Backward, batched over the whole batch (no per-example loop), from dJ/dA (N, n_out):

        delta = dJ/dA * g'(Z)                  (N, n_out)
        dW = X^T delta,  db = sum_rows delta   (n_in, n_out), (n_out,)
        dJ/dX = delta W^T                      (N, n_in)

    ``init=None`` picks He normal for relu/leaky_relu and Glorot uniform
    otherwise. ``W`` and ``b`` exist once the layer is part of a Sequential; they
    may be set to arrays of the same shape, namespace, device and dtype.
    """

    decay = ("W",)  # the L2 penalty applies to the weights, not the biases
    per_example_separable = True

    def __init__(self, n_in: int, n_out: int, activation: Any = "identity", init: Any = None):
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Dense {name} must be a positive integer, got {v!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = _activations.get(activation)
        self.init = _init.get(init, self.activation.name)
        self.params = self.grads = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"W": self.init(rng, self.n_in, self.n_out), "b": np.zeros(self.n_out)}

    def forward(self, X: Any, ctx: dict | None, ws: Workspace) -> Any:
        """A = g(X W + b) (N, n_out); keeps X, and A or Z where g' reads them."""
        act = self.activation
        Z = affine_into(X, self.W, self.b, ws.buffer(self, "Z", (X.shape[0], self.n_out)))
        A = act.forward(Z, self.xp, out=None if act.backward_uses_z else Z)
        if ctx is not None:
            ctx["X"] = X
            if act.backward_uses_a:
                ctx["A"] = A
            if act.backward_uses_z:
                ctx["Z"] = Z
        return A

    def backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> Any:
        """The delta rule; dW and db go into this layer's gradient views."""
        X, A = ctx["X"], ctx.get("A")
        delta = self.activation.backward(dA, ctx.get("Z"), A, self.xp, out=dA if A is None else A)
        g = self.grads
        g["W"] = matmul_into(X.T, delta, g["W"])
        g["b"] = sum_rows(delta, self.xp, out=g["b"])
        if not input_grad:
            return None
        return matmul_into(delta, self.W.T, ws.shared((X.shape[0], self.n_in), avoid=delta))

    # per example: the delta rule with the last product weighted ---------------------
    def per_example_backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> tuple:
        """(dJ/dX or None, kept) from dJ/dA, writing no gradient: ``kept`` holds X and
        delta (N, n_out), which stay valid while the layers below run theirs (delta
        goes into dA, never into a buffer another layer holds)."""
        X = ctx["X"]
        delta = self.activation.backward(dA, ctx.get("Z"), ctx.get("A"), self.xp, out=dA)
        dX = delta @ self.W.T if input_grad else None
        return dX, {"X": X, "delta": delta}

    def per_example_sq_norms(self, kept: dict) -> Any:
        """(N,): ||dJ_n/dW||^2 + ||dJ_n/db||^2 = ||x_n||^2 ||delta_n||^2 + ||delta_n||^2
        (dJ_n/dW = x_n delta_n^T, an outer product), in O(N (n_in + n_out))."""
        xp = self.xp
        X, d = kept["X"], kept["delta"]
        return (xp.sum(X * X, axis=1) + 1) * xp.sum(d * d, axis=1)

    def weighted_backward(self, kept: dict, c: Any) -> None:
        """dW = X^T diag(c) delta, db = sum_n c_n delta_n into the gradient views: the
        batch's gradient with row n scaled by c_n (N,)."""
        d = kept["delta"] * c[:, None]
        g = self.grads
        g["W"] = matmul_into(kept["X"].T, d, g["W"])
        g["b"] = sum_rows(d, self.xp, out=g["b"])

    # parameters by their names -----------------------------------------------------
    @property
    def W(self) -> Any:
        """Weights, shape (n_in, n_out): the model's live array."""
        return None if self.params is None else self.params["W"]

    @W.setter
    def W(self, value: Any) -> None:
        self.set_param("W", value)

    @property
    def b(self) -> Any:
        """Biases, shape (n_out,): the model's live array."""
        return None if self.params is None else self.params["b"]

    @b.setter
    def b(self, value: Any) -> None:
        self.set_param("b", value)

    @property
    def dW(self) -> Any:
        """dJ/dW of the last backward (None before the first)."""
        return self.grads["W"] if self.grads is not None and self._has_grads() else None

    @property
    def db(self) -> Any:
        """dJ/db of the last backward (None before the first)."""
        return self.grads["b"] if self.grads is not None and self._has_grads() else None

    def _has_grads(self) -> bool:
        return self.grads.store.has_grads

    def config(self) -> dict:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out,
                "activation": self.activation.config(), "init": self.init.config()}

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r})"


def set_widths(layers: list[Layer]) -> None:
    """Give each layer whose width follows its neighbours (``n_in`` None: Dropout)
    the width of the layer before it, or after it for a first layer."""
    for i, layer in enumerate(layers):
        if getattr(layer, "n_in", None) is not None:
            continue
        before = [la.n_out for la in layers[:i] if getattr(la, "n_out", None) is not None]
        after = [la.n_in for la in layers[i + 1:] if getattr(la, "n_in", None) is not None]
        width = before[-1] if before else (after[0] if after else None)
        if width is None:
            raise ValueError(f"layer {i} ({type(layer).__name__}) takes its width from its "
                             f"neighbours, but no layer of the model has a fixed width")
        layer.set_width(width)
