"""The batch's memory: ``OUT_DIR/impasto-batch.json``, one entry per item, written atomically.

An entry records the item's parameters (their hash), its state (``pending``, ``done``, ``failed``),
its output file and, for a failure, the one-line reason. Running the same batch again skips the
items that are done with the same parameters and an output still on disk, and does the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from .plan import Item

__all__ = ["MANIFEST_NAME", "Entry", "Manifest", "State", "write_atomic"]

MANIFEST_NAME = "impasto-batch.json"
VERSION = 1
State = Literal["pending", "done", "failed"]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync'd, then renamed:
    a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in ``out_dir``, or an empty one; a corrupt file is an error, not silently replaced."""
        manifest = cls(out_dir)
        try:
            raw = json.loads(manifest.path.read_text())
            manifest.entries = {e["id"]: Entry(**e) for e in raw["items"]}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest.path}: corrupt batch manifest ({exc}); move it away to start afresh") from None
        return manifest

    def save(self) -> None:
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
