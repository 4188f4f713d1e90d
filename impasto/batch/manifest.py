"""The batch's memory: ``OUT_DIR/impasto-batch.json``, one entry per item, written atomically.

An entry records the item's parameters (their hash), its state (``pending``, ``done``, ``failed``),
its output file and, for a failure, the one-line reason. Running the same batch again skips the
items that are done with the same parameters and an output still on disk, and does the rest.

One batch at a time writes into a folder: :func:`lock_folder` holds an exclusive ``flock`` on
``OUT_DIR/.impasto-batch.lock`` for the whole run, and a second batch on the folder is refused with
one line. Each save reads the file again and merges (the entries this run changed win), under
that lock, and writes it atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..atomic import write_atomic
from ..errors import InputError
from .plan import Item

try:
    import fcntl
except ImportError:  # Windows: no flock; two batches on one folder are not kept apart there
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "Entry", "Manifest", "State", "lock_folder", "write_atomic"]

MANIFEST_NAME = "impasto-batch.json"
LOCK_NAME = ".impasto-batch.lock"  # flock-ed by the batch writing into the folder; the empty file stays
VERSION = 1
State = Literal["pending", "done", "failed"]


@dataclass
class Entry:
    """One item's record."""

    id: str
    name: str
    content: str
    style: str
    sweep: dict[str, Any]
    params_hash: str
    state: State = "pending"
    output: str | None = None  # file name inside OUT_DIR, once done
    reason: str | None = None  # why it failed, one line
    seconds: float | None = None  # of the transfer, once done
    attempts: int = 0


@dataclass
class Manifest:
    """All entries of a batch, by item id, and the folder they live in."""

    out_dir: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    interrupted: bool = False  # set by batch() when Ctrl-C stopped it
    current: list[str] = field(default_factory=list)  # ids of the batch being run (not saved)
    touched: set[str] = field(default_factory=set)  # ids this run tracked: its entries win a merge

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in ``out_dir``, or an empty one; a corrupt file is an error, not silently replaced."""
        manifest = cls(out_dir)
        manifest.entries = manifest._read()
        return manifest

    def _read(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text())
            return {e["id"]: Entry(**e) for e in raw["items"]}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self.path}: corrupt batch manifest ({exc}); move it away to start afresh") from None

    def save(self) -> None:
        """Merge into the file as it is now (the entries this run tracked win), atomically."""
        merged = self._read() | {i: e for i, e in self.entries.items() if i in self.touched}
        self.entries = merged | {i: e for i, e in self.entries.items() if i not in merged}
        data = {"impasto_batch": VERSION, "items": [asdict(e) for e in self.entries.values()]}
        write_atomic(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    def is_done(self, item: Item) -> bool:
        """Done with these parameters and its output still there."""
        e = self.entries.get(item.id)
        return (
            e is not None
            and e.state == "done"
            and e.params_hash == item.params_hash
            and e.output is not None
            and (self.out_dir / e.output).is_file()
        )

    def track(self, item: Item) -> Entry:
        """The entry of ``item``, new or reset to pending when its parameters changed."""
        self.touched.add(item.id)
        e = self.entries.get(item.id)
        if e is None or e.params_hash != item.params_hash:
            e = Entry(item.id, item.name, item.content, item.style, dict(item.sweep), item.params_hash)
            self.entries[item.id] = e
        elif not self.is_done(item):
            e.state, e.output, e.reason, e.name = "pending", None, None, item.name
        return e

    def count(self, state: State) -> int:
        """Entries in ``state``: of the current batch's items when set, else all (an earlier,
        different command's entries stay in the file, and out of the counts)."""
        ids = self.current or list(self.entries)
        return sum(self.entries[i].state == state for i in ids if i in self.entries)


@contextlib.contextmanager
def lock_folder(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s batch lock for the block; another holder is an :class:`InputError` at once.

    The lock is an exclusive ``flock`` on ``.impasto-batch.lock``, an empty file kept in the folder
    (never written: a rerun with nothing to do changes nothing); the kernel drops the lock when
    the process ends, however it ends.
    """
    if fcntl is None:
        yield
        return
    path = out_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the batch's lock file ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"{out_dir}: another impasto batch is writing into this folder; "
                "wait for it to finish, or give another output folder"
            ) from None
        except OSError:  # a file system without flock: the batch runs unguarded, as before locks
            pass
        yield
    finally:
        os.close(fd)
