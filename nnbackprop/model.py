"""A stack of layers: forward, backward, the parameters in a fixed order.

The step, as data flows::

    X -> layer 0 -> layer 1 -> ... -> Y -> loss -> dY
    grads <- layer 0 <- layer 1 <- ... <-----------+    each backward writes its dW, db into its views
      grads += l2 * params                                (in place, one slice of one buffer)
      optimizer.step: one rule over one buffer

The model owns the parameter store (:mod:`nnbackprop.store`), what each
forward keeps for its backward (the tape: one ``ctx`` dict per layer), and the
training step's reusable buffers (:class:`~nnbackprop.layers.Workspace`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _compat, checkpoint, training
from .layers import Layer, Workspace, check_param, layer_from_config, set_widths
from .store import ParamStore

_SPENT = "spent"  # the tape after a training step or a backward consumed it


class Sequential:
    """``Sequential(layers, *, xp=None, dtype="float32", device=None, seed=None)``.

    ``layers``: objects following the :class:`~nnbackprop.Layer` protocol
    (:class:`~nnbackprop.Dense`, or your own), each layer's ``n_in`` the
    previous one's ``n_out``. The network lives in one namespace ``xp`` (a
    module such as ``numpy``, ``cupy``, ``torch`` or ``array_api_strict``, or its
    name; default NumPy), on one ``device`` (the namespace's default when
    ``None``) and in one floating ``dtype``. Initial weights come from
    ``numpy.random.default_rng(seed)``, so one seed gives bit-identical weights
    on every backend.

    Live arrays: :meth:`parameters`, :meth:`gradients`, ``layer.W``, ``layer.dW``
    and the like are the model's own arrays, not copies. Where the namespace
    allows writes (NumPy, PyTorch, CuPy) they are views of one flat buffer each
    that the next training step updates in place; elsewhere (array-api-strict)
    it replaces them with new arrays. Copy what you keep: ``xp.asarray(a, copy=True)``.
    """

    def __init__(self, layers: Sequence[Layer], *, xp: Any = None, dtype: Any = "float32",
                 device: Any = None, seed: int | None = None):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be an nnbackprop Layer (Dense, or a subclass of "
                                f"nb.Layer), got {type(layer).__name__}")
        set_widths(layers)
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"layer {i} gives {a.n_out} outputs but layer {i + 1} expects "
                    f"{b.n_in} inputs"
                )
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice; create one per position")
        self.xp = _compat.namespace(xp)
        self.device = _compat.resolve_device(self.xp, device)
        self.dtype = _compat.resolve_dtype(self.xp, dtype, self.device)
        self.seed = seed
        self.layers = layers
        rng = np.random.default_rng(seed)
        initial = [_initial_params(i, layer, rng) for i, layer in enumerate(layers)]
        self.rng = rng  # the same stream goes on: dropout masks come from it
        self._build([_compat.from_host(self.xp, h, self.dtype, self.device)
                     for values in initial for h in values.values()],
                    buffers=[_compat.from_host(self.xp, np.asarray(h, dtype=np.float64), self.dtype,
                                               self.device)
                             for layer in layers for h in layer.init_buffers().values()])
        self.optimizer = None  # set by fit, saved with the model
        self.loss = None
        self.fit_state = None  # fit's shuffling state, saved with the optimizer (resume)

    def _build(self, params: list, grads: list | None = None, buffers: list | None = None) -> None:
        """Lay out the store for ``params`` (and ``grads``, and the non-trained
        ``buffers``) in this model's namespace, bind every layer to its entries,
        and start with no tape and empty workspaces."""
        entries = [(f"{i}.{k}", tuple(shape), k in layer.decay)
                   for i, layer in enumerate(self.layers) for k, shape in layer.param_shapes().items()]
        kept = [(f"{i}.{k}", tuple(shape))
                for i, layer in enumerate(self.layers) for k, shape in layer.buffer_shapes().items()]
        self.store = ParamStore(self.xp, entries, self.dtype, self.device, buffers=kept)
        self.store.assign(params)
        for (name, _), b in zip(kept, buffers or ()):
            self.store.buffers[name] = b
        if grads is not None:
            for name, g in zip(self.store.names, grads):
                self.store.grads[name] = g
            self.store.settle_grads()
        for i, layer in enumerate(self.layers):
            layer._bind(self.xp, self.dtype, self.device, *self.store.scope(f"{i}."),
                        self.store.buffer_scope(f"{i}."))
        self._tape: tuple | str | None = None  # (rows, [ctx per layer]) of the last public forward
        self._ws = Workspace(self.xp, self.dtype, self.device, reuse=True, rng=self.rng)  # the step's
        self._fresh = Workspace(self.xp, self.dtype, self.device, reuse=False, rng=self.rng)  # public

    @classmethod
    def from_config(cls, config: dict, *, xp: Any = None, dtype: Any = "float32", device: Any = None,
                    seed: int | None = None) -> Sequential:
        """The network :meth:`config` describes (fresh weights from ``seed``)."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"a model config is a dict with a list of 'layers', got {config!r}")
        return cls([layer_from_config(c) for c in config["layers"]], xp=xp, dtype=dtype, device=device,
                   seed=seed)

    # shape facts ---------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def dtype_name(self) -> str:
        return _compat.dtype_name(self.xp, self.dtype)

    # passes --------------------------------------------------------------------
    def forward(self, X: Any, training: bool = False) -> Any:
        """Outputs (N, n_out) for inputs X (N, n_in); keeps what backward needs.

        ``training=False`` (the default, as in ``predict``): inference, e.g.
        BatchNorm normalises by its running statistics and Dropout passes X on.
        ``training=True`` (as ``fit`` and ``train_step`` do): batch statistics,
        which also update the running ones, and a fresh dropout mask from the
        model's seeded generator. :meth:`backward` differentiates whichever
        function this forward computed.
        """
        self.check_input(X)
        if not isinstance(training, bool):
            raise TypeError(f"training must be True or False, got {training!r}")
        if training:
            self._check_batch(X)
        tape: list = []
        Y = self._forward(X, tape, self._fresh, training)
        self._tape = (X.shape[0], tape)
        return _unshared(Y, tape[-1], self.xp)

    __call__ = forward

    def _forward(self, X: Any, tape: list | None, ws: Workspace, training: bool = False) -> Any:
        """Every layer's forward in the mode ``training``; with a ``tape``, one ctx
        per layer for backward."""
        ws.training = training
        A = X
        for layer in self.layers:
            ctx = None if tape is None else {}
            A = layer.forward(A, ctx, ws)
            if tape is not None:
                tape.append(ctx)
        return A

    def _infer(self, X: Any) -> Any:
        """Outputs without keeping anything for backward (prediction)."""
        return self._forward(X, None, self._fresh)

    def backward(self, dY: Any) -> Any:
        """From dJ/dY (N, n_out) fill every layer's gradients; return dJ/dX (N, n_in).

        Pairs with the last :meth:`forward`, whose record it consumes; ``dY`` is
        never written. Everything is checked before any gradient changes.
        """
        if self._tape is None:
            raise RuntimeError("backward called before forward: run forward(X) first")
        if self._tape is _SPENT:
            raise RuntimeError("backward needs the last forward pass, but it was consumed by a "
                               "training step (value_and_grad, train_step or fit) or an earlier "
                               "backward; run forward(X) again")
        _compat.check_array(dY, name="dY", xp=self.xp, device=self.device)
        rows, tape = self._tape
        out_shape = (rows, self.n_out)
        if tuple(dY.shape) != out_shape:
            raise ValueError(f"dY must have the output's shape {out_shape}, got {tuple(dY.shape)}")
        if dY.dtype != self.dtype:
            raise TypeError(
                f"dY must have dtype {self.dtype_name}, got {_compat.dtype_name(self.xp, dY.dtype)}"
            )
        self._tape = _SPENT
        return self._backward(self.xp.asarray(dY, copy=True), tape, self._fresh, input_grad=True)

    def _backward(self, dY: Any, tape: list, ws: Workspace, input_grad: bool) -> Any:
        """Every layer's backward from dY, the model's own (layers may write over it),
        in reverse; each ctx is dropped once used."""
        g = dY
        for i in range(len(self.layers) - 1, -1, -1):
            g = self.layers[i].backward(g, tape[i], ws, input_grad=input_grad or i > 0)
            tape[i] = None
        self.store.settle_grads()
        return g

    def value_and_grad(self, X: Any, T: Any, loss: Any) -> Any:
        """J of ``loss`` on (X, T) plus its L2 penalty; fills every gradient.
        The forward runs in training mode, as in :meth:`train_step`.

        Checks X and T first, their values included (a device read); returns J
        as a 0-d array. Consumes the forward pass: call :meth:`forward` again
        before a :meth:`backward` of your own.
        """
        self.check_input(X)
        self._check_batch(X)
        self.check_target(T, loss, n_rows=X.shape[0])
        return self._value_and_grad(X, T, loss)

    def _value_and_grad(self, X: Any, T: Any, loss: Any, training: bool = True) -> Any:
        Y, tape = self._step_forward(X, training)
        return self._add_l2(self._step_backward(Y, T, loss, tape), loss)

    def _step_forward(self, X: Any, training: bool = True) -> tuple[Any, list]:
        """The training step's forward, into the reused buffers: (Y, its tape).
        Y is overwritten by the next step; nobody but the step may keep it."""
        self._tape = _SPENT  # a training step ends what the last public forward kept
        tape: list = []
        return self._forward(X, tape, self._ws, training), tape

    @property
    def min_rows(self) -> int:
        """The fewest rows a training batch may have (2 with a BatchNorm, else 1)."""
        return max(layer.min_rows for layer in self.layers)

    def _check_batch(self, X: Any, name: str = "X") -> None:
        """Refuse a training batch with fewer rows than every layer needs."""
        _check_rows(X, name)
        need = self.min_rows
        if X.shape[0] < need:
            who = next(type(la).__name__ for la in self.layers if la.min_rows == need)
            raise ValueError(f"{name} has {X.shape[0]} row(s) but a training batch through {who} "
                             f"needs at least {need}")

    def _step_backward(self, Y: Any, T: Any, loss: Any, tape: list, row_scale: Any = None) -> Any:
        """J of the loss's data term, and its gradients, from Y (N, n_out) of
        :meth:`_step_forward` (the L2 term is :meth:`_add_l2`'s).

        Where the last layer's backward does not read Y (it is not in its ctx: an
        identity output), Y is dead once the loss has J and dJ/dY, so the loss
        may write dJ/dY over it: one (N, n_out) array less at the peak of the step.
        A loss that may hand back an array it keeps (``fresh_grad`` False) has
        its gradient copied before the layers write over it. ``row_scale`` (N,):
        the batch's weights w / sum w (:meth:`Loss.value_and_grad`)."""
        xp = self.xp
        kw = {} if row_scale is None else {"row_scale": row_scale}
        if getattr(loss, "fresh_grad", False):
            J, dY = loss.value_and_grad(Y, T, xp, out=None if _held(Y, tape[-1]) else Y, **kw)
        else:
            J, dY = loss.value_and_grad(Y, T, xp, **kw)
            dY = xp.asarray(dY, copy=True)
        del Y
        self._backward(dY, tape, self._ws, input_grad=False)
        return J

    def _add_l2(self, J: Any, loss: Any) -> Any:
        """J + lambda/2 sum ||W||^2 and grads += lambda W, where ``loss.l2`` = lambda > 0
        (after any all-reduce of the data term's gradients: the penalty is every rank's)."""
        if loss.l2:
            J = J + self.l2_penalty(loss.l2)
            self.store.add_decay(loss.l2)
        return J

    def l2_penalty(self, lam: float) -> Any:
        """lambda/2 sum ||p||^2 over the parameters the penalty applies to (every
        layer's ``decay``: Dense's weights, not biases), a 0-d array."""
        return (lam / 2) * sum(self.store.decaying_sq_norms())

    def train_step(self, X: Any, T: Any, loss: Any, optimizer: Any) -> Any:
        """One gradient-descent step on a batch X (N, n_in), T: forward, J, backward, update.

        Returns J as a 0-d array without reading it (no host-device sync). Always
        refuses, before any change, what can be checked without reading the data:
        namespace, device, row count, T's shape and dtype, and a loss that does
        not suit the last layer (:meth:`check_target_kind`). It does not check
        values (labels in range, targets in [0, 1], NaN): that needs a device
        read, so :meth:`fit` does it once per data set; a label out of range
        here gives a meaningless step, never an error.
        """
        self.check_input(X)
        self._check_batch(X)
        self.check_target_kind(T, loss, n_rows=X.shape[0])
        J = self._value_and_grad(X, T, loss)
        optimizer.step(self)
        return J

    # training: the loop lives in nnbackprop.training; these are its functions as methods
    fit = training.fit
    predict = training.predict
    evaluate = training.evaluate

    # files and devices ---------------------------------------------------------
    def save(self, path: str | os.PathLike, comm: Any = None) -> Any:
        """Write weights, architecture, dtype and optimizer state to one ``.npz``.

        With a communicator (data-parallel training: every rank holds the same
        model), rank 0 writes and every rank returns once the file is complete."""
        if comm is not None:
            from .distributed import get_communicator

            comm = get_communicator(comm)
        if comm is None or comm.size == 1:
            return checkpoint.save(self, path)
        try:
            out = checkpoint.save(self, path) if comm.rank == 0 else None
        finally:
            comm.barrier()
        return out

    def to_onnx(self, path: str | os.PathLike) -> Any:
        """Write the network in its inference form as an ONNX graph (optional extra
        ``onnx``); see :mod:`nnbackprop.onnx_export`."""
        from . import onnx_export

        return onnx_export.export(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, xp: Any = None, device: Any = None, *,
             max_bytes: int = checkpoint.MAX_BYTES, allow_nonfinite: bool = False) -> Sequential:
        """Rebuild a model saved by :meth:`save` in namespace ``xp`` on ``device``.

        The optimizer (if one was saved) comes back as ``model.optimizer`` with its
        state, ready to continue training (``fit(..., resume=True)`` also continues
        its shuffling); the loss as ``model.loss``. A file that is not a well-formed
        checkpoint, declares more than ``max_bytes`` of arrays, or holds NaN or
        infinite weights (unless ``allow_nonfinite``) raises
        :class:`~nnbackprop.CheckpointError` naming the path and what is wrong,
        before anything is built.
        """
        saved = checkpoint.read(path, max_bytes=max_bytes, allow_nonfinite=allow_nonfinite)
        try:
            model = cls.from_config(saved.model_config, xp=xp, dtype=saved.dtype, device=device)
        except (ValueError, TypeError) as exc:  # the saved model cannot live where it was asked to
            raise type(exc)(f"{path}: {exc}") from exc
        params, model.optimizer = saved.restore(model.named_parameters(), model.xp, model.dtype,
                                                model.device)
        model.store.assign(params)
        model.store.buffers.update(saved.restore_buffers(model.named_buffers(), model.xp, model.dtype,
                                                         model.device))
        if saved.rng_state is not None:
            model.rng.bit_generator.state = saved.rng_state
        model.loss = saved.loss
        model.fit_state = saved.fit_state
        return model

    def to(self, xp: Any = None, device: Any = None) -> Sequential:
        """Move weights, gradients and optimizer state to ``xp`` on ``device`` (named any
        way ``xp`` accepts, None for its default); returns self."""
        new_xp = _compat.namespace(xp if xp is not None else self.xp)
        new_device = _compat.resolve_device(new_xp, device)
        dtype = _compat.resolve_dtype(new_xp, self.dtype_name, new_device)

        def move(a):
            return _compat.from_host(new_xp, _compat.to_host(a), dtype, new_device)

        params = [move(p) for p in self.parameters()]
        grads = [move(g) for g in self.gradients()] if self.store.has_grads else None
        buffers = [move(b) for b in self.store.buffers.values()]
        opt = getattr(self, "optimizer", None)
        if opt is not None and opt.state is not None:
            opt.to(new_xp, new_device)
        self.xp, self.device, self.dtype = new_xp, new_device, dtype
        self._build(params, grads, buffers)
        return self

    # checks --------------------------------------------------------------------
    def check_input(self, X: Any, name: str = "X") -> None:
        """Refuse inputs that are not (N, n_in) arrays of this model's kind."""
        _compat.check_array(X, name=name, xp=self.xp, device=self.device)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, {self.n_in}), got shape {tuple(X.shape)}")
        if X.shape[1] != self.n_in:
            raise ValueError(
                f"{name} has {X.shape[1]} features per row but the first layer expects {self.n_in}"
            )
        if X.dtype == self.dtype:
            return
        if not self.xp.isdtype(X.dtype, "real floating"):
            raise TypeError(
                f"{name} has dtype {_compat.dtype_name(self.xp, X.dtype)} but inputs must be "
                f"floating ({self.dtype_name}); cast with xp.astype(X, xp.{self.dtype_name})"
            )
        raise TypeError(
            f"{name} has dtype {_compat.dtype_name(self.xp, X.dtype)} but the model is "
            f"{self.dtype_name}; cast with xp.astype(X, xp.{self.dtype_name}) or build "
            f"the model with dtype={_compat.dtype_name(self.xp, X.dtype)!r}"
        )

    def check_target(self, T: Any, loss: Any, n_rows: int, name: str = "T") -> None:
        """Refuse targets that ``loss`` cannot compare with this model's outputs:
        :meth:`check_target_kind`, then their values (labels in range, ...),
        which reads T back to the host: once per data set, not per step."""
        self.check_target_kind(T, loss, n_rows, name)
        loss.check_target_values((n_rows, self.n_out), T, self.xp)

    def check_target_kind(self, T: Any, loss: Any, n_rows: int, name: str = "T") -> None:
        """Refuse, without reading T's values (no device read), targets of the wrong
        namespace, device, row count, shape or dtype, and a ``loss`` that does not
        suit the last layer."""
        _compat.check_array(T, name=name, xp=self.xp, device=self.device)
        loss.check_model(self)
        if T.shape[0] != n_rows:
            raise ValueError(f"X has {n_rows} rows but {name} has {T.shape[0]}; they must match")
        loss.check_target_kind((n_rows, self.n_out), T, self.xp, self.dtype)

    # parameters ----------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, Any]]:
        """``[("0.W", W0), ("0.b", b0), ("1.W", W1), ...]``: layer by layer, each
        layer's parameters in the order of its ``param_shapes()``."""
        return list(self.store.params.items())

    def named_buffers(self) -> list[tuple[str, Any]]:
        """``[("1.running_mean", m), ("1.running_var", v), ...]``: the non-trained state
        (no optimizer touches it), layer by layer; the model's live arrays."""
        return list(self.store.buffers.items())

    def parameters(self) -> list[Any]:
        """[W0, b0, W1, b1, ...]: the model's live arrays, not copies; the next
        training step may update them in place. Copy what you keep
        (``xp.asarray(p, copy=True)``); see "Live arrays" in the class docstring."""
        return list(self.store.params.values())

    def gradients(self) -> list[Any]:
        """[dW0, db0, dW1, db1, ...], in the order of :meth:`parameters`.

        The model's live arrays, not copies: the next training step may write
        the new gradients into these very buffers. Copy what you keep
        (``xp.asarray(g, copy=True)``); see "Live arrays" in the class docstring.
        """
        if not self.store.has_grads:
            raise RuntimeError("no gradients yet: run backward (or value_and_grad) first")
        return list(self.store.grads.values())

    def set_parameters(self, params: Sequence[Any]) -> None:
        """Replace every parameter, in the order of :meth:`parameters`.

        All are checked before any is replaced; each is copied, so training
        (which may update in place) never writes into the caller's arrays.
        """
        params = list(params)
        names = self.store.names
        if len(params) != len(names):
            raise ValueError(f"expected {len(names)} parameters, got {len(params)}")
        for name, p in zip(names, params):
            i, short = name.split(".", 1)
            check_param(self.layers[int(i)], short, p)
        self.store.assign(params if self.store.flat else [self.xp.asarray(p, copy=True) for p in params])

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers]}

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], xp={self.xp.__name__}, dtype={self.dtype_name!r}, device={self.device!r})"


def _initial_params(i: int, layer: Layer, rng: np.random.Generator) -> dict:
    """``layer.init_params(rng)``, checked against its ``param_shapes()``."""
    shapes = layer.param_shapes()
    values = layer.init_params(rng)
    if list(values) != list(shapes):
        raise TypeError(f"layer {i} ({type(layer).__name__}): init_params gave {list(values)}, "
                        f"param_shapes declares {list(shapes)}")
    for k, v in values.items():
        if tuple(np.shape(v)) != tuple(shapes[k]):
            raise ValueError(f"layer {i} ({type(layer).__name__}): init_params gave {k} of shape "
                             f"{tuple(np.shape(v))}, param_shapes declares {tuple(shapes[k])}")
    return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


def _held(a: Any, ctx: dict) -> bool:
    """Whether the array ``a`` is one of those ``ctx`` keeps for backward."""
    return any(v is a for v in ctx.values())


def _unshared(Y: Any, ctx: dict, xp: Any) -> Any:
    """Y for the caller: a copy where the last layer's ctx keeps Y itself (its
    backward may write over what it kept), else Y."""
    return xp.asarray(Y, copy=True) if _held(Y, ctx) else Y


def _check_rows(X: Any, name: str = "X") -> None:
    """A loss is a mean over rows: refuse a batch without any."""
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; need at least one")


def load(path: str | os.PathLike, xp: Any = None, device: Any = None, **checks: Any) -> Sequential:
    """:meth:`Sequential.load` (``max_bytes``, ``allow_nonfinite`` as keywords)."""
    return Sequential.load(path, xp=xp, device=device, **checks)
