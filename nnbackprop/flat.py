"""A model's parameters, and their gradients, as views of one flat buffer each.

Every optimizer's update is elementwise, so it gives the same numbers whether
it runs once per parameter or once over all of them laid end to end. Laid end
to end it is a handful of array operations per step instead of a handful per
parameter: for small networks, where each operation costs more in dispatch than
in arithmetic, most of the optimizer's time.

    store = FlatStore(xp, [(784, 128), (128,), (128, 10), (10,)], dtype, device)
    store.params        # (101770,): W0, b0, W1, b1 end to end
    store.param_views   # [W0 (784, 128), b0 (128,), ...], views into it
    store.tile(base)    # the same views of another buffer of that length

Only for namespaces whose arrays can be written in place (the model checks):
elsewhere parameters stay separate arrays and the update runs per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class FlatStore:
    """Buffers ``params`` and ``grads`` (1-D, n = total size), each tiled by ``shapes``."""

    def __init__(self, xp: Any, shapes: Sequence[tuple[int, ...]], dtype: Any, device: Any):
        self.shapes = [tuple(s) for s in shapes]
        self.size = sum(math.prod(s) for s in self.shapes)
        self.params = xp.zeros((self.size,), dtype=dtype, device=device)
        self.grads = xp.zeros((self.size,), dtype=dtype, device=device)
        self.param_views = self.tile(self.params)
        self.grad_views = self.tile(self.grads)

    def tile(self, base: Any) -> list[Any]:
        """Views of ``base`` (n,) shaped like the parameters, in order, end to end."""
        views, start = [], 0
        for shape in self.shapes:
            stop = start + math.prod(shape)
            views.append(base[start:stop].reshape(shape))
            start = stop
        return views
