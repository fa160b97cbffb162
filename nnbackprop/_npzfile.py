"""Bounded reads of the members of an ``.npz`` (a zip of ``.npy`` files), trusting nothing.

    with Archive(fh) as z:
        shape, dtype = z.header("param/0.W")      # the member's .npy header only
        a = z.read("param/0.W", shape, dtype)     # exactly that many bytes, or an error

What the zip says is checked against itself before a byte is inflated: members are
stored or deflated (any other compression method, and the encryption flag, are
refused), a deflated member declares no more than deflate can give from its
compressed size (at most 1032:1), and a member's declared size is its ``.npy``
header plus the array its header declares. Reading a member inflates at most that
many bytes (a member that holds more or less is refused); a member nobody asks for
is never read. ``.npy`` headers are read with numpy's own bounded parser and must
declare a plain little- or native-endian number or text dtype (no objects: no pickle).
Every problem is an :class:`ArchiveError` whose message names the member.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from typing import IO

import numpy as np

_MAX_HEADER = 10_000  # bytes of one .npy header (numpy's own default bound)
_DEFLATE_RATIO = 1032  # the most deflate can expand: 258 bytes from 2 bits, plus slack below
_SLACK = 1 << 10
_CHUNK = 1 << 20  # bytes inflated per read
_KINDS = "biufcU"  # bool, integers, floats, complex, text: never objects, voids or structured arrays


class ArchiveError(ValueError):
    """A zip member (or the zip itself) that is not what it claims to be."""


class Archive:
    """The ``.npy`` members of the zip in ``fh``, by name without ``.npy``."""

    def __init__(self, fh: IO[bytes]):
        try:
            self._zip = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError, IndexError, OverflowError) as exc:
            raise ArchiveError(f"not a readable zip archive ({type(exc).__name__}: {exc})") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            if key in self.members:
                raise ArchiveError(f"member {key!r} appears twice in the archive")
            self.members[key] = info

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def __contains__(self, key: str) -> bool:
        return key in self.members

    def _open(self, key: str):
        info = self.members[key]
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {key!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"member {key!r} uses zip compression method {info.compress_type} "
                               f"(only stored and deflated are read)")
        bound = info.compress_size if info.compress_type == zipfile.ZIP_STORED \
            else info.compress_size * _DEFLATE_RATIO + _SLACK
        if info.file_size > bound:
            raise ArchiveError(f"member {key!r} declares {info.file_size} bytes, more than its "
                               f"{info.compress_size} compressed bytes can hold")
        try:
            return self._zip.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                RuntimeError) as exc:
            raise ArchiveError(f"member {key!r} cannot be opened ({type(exc).__name__}: {exc})") from None

    def _header(self, f, key: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
        """(shape, dtype, fortran order, header bytes) from the open member ``f``."""
        fmt = np.lib.format
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
            else:
                raise ValueError(f".npy format version {version} is not read")
        except (ValueError, TypeError, SyntaxError, OverflowError, EOFError, zlib.error,
                zipfile.BadZipFile, MemoryError, RecursionError) as exc:
            raise ArchiveError(f"member {key!r} has no valid .npy header ({type(exc).__name__}: "
                               f"{exc})") from None
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.byteorder not in ("=", "<", "|"):
            raise ArchiveError(f"member {key!r} holds {dtype} values (plain numbers or text only)")
        if not all(isinstance(n, int) and 0 <= n for n in shape):
            raise ArchiveError(f"member {key!r} declares shape {shape}")
        return tuple(shape), dtype, bool(fortran), f.tell()

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) the member's ``.npy`` header declares, checked against the zip's
        declared size of the member."""
        with self._open(key) as f:
            shape, dtype, _, head = self._header(f, key)
        nbytes = math.prod(shape) * dtype.itemsize
        size = self.members[key].file_size
        if size != head + nbytes:
            raise ArchiveError(f"member {key!r} is {size} bytes but its header declares "
                               f"{head} + {nbytes} (a {dtype} array of shape {shape})")
        return shape, dtype

    def read(self, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The member's array, which must be of ``shape`` and ``dtype`` (as :meth:`header`
        gave them): at most its declared bytes are inflated."""
        with self._open(key) as f:
            got_shape, got_dtype, fortran, _ = self._header(f, key)
            if got_shape != tuple(shape) or got_dtype != dtype:
                raise ArchiveError(f"member {key!r} changed between reads")
            out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
            buf = memoryview(out.reshape(-1).view(np.uint8))  # filled in place: no second copy
            try:
                done = 0
                while done < len(buf):
                    chunk = f.read(min(_CHUNK, len(buf) - done))
                    if not chunk:
                        break
                    buf[done:done + len(chunk)] = chunk
                    done += len(chunk)
                extra = f.read(1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise ArchiveError(f"member {key!r} is damaged ({type(exc).__name__}: {exc})") from None
        if done != len(buf) or extra:
            raise ArchiveError(f"member {key!r} holds {'more' if extra else done} bytes where its "
                               f"header declares {len(buf)}")
        return np.ascontiguousarray(out.transpose()) if fortran else out
