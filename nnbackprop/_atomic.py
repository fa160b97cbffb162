"""Atomic file writes (after orbax's checkpoints): a whole old file or a whole new one, never half.

    atomic_write(path, write)     write(f) fills a temporary file beside the target,
                                  fsync'd, then os.replace'd over it

What a save killed at any moment (SIGKILL included) leaves: the old file or the new one,
plus at most a stray temporary ``.NAME.XXXXXXXX.tmp``. A writer holds an exclusive lock
on its temporary file (``fcntl.flock``; the kernel drops it when the process dies), so
the next save to the same path removes every temporary no live writer holds. Elsewhere
(no ``fcntl``) it removes those older than an hour.

The file written keeps the permission bits of the file it replaces (a new one gets
0o666 less the umask, as ``open()`` gives); a symbolic link is written through (its
target is replaced, the link stays); a name close to the filesystem's length limit
gets a shortened temporary name, so whatever ``open(path, "wb")`` could make, this can.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_STALE_AGE = 3600.0  # seconds; only where stale temporaries cannot be told by their lock


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Make the file ``path`` by ``write(f)`` on a binary read-write file object.

    It goes to a temporary file beside ``path`` (missing parent directories are
    created), is fsync'd and renamed over ``path``. On any failure ``path`` is
    untouched, the temporary file is gone, and an OSError names ``path``, not the
    temporary file. Returns ``path`` (as given: a link stays a link).
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_of(target)
        remove_stale(target)
        fd, tmp = _new_temp(target)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "w+b") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, target)  # while the lock is held: no cleaner takes it for stale
        _sync_dir(target.parent)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    return path


def _mode_of(path: Path) -> int | None:
    """The permission bits of the existing file ``path``, None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _stem(path: Path) -> str:
    """The part of the temporary name that stands for ``path.name``: the name itself,
    or (where ``.NAME.XXXXXXXX.tmp`` would pass the length limit) a prefix of it and
    a hash of the whole name."""
    limit = _name_max(path.parent) - len(".") - len(".12345678.tmp")
    name = path.name
    if len(os.fsencode(name)) <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    head = os.fsencode(name)[:max(0, limit - len(digest) - 1)].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def _temp_pattern(path: Path) -> re.Pattern:
    return re.compile(re.escape(f".{_stem(path)}.") + r"[0-9a-f]{8}\.tmp")


def _new_temp(path: Path) -> tuple[int, Path]:
    """(fd, name) of a new temporary file beside ``path``, mode 0o666 less the umask,
    locked against :func:`remove_stale` for as long as the fd is open."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    stem = _stem(path)
    while True:
        tmp = path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a cleaner may have taken it between open and lock: then it is gone, try again
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of earlier saves to ``path`` that no live writer
    holds (killed saves); return what was removed."""
    path = Path(path)
    pattern = _temp_pattern(path)
    try:
        names = [n for n in os.listdir(path.parent) if pattern.fullmatch(n)]
    except OSError:
        return []
    removed = []
    for n in names:
        tmp = path.parent / n
        if _take_stale(tmp):
            removed.append(tmp)
    return removed


def _take_stale(tmp: Path) -> bool:
    """Unlink ``tmp`` if no writer holds it; whether it was removed."""
    if fcntl is None:  # pragma: no cover - Windows
        try:
            if time.time() - os.stat(tmp).st_mtime > _STALE_AGE:
                os.unlink(tmp)
                return True
        except OSError:
            pass
        return False
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a live writer holds it
        os.close(fd)
        return False
    try:
        if os.stat(tmp).st_ino != os.fstat(fd).st_ino:  # replaced meanwhile: not ours to remove
            return False
        os.unlink(tmp)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    """fsync the directory, so the rename itself survives a power cut (POSIX only)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same OSError subclass) about ``path``."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), os.fspath(path))
