"""Per-example gradient norms from the batched backward, without per-example gradients.

For a Dense layer the gradient of row n's own loss J_n is an outer product,
dJ_n/dW = x_n delta_n^T and dJ_n/db = delta_n, so its squared norm needs only
two row norms:

    ||dJ_n/dW||^2 + ||dJ_n/db||^2 = ||x_n||^2 ||delta_n||^2 + ||delta_n||^2

Summed over the layers that is ||g_n||^2, every example's full gradient norm, in
O(N width) per layer where materialising the gradients costs O(N width^2). The
deltas come from one backward over the whole batch (the loss's unscaled per-row
gradients dJ_n/dY at the top), exactly as in the ordinary step; only the last
product dW = X^T delta is left out (DP-SGD then does it weighted, see
:mod:`nnbackprop.privacy`). Only layers marked ``per_example_separable`` can
take part (Dense); any other is refused by name.
"""

from __future__ import annotations

from typing import Any

from . import losses as _losses


def check_separable(model: Any, what: str) -> None:
    """Refuse a model holding a layer whose per-example gradients are not separable."""
    for i, layer in enumerate(model.layers):
        if not getattr(layer, "per_example_separable", False):
            raise ValueError(
                f"{what} needs every layer's per-example gradients, but layer {i} "
                f"({type(layer).__name__}) is not marked per_example_separable (a layer that "
                f"mixes the rows of a batch, such as batch normalisation, has none)")


def backward_rows(model: Any, Y: Any, T: Any, loss: Any, tape: list) -> tuple[Any, list, Any]:
    """(J_n (N,), each layer's kept X and delta, ||g_n||^2 (N,)) from the step's
    forward (Y, tape): every layer's per-example backward, top to bottom; no
    gradient is written."""
    xp = model.xp
    J_rows, g = loss.rows(Y, T, xp)
    kept: list = [None] * len(model.layers)
    sq = None
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        g, kept[i] = layer.per_example_backward(g, tape[i], model._ws, input_grad=i > 0)
        tape[i] = None
        s = layer.per_example_sq_norms(kept[i])
        sq = s if sq is None else sq + s
    return J_rows, kept, sq


def grad_norms(model: Any, X: Any, T: Any, loss: Any) -> Any:
    """(N,): ||dJ_n/dtheta||_2 for every row n of X (N, n_in), T, where J_n is row n's
    own loss (no 1/N, no L2 term) and theta every parameter of ``model``.

    One forward and one backward over the batch; the model's gradients are left as
    they were (like a training step it consumes the last public forward). Every
    layer must be ``per_example_separable`` (Dense)."""
    loss = _losses.get(loss)
    check_separable(model, "per-example gradient norms")
    model.check_input(X)
    if X.shape[0] == 0:
        raise ValueError("X has 0 rows; need at least one")
    model.check_target(T, loss, n_rows=X.shape[0])
    Y, tape = model._step_forward(X)
    _, _, sq = backward_rows(model, Y, T, loss, tape)
    return model.xp.sqrt(sq)
