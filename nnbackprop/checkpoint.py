"""Checkpoints: one ``.npz`` file, no pickle anywhere.

Layout (every entry a plain array, readable with ``allow_pickle=False``)::

    __nnbackprop__      format marker and version, e.g. "nnbackprop-checkpoint/1"
    config              JSON: architecture, dtype, optimizer and loss config
    param/<i>.W, .b     weights, host float arrays in the model's dtype
    opt/<slot>/<k>      optimizer state, one array per parameter

A save goes to a temporary file beside the target and is renamed over it,
so a crash mid-save never destroys an existing checkpoint and leaves no stray file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import _compat

MARKER = "nnbackprop-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable nnbackprop checkpoint."""


def save(model: Any, path: str | os.PathLike) -> Path:
    """Write ``model`` (and its optimizer state, if it has been trained) to ``path``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"checkpoint path must end in .npz, got {str(path)!r}")
    arrays: dict[str, np.ndarray] = {}
    for name, p in model.named_parameters():
        arrays[f"param/{name}"] = _compat.to_host(p)
    config = {"format": VERSION, "model": model.config(), "dtype": model.dtype_name,
              "optimizer": None, "loss": None}
    opt = getattr(model, "optimizer", None)
    if opt is not None and opt.state is not None:
        state = opt.state_dict()
        config["optimizer"] = {"name": state["name"], "config": state["config"], "t": state["t"],
                               "slots": {k: len(v) for k, v in state["slots"].items()}}
        for slot, values in state["slots"].items():
            for k, v in enumerate(values):
                arrays[f"opt/{slot}/{k}"] = _compat.to_host(v)
    loss = getattr(model, "loss", None)
    if loss is not None:
        config["loss"] = loss.config()
    arrays["__nnbackprop__"] = np.asarray(f"{MARKER}/{VERSION}")
    arrays["config"] = np.asarray(json.dumps(config))

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path: str | os.PathLike, xp: Any = None, device: Any = None) -> Any:
    """Rebuild a model saved by :func:`save` in namespace ``xp`` on ``device``.

    The optimizer (if one was saved) comes back as ``model.optimizer`` with its
    state, ready to continue training; the loss as ``model.loss``.
    """
    from . import losses, optim
    from .layers import Dense
    from .model import Sequential

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted: {exc})") from exc
    marker = str(data.get("__nnbackprop__", ""))
    if not marker.startswith(MARKER + "/"):
        raise CheckpointError(f"{path}: not an nnbackprop checkpoint (no {MARKER!r} marker)")
    version = marker.split("/", 1)[1]
    if version != str(VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {version}, this nnbackprop "
                              f"reads version {VERSION}")
    try:
        config = json.loads(str(data["config"]))
        layers = [Dense(c["n_in"], c["n_out"], activation=c["activation"], init=c["init"])
                  for c in config["model"]["layers"]]
        model = Sequential(layers, xp=xp, dtype=config["dtype"], device=device)
        params = [data[f"param/{name}"] for name, _ in model.named_parameters()]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({type(exc).__name__}: {exc})") from exc
    for (name, p), host in zip(model.named_parameters(), params):
        if tuple(host.shape) != tuple(p.shape):
            raise CheckpointError(f"{path}: parameter {name} has shape {host.shape}, the saved "
                                  f"architecture needs {tuple(p.shape)}")
    model._set_parameters_unchecked(
        [_compat.from_host(model.xp, h, model.dtype, model.device) for h in params])
    model.optimizer = model.loss = None
    if config.get("loss"):
        model.loss = losses.get(config["loss"])
    oc = config.get("optimizer")
    if oc:
        try:
            opt = optim.get({"name": oc["name"], **oc["config"]})
            slots = {s: [_compat.from_host(model.xp, data[f"opt/{s}/{k}"], model.dtype, model.device)
                         for k in range(n)] for s, n in oc["slots"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: damaged optimizer state ({type(exc).__name__}: {exc})") from exc
        opt.load_state_dict({"name": oc["name"], "config": oc["config"], "t": oc["t"], "slots": slots})
        model.optimizer = opt
    return model


def move(model: Any, xp: Any = None, device: Any = None) -> Any:
    """Move weights, gradients and optimizer state to ``xp`` on ``device`` (in place)."""
    new_xp = _compat.namespace(xp if xp is not None else model.xp)
    new_device = _compat.default_device(new_xp) if device is None else device
    dtype = _compat.resolve_dtype(new_xp, model.dtype_name, new_device)

    def mv(a):
        return None if a is None else _compat.from_host(new_xp, _compat.to_host(a), dtype, new_device)

    params = [mv(p) for p in model.parameters()]
    grads = [(mv(layer.dW), mv(layer.db)) for layer in model.layers]
    opt = getattr(model, "optimizer", None)
    if opt is not None and opt.state is not None:
        opt.to(new_xp, new_device)
    model.xp, model.device, model.dtype = new_xp, new_device, dtype
    for layer, (dW, db) in zip(model.layers, grads):
        layer._xp, layer._device, layer._dtype = new_xp, new_device, dtype
        layer.dW, layer.db, layer._cache = dW, db, None
    model._set_parameters_unchecked(params)
    model._forwarded = False
    model._workspace = {}
    for layer in model.layers:
        layer._z_buf = None
    return model
