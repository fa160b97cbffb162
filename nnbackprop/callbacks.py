"""The callback protocol of :func:`nnbackprop.training.fit`, and the stopping
rules built on it.

A callback may define any of::

    on_train_begin(run)                 before the first epoch
    on_epoch_begin(run, epoch)
    on_epoch_end(run, epoch, logs)      logs: {"loss": float, "val_loss": ..., metrics...}
    on_train_end(run)

``run`` is the :class:`Run` in progress: ``run.model``, ``run.optimizer``,
``run.history``; setting ``run.stop(reason)`` ends training after this epoch.
"""

from __future__ import annotations

import math
from typing import Any


class Callback:
    def on_train_begin(self, run: Any) -> None: ...
    def on_epoch_begin(self, run: Any, epoch: int) -> None: ...
    def on_epoch_end(self, run: Any, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, run: Any) -> None: ...


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs in a row in which ``monitor`` did not improve
    by more than ``min_delta`` (Keras's rule; ``patience=0`` stops at the first).

    ``monitor="auto"`` watches ``val_loss`` when there is validation data, else
    ``loss``. With ``restore_best_weights`` the model ends with the weights of
    its best epoch (copied on the device when it was best).
    """

    def __init__(self, monitor: str = "auto", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = False):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, run):
        self.best, self.best_epoch, self.wait, self._best_params = math.inf, None, 0, None

    def on_epoch_end(self, run, epoch, logs):
        key = self.monitor
        if key == "auto":
            key = "val_loss" if "val_loss" in logs else "loss"
        if key not in logs:
            raise KeyError(f"EarlyStopping monitors {key!r} but the logs hold {sorted(logs)}")
        value = logs[key]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                xp = run.model.xp
                self._best_params = [xp.asarray(p, copy=True) for p in run.model.parameters()]
        else:
            self.wait += 1
            if self.wait >= self.patience:
                best = "never finite" if self.best_epoch is None else \
                    f"best {self.best:.6g} at epoch {self.best_epoch + 1}"
                run.stop(f"early stopping: {key} did not improve by more than {self.min_delta} "
                         f"for {self.wait} epochs ({best})")

    def on_train_end(self, run):
        if self.restore_best_weights and self._best_params is not None:
            run.model.store.assign(self._best_params)


class Convergence(Callback):
    """The seeds' "repeat until converged": stop when the epoch loss changes by
    less than ``tol``, or the gradient norm ||dJ/dtheta|| of the last batch
    falls under ``grad_tol`` (one extra device read per epoch)."""

    def __init__(self, tol: float | None = 1e-6, grad_tol: float | None = None):
        if tol is None and grad_tol is None:
            raise ValueError("Convergence needs tol or grad_tol")
        self.tol, self.grad_tol = tol, grad_tol

    def on_train_begin(self, run):
        self._prev = None

    def on_epoch_end(self, run, epoch, logs):
        loss = logs["loss"]
        if self.tol is not None and self._prev is not None and abs(self._prev - loss) < self.tol:
            run.stop(f"converged: loss changed by {abs(self._prev - loss):.3g} < tol={self.tol}")
        self._prev = loss
        if self.grad_tol is not None:
            xp = run.model.xp
            norm = math.sqrt(float(sum(xp.sum(g * g) for g in run.model.gradients())))
            logs["grad_norm"] = norm
            if norm < self.grad_tol:
                run.stop(f"converged: gradient norm {norm:.3g} < grad_tol={self.grad_tol}")


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=f)``."""

    def __init__(self, **hooks):
        allowed = {"on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"}
        bad = set(hooks) - allowed
        if bad:
            raise TypeError(f"unknown hooks {sorted(bad)}; allowed: {sorted(allowed)}")
        for name, fn in hooks.items():
            setattr(self, name, fn)
