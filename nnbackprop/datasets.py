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

import array
import csv
import dataclasses
import hashlib
import math
import operator
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BUILTIN = ("digits", "xor", "iris", "diabetes")
TEST_SHARE = 0.25   # the train/test split of the command line
MIN_SPLIT = 8       # fewer rows than this: no split, all rows in both
MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}  # missing-value markers in a CSV target


class DataError(ValueError):
    """Data that cannot be read or used, with the file and place in the message."""


@dataclasses.dataclass
class Table:
    X: np.ndarray                # (N, D) float64 features
    y: np.ndarray | None         # (N,) target, None when the input has no target
    features: list[str]
    target: str | None
    name: str
    named: bool = True           # feature names come from the data (False: x0, x1, ... made up)


def load(spec: str, target: str | None = None, need_target: bool = True,
         features: Sequence[str] | None = None) -> Table:
    """A bundled set by name, or a ``.csv``/``.npz`` file by path. With ``features``
    (names), the columns of a named table are picked and ordered by name."""
    if spec in BUILTIN:
        table = _builtin(spec)
        if target is not None and target != table.target:
            raise DataError(f"--target {target!r}: the bundled {spec!r} data set has one target, "
                            f"{table.target!r}; --target picks a column of a CSV file")
        if features is not None:
            table.X = table.X[:, _by_name(spec, table.features, features)]
            table.features = list(features)
        return table
    path = Path(spec)
    if path.suffix.lower() not in (".csv", ".npz"):
        raise DataError(f"--data must be one of {', '.join(BUILTIN)} or a .csv/.npz file, got {spec!r}")
    if path.is_dir():
        raise DataError(f"{spec}: is a directory, not a file")
    if not path.exists():
        raise DataError(f"{spec}: no such file")
    if path.suffix.lower() == ".csv":
        return read_csv(path, target, need_target, features)
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


def read_csv(path: Path, target: str | None = None, need_target: bool = True,
             features: Sequence[str] | None = None) -> Table:
    """A UTF-8 CSV (a BOM is fine) with a header row: numeric feature columns and
    one target column (default the last; it may hold text class names). With
    ``need_target=False`` the ``target`` column is dropped if present and not read.
    With ``features``, the feature columns are picked and ordered by these names.

    The file is streamed: each row's features go straight into one growing buffer
    of float64 that becomes X without a copy, so the peak is about the size of X
    (plus the target's strings), never the size of the rows as Python lists."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return _stream_csv(path, csv.reader(f), target, need_target, features)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV ({exc})") from None


def _stream_csv(path, reader, target, need_target, features) -> Table:
    header = next((r for r in reader if any(c.strip() for c in r)), None)
    if header is None:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in header]
    if need_target:
        t = len(header) - 1 if target is None else _column(path, header, target)
        if len(header) < 2:
            raise DataError(f"{path}: needs at least one feature column besides the target")
    else:
        t = header.index(target) if target in header else None
    feats = [j for j in range(len(header)) if j != t]
    if features is not None:
        feats = [feats[k] for k in _by_name(path, [header[j] for j in feats], features)]
    values = array.array("d")  # row after row of the feature columns: X, row-major
    targets: list[str] = []
    lines = array.array("q")  # the line of each row, for the target's messages
    pick = operator.itemgetter(*feats) if len(feats) > 1 else (lambda r: (r[feats[0]],))
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {reader.line_num} has {len(row)} fields but the header has "
                            f"{len(header)}")
        cells = pick(row)
        try:
            values.extend(map(float, cells))
        except ValueError:
            j, bad = next((j, v) for j, v in zip(feats, cells) if not _is_float(v))
            raise DataError(f"{path}: column {header[j]!r} holds the non-numeric value {bad!r} (line "
                            f"{reader.line_num}); features must be numbers") from None
        if need_target:
            targets.append(row[t])
            lines.append(reader.line_num)
    n = len(values) // len(feats)
    if n == 0:
        raise DataError(f"{path}: needs a header row and at least one data row")
    X = np.frombuffer(values, dtype=np.float64).reshape(n, len(feats))  # the buffer itself: no copy
    y = _target_values(path, header[t], targets, lines) if need_target else None
    return Table(X, y, [header[j] for j in feats], header[t] if t is not None else None, path.name)


def _column(path, header, name):
    if name not in header:
        raise DataError(f"{path}: no column {name!r} for --target; columns: {', '.join(header)}")
    return header.index(name)


def _by_name(where, names: list[str], features: Sequence[str]) -> list[int]:
    """Positions in ``names`` of each of ``features``; refused unless the two sets match."""
    features = list(features)
    if names == features:
        return list(range(len(names)))
    missing = [f for f in features if f not in names]
    unexpected = [n for n in names if n not in features]
    if missing or unexpected:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + \
            ([f"unexpected {', '.join(map(repr, unexpected))}"] if unexpected else [])
        raise DataError(f"{where}: the feature columns do not match the model's ({'; '.join(parts)}); "
                        f"the model expects {', '.join(features)}")
    if len(set(names)) != len(names):
        raise DataError(f"{where}: repeated column names; cannot match them to the model's features")
    return [names.index(f) for f in features]


def _is_float(v) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _lines(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:5])) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")


def _target_values(path, name, values, lines) -> np.ndarray:
    """Finite numbers when every value is one, else the stripped strings (class
    names). Missing cells, and a few non-numbers in a mostly numeric column, are refused."""
    vals = [v.strip() for v in values]
    missing = [n for n, v in zip(lines, vals) if v.lower() in MISSING]
    if missing:
        raise DataError(f"{path}: target column {name!r} has {len(missing)} missing value(s) (blank or NA) "
                        f"at line {_lines(missing)}; remove or fill those rows")
    finite = [_is_float(v) and math.isfinite(float(v)) for v in vals]
    if all(finite):
        return np.array([float(v) for v in vals], dtype=np.float64)
    if sum(finite) > len(vals) / 2:
        bad = [n for n, ok in zip(lines, finite) if not ok]
        first = vals[lines.index(bad[0])]
        raise DataError(f"{path}: target column {name!r} holds numbers but also {first!r} (line {_lines(bad)}); "
                        f"fix those rows, or pick the right column with --target")
    return np.array(vals)


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
    y = data.get("y") if need_target else None
    if y is not None and (y.ndim != 1 or y.shape[0] != X.shape[0]):
        raise DataError(f"{path}: y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if y is not None and np.issubdtype(y.dtype, np.number) and not np.all(np.isfinite(y)):
        raise DataError(f"{path}: y has {int(np.sum(~np.isfinite(y)))} missing or infinite values "
                        f"(first at row {int(np.argmin(np.isfinite(y))) + 1}); remove or fill them")
    return Table(X.astype(np.float64), y, [f"x{i}" for i in range(X.shape[1])], "y" if y is not None else None,
                 path.name, named=False)


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


def check_classes(labels: np.ndarray, classes: list, target: str | None) -> None:
    """Refuse a class target that a train/test split cannot use: a class with one row."""
    counts = np.bincount(labels, minlength=len(classes))
    if labels.size >= MIN_SPLIT and counts.min() < 2:
        lone = [repr(c) for c, k in zip(classes, counts) if k < 2]
        raise DataError(f"target column {target!r} has {len(classes)} classes in {labels.size} rows: every "
                        f"class needs at least 2 rows for a train/test split ({len(lone)} of them have one, "
                        f"e.g. {lone[0]}); is --target the right column?")


def split(n: int, test_size: float = TEST_SHARE, seed: int | None = 0,
          labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (train, test) of a seeded shuffle, stratified by ``labels``
    (N,) when given (see :func:`draw`); all rows in both when n < MIN_SPLIT."""
    if n < MIN_SPLIT:
        idx = np.arange(n)
        return idx, idx
    return draw(n, test_size, np.random.default_rng(seed), labels)


def draw(n: int, share: float, rng: np.random.Generator,
         labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (kept, drawn) row indices: ``share`` of the n rows drawn at random, per
    class when ``labels`` (N,) are given. Each part gets round(share * size) rows,
    at least one, and keeps at least one (a class of one row is kept whole)."""
    def count(size):
        return min(size - 1, max(1, int(round(size * share))))

    if labels is None:
        drawn = rng.permutation(n)[:count(n)]
    else:
        parts = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
        drawn = np.concatenate([p[:count(p.size)] for p in parts])
    drawn = np.sort(drawn)
    return np.setdiff1d(np.arange(n), drawn), drawn


def fingerprint(table: Table) -> str:
    """A SHA-256 of the features and target: the same data gives the same string."""
    h = hashlib.sha256(np.ascontiguousarray(table.X, dtype=np.float64).tobytes())
    y = np.asarray(table.y)
    if np.issubdtype(y.dtype, np.number):
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    else:
        h.update("\x1f".join(map(str, y.tolist())).encode())
    return h.hexdigest()


def check_finite(X: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{where}: {int(bad.sum())} missing or infinite values (first at row {r + 1}, "
                        f"column {c + 1}); remove or impute them")
