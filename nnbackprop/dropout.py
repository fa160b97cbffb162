"""Dropout: inverted dropout, its mask drawn from the model's seeded host generator.

Training, for X (N, n) and a mask M (N, n) drawn on the host (one seed, the
same masks on every backend) and moved to the model's device once per step:

    M_ij = 1 / (1 - p) with probability 1 - p, else 0
    A = X * M                               (N, n)

Backward, with the forward's own mask:

    dJ/dX = dJ/dA * M                       (N, n)

Inference (and p = 0 in either mode): A = X, dJ/dX = dJ/dA; nothing is drawn,
so a network with ``Dropout(0)`` gives bit for bit the numbers of one without it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _compat
from .layers import Layer, Workspace


class Dropout(Layer):
    """``Dropout(p=0.5)``: zero each unit with probability p while training, and
    scale the kept ones by 1/(1 - p), so inference is the identity.

    Its width is its neighbours': in a Sequential it takes the previous layer's
    ``n_out`` (the next layer's ``n_in`` when it comes first).
    """

    def __init__(self, p: float = 0.5):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
                or not math.isfinite(p) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be a number with 0 <= p < 1, got {p!r}")
        self.p = float(p)

    @property
    def draws_masks(self) -> bool:
        """Whether training draws random masks from the model's generator (p > 0)."""
        return self.p > 0.0
        self.n_in = self.n_out = None
        self.params = self.grads = None

    def set_width(self, n: int) -> None:
        self.n_in = self.n_out = int(n)

    def forward(self, X: Any, ctx: dict | None, ws: Workspace) -> Any:
        """A = X * M while training (a fresh mask M from ``ws.rng``), else A = X."""
        if not ws.training or self.p == 0.0:
            if ctx is not None:
                ctx["A"] = X  # the output is the input: marked as kept, so no one writes over it
            return X
        keep = ws.rng.random(tuple(X.shape)) >= self.p
        M = _compat.from_host(self.xp, keep * (1.0 / (1.0 - self.p)), self.dtype, self.device)
        if ctx is not None:
            ctx["M"] = M
        return X * M

    def backward(self, dA: Any, ctx: dict, ws: Workspace, *, input_grad: bool) -> Any:
        """dJ/dX = dJ/dA * M (dJ/dA itself where no mask was drawn)."""
        if not input_grad:
            return None
        M = ctx.get("M")
        if M is None:
            return dA
        if _compat.writer(dA) is not None:
            dA *= M  # dA is the model's own, dead after this
            return dA
        return dA * M

    def config(self) -> dict:
        return {"type": "Dropout", "p": self.p}

    def __repr__(self) -> str:
        return f"Dropout({self.p})"
