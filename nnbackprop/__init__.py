"""nnbackprop: neural networks trained by backpropagation, written once against
the Python Array API standard so the same code runs on NumPy, CuPy, PyTorch,
array-api-strict and any other compatible namespace."""

from . import (
    activations,
    callbacks,
    clipping,
    distributed,
    init,
    losses,
    metrics,
    optim,
    per_example,
    privacy,
    schedules,
    training,
    weights,
)
from ._mlp import mlp
from .checkpoint import CheckpointError
from .dropout import Dropout
from .gradcheck import gradient_check
from .layers import Dense, Layer
from .model import Sequential, load
from .norm import BatchNorm, LayerNorm
from .training import History, TrainingDiverged

__version__ = "0.1.0"

_LAZY = ("plot", "sklearn", "datasets")


def __getattr__(name):
    """``nb.plot`` and ``nb.sklearn`` load on first use: they need optional extras."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BatchNorm", "CheckpointError", "Dense", "Dropout", "History", "LayerNorm", "Layer", "Sequential",
    "TrainingDiverged", "activations", "callbacks", "clipping", "distributed", "gradient_check", "init", "load",
    "losses", "metrics", "mlp", "optim", "per_example", "privacy", "schedules", "training", "weights",
    "__version__",
]
