"""A model's parameters and their gradients, by name, as views of one flat buffer each.

Every optimizer's update is elementwise, so it gives the same numbers whether
it runs once per parameter or once over all of them laid end to end. Laid end
to end it is a handful of array operations per step instead of a handful per
parameter; the L2 term is one operation, a data-parallel all-reduce one call.

    store = ParamStore(xp, [("0.W", (784, 128), True), ("0.b", (128,), False), ...],
                       dtype, device)
    store.params["0.W"]     # the live array: a view of store.flat_params (n,)
    store.grads["0.W"]      # a view of store.flat_grads (n,)
    store.tile(base)        # the same views of another buffer of length n (optimizer slots)

Where the namespace lets the library write its arrays (NumPy, PyTorch, CuPy:
:func:`nnbackprop._compat.writer`), views are never replaced: new values are
copied into them, so the flat buffers always hold the model's numbers.
Parameters that take the L2 penalty come first in the buffer, so the penalty's
gradient is one operation over one slice. Elsewhere (array-api-strict, JAX)
``flat_params`` is None and every name has its own array, rebound on each update.

Non-trained buffers (BatchNorm's running statistics) sit beside them in
``store.buffers`` (by name, e.g. "1.running_mean"), outside the flat buffers:
no optimizer, L2 term or gradient ever reaches them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import _compat


class ParamStore:
    """Parameters ``params`` and gradients ``grads`` (dicts by name, in parameter order)."""

    def __init__(self, xp: Any, entries: Sequence[tuple[str, tuple[int, ...], bool]], dtype: Any,
                 device: Any, buffers: Sequence[tuple[str, tuple[int, ...]]] = ()):
        self.xp = xp
        self.buffers = {name: xp.zeros(tuple(shape), dtype=dtype, device=device) for name, shape in buffers}
        self.names = [name for name, _, _ in entries]
        self.shapes = {name: tuple(shape) for name, shape, _ in entries}
        self.decaying = [name for name, _, decays in entries if decays]
        self.size = sum(math.prod(s) for s in self.shapes.values())
        self.has_grads = False  # set by the first backward
        probe = xp.zeros((self.size,), dtype=dtype, device=device)
        self.flat_params = probe if _compat.writer(probe) is not None else None
        if self.flat_params is not None:
            self.flat_grads = xp.zeros((self.size,), dtype=dtype, device=device)
            self._offsets, start = {}, 0
            for name in self.decaying + [n for n in self.names if n not in self.decaying]:
                stop = start + math.prod(self.shapes[name])
                self._offsets[name] = (start, stop)
                start = stop
            self._decay_stop = sum(math.prod(self.shapes[n]) for n in self.decaying)
            self.params = dict(zip(self.names, self.tile(self.flat_params)))
            self.grads = dict(zip(self.names, self.tile(self.flat_grads)))
            self._param_views = list(self.params.values())
            self._grad_views = dict(self.grads)
        else:
            self.flat_grads = None
            self.params = {n: xp.zeros(self.shapes[n], dtype=dtype, device=device) for n in self.names}
            self.grads = {n: xp.zeros(self.shapes[n], dtype=dtype, device=device) for n in self.names}

    @property
    def flat(self) -> bool:
        """Whether parameters and gradients are views of one buffer each."""
        return self.flat_params is not None

    def tile(self, base: Any) -> list[Any]:
        """Views of ``base`` (n,) shaped like the parameters, in parameter order, each at
        its parameter's place in ``flat_params``."""
        return [base[a:b].reshape(self.shapes[n]) for n, (a, b) in
                ((n, self._offsets[n]) for n in self.names)]

    # values in ----------------------------------------------------------------------
    def assign(self, values: Sequence[Any]) -> None:
        """Make ``values`` (in parameter order, already checked) the parameters: copied
        into the views where the store is flat (the caller's arrays are never aliased),
        else rebound. Read-only views (a user's choice) end the flat layout."""
        if self.flat and not all(_compat.writer(v) is not None for v in self._param_views):
            self._unflatten()
        if self.flat:
            for view, value in zip(self._param_views, values):
                if value is not view:
                    view[...] = value
            return
        for name, value in zip(self.names, values):
            self.params[name] = value

    def settle_grads(self) -> None:
        """After a backward: a gradient a layer rebound (instead of writing its view)
        is copied into its view, so the flat buffer holds every gradient."""
        self.has_grads = True
        if not self.flat:
            return
        for name, view in self._grad_views.items():
            g = self.grads[name]
            if g is not view:
                view[...] = g
                self.grads[name] = view

    def add_decay(self, lam: float) -> None:
        """grads += lam * params over the parameters that take the L2 penalty:
        one operation over one slice where flat."""
        if self.flat:
            g = self.flat_grads[:self._decay_stop]
            g += lam * self.flat_params[:self._decay_stop]
            return
        for name in self.decaying:
            self.grads[name] = self.grads[name] + lam * self.params[name]

    def decaying_sq_norms(self) -> list[Any]:
        """||p||^2 (0-d arrays) of each parameter the L2 penalty applies to, in order.

        Where flat and writeable, the squares are one operation over one slice of
        the flat buffer, and each parameter's sum a reduction of its own contiguous
        part: the same numbers as ``xp.sum(p * p)`` per parameter (a contiguous array's
        sum runs over its elements in memory order, whatever its shape)."""
        xp = self.xp
        m = _compat.writer(self.flat_params) if self.flat else None
        reduce = getattr(getattr(m, "add", None), "reduce", None)  # a ufunc's own: no wrapper per call
        if reduce is None:
            return [xp.sum(self.params[n] * self.params[n]) for n in self.decaying]
        p = self.flat_params[:self._decay_stop]
        sq = p * p
        return [reduce(sq[a:b]) for a, b in (self._offsets[n] for n in self.decaying)]

    def add_noise(self, normals: Any, scale: float) -> None:
        """grads += scale * xi, xi standard normals from ``normals`` (a
        :class:`nnbackprop.noise.Normals`), drawn on the gradients' device: one draw
        and one addition over the flat buffer where flat, else one per parameter."""
        if self.flat:
            normals.add_to(self.flat_grads, scale)
            return
        for name in self.names:
            self.grads[name] = normals.add_to(self.grads[name], scale)

    def scale_grads(self, factor: float) -> None:
        """grads *= factor (one operation over one buffer where flat)."""
        if self.flat:
            g = self.flat_grads
            g *= factor
            return
        for name in self.names:
            self.grads[name] = self.grads[name] * factor

    def writeable(self) -> bool:
        """Whether an update may write every parameter and gradient in place."""
        return self.flat and all(_compat.writer(v) is not None for v in self._param_views)

    def _unflatten(self) -> None:
        self.flat_params = self.flat_grads = None

    def scope(self, prefix: str) -> tuple[Scope, Scope]:
        """(parameters, gradients) of the names under ``prefix`` ("0." gives "0.W" as "W"):
        what a layer sees as ``self.params`` and ``self.grads``."""
        names = {n[len(prefix):]: n for n in self.names if n.startswith(prefix)}
        return Scope(self, self.params, names), Scope(self, self.grads, names)

    def buffer_scope(self, prefix: str) -> Scope:
        """The buffers under ``prefix``, by their short names: a layer's ``self.buffers``."""
        names = {n[len(prefix):]: n for n in self.buffers if n.startswith(prefix)}
        return Scope(self, self.buffers, names)


class Scope:
    """One layer's entries of a store's dict, by their short names; assigning one
    rebinds the store's entry (a gradient rebound this way is copied into its view
    by :meth:`ParamStore.settle_grads`)."""

    __slots__ = ("store", "_d", "_names")

    def __init__(self, store: ParamStore, d: dict, names: dict[str, str]):
        self.store, self._d, self._names = store, d, names

    def __getitem__(self, key: str) -> Any:
        return self._d[self._names[key]]

    def __setitem__(self, key: str, value: Any) -> None:
        self._d[self._names[key]] = value

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def keys(self):
        return self._names.keys()

    def items(self):
        return [(k, self._d[n]) for k, n in self._names.items()]
