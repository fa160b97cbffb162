"""nnbackprop: neural networks trained by backpropagation, written once against
the Python Array API standard so the same code runs on NumPy, CuPy, PyTorch,
array-api-strict and any other compatible namespace."""

from . import activations, init, losses
from .gradcheck import gradient_check
from .layers import Dense
from .model import Sequential

__version__ = "0.1.0"

__all__ = ["Dense", "Sequential", "activations", "gradient_check", "init", "losses", "__version__"]
