"""Atomic writes: a hidden temporary file next to the target, then a rename; and the clean-up of
the temporaries a killed process left behind.

Every file impasto writes goes through :func:`new_temp`: ``.NAME.impasto-XXXXXXXX.part`` in the
target's folder (``NAME`` the target's file name, ``XXXXXXXX`` 8 random hex digits; a video adds its
extension, ``.part.mp4``, for the muxer). The writer holds an exclusive ``flock`` on the temporary
from its creation until it is renamed or removed. A SIGKILL leaves the file, but the kernel drops the
lock: a temporary of that pattern, for the target being written, that nobody holds locked is stale,
and :func:`clean_stale` removes it. A temporary another process is still writing (locked), a
temporary of another target and any file not of that pattern are never touched. Where ``fcntl`` does
not exist (Windows) nothing is taken for stale.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock; temporaries are then never taken for stale
    fcntl = None  # type: ignore[assignment]

__all__ = ["TEMP_MARK", "clean_stale", "is_temp", "new_temp", "write_atomic"]

TEMP_MARK = ".impasto-"  # between the target's name and the random part: what makes a temporary ours
_TEMP = re.compile(r"^\.(?P<name>.+)\.impasto-[0-9a-f]{8}\.part(?:\.[A-Za-z0-9]{1,8})?$")
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def is_temp(filename: str, target: str | None = None) -> bool:
    """``filename`` is one of our temporaries (of the target named ``target``, if given)."""
    m = _TEMP.match(filename)
    return m is not None and (target is None or m["name"] == target)


def new_temp(folder: Path, name: str, suffix: str = "") -> tuple[int, Path]:
    """Create ``folder/.NAME.impasto-XXXXXXXX.part[SUFFIX]``, locked; return (fd, path).

    The file is created as a plain ``open()`` creates one (mode 0o666 masked by the umask). The
    caller keeps ``fd`` open (and so the lock) until the temporary is renamed or removed. Stale
    temporaries of ``name`` in ``folder`` are removed first (:func:`clean_stale`).
    """
    clean_stale(folder, [name])
    while True:
        tmp = folder / f".{name}{TEMP_MARK}{secrets.token_hex(4)}.part{suffix}"
        try:
            fd = os.open(tmp, _FLAGS, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a cleaner holds it, for microseconds
        except OSError:  # a file system without flock: unlocked, and no cleaner can lock it either
            return fd, tmp
        with contextlib.suppress(OSError):
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        os.close(fd)  # a cleaner removed it between our open and our lock: take another name


def clean_stale(folder: Path, names: Iterable[str]) -> list[Path]:
    """Remove the stale temporaries (see the module's docstring) of the targets ``names`` in ``folder``;
    return their paths. A folder that cannot be listed has none."""
    wanted = set(names)
    removed: list[Path] = []
    if fcntl is None or not wanted:
        return removed
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".part" in e.name]
    except OSError:
        return removed
    for filename in entries:
        m = _TEMP.match(filename)
        if m is None or m["name"] not in wanted:
            continue
        path = folder / filename
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            continue  # gone already, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # locked: a live writer's
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` (bytes, or a function that writes into the open file) to ``path`` through a
    temporary file in the same folder, fsync'd, then renamed: a crash leaves the old file or the new
    one, never half of one."""
    fd, tmp = new_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # before the file (and its lock) is closed
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
