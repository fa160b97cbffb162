"""Checkpoints: one ``.npz`` file, no pickle anywhere.

Layout (every entry a plain array, readable with ``allow_pickle=False``)::

    __nnbackprop__      format marker and version, e.g. "nnbackprop-checkpoint/1"
    config              JSON: architecture, dtype, optimizer and loss config
    param/<i>.W, .b     weights, host float arrays in the model's dtype
    opt/<slot>/<k>      optimizer state, one array per parameter

A save goes through :func:`atomic_write`: a temporary file beside the target,
renamed over it, so a crash mid-save never destroys an existing checkpoint and
leaves no stray file.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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

    return atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Make the file ``path`` by ``write(f)`` on a binary read-write file object.

    It goes to a temporary file beside ``path`` (missing parent directories are
    created), is fsync'd and renamed over ``path``. The file gets mode
    0o666 & ~umask, as ``open()`` gives. On any failure ``path`` is untouched, the
    temporary file is gone, and an OSError names ``path``, not the temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_temp(path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    return path


def _new_temp(path: Path) -> tuple[int, Path]:
    """(fd, name) of a new file ``.NAME.XXXXXXXX.tmp`` beside ``path``, mode 0o666 less the umask."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same OSError subclass) about ``path``."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), os.fspath(path))


def load(path: str | os.PathLike, xp: Any = None, device: Any = None) -> Any:
    """Rebuild a model saved by :func:`save` in namespace ``xp`` on ``device``.

    The optimizer (if one was saved) comes back as ``model.optimizer`` with its
    state, ready to continue training; the loss as ``model.loss``. A file that
    is not a well-formed checkpoint raises :class:`CheckpointError` naming the
    path and what is wrong, before anything is built.
    """
    from .model import Sequential

    path = Path(path)
    data = _read(path)
    config = _config(path, data)
    layers = _layers(path, config)
    loss = _loss(path, config)
    try:
        model = Sequential(layers, xp=xp, dtype=config["dtype"], device=device)
    except (ValueError, TypeError) as exc:  # the saved model cannot live where it was asked to
        raise type(exc)(f"{path}: {exc}") from exc
    params = _params(path, data, model)
    optimizer = _optimizer(path, data, config, model)
    model._set_parameters_unchecked(
        [_compat.from_host(model.xp, h, model.dtype, model.device) for h in params])
    model.optimizer, model.loss = optimizer, loss
    return model


_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)
_CONTENT_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, by name."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as fh:
            f = np.load(fh, allow_pickle=False)
            if not hasattr(f, "files"):
                raise CheckpointError(f"{path}: not an nnbackprop checkpoint (one .npy array, "
                                      f"not an .npz archive)")
            with f:
                return {k: f[k] for k in f.files}
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted: {exc})") from exc


def _config(path: Path, data: dict) -> dict:
    """The checked JSON config: marker, version, its keys and their types."""
    marker = str(data.get("__nnbackprop__", ""))
    if not marker.startswith(MARKER + "/"):
        raise CheckpointError(f"{path}: not an nnbackprop checkpoint (no {MARKER!r} marker)")
    version = marker.split("/", 1)[1]
    if version != str(VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {version}, this nnbackprop "
                              f"reads version {VERSION}")
    if "config" not in data:
        raise CheckpointError(f"{path}: damaged checkpoint contents (no 'config' entry)")
    try:
        config = json.loads(str(data["config"]))
    except ValueError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents (config is not JSON: {exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: damaged checkpoint contents (config is a "
                              f"{type(config).__name__}, expected a JSON object)")
    if config.get("dtype") not in ("float16", "float32", "float64"):
        raise CheckpointError(f"{path}: damaged checkpoint contents (dtype {config.get('dtype')!r}; "
                              f"expected 'float16', 'float32' or 'float64')")
    return config


def _layers(path: Path, config: dict) -> list:
    from .layers import Dense

    try:
        specs = config["model"]["layers"]
        if not isinstance(specs, list) or not specs:
            raise ValueError(f"the layer list is {specs!r}")
        return [Dense(c["n_in"], c["n_out"], activation=c["activation"], init=c["init"]) for c in specs]
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged architecture ({type(exc).__name__}: {exc})") from exc


def _loss(path: Path, config: dict) -> Any:
    from . import losses

    spec = config.get("loss")
    if not spec:
        return None
    try:
        return losses.get(spec)
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged loss config {spec!r} ({type(exc).__name__}: {exc})") from exc


def _array(path: Path, data: dict, key: str, what: str, shape: tuple) -> np.ndarray:
    """``data[key]``: present, real numbers, of ``shape``."""
    if key not in data:
        raise CheckpointError(f"{path}: {what} is missing (no entry {key!r})")
    a = data[key]
    if a.dtype.kind not in "fiu":
        raise CheckpointError(f"{path}: {what} holds {a.dtype} values, expected real numbers")
    if tuple(a.shape) != tuple(shape):
        raise CheckpointError(f"{path}: {what} has shape {tuple(a.shape)}, the saved architecture "
                              f"needs {tuple(shape)}")
    return a


def _params(path: Path, data: dict, model: Any) -> list[np.ndarray]:
    return [_array(path, data, f"param/{name}", f"parameter {name}", tuple(p.shape))
            for name, p in model.named_parameters()]


def _optimizer(path: Path, data: dict, config: dict, model: Any) -> Any:
    """The saved optimizer with its state on ``model``'s namespace and device, or None."""
    from . import optim

    oc = config.get("optimizer")
    if not oc:
        return None
    shapes = [tuple(p.shape) for p in model.parameters()]
    try:
        opt = optim.get({"name": oc["name"], **oc["config"]})
        counts = dict(oc["slots"])
        t = oc["t"]
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer config ({type(exc).__name__}: {exc})") from exc
    slots = {}
    for s, n in counts.items():
        if n != len(shapes):
            raise CheckpointError(f"{path}: optimizer slot {s!r} holds {n!r} arrays, the model has "
                                  f"{len(shapes)} parameters")
        slots[s] = [_compat.from_host(model.xp, _array(path, data, f"opt/{s}/{k}", f"optimizer slot {s}/{k}",
                                                       shape), model.dtype, model.device)
                    for k, shape in enumerate(shapes)]
    try:
        opt.load_state_dict({"name": oc["name"], "config": oc["config"], "t": t, "slots": slots})
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer state ({type(exc).__name__}: {exc})") from exc
    return opt


def move(model: Any, xp: Any = None, device: Any = None) -> Any:
    """Move weights, gradients and optimizer state to ``xp`` on ``device`` (in place;
    ``device`` named any way ``xp`` accepts, None for its default)."""
    new_xp = _compat.namespace(xp if xp is not None else model.xp)
    new_device = _compat.resolve_device(new_xp, device)
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
        layer.dW, layer.db, layer._cache, layer._spent = dW, db, None, False
    model._flat = None  # the old store lives in the old namespace: rebind, then lay out anew
    model._set_parameters_unchecked(params)
    model._flatten()
    model._forward_state = None
    model._workspace = {}
    for layer in model.layers:
        layer._z_buf = None
    return model
