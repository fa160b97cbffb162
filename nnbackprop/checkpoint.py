"""Checkpoints: one ``.npz`` file, no pickle anywhere.

Layout (every entry a plain array, readable with ``allow_pickle=False``)::

    __nnbackprop__      format marker and version, e.g. "nnbackprop-checkpoint/1"
    config              JSON: architecture, dtype, optimizer and loss config
    param/<i>.W, .b     weights, host float arrays in the model's dtype
    buffer/<i>.<name>   non-trained state (BatchNorm's running statistics), where the model has any
    opt/<slot>/<k>      optimizer state, one array per parameter

A save goes through :func:`atomic_write`: a temporary file beside the target,
renamed over it, so a crash mid-save never destroys an existing checkpoint and
leaves no stray file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _compat, losses, optim
from .layers import layer_from_config

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
    for name, b in model.named_buffers():
        arrays[f"buffer/{name}"] = _compat.to_host(b)
    config = {"format": VERSION, "model": model.config(), "dtype": model.dtype_name,
              "optimizer": None, "loss": None, "rng": model.rng.bit_generator.state}
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


@dataclasses.dataclass
class Saved:
    """A checked checkpoint file: what :meth:`nnbackprop.Sequential.load` builds a model from."""

    path: Path
    data: dict
    config: dict
    loss: Any

    @property
    def model_config(self) -> dict:
        return self.config["model"]

    @property
    def dtype(self) -> str:
        return self.config["dtype"]

    def restore(self, named: list[tuple[str, Any]], xp: Any, dtype: Any, device: Any) -> tuple[list, Any]:
        """(parameters, optimizer) for a model built from :attr:`model_config`, whose
        ``named_parameters()`` are ``named``: each saved array checked against its
        parameter's shape and moved to ``xp`` on ``device``; the optimizer (None if
        none was saved) with its state there."""
        host = [_array(self.path, self.data, f"param/{name}", f"parameter {name}", tuple(p.shape))
                for name, p in named]
        optimizer = _optimizer(self.path, self.data, self.config, [tuple(p.shape) for _, p in named],
                               xp, dtype, device)
        return [_compat.from_host(xp, h, dtype, device) for h in host], optimizer

    def restore_buffers(self, named: list[tuple[str, Any]], xp: Any, dtype: Any, device: Any) -> dict:
        """The saved non-trained buffers of a model whose ``named_buffers()`` are
        ``named`` (none before BatchNorm existed), checked and moved to ``xp``."""
        return {name: _compat.from_host(xp, _array(self.path, self.data, f"buffer/{name}",
                                                   f"buffer {name}", tuple(b.shape)), dtype, device)
                for name, b in named}

    @property
    def rng_state(self) -> dict | None:
        """The model's host generator as saved (None in checkpoints from before dropout)."""
        state = self.config.get("rng")
        if state is None:
            return None
        try:
            np.random.PCG64().state = state  # what default_rng makes: the model's generator
        except _CONTENT_ERRORS as exc:
            raise CheckpointError(f"{self.path}: damaged generator state ({type(exc).__name__}: "
                                  f"{exc})") from exc
        return state


def read(path: str | os.PathLike) -> Saved:
    """The checkpoint at ``path``, read and checked (marker, version, config, loss);
    a file that is not a well-formed checkpoint raises :class:`CheckpointError`
    naming the path and what is wrong."""
    path = Path(path)
    data = _read(path)
    config = _config(path, data)
    _architecture(path, config)
    return Saved(path, data, config, _loss(path, config))


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


def _architecture(path: Path, config: dict) -> None:
    """The saved layer list: a non-empty list of configs of known layer types."""
    try:
        specs = config["model"]["layers"]
        if not isinstance(specs, list) or not specs:
            raise ValueError(f"the layer list is {specs!r}")
        for c in specs:
            layer_from_config(c)
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged architecture ({type(exc).__name__}: {exc})") from exc


def _loss(path: Path, config: dict) -> Any:
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


def _optimizer(path: Path, data: dict, config: dict, shapes: list, xp: Any, dtype: Any, device: Any) -> Any:
    """The saved optimizer with its state in ``xp`` on ``device``, or None."""
    oc = config.get("optimizer")
    if not oc:
        return None
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
        slots[s] = [_compat.from_host(xp, _array(path, data, f"opt/{s}/{k}", f"optimizer slot {s}/{k}",
                                                 shape), dtype, device)
                    for k, shape in enumerate(shapes)]
    try:
        opt.load_state_dict({"name": oc["name"], "config": oc["config"], "t": t, "slots": slots})
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer state ({type(exc).__name__}: {exc})") from exc
    return opt
