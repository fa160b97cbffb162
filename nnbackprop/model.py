"""A stack of layers: forward, backward and the parameters in a fixed order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _compat, training
from .flat import FlatStore
from .layers import Dense

KEPT, SPENT = "kept", "spent"  # the last forward pass: available to backward, or consumed


class Sequential:
    """``Sequential(layers, *, xp=None, dtype="float32", device=None, seed=None)``.

    The network lives in one namespace ``xp`` (a module such as ``numpy``,
    ``cupy``, ``torch`` or ``array_api_strict``, or its name; default NumPy), on
    one ``device`` (the namespace's default when ``None``) and in one floating
    ``dtype``. Initial weights come from ``numpy.random.default_rng(seed)``, so
    one seed gives bit-identical weights on every backend. ``device`` may be
    named any way the namespace accepts (``"cpu"``, ``"cuda"``, a device
    object); the model keeps it as the namespace reports it for its arrays.

    Live arrays: :meth:`parameters`, :meth:`gradients`, ``layer.W``, ``layer.b``,
    ``layer.dW`` and ``layer.db`` are the model's own arrays, not copies. The
    next training step may update them in place (where the namespace allows
    writes: NumPy, PyTorch, CuPy) or replace them with new arrays (where it
    does not: array-api-strict); which one is a matter of speed, not meaning.
    Copy what you keep: ``xp.asarray(a, copy=True)``.
    """

    def __init__(self, layers: Sequence[Dense], *, xp: Any = None, dtype: Any = "float32",
                 device: Any = None, seed: int | None = None):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layer {i} must be a Dense, got {type(layer).__name__}")
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"layer {i} gives {a.n_out} outputs but layer {i + 1} expects "
                    f"{b.n_in} inputs"
                )
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same Dense object appears twice; create one per position")
        self.xp = _compat.namespace(xp)
        self.device = _compat.resolve_device(self.xp, device)
        self.dtype = _compat.resolve_dtype(self.xp, dtype, self.device)
        self.seed = seed
        self.layers = layers
        rng = np.random.default_rng(seed)
        for layer in layers:
            layer.build(self.xp, self.dtype, self.device, rng)
        self._flatten()
        self._forward_state = None  # None, KEPT or SPENT: what backward may pair with
        self._workspace: dict = {}  # the training step's reusable buffers (Dense.train_backward)
        self.optimizer = None  # set by fit, saved with the model
        self.loss = None

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
    def forward(self, X: Any) -> Any:
        """Outputs (N, n_out) for inputs X (N, n_in); keeps what backward needs."""
        self.check_input(X)
        A = X
        for layer in self.layers:
            A = layer.forward(A)
        self._forward_state = KEPT
        return A

    __call__ = forward

    def _train_forward(self, X: Any) -> Any:
        """The training step's forward, into reused buffers (see Dense.train_forward).

        Its record is for :meth:`_loss_backward` alone, which spends it (so it is
        marked spent from the start: a failure leaves no half-kept record)."""
        self._forward_state = SPENT
        A = X
        for layer in self.layers:
            A = layer.train_forward(A)
        return A

    def _infer(self, X: Any) -> Any:
        """Outputs without keeping anything for backward (prediction)."""
        A = X
        for layer in self.layers:
            A = layer.infer(A)
        return A

    def backward(self, dY: Any) -> Any:
        """From dJ/dY (N, n_out) fill every layer's ``dW``, ``db``; return dJ/dX (N, n_in).

        Pairs with the last :meth:`forward`; ``dY`` is never written. Everything
        is checked before any gradient changes.
        """
        if self._forward_state is None:
            raise RuntimeError("backward called before forward: run forward(X) first")
        if self._forward_state == SPENT or any(layer._cache is None for layer in self.layers):
            raise RuntimeError("backward needs the last forward pass, but it was consumed by a "
                               "training step (value_and_grad, train_step or fit); run forward(X) again")
        _compat.check_array(dY, name="dY", xp=self.xp, device=self.device)
        out_shape = tuple(self.layers[-1]._cache[2].shape)
        if tuple(dY.shape) != out_shape:
            raise ValueError(f"dY must have the output's shape {out_shape}, got {tuple(dY.shape)}")
        if dY.dtype != self.dtype:
            raise TypeError(
                f"dY must have dtype {self.dtype_name}, got {_compat.dtype_name(self.xp, dY.dtype)}"
            )
        return self._backward(dY, input_grad=True)

    def _backward(self, dY: Any, input_grad: bool) -> Any:
        """The last layer reads dY without writing it (the caller's, or a loss's);
        every gradient below is the model's own, so those layers may overwrite it."""
        last = len(self.layers) - 1
        g = self.layers[last].backward(dY, input_grad=input_grad or last > 0)
        for i in range(last - 1, -1, -1):
            g = self.layers[i]._backward_owned(g, input_grad=input_grad or i > 0)
        return g

    def _train_backward(self, pending: list) -> None:
        """The training step's backward from the loss gradient in ``pending``
        (popped, so no reference to it outlives its use); see Dense.train_backward."""
        g = pending.pop()
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            g = self.layers[i].train_backward(g, input_grad=i > 0, consume=i < last,
                                              workspace=self._workspace)

    def value_and_grad(self, X: Any, T: Any, loss: Any) -> Any:
        """J of ``loss`` on (X, T) plus its L2 penalty; fills every ``dW``, ``db``.

        Checks X and T first, their values included (a device read); returns J
        as a 0-d array. Consumes the forward pass: call :meth:`forward` again
        before a :meth:`backward` of your own.
        """
        self.check_input(X)
        _check_rows(X)
        self.check_target(T, loss, n_rows=X.shape[0])
        return self._value_and_grad(X, T, loss)

    def _value_and_grad(self, X: Any, T: Any, loss: Any) -> Any:
        return self._loss_backward(self._train_forward(X), T, loss)

    def _loss_backward(self, Y: Any, T: Any, loss: Any) -> Any:
        """J and every layer's dW, db from Y (N, n_out), the output of
        :meth:`_train_forward`, which is spent afterwards.

        Where the last activation's backward does not read its output (identity),
        Y is dead once the loss has J and dJ/dY, so the loss may write dJ/dY over
        it: one (N, n_out) array less at the peak of the step."""
        xp = self.xp
        fresh = getattr(loss, "fresh_grad", False)  # dJ/dY is a new array the model may overwrite
        if fresh and not self.layers[-1].activation.backward_uses_a:
            J, dY = loss.value_and_grad_(Y, T, xp)
        else:
            J, dY = loss.value_and_grad(Y, T, xp)
        del Y
        if fresh:
            pending = [dY]
            del dY
            self._train_backward(pending)
        else:  # a loss that may hand back an array it keeps: never written
            self._backward(dY, input_grad=False)
        if loss.l2:
            J = J + self._penalty(loss.l2)
            for layer in self.layers:
                layer.dW = layer.dW + loss.l2 * layer.W
        return J

    def _penalty(self, lam: float) -> Any:
        """lambda/2 sum_layers ||W||^2 (biases excluded), a 0-d array."""
        xp = self.xp
        return (lam / 2) * sum(xp.sum(layer.W * layer.W) for layer in self.layers)

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
        _check_rows(X)
        self.check_target_kind(T, loss, n_rows=X.shape[0])
        J = self._value_and_grad(X, T, loss)
        optimizer.step(self)
        return J

    # training: the loop lives in nnbackprop.training; these are its functions as methods
    fit = training.fit
    predict = training.predict
    evaluate = training.evaluate

    # files and devices ---------------------------------------------------------
    def save(self, path: Any) -> Any:
        """Write weights, architecture, dtype and optimizer state to one ``.npz``."""
        from . import checkpoint

        return checkpoint.save(self, path)

    def to(self, xp: Any = None, device: Any = None) -> Sequential:
        """Move weights, gradients and optimizer state to ``xp`` on ``device``; returns self."""
        from . import checkpoint

        return checkpoint.move(self, xp, device)

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
        """``[("0.W", W0), ("0.b", b0), ("1.W", W1), ...]`` in layer order."""
        out = []
        for i, layer in enumerate(self.layers):
            out += [(f"{i}.W", layer.W), (f"{i}.b", layer.b)]
        return out

    def parameters(self) -> list[Any]:
        """[W0, b0, W1, b1, ...]: the model's live arrays, not copies; the next
        training step may update them in place. Copy what you keep
        (``xp.asarray(p, copy=True)``); see "Live arrays" in the class docstring."""
        return [p for layer in self.layers for p in (layer._W, layer._b)]

    def gradients(self) -> list[Any]:
        """[dW0, db0, dW1, db1, ...], in the order of :meth:`parameters`.

        The model's live arrays, not copies: the next training step may write
        the new gradients into these very buffers. Copy what you keep
        (``xp.asarray(g, copy=True)``); see "Live arrays" in the class docstring.
        """
        out = [g for layer in self.layers for g in (layer.dW, layer.db)]
        if any(g is None for g in out):
            raise RuntimeError("no gradients yet: run backward (or value_and_grad) first")
        return out

    def set_parameters(self, params: Sequence[Any]) -> None:
        """Replace every parameter, in the order of :meth:`parameters`.

        All are checked before any is replaced; each is copied, so training
        (which may update in place) never writes into the caller's arrays.
        """
        params = list(params)
        if len(params) != 2 * len(self.layers):
            raise ValueError(f"expected {2 * len(self.layers)} parameters, got {len(params)}")
        for i, layer in enumerate(self.layers):
            layer._checked_param("W", params[2 * i], (layer.n_in, layer.n_out))
            layer._checked_param("b", params[2 * i + 1], (layer.n_out,))
        self._set_parameters_unchecked([self.xp.asarray(p, copy=True) for p in params])

    def _set_parameters_unchecked(self, params: Sequence[Any]) -> None:
        """Make ``params`` the parameters: copied into the flat store's views where
        the model has one (the caller's arrays are never aliased), else rebound."""
        store = self._flat
        if store is not None and all(map(_compat.is_writeable, store.param_views)):
            for view, p in zip(store.param_views, params):
                if p is not view:
                    view[...] = p
            return
        if store is not None:  # a user made the live arrays read-only: no flat store from now on
            self._flat = None
            for layer in self.layers:
                layer._grad_out = None
        for i, layer in enumerate(self.layers):
            layer._W, layer._b = params[2 * i], params[2 * i + 1]

    # the flat store (nnbackprop.flat) ----------------------------------------------
    def _flatten(self) -> None:
        """Lay the parameters, and the training step's gradients, end to end in one
        buffer each, where the namespace lets arrays be written in place; an
        optimizer may then update all of them in one go (see :meth:`_flat_buffers`)."""
        params = self.parameters()
        self._flat = None
        if not _compat.is_writeable(params[0]):
            for layer in self.layers:
                layer._grad_out = None
            return
        store = FlatStore(self.xp, [tuple(p.shape) for p in params], self.dtype, self.device)
        for i, layer in enumerate(self.layers):
            W, b = store.param_views[2 * i], store.param_views[2 * i + 1]
            W[...], b[...] = layer._W, layer._b
            layer._W, layer._b = W, b
            layer._grad_out = (store.grad_views[2 * i], store.grad_views[2 * i + 1])
        self._flat = store

    def _flat_buffers(self) -> tuple[Any, Any] | None:
        """(parameters (n,), gradients (n,)) end to end, while every parameter and
        gradient is still its view of the flat store; else None (a user's backward
        made new gradient arrays, say), and updates go parameter by parameter."""
        store = self._flat
        if store is None:
            return None
        pv, gv = store.param_views, store.grad_views
        for i, layer in enumerate(self.layers):
            if layer._W is not pv[2 * i] or layer._b is not pv[2 * i + 1] \
                    or layer.dW is not gv[2 * i] or layer.db is not gv[2 * i + 1]:
                return None
        return store.params, store.grads

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers]}

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], xp={self.xp.__name__}, dtype={self.dtype_name!r}, device={self.device!r})"


def _check_rows(X: Any, name: str = "X") -> None:
    """A loss is a mean over rows: refuse a batch without any."""
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; need at least one")
