"""Tabular data for the command line: the bundled sets, CSV and NPZ files.

Everything here works on host NumPy arrays; the caller moves them to its
namespace once. A :class:`Table` holds raw features ``X`` (N, D) float64, the
target ``y`` (N,) (numbers, or strings for a text class column) and names.

    load("digits")            scikit-learn's bundled 8x8 digits (no download)
    load("xor")               the four rows of the XOR truth table
    load("data.csv", "price") a CSV with a header row; the target column by name
    load("data.npz")          arrays ``X`` (N, D) and ``y`` (N,)
"""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from pathlib import Path

import numpy as np

BUILTIN = ("digits", "xor", "iris", "diabetes")


class DataError(ValueError):
    """Data that cannot be read or used, with the file and place in the message."""


@dataclasses.dataclass
class Table:
    X: np.ndarray                # (N, D) float64 features
    y: np.ndarray | None         # (N,) target, None when the input has no target
    features: list[str]
    target: str | None
    name: str


def load(spec: str, target: str | None = None, need_target: bool = True) -> Table:
    """A bundled set by name, or a ``.csv``/``.npz`` file by path."""
    if spec in BUILTIN:
        return _builtin(spec)
    path = Path(spec)
    if path.suffix.lower() not in (".csv", ".npz"):
        raise DataError(f"--data must be one of {', '.join(BUILTIN)} or a .csv/.npz file, got {spec!r}")
    if not path.is_file():
        raise DataError(f"{spec}: no such file")
    if path.suffix.lower() == ".csv":
        return read_csv(path, target, need_target)
    return read_npz(path, need_target)


def _builtin(name: str) -> Table:
    if name == "xor":
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        return Table(X, np.array([0, 1, 1, 0]), ["x1", "x2"], "xor", "xor")
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"the {name!r} data set comes with scikit-learn, which is not installed; "
                        f"install it with: python3 -m pip install 'nnbackprop[examples]'") from None
    bunch = getattr(datasets, f"load_{name}")()
    names = [str(f) for f in getattr(bunch, "feature_names", [])] or \
        [f"x{i}" for i in range(bunch.data.shape[1])]
    return Table(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), names, "target", name)


def read_csv(path: Path, target: str | None = None, need_target: bool = True) -> Table:
    """A CSV with a header row: numeric feature columns and one target column
    (default the last; it may hold text class names). With ``need_target=False``
    a column named ``target`` is dropped if present, and all others are features."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV ({exc})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"{path}: line {i} has {len(r)} fields but the header has {len(header)}")
    cols = list(zip(*rows[1:]))
    if need_target:
        t = len(header) - 1 if target is None else _column(path, header, target)
        if len(header) < 2:
            raise DataError(f"{path}: needs at least one feature column besides the target")
    else:
        t = header.index(target) if target in header else None
    feats = [j for j in range(len(header)) if j != t]
    X = np.column_stack([_numeric(path, header[j], cols[j]) for j in feats])
    y = None
    if t is not None:
        y = _target_values(cols[t])
    return Table(X, y, [header[j] for j in feats], header[t] if t is not None else None, path.name)


def _column(path, header, name):
    if name not in header:
        raise DataError(f"{path}: no column {name!r} for --target; columns: {', '.join(header)}")
    return header.index(name)


def _numeric(path, name, values) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise DataError(f"{path}: column {name!r} holds the non-numeric value {bad!r}; "
                        f"features must be numbers") from None


def _is_float(v) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _target_values(values) -> np.ndarray:
    """Numbers when every value parses as one, else the stripped strings."""
    if all(_is_float(v) for v in values):
        return np.array([float(v) for v in values], dtype=np.float64)
    return np.array([v.strip() for v in values])


def read_npz(path: Path, need_target: bool = True) -> Table:
    """An ``.npz`` with ``X`` (N, D) and ``y`` (N,); ``y`` may be absent for prediction."""
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if "X" not in data or (need_target and "y" not in data):
        want = "X and y" if need_target else "X"
        raise DataError(f"{path}: needs arrays {want}; it holds {', '.join(data) or 'nothing'}")
    X = data["X"]
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: X must be a 2-D numeric array, got shape {X.shape} dtype {X.dtype}")
    y = data.get("y")
    if y is not None and (y.ndim != 1 or y.shape[0] != X.shape[0]):
        raise DataError(f"{path}: y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    return Table(X.astype(np.float64), y, [f"x{i}" for i in range(X.shape[1])], "y" if y is not None else None,
                 path.name)


def is_classification(y: np.ndarray, max_classes: int = 50) -> bool:
    """Text labels, or integer values with few distinct ones (at most ``max_classes``
    and at most half the number of rows)."""
    if not np.issubdtype(y.dtype, np.number):
        return True
    if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
        return False
    k = np.unique(y).size
    return k <= max_classes and k <= max(2, y.size // 2)


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, list]:
    """(labels (N,) int64 in [0, C), the C class values as JSON-able Python scalars)."""
    classes, idx = np.unique(y, return_inverse=True)
    out = [c.item() if hasattr(c, "item") else c for c in classes]
    out = [int(c) if isinstance(c, float) and c.is_integer() else c for c in out]
    return idx.astype(np.int64), out


def split(n: int, test_size: float = 0.25, seed: int | None = 0,
          labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (train, test) of a seeded shuffle, stratified by ``labels``
    (N,) when given (each class keeps its share); all rows in both when n < 8."""
    if n < 8:
        idx = np.arange(n)
        return idx, idx
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        n_test = max(1, int(round(n * test_size)))
        return np.sort(order[n_test:]), np.sort(order[:n_test])
    test = []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[:int(round(rows.size * test_size))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(n), test), test


def check_finite(X: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{where}: {int(bad.sum())} missing or infinite values (first at row {r + 1}, "
                        f"column {c + 1}); remove or impute them")
