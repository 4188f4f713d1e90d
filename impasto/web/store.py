"""The studio's work folder: its lock, and its jobs in an SQLite database, so that a restart loses nothing.

Layout of the work folder (``impasto serve --workdir``, default :func:`default_workdir`)::

    studio.lock        held (``flock``) by the one studio using the folder; holds its pid
    studio.db          the jobs: options, state, result, history (WAL mode: -wal and -shm beside it)
    jobs/<id>/         each job's uploads and result
    tmp/               uploads over 1 MB while they arrive (unnamed files: none outlives the process)

One connection, used only under the job manager's lock (``check_same_thread=False``). The schema's
version is SQLite's ``user_version``; a database from a newer impasto is refused with one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ImpastoError

__all__ = ["SCHEMA_VERSION", "JobStore", "StoreError", "WorkdirBusy", "default_workdir", "lock_workdir"]

SCHEMA_VERSION = 1
DB_NAME = "studio.db"
LOCK_NAME = "studio.lock"
_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,                 -- JSON: preset, options as submitted, images, device
    started REAL,
    finished REAL,
    error TEXT,
    note TEXT,                          -- e.g. that it was run again after a restart
    runs INTEGER NOT NULL DEFAULT 0,    -- how often a run started
    progress TEXT,                      -- JSON: the last progress recorded (at the end of a run)
    result TEXT,                        -- the result's file name in the job's folder
    image_step INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    fetched REAL                        -- when its result was first fetched
);
CREATE TABLE history (job_id TEXT NOT NULL, at REAL NOT NULL, event TEXT NOT NULL);
CREATE INDEX history_job ON history (job_id);
"""
COLUMNS = ("started", "finished", "error", "note", "runs", "progress", "result", "image_step", "version", "fetched")


class WorkdirBusy(ConfigError):
    """Another studio uses the work folder."""


class StoreError(ImpastoError):
    """The database cannot be written: a full disk, mostly (HTTP 507 where a request caused it)."""


def default_workdir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/impasto/studio``, else ``~/.local/share/impasto/studio``: kept across restarts."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "impasto" / "studio"


def lock_workdir(root: Path) -> int:
    """Take the work folder's lock (a file descriptor, released when it is closed or the process ends)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"{root}: cannot use it as the studio's work folder ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise WorkdirBusy(
            f"{root}: another impasto studio (pid {holder}) is using this work folder; "
            "stop it or give another --workdir"
        ) from None
    with contextlib.suppress(OSError):  # only a label for the message above
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class JobStore:
    """The jobs table of one work folder. Every method raises :class:`StoreError` on a failed write."""

    def __init__(self, root: Path) -> None:
        self.path = root / DB_NAME
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint, never corrupt
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the studio's database ({exc})") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: made by a newer impasto (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        if version == 0:
            with self._transaction():
                self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise StoreError(f"the studio cannot record the job ({exc})") from None

    def load(self) -> list[dict[str, Any]]:
        """Every job, oldest first, as a dict of its columns (``spec`` and ``progress`` decoded)."""
        self._db.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in self._db.execute("SELECT * FROM jobs ORDER BY created, rowid")]
        finally:
            self._db.row_factory = None
        for row in rows:
            row["spec"] = json.loads(row["spec"])
            row["progress"] = json.loads(row["progress"]) if row["progress"] else None
        return rows

    def add(self, job_id: str, created: float, state: str, spec: dict[str, Any]) -> None:
        with self._transaction():
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO jobs (id, created, state, spec) VALUES (?, ?, ?, ?)",
                (job_id, created, state, json.dumps(spec)),
            )
            self._db.execute("INSERT INTO history VALUES (?, ?, ?)", (job_id, created, state))
            self._db.execute("COMMIT")

    def update(self, job_id: str, at: float, event: str | None = None, **values: Any) -> None:
        """Set some columns of a job (``state`` and those of :data:`COLUMNS`); ``event`` goes to its history."""
        unknown = set(values) - {"state", *COLUMNS}
        assert not unknown, unknown
        if "progress" in values and values["progress"] is not None:
            values["progress"] = json.dumps(values["progress"])
        with self._transaction():
            self._db.execute("BEGIN")
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))
            if event is not None:
                self._db.execute("INSERT INTO history VALUES (?, ?, ?)", (job_id, at, event))
            self._db.execute("COMMIT")

    def delete(self, job_ids: list[str]) -> None:
        with self._transaction():
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in job_ids])
            self._db.executemany("DELETE FROM history WHERE job_id = ?", [(i,) for i in job_ids])
            self._db.execute("COMMIT")

    def history(self, job_id: str) -> list[tuple[float, str]]:
        """(time, event) of a job, oldest first: queued, started, done, restarted, ..."""
        return [(at, event) for at, event in self._db.execute(
            "SELECT at, event FROM history WHERE job_id = ? ORDER BY at, rowid", (job_id,)
        )]  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
