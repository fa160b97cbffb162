"""Checkpoints: one ``.npz`` file, no pickle anywhere.

Layout (every entry a plain array, readable with ``allow_pickle=False``)::

    __nnbackprop__      format marker and version, e.g. "nnbackprop-checkpoint/1"
    config              JSON: architecture, dtype, optimizer, loss and fit-state config
    param/<i>.W, .b     weights, host float arrays in the model's dtype
    buffer/<i>.<name>   non-trained state (BatchNorm's running statistics), where the model has any
    opt/<slot>/<k>      optimizer state, one array per parameter
    <extra>             optional JSON text a caller saves beside the model (the CLI's cli_meta)

A save goes through :func:`nnbackprop._atomic.atomic_write`: a temporary file beside the
target, renamed over it, so a crash mid-save never destroys an existing checkpoint.

Nothing a file says is trusted before it is checked (after safetensors' header checks
and PyTorch's ``weights_only`` loading). :func:`read` opens the zip, reads the marker
and the config (bounded: :data:`MAX_CONFIG_CHARS`, nesting :data:`MAX_DEPTH`), checks
every field's type, builds the declared layer list without any weights, and checks
that every member the architecture and optimizer need is present with the shape and
dtype it needs and that together they stay within ``max_bytes`` (default
:data:`MAX_BYTES`), all before reading one array; then it reads only those members,
each inflated to at most its declared size (:mod:`nnbackprop._npzfile`), and refuses
NaN or infinite weights unless ``allow_nonfinite=True``. Any problem is a
:class:`CheckpointError` naming the path and the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import _compat, losses, optim
from ._atomic import atomic_write
from ._npzfile import Archive, ArchiveError
from .layers import layer_from_config, set_widths

MARKER = "nnbackprop-checkpoint"
VERSION = 1
MAX_BYTES = 16 << 30          # default bound on the arrays one checkpoint may declare (16 GiB)
MAX_CONFIG_CHARS = 4 << 20    # characters of the JSON config (and of each extra)
MAX_DEPTH = 64                # nesting of the JSON config
_FORMAT_KEYS = re.compile(r"__nnbackprop__|config|param/.*|opt/.*")

__all__ = ["CheckpointError", "MAX_BYTES", "Saved", "atomic_write", "read", "read_extra", "save"]


class CheckpointError(ValueError):
    """A file that is not a readable nnbackprop checkpoint."""


def save(model: Any, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and its optimizer state, if it has been trained) to ``path``.

    ``extra``: {name: JSON-able} saved beside the model in the same atomic write
    (read back with :func:`read_extra`; :func:`read` ignores them).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"checkpoint path must end in .npz, got {str(path)!r}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or _FORMAT_KEYS.fullmatch(key) or "/" in key:
            raise ValueError(f"extra entry name {key!r} is taken by the format or not a plain name")
        arrays[key] = np.asarray(json.dumps(value))
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
        fit_state = getattr(model, "fit_state", None)  # the shuffling generator's state: resume
        if fit_state is not None:
            config["optimizer"]["fit_state"] = fit_state
    loss = getattr(model, "loss", None)
    if loss is not None:
        config["loss"] = loss.config()
    arrays["__nnbackprop__"] = np.asarray(f"{MARKER}/{VERSION}")
    arrays["config"] = np.asarray(json.dumps(config))

    return atomic_write(path, lambda f: np.savez(f, **arrays))


@dataclasses.dataclass
class Saved:
    """A checked checkpoint file: what :meth:`nnbackprop.Sequential.load` builds a model from.
    ``data`` holds only the members the format defines, every one already checked."""

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

    @property
    def fit_state(self) -> dict | None:
        oc = self.config.get("optimizer")
        return oc.get("fit_state") if oc else None

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


def read(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, allow_nonfinite: bool = False) -> Saved:
    """The checkpoint at ``path``, read and checked (see the module docstring); a file
    that is not a well-formed checkpoint raises :class:`CheckpointError` naming the
    path and what is wrong, before any array is read."""
    path = Path(path)
    with _open(path) as z:
        marker = _text(path, z, "__nnbackprop__", 256)
        if not marker.startswith(MARKER + "/"):
            raise CheckpointError(f"{path}: not an nnbackprop checkpoint (no {MARKER!r} marker)")
        version = marker.split("/", 1)[1]
        if version != str(VERSION):
            raise CheckpointError(f"{path}: checkpoint format version {version}, this nnbackprop "
                                  f"reads version {VERSION}")
        config = _config(path, _text(path, z, "config", MAX_CONFIG_CHARS))
        shapes, buffers = _architecture(path, config)
        loss = _loss(path, config)
        need = {f"param/{name}": (f"parameter {name}", shape) for name, shape in shapes}
        need.update({f"buffer/{name}": (f"buffer {name}", shape) for name, shape in buffers})
        need.update(_optimizer_members(path, config, shapes))
        headers = {key: _member_header(path, z, key, what, shape) for key, (what, shape) in need.items()}
        total = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
        if total > max_bytes:
            raise CheckpointError(f"{path}: its arrays declare {total} bytes, more than the limit of "
                                  f"{max_bytes} (pass a larger max_bytes to load a model this big)")
        data = {}
        for key, (shape, dtype) in headers.items():
            data[key] = _member(path, z, key, shape, dtype)
            if not allow_nonfinite and dtype.kind == "f" and not np.all(np.isfinite(data[key])):
                raise CheckpointError(f"{path}: {need[key][0]} holds NaN or infinite values (pass "
                                      f"allow_nonfinite=True to load it anyway)")
    return Saved(path, data, config, loss)


def read_extra(path: str | os.PathLike, name: str) -> Any:
    """The JSON value saved as ``extra[name]`` with the model (bounded like the config);
    None when the file has none."""
    path = Path(path)
    with _open(path) as z:
        if name not in z:
            return None
        text = _text(path, z, name, MAX_CONFIG_CHARS)
    return _json(path, name, text)


# what building a layer, loss or optimizer from a file's config may raise: the file's fault, so a
# CheckpointError (a user's own layer class may raise anything from its constructor)
_CONTENT_ERRORS = (Exception,)


class _open:
    """The checked zip archive at ``path`` (a context manager)."""

    def __init__(self, path: Path):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        if path.is_dir():
            raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
        self.fh = open(path, "rb")
        try:
            if self.fh.read(6) == b"\x93NUMPY":
                raise CheckpointError(f"{path}: not an nnbackprop checkpoint (one .npy array, "
                                      f"not an .npz archive)")
            self.fh.seek(0)
            self.archive = Archive(self.fh)
        except ArchiveError as exc:
            self.fh.close()
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted: {exc})") from None
        except BaseException:
            self.fh.close()
            raise

    def __enter__(self) -> Archive:
        return self.archive

    def __exit__(self, *exc) -> None:
        self.archive.__exit__()
        self.fh.close()


def _header(path: Path, z: Archive, key: str) -> tuple:
    try:
        return z.header(key)
    except ArchiveError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({exc})") from None


def _member(path: Path, z: Archive, key: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    try:
        return z.read(key, shape, dtype)
    except ArchiveError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({exc})") from None


def _text(path: Path, z: Archive, key: str, limit: int) -> str:
    """The text member ``key`` (a 0-d unicode array of at most ``limit`` characters)."""
    if key not in z:
        if key == "__nnbackprop__":
            raise CheckpointError(f"{path}: not an nnbackprop checkpoint (no {MARKER!r} marker)")
        raise CheckpointError(f"{path}: damaged checkpoint contents (no {key!r} entry)")
    shape, dtype = _header(path, z, key)
    if dtype.kind != "U" or shape != ():
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key!r} is a {dtype} array of "
                              f"shape {shape}, expected one text value)")
    if dtype.itemsize // 4 > limit:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key!r} declares "
                              f"{dtype.itemsize // 4} characters, at most {limit} are read)")
    try:
        return str(_member(path, z, key, shape, dtype))
    except UnicodeError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key!r} is not text: {exc})") from None


def _json(path: Path, key: str, text: str) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key} is nested too deeply)") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key} is not JSON: {exc})") from None
    if _depth(value) > MAX_DEPTH:
        raise CheckpointError(f"{path}: damaged checkpoint contents ({key} is nested deeper than "
                              f"{MAX_DEPTH} levels)")
    return value


def _depth(value: Any) -> int:
    """How deeply ``value`` (parsed JSON) nests lists and dicts, counted up to MAX_DEPTH + 1
    (iteratively: no recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                todo.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _field(path: Path, where: str, value: Any, kinds: tuple, what: str) -> Any:
    """``value`` if it is one of ``kinds`` (never a bool where numbers are wanted)."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise CheckpointError(f"{path}: damaged checkpoint contents ({where} is "
                              f"{type(value).__name__} {_short(value)}, expected {what})")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _config(path: Path, text: str) -> dict:
    """The checked JSON config: its keys and their types."""
    config = _json(path, "config", text)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: damaged checkpoint contents (config is a "
                              f"{type(config).__name__}, expected a JSON object)")
    if config.get("dtype") not in ("float16", "float32", "float64"):
        raise CheckpointError(f"{path}: damaged checkpoint contents (dtype {_short(config.get('dtype'))}; "
                              f"expected 'float16', 'float32' or 'float64')")
    if "format" in config:
        _field(path, "config.format", config["format"], (int,), "an integer")
    _field(path, "config.model", config.get("model"), (dict,), "a JSON object")
    _field(path, "config.model.layers", config["model"].get("layers"), (list,), "a list")
    oc = config.get("optimizer")
    if oc is not None:
        _field(path, "config.optimizer", oc, (dict,), "a JSON object or null")
        _field(path, "config.optimizer.name", oc.get("name"), (str,), "a name")
        _field(path, "config.optimizer.config", oc.get("config"), (dict,), "a JSON object")
        slots = _field(path, "config.optimizer.slots", oc.get("slots"), (dict,), "a JSON object")
        for k, n in slots.items():
            _field(path, f"config.optimizer.slots.{k}", n, (int,), "an array count")
        if oc.get("fit_state") is not None:
            _field(path, "config.optimizer.fit_state", oc["fit_state"], (dict,), "a JSON object")
    if config.get("loss") is not None:
        _field(path, "config.loss", config["loss"], (dict, str), "a loss config")
    return config


def _architecture(path: Path, config: dict) -> tuple[list, list]:
    """The saved layer list, checked (a non-empty list of configs of known layer types,
    each layer's inputs the last one's outputs), as [(parameter name, shape)]: built
    without any weights, and [(buffer name, shape)] of its non-trained state."""
    specs = config["model"]["layers"]
    try:
        if not specs:
            raise ValueError(f"the layer list is {specs!r}")
        layers = [layer_from_config(c) for c in specs]
        set_widths(layers)
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(f"layer {i} gives {a.n_out} outputs but layer {i + 1} expects {b.n_in}")
        shapes = [(f"{i}.{k}", tuple(shape)) for i, layer in enumerate(layers)
                  for k, shape in layer.param_shapes().items()]
        buffers = [(f"{i}.{k}", tuple(shape)) for i, layer in enumerate(layers)
                   for k, shape in layer.buffer_shapes().items()]
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged architecture ({type(exc).__name__}: {_short(str(exc))})") from None
    for name, shape in shapes + buffers:
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise CheckpointError(f"{path}: damaged architecture (parameter {name} has shape {shape})")
    return shapes, buffers


def _loss(path: Path, config: dict) -> Any:
    spec = config.get("loss")
    if not spec:
        return None
    try:
        return losses.get(spec)
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged loss config {_short(spec)} ({type(exc).__name__}: {exc})") from None


def _optimizer_members(path: Path, config: dict, shapes: list) -> dict:
    """{member: (what, shape)} of the saved optimizer's slot arrays, its config checked."""
    oc = config.get("optimizer")
    if not oc:
        return {}
    try:
        opt = optim.get({"name": oc["name"], **oc["config"]})
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer config ({type(exc).__name__}: {exc})") from None
    t = oc.get("t")
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise CheckpointError(f"{path}: damaged optimizer state (t must be an integer >= 0, got {_short(t)})")
    slots = oc["slots"]
    if slots and set(slots) != set(opt.slot_names):
        raise CheckpointError(f"{path}: damaged optimizer state ({opt.name} needs slots "
                              f"{list(opt.slot_names)}, the file lists {list(slots)[:8]})")
    need = {}
    for s, n in slots.items():
        if n != len(shapes):
            raise CheckpointError(f"{path}: optimizer slot {s!r} holds {n!r} arrays, the model has "
                                  f"{len(shapes)} parameters")
        for k, (_, shape) in enumerate(shapes):
            need[f"opt/{s}/{k}"] = (f"optimizer slot {s}/{k}", shape)
    return need


def _member_header(path: Path, z: Archive, key: str, what: str, shape: tuple) -> tuple:
    """(shape, dtype) of member ``key`` from its header: present, real numbers, of ``shape``."""
    if key not in z:
        raise CheckpointError(f"{path}: {what} is missing (no entry {key!r})")
    got, dtype = _header(path, z, key)
    if dtype.kind not in "fiu":
        raise CheckpointError(f"{path}: {what} holds {dtype} values, expected real numbers")
    if got != tuple(shape):
        raise CheckpointError(f"{path}: {what} has shape {got}, the saved architecture "
                              f"needs {tuple(shape)}")
    return got, dtype


def _array(path: Path, data: dict, key: str, what: str, shape: tuple) -> np.ndarray:
    """``data[key]`` (checked by :func:`read`), of ``shape``."""
    a = data.get(key)
    if a is None or tuple(a.shape) != tuple(shape):
        raise CheckpointError(f"{path}: {what} does not fit the model built from the saved architecture")
    return a


def _optimizer(path: Path, data: dict, config: dict, shapes: list, xp: Any, dtype: Any, device: Any) -> Any:
    """The saved optimizer with its state in ``xp`` on ``device``, or None."""
    oc = config.get("optimizer")
    if not oc:
        return None
    try:
        opt = optim.get({"name": oc["name"], **oc["config"]})
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer config ({type(exc).__name__}: {exc})") from None
    slots = {s: [_compat.from_host(xp, _array(path, data, f"opt/{s}/{k}", f"optimizer slot {s}/{k}", shape),
                                   dtype, device) for k, shape in enumerate(shapes)]
             for s in oc["slots"]}
    try:
        opt.load_state_dict({"name": oc["name"], "config": oc["config"], "t": oc.get("t"), "slots": slots})
    except _CONTENT_ERRORS as exc:
        raise CheckpointError(f"{path}: damaged optimizer state ({type(exc).__name__}: {exc})") from None
    return opt
