"""The jobs a studio knows, and who watches them: the records the HTTP side reads.

The HTTP side only ever reads snapshots (:meth:`JobBoard.status`) taken under one lock, and is
woken by :meth:`JobBoard.listen` when a job changes, so a running job never blocks a request;
threads (scripts, tests) block on :meth:`JobBoard.wait` instead. :class:`~.worker.JobWorkers` adds the
workers, :class:`~.jobs.JobManager` the queue and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..image import encode_png
from .job import Job, State
from .settings import StudioSettings

__all__ = ["JobBoard"]


class _Listener:
    """Wakes one asyncio task, from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(self.event.set)


class JobBoard:
    """Jobs by id, their queues, and their listeners, under one lock."""

    def __init__(self, settings: StudioSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)  # workers: a job was queued, or the studio closes
        self._changed = threading.Condition(self._lock)  # wait(): some job changed
        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, deque[Job]] = {}
        self._listeners: dict[str, set[_Listener]] = {}
        self._closed = False

    # --- reading ----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if it is (still) known."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """All known jobs, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def status(self, job: Job) -> dict[str, Any]:
        """A consistent snapshot of a job's state and progress."""
        with self._lock:
            queue = self._queues.get(job.spec.device, deque())
            position = queue.index(job) + 1 if job.state is State.QUEUED and job in queue else None
            return {
                "id": job.id,
                "state": job.state.value,
                "position": position,
                **job.progress,
                "error": job.error,
                "cancel_requested": job.cancel.is_set(),
                "created": job.created,
                "started": job.started,
                "finished": job.finished,
                "image_version": job.image_version,
                "image_step": job.image_step,
                "has_image": job.preview is not None or job.result_path is not None,
                "preset": job.spec.preset,
                "options": dict(job.spec.overrides),
                "params": job.params(),
                "device": job.spec.device,
                "version": job.version,
                "note": job.note,
                "runs": job.runs,
            }

    def image(self, job: Job) -> bytes | Path | None:
        """The finished PNG file, else the latest preview as PNG bytes, else None."""
        with self._lock:
            if job.result_path is not None:
                return job.result_path
            if job.preview is None:
                return None
            if job.png is not None and job.png[0] == job.image_version:
                return job.png[1]
            version, preview, params = job.image_version, job.preview, job.params() | {"step": job.image_step}
        data = encode_png(preview, params, compress_level=1)  # outside the lock: it takes a while
        with self._lock:
            if job.image_version == version:
                job.png = (version, data)
        return data

    @contextlib.contextmanager
    def listen(self, job: Job) -> Iterator[asyncio.Event]:
        """An event set (from any thread) whenever ``job`` changes; use inside the event loop."""
        listener = _Listener()
        with self._lock:
            self._listeners.setdefault(job.id, set()).add(listener)
        try:
            yield listener.event
        finally:
            with self._lock:
                self._listeners.get(job.id, set()).discard(listener)
                if not self._listeners.get(job.id, True):
                    del self._listeners[job.id]

    def wait(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block the calling thread until ``until()`` holds; False if ``timeout`` seconds pass first.

        ``until`` is called under the lock, at once and after every change to any job, so it sees
        consistent job records (and may call this manager's methods).
        """
        with self._lock:
            return self._changed.wait_for(until, timeout)

    def _bump(self, job: Job) -> None:  # always called under the lock
        job.version += 1
        for listener in self._listeners.get(job.id, ()):
            listener.wake()
        self._changed.notify_all()
