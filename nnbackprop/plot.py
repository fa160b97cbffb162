"""Training curves and confusion matrices with matplotlib (``pip install 'nnbackprop[plot]'``).

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas,
never through ``pyplot``: no global figure state, no GUI backend switched.
Each function returns the Figure and, when ``path`` is given, writes it in the format its
suffix names (``.png``, ``.pdf``, ``.svg``, ``.jpg``, ...; PNG without a suffix).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _compat
from .checkpoint import atomic_write


def require() -> None:
    """Raise a one-line ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("plotting needs matplotlib; install it with: "
                          "python3 -m pip install 'nnbackprop[plot]'") from None


def _figure(width: float, height: float):
    require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib can write: png, pdf, svg, jpg, ..."""
    require()
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def format_of(path: str | os.PathLike) -> str:
    """The image format named by the suffix of ``path`` (no suffix: "png");
    ValueError for a suffix matplotlib cannot write."""
    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix not in formats():
        raise ValueError(f"{os.fspath(path)}: matplotlib cannot write .{suffix} images; use one of "
                         f"{', '.join('.' + f for f in formats())}")
    return suffix


def _save(fig, path):
    if path is not None:
        fmt = format_of(path)
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100))
    return fig


def history(history: Any, path: str | os.PathLike | None = None, title: str | None = None):
    """One panel per quantity: "loss" first, then each metric, each with its
    ``val_`` curve when present; x is the epoch (1-based).

    ``history`` is a :class:`~nnbackprop.training.History` or its ``.history``
    dict ``{"loss": [...], "val_loss": [...], "accuracy": [...]}``.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or "loss" not in logs:
        raise ValueError("history must be a History or a dict with a 'loss' list")
    names = ["loss"] + [k for k in logs if k != "loss" and not k.startswith("val_")]
    fig = _figure(4.5 * len(names), 3.5)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in logs:
                values = list(logs[key])
                ax.plot(np.arange(1, len(values) + 1), values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_counts(y_true: Any, y_pred: Any, labels: Sequence | None = None) -> tuple[np.ndarray, list]:
    """(counts (C, C), labels): rows are the true class, columns the predicted one."""
    t, p = np.asarray(_compat.to_host(y_true)).ravel(), np.asarray(_compat.to_host(y_pred)).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    labels = list(np.unique(np.concatenate([t, p]))) if labels is None else list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist()):
        if a in index and b in index:
            counts[index[a], index[b]] += 1
    return counts, labels


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence | None = None,
                     path: str | os.PathLike | None = None, title: str | None = None):
    """Heat map of class counts, true (N,) against predicted (N,) labels of any
    array library; ``labels`` fixes the classes and their order."""
    counts, labels = confusion_counts(y_true, y_pred, labels)
    k = len(labels)
    fig = _figure(1.2 + 0.5 * max(k, 4), 1.0 + 0.5 * max(k, 4))
    ax = fig.subplots()
    im = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(k), [str(lab) for lab in labels])
    ax.set_yticks(range(k), [str(lab) for lab in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    high = counts.max() / 2 if counts.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                    color="white" if counts[i, j] > high else "black", fontsize=8)
    fig.colorbar(im, ax=ax)
    if title:
        ax.set_title(title)
    return _save(fig, path)
