"""The one seam between nnbackprop and the array libraries.

Only this module imports :mod:`array_api_compat`. Everything else asks it for
the namespace ``xp`` of its arrays and then calls only Array API functions on
``xp``. Nothing here imports a backend by name: a namespace given as a string
is imported on the user's behalf, and backend checks use array-api-compat's
``is_*_array`` helpers, which never import the library they test for.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "namespace",
    "namespace_of",
    "device_of",
    "default_device",
    "resolve_device",
    "devices",
    "probe",
    "tiny",
    "resolve_dtype",
    "dtype_name",
    "has_dtype",
    "float_dtypes",
    "to_host",
    "from_host",
    "check_array",
    "is_writeable",
    "writer",
    "on_host",
]


def namespace(xp: ModuleType | str | None) -> ModuleType:
    """Return the Array API namespace for ``xp``.

    ``xp`` is a module (``numpy``, ``cupy``, ``torch``, ``array_api_strict``, or
    an already compatible namespace), its import name, or ``None`` for NumPy.
    """
    if xp is None:
        xp = "numpy"
    if isinstance(xp, str):
        try:
            xp = importlib.import_module(xp)
        except ImportError as exc:
            raise ImportError(
                f"array namespace {xp!r} could not be imported ({exc}); install it, "
                f"or pass xp= one of the installed array libraries"
            ) from exc
    if not isinstance(xp, ModuleType):
        raise TypeError(f"xp must be a module or its name, got {type(xp).__name__}")
    try:
        probe = xp.asarray(0.0)
        return array_api_compat.array_namespace(probe)
    except Exception as exc:  # pragma: no cover - message path
        raise TypeError(f"{xp.__name__!r} is not an Array API compatible namespace: {exc}") from exc


def namespace_of(*arrays: Any) -> ModuleType:
    """The namespace shared by ``arrays``; a clear error if they mix libraries."""
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays})
        raise TypeError(f"arrays from different libraries cannot be mixed: {', '.join(kinds)}") from exc


def device_of(x: Any) -> Any:
    """The device an array lives on."""
    return array_api_compat.device(x)


def default_device(xp: ModuleType) -> Any:
    """The device new arrays of ``xp`` land on when none is named."""
    return array_api_compat.device(xp.asarray(0.0))


def devices(xp: ModuleType) -> list[Any]:
    """Every device ``xp`` reports (``__array_namespace_info__().devices()``), else its default."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            with warnings.catch_warnings():  # torch warns about device kinds it lists but deprecates
                warnings.simplefilter("ignore")
                found = list(info().devices())
            if found:
                return found
        except Exception:  # pragma: no cover - a namespace whose info cannot list devices
            pass
    return [default_device(xp)]


def resolve_device(xp: ModuleType, device: Any) -> Any:
    """``device`` as ``xp`` itself reports it for an array created there.

    A user may name a device several ways (``"cpu"`` or ``torch.device("cpu")``,
    ``"cuda"`` or ``"cuda:0"``); the model keeps this one normal form, so device
    checks compare like with like. ``None`` gives the default device.
    """
    if device is None:
        return default_device(xp)
    try:
        return array_api_compat.device(xp.asarray(0.0, device=device))
    except Exception as exc:
        ordinal = _cuda_ordinal(device)  # "cuda", "cuda:1" where devices are ordinals (CuPy)
        if ordinal is not None:
            try:
                return array_api_compat.device(xp.asarray(0.0, device=ordinal))
            except Exception:
                pass
        known = ", ".join(str(d) for d in devices(xp))
        raise ValueError(
            f"device {device!r} is not a device of {xp.__name__} ({type(exc).__name__}: {exc}); "
            f"its devices here: {known}"
        ) from exc


def _cuda_ordinal(device: Any) -> int | None:
    """0 for "cuda", N for "cuda:N"; None for any other name."""
    if not isinstance(device, str) or not (device == "cuda" or device.startswith("cuda:")):
        return None
    rest = device[5:] or "0"
    return int(rest) if rest.isdigit() else None


def probe(module_name: str) -> str | None:
    """None when ``module_name`` imports and computes one small array on its
    default device; otherwise why not, in words (not installed; installed but
    its default device is unusable, e.g. a GPU library on a machine without one)."""
    try:
        mod = importlib.import_module(module_name)
    except Exception as exc:
        return f"{module_name} is not installed ({type(exc).__name__}: {exc})"
    try:
        x = mod.asarray([1.0, 2.0])  # on the default device: where a missing GPU shows
        xp = array_api_compat.array_namespace(x)
        total = float(to_host(xp.sum(x * x)))
    except Exception as exc:
        return f"{module_name} is installed but cannot compute on its default device ({type(exc).__name__}: {exc})"
    if total != 5.0:  # pragma: no cover - a broken installation
        return f"{module_name} is installed but computed 1^2 + 2^2 = {total}"
    return None


_TINY: dict = {}


def tiny(xp: ModuleType, dtype: Any) -> float:
    """The smallest positive normal number of floating ``dtype`` (float16: 6.1e-5),
    as a host float: a floor for the ``eps`` that keeps divisions finite."""
    key = (xp.__name__, dtype)  # the name first: dtypes of two libraries are never compared
    value = _TINY.get(key)
    if value is None:
        value = _TINY[key] = float(xp.finfo(dtype).smallest_normal)
    return value


_FLOAT_NAMES = ("float16", "float32", "float64")


def float_dtypes(xp: ModuleType, device: Any = None) -> dict[str, Any]:
    """Floating dtypes ``xp`` supports on ``device``, by name."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            supported = info().dtypes(device=device, kind="real floating")
        except Exception:  # some wrapped namespaces reject a device here
            supported = info().dtypes(kind="real floating")
    else:  # pragma: no cover - old namespaces
        supported = {n: getattr(xp, n) for n in ("float32", "float64") if hasattr(xp, n)}
    out = {n: supported[n] for n in _FLOAT_NAMES if n in supported}
    if "float16" not in out and hasattr(xp, "float16"):
        out["float16"] = xp.float16  # numpy, cupy and torch have it outside the standard
    return dict(sorted(out.items(), key=lambda kv: _FLOAT_NAMES.index(kv[0])))


def has_dtype(xp: ModuleType, name: str, device: Any = None) -> bool:
    return name in float_dtypes(xp, device)


def resolve_dtype(xp: ModuleType, dtype: Any, device: Any = None) -> Any:
    """Turn ``"float32"`` (or a dtype object of ``xp``) into ``xp``'s dtype."""
    available = float_dtypes(xp, device)
    if isinstance(dtype, str):
        if dtype not in available:
            raise ValueError(
                f"dtype {dtype!r} is not available in {xp.__name__}; "
                f"expected one of {list(available)}"
            )
        return available[dtype]
    for d in available.values():
        if dtype == d:
            return d
    raise ValueError(f"dtype {dtype!r} is not a floating dtype of {xp.__name__}; expected one of {list(available)}")


def dtype_name(xp: ModuleType, dtype: Any) -> str:
    """``"float32"`` for ``xp.float32`` and so on; ``str(dtype)`` for others."""
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                 "uint8", "uint16", "uint32", "uint64", "bool"):
        if hasattr(xp, name) and dtype == getattr(xp, name):
            return name
    return str(dtype)


def is_floating(xp: ModuleType, x: Any) -> bool:
    return xp.isdtype(x.dtype, "real floating")


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of any array, wherever it lives.

    Use outside the training step only: on an accelerator this synchronises.
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.from_dlpack(x)
    except Exception:
        return np.asarray(x)


def from_host(xp: ModuleType, a: np.ndarray, dtype: Any = None, device: Any = None) -> Any:
    """Move a host NumPy array into ``xp`` on ``device`` as ``dtype``."""
    return xp.asarray(np.ascontiguousarray(a), dtype=dtype, device=device)


_WRITERS: dict = {}  # array type -> the module whose out= functions write it, or None

#: Off in tests that compare the in-place kernels with their generic Array API forms.
INPLACE = True


def writer(x: Any) -> ModuleType | None:
    """The module whose functions may write ``x`` in place (``out=x``, ``x[...] = v``),
    or None where the library must not write it.

    NumPy (a writeable array), CuPy and PyTorch (a tensor outside autograd) all
    have ``matmul(out=)``, ``multiply(out=)``, ``exp(out=)``, ``sum(axis=, out=)``
    with one meaning; array-api-strict, JAX and read-only arrays get None, and
    every caller then takes the generic Array API expression.
    """
    if not INPLACE:
        return None
    t = type(x)
    if t is np.ndarray:
        return np if x.flags.writeable else None
    m = _WRITERS.get(t, False)
    if m is False:
        m = None
        if array_api_compat.is_cupy_array(x) or array_api_compat.is_torch_array(x):
            m = importlib.import_module(t.__module__.split(".")[0])
        _WRITERS[t] = m
    if m is not None and getattr(x, "requires_grad", False):
        return None
    return m


def is_writeable(x: Any) -> bool:
    """Whether this library may update ``x`` in place (see :func:`writer`)."""
    return writer(x) is not None


_FUNCS: dict = {}


def module_function(m: ModuleType | None, name: str) -> Any:
    """``m.name`` where the module has it (a writer's own kernel, e.g. torch's
    ``addmm``), else None; looked up once per module and name (a missing
    attribute of NumPy costs its module ``__getattr__`` every time)."""
    key = (m, name)
    f = _FUNCS.get(key, False)
    if f is False:
        f = _FUNCS[key] = getattr(m, name, None)
    return f


def native_normals(x: Any, seed: int) -> Any:
    """``fill(out, std)``, writing normals N(0, std^2) into arrays like ``x`` (same
    library, device and dtype) from that library's own generator on x's device,
    seeded with ``seed`` (an int below 2^63); None for a library without one that
    this module knows (NumPy, whose host generator the caller owns; array-api-strict)."""
    if array_api_compat.is_torch_array(x):
        torch = importlib.import_module(type(x).__module__.split(".")[0])
        gen = torch.Generator(device=x.device)
        gen.manual_seed(seed)
        return lambda out, std: out.normal_(0.0, std, generator=gen)
    if array_api_compat.is_cupy_array(x):
        cupy = importlib.import_module(type(x).__module__.split(".")[0])
        with x.device:  # the generator's state lives on the device it is built on
            gen = cupy.random.default_rng(seed)

        def fill(out, std):
            with out.device:
                if out.dtype.itemsize >= 4:
                    gen.standard_normal(dtype=out.dtype, out=out)
                else:  # CuPy's generator makes float32 and float64 only: float16 by a float32 draw
                    out[...] = gen.standard_normal(out.shape, dtype="float32")
                out *= std
        return fill
    return None


def on_host(x: Any) -> bool:
    """Whether ``x`` is a NumPy array: host memory, where work in cache-sized
    blocks pays and reading a value costs no device synchronisation."""
    return type(x) is np.ndarray


def check_array(x: Any, *, name: str, xp: ModuleType, device: Any) -> None:
    """Refuse anything that is not an array of ``xp`` on ``device`` (a device
    from :func:`resolve_device`)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{name} must be an array of {xp.__name__}, got {type(x).__name__}; "
            f"convert it with xp.asarray first"
        )
    if type(x) is np.ndarray:  # the common case, without array_namespace's cost per step
        got = _NUMPY_NS
    else:
        try:
            got = array_api_compat.array_namespace(x)
        except TypeError:
            got = None
        if getattr(x, "requires_grad", False) is True:  # an autograd tensor: refused, never detached silently
            raise TypeError(
                f"{name} requires grad (it is part of an autograd graph); nnbackprop computes its "
                f"own gradients and never writes such arrays: pass {name}.detach() instead"
            )
    if got is not xp:
        got_name = got.__name__ if got is not None else type(x).__module__
        raise TypeError(
            f"{name} is an array of {got_name} but the model lives in {xp.__name__}; "
            f"arrays are never copied between libraries silently: move {name} there "
            f"(xp.asarray) or the model (model.to(...))"
        )
    dev = "cpu" if got is _NUMPY_NS else array_api_compat.device(x)
    if dev != device:  # both as the namespace reports them (see resolve_device)
        raise ValueError(
            f"{name} is on device {dev} but the model is on {device}; move one of them first"
        )


def quiet_float_errors():
    """A context in which overflow and invalid-value warnings stay silent.

    Only NumPy warns about these; the training loop turns a non-finite loss
    into one clear error instead, so the warnings would only be noise.
    """
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


_NUMPY_NS = array_api_compat.array_namespace(np.empty(0))
