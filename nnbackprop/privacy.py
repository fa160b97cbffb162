"""Differentially private SGD (Abadi et al. 2016) from the batched backward.

One step on a batch of rows n, with clip norm C, noise multiplier sigma and
denominator B (the batch size; the expected one, q N, under Poisson sampling):

    g_n  = dJ_n/dtheta                       (never formed: only its norm, per_example)
    c_n  = min(1, C / ||g_n||)               (C / max(||g_n||, C): no 0/0)
    dW   = X^T diag(c) Delta,  db = sum_n c_n delta_n     (one weighted product per layer)
    g    = (sum_n c_n g_n + sigma C xi) / B,  xi ~ N(0, I)

then the L2 term and the optimizer as in any step. The clipped sum is exact: the
gradient of sum_n c_n J_n with c held fixed. The noise xi is drawn on the
gradients' device from a seeded stream (:class:`nnbackprop.noise.Normals`: the
array library's own generator on an accelerator, a host PCG64 on NumPy); one seed
gives a reproducible run on each backend, and nothing is read back.

The privacy budget comes from Google's ``dp-accounting`` (``pip install
"nnbackprop[dp]"``): its RDP accountant for ``steps`` Poisson-sampled Gaussian
mechanisms with sampling rate q = B / N. With ``sampling="poisson"`` each step
takes every row independently with probability q, which is what that analysis
assumes; ``sampling="shuffle"`` (each epoch a permutation cut into batches) is
the common practice the same number is usually quoted for, without that proof.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import per_example
from .noise import Normals

#: integer Renyi orders: closed forms (the fractional ones need a series that may not converge)
_ORDERS = list(range(2, 65)) + [80, 96, 128, 192, 256]


def _accountant():
    try:
        import dp_accounting
    except ImportError as exc:
        raise ImportError("the privacy budget (epsilon at delta) needs Google's dp-accounting: "
                          "pip install \"nnbackprop[dp]\" (or pass delta=None for no accounting)") from exc
    return dp_accounting


class DPSGD:
    """``DPSGD(clip, noise, delta=None, sampling="shuffle", seed=None)``: what
    ``fit(..., dp=DPSGD(...))`` trains with.

    clip        C > 0, each example's gradient norm bound
    noise       sigma >= 0, the noise multiplier (standard deviation sigma C)
    delta       report epsilon at this delta in History (needs dp-accounting), or None
    sampling    "shuffle" (fit's batches) or "poisson" (each row with probability
                batch_size / N, ceil(N / batch_size) steps per epoch)
    seed        seeds Poisson sampling (``rng``, on the host) and, through a spawned
                child seed, the noise (``normals``, on the model's device)
    """

    def __init__(self, clip: float, noise: float, delta: float | None = None,
                 sampling: str = "shuffle", seed: int | None = None):
        clip, noise = float(clip), float(noise)
        if not (clip > 0 and math.isfinite(clip)):
            raise ValueError(f"dp clip must be a finite number > 0, got {clip}")
        if not (noise >= 0 and math.isfinite(noise)):
            raise ValueError(f"dp noise must be a finite number >= 0, got {noise}")
        if delta is not None:
            delta = float(delta)
            if not 0 < delta < 1:
                raise ValueError(f"dp delta must lie in (0, 1), got {delta}")
            _accountant()
        if sampling not in ("shuffle", "poisson"):
            raise ValueError(f"dp sampling must be 'shuffle' or 'poisson', got {sampling!r}")
        self.clip, self.noise, self.delta, self.sampling = clip, noise, delta, sampling
        self.rng = np.random.default_rng(seed)
        self.normals = Normals(np.random.SeedSequence(seed).spawn(1)[0])
        self.steps = 0  # steps taken, for the accountant
        self._segments: list = []  # (sampling rate, steps when a fit at that rate began): see spent()

    def check_model(self, model: Any) -> None:
        per_example.check_separable(model, "DP-SGD")

    def poisson_batches(self, n: int, batch_size: int) -> tuple[np.ndarray, list]:
        """One epoch of Poisson batches: (row indices laid end to end, [(start, stop)]),
        ceil(n / batch_size) steps, each row in each step with probability batch_size / n."""
        q = batch_size / n
        picks = [np.flatnonzero(self.rng.random(n) < q) for _ in range(-(-n // batch_size))]
        stops = np.cumsum([len(p) for p in picks])
        return np.concatenate(picks), [(int(a), int(b)) for a, b in zip(np.r_[0, stops[:-1]], stops)]

    def step_grads(self, model: Any, Y: Any, tape: list, T: Any, loss: Any, denom: float) -> Any:
        """Fill the model's gradients with one DP-SGD step's noisy clipped mean, from
        the step's forward (Y (N, n_out), its tape) and targets T; returns the batch's
        mean loss (0-d, unread) plus the L2 penalty."""
        xp = model.xp
        n = Y.shape[0]
        J_rows, kept, sq = per_example.backward_rows(model, Y, T, loss, tape)
        del Y
        C = self.clip
        c = C / xp.maximum(xp.sqrt(sq), xp.full_like(sq, C))
        for layer, k in zip(model.layers, kept):
            layer.weighted_backward(k, c)
        store = model.store
        store.settle_grads()
        if self.noise:
            store.add_noise(self.normals, self.noise * C)
        store.scale_grads(1.0 / denom)
        self.steps += 1
        J = xp.sum(J_rows) / max(n, 1)
        if loss.l2:
            J = J + model.l2_penalty(loss.l2)
            store.add_decay(loss.l2)
        return J

    def begin(self, sample_rate: float) -> None:
        """A fit starts taking steps at ``sample_rate`` (fit calls this, after its checks)."""
        if not self._segments or self._segments[-1][0] != sample_rate:
            self._segments.append((sample_rate, self.steps))

    def spent(self) -> float:
        """epsilon at ``self.delta`` for every step this DPSGD has taken, each fit's steps
        at that fit's sampling rate (what History reports); inf for noise 0."""
        if self.noise == 0:
            return math.inf
        dp = _accountant()
        acc = dp.rdp.RdpAccountant(orders=_ORDERS)
        ends = [start for _, start in self._segments[1:]] + [self.steps]
        for (rate, start), end in zip(self._segments, ends):
            if end > start:
                acc.compose(dp.PoissonSampledDpEvent(rate, dp.GaussianDpEvent(self.noise)), end - start)
        return float(acc.get_epsilon(self.delta))

    def epsilon(self, steps: int, sample_rate: float) -> float:
        """epsilon at ``self.delta`` after ``steps`` Poisson-sampled Gaussian steps
        (dp-accounting's RDP accountant, integer orders 2..256); inf for noise 0."""
        if self.noise == 0:
            return math.inf
        dp = _accountant()
        acc = dp.rdp.RdpAccountant(orders=_ORDERS)
        acc.compose(dp.PoissonSampledDpEvent(sample_rate, dp.GaussianDpEvent(self.noise)), steps)
        return float(acc.get_epsilon(self.delta))

    def __repr__(self) -> str:
        return (f"DPSGD(clip={self.clip}, noise={self.noise}, delta={self.delta}, "
                f"sampling={self.sampling!r})")
