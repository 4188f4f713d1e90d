"""Real small disks for tests: a tmpfs mounted for a test (root and mount(8) needed), and filling one up.

Used by tests/test_disk_full.py (stylize, the studio) and tests/test_batch_disk.py (batch).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "tmpfs"]


def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs with ``options`` on ``mount`` (made here) for the test; unmounted (lazily, if something
    still holds it) afterwards. Skips, saying why, where mounting is not permitted."""
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(f"mounting a tmpfs needs root and mount(8) (uid {os.geteuid()}); test_faults.py's stand-ins ran")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(
            f"mount -t tmpfs failed here ({done.stderr.strip() or done.returncode}); test_faults.py's stand-ins ran"
        )
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True, timeout=30)


def fill(disk: Path, room: int = 0) -> Path:
    """Fill ``disk`` with one file until a write fails with ENOSPC, then give back ``room`` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"\xff" * 65536
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    if room:
        os.truncate(filler, filler.stat().st_size - room)
    free = shutil.disk_usage(disk).free
    assert free == room, (free, room)
    return filler
