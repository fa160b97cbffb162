"""The estimators' data: checked as scikit-learn checks it, placed where the
network runs, and results handed back in the caller's kind.

Without ``array_api_dispatch`` (scikit-learn's default) inputs become NumPy
(``validate_data``) and results are NumPy. With
``sklearn.set_config(array_api_dispatch=True)`` an array of any Array API
library stays in its namespace and on its device: the network is built there,
y and sample weights of another namespace or device are moved to X's, and
results and fitted arrays are of X's namespace.

The compute dtype follows X as scikit-learn's MLP does (float32 X: float32,
float64 X: float64, anything else: float64, float32 where the device has no
float64) unless ``dtype=`` names one; results have the dtype of X and the network
promoted (float64 X on a float32 network gives float64 results).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from sklearn.utils.validation import validate_data

from .. import _compat


def dispatch() -> bool:
    import sklearn

    return bool(sklearn.get_config().get("array_api_dispatch", False))


class Placed(NamedTuple):
    """X (N, n_features) as the network takes it, y as validated, and what results go back as."""

    X: Any
    y: Any
    host: bool       # the caller's X was NumPy: results go back as NumPy
    out_dtype: Any   # dtype of floating results (NumPy's when host, else the network's namespace's)


def _float_name(xp, dtype, device) -> str:
    """scikit-learn's rule for the compute dtype: float32 and float64 kept, others float64."""
    name = _compat.dtype_name(xp, dtype)
    if name in ("float32", "float64") and _compat.has_dtype(xp, name, device):
        return name
    return "float64" if _compat.has_dtype(xp, "float64", device) else "float32"


def validate(est, X, y=None, *, reset: bool, with_y: bool = True, method: str = "fit") -> Placed:
    """X (and y) checked with ``validate_data`` and X moved to the network's namespace,
    device and dtype: the fitted model's, or for a new one X's (dispatch) or ``est.xp``'s.

    Under dispatch a fitted estimator takes X only of the kind it was fitted on (NumPy, or
    the namespace and device of its arrays), as scikit-learn's ``check_same_namespace``
    asks; ``method`` names the caller in that error."""
    on = dispatch()
    kw = dict(dtype=None if on else [np.float64, np.float32])
    if with_y:
        X, y = validate_data(est, X, y, reset=reset, multi_output=est._multi_output,
                             y_numeric=not est._is_classifier, **kw)
    else:
        X = validate_data(est, X, reset=reset, **kw)
    host = isinstance(X, np.ndarray)
    xp_in = _compat.namespace_of(X)
    model = getattr(est, "model_", None) if not reset else None
    if model is not None:
        xp, device = model.xp, model.device
        if on and _mismatch(est, host, xp_in, X, xp, device):
            fitted = f"{xp.__name__} on {device}" if est._keeps_namespace else "NumPy"
            got = "NumPy" if host else f"{xp_in.__name__} on {_compat.device_of(X)}"
            raise ValueError(f"Inputs passed to {type(est).__name__}.{method}() must use the same namespace "
                             f"and the same device as those passed to fit(): fitted on {fitted}, got {got}")
    elif host:
        xp = _compat.namespace(est.xp)
        device = _compat.default_device(xp)
    else:
        xp, device = xp_in, _compat.device_of(X)
    if model is not None:
        dtype = model.dtype
    elif est.dtype is not None:
        dtype = _compat.resolve_dtype(xp, est.dtype, device)
    else:
        dtype = _compat.resolve_dtype(xp, _float_name(xp_in, X.dtype, device if not host else None), device)
    in_name = _float_name(xp_in, X.dtype, None if host else _compat.device_of(X))
    out_name = np.result_type(in_name, _compat.dtype_name(xp, dtype)).name
    if host:
        Xn = _compat.from_host(xp, np.asarray(X), dtype, device)
        out_dtype = np.dtype(out_name)
    else:
        Xn = X if X.dtype == dtype else xp.astype(X, dtype)
        out_dtype = _compat.resolve_dtype(xp, out_name, device)
    return Placed(Xn, y, host, out_dtype)


def _mismatch(est, host, xp_in, X, xp, device) -> bool:
    if not getattr(est, "_keeps_namespace", False):
        return not host
    return host or xp_in is not xp or _compat.device_of(X) != device


def to_net(a: Any, xp: Any, dtype: Any, device: Any) -> Any:
    """``a`` as an array of ``xp`` on ``device`` (in ``dtype`` unless None): moved
    through the host when it is of another library or device."""
    if isinstance(a, np.ndarray) or _compat.namespace_of(a) is not xp or _compat.device_of(a) != device:
        return _compat.from_host(xp, np.asarray(_compat.to_host(a)), dtype, device)
    return a if dtype is None or a.dtype == dtype else xp.astype(a, dtype)


def host_copy(a: Any) -> np.ndarray:
    """A NumPy array of ``a`` (any library's array, list or scalar)."""
    if hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.ndarray):
        return np.asarray(_compat.to_host(a))
    return np.asarray(a)


def sample_weight(sw: Any, n: int, xp: Any, dtype: Any, device: Any) -> Any:
    """scikit-learn's sample_weight (None, a number, or n numbers of any library) as
    (n,) of the network's namespace; the fit's own checks refuse the rest."""
    if sw is None:
        return None
    if isinstance(sw, numbers.Number) and not isinstance(sw, bool):
        w = np.full(n, float(sw))
    else:
        w = host_copy(sw)
        if w.ndim != 1 or w.shape[0] != n:
            raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
        if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
            raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    return _compat.from_host(xp, w.astype(np.float64), dtype, device)


def to_user(A: Any, placed: Placed) -> Any:
    """Results in the caller's kind: NumPy (host) or the network's namespace, floating
    ones in ``placed.out_dtype``."""
    if placed.host:
        A = np.asarray(_compat.to_host(A))
        return A.astype(placed.out_dtype) if np.issubdtype(A.dtype, np.floating) else A
    xp = _compat.namespace_of(A)
    if xp.isdtype(A.dtype, "real floating") and A.dtype != placed.out_dtype:
        return xp.astype(A, placed.out_dtype)
    return A
