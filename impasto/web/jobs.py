"""The job queue: one worker thread per device runs one job at a time; the others wait in line.

The HTTP side only ever reads snapshots (:meth:`JobManager.status`) taken under one lock, and is
woken by :meth:`JobManager.listen` when a job changes, so a running job never blocks a request;
threads (scripts, tests) block on :meth:`JobManager.wait` instead.
Finished jobs and their folders are deleted after ``keep_seconds`` or beyond ``keep_jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.transfer import Result, Step, transfer
from ..image import encode_png
from .job import FINISHED, Conflict, Job, JobSpec, QueueFull, State
from .media import StorageFull
from .run_job import run_job
from .settings import StudioSettings

__all__ = ["FINISHED", "Conflict", "Job", "JobManager", "JobSpec", "QueueFull", "Runner", "State"]

log = logging.getLogger("impasto.web")

Runner = Callable[..., Result]  # the signature of impasto.transfer.transfer: the job's checked Options


class _Listener:
    """Wakes one asyncio task, from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(self.event.set)


class JobManager:
    """Queues, runs, cancels and forgets jobs. ``runner`` defaults to :func:`impasto.transfer.transfer`."""

    def __init__(self, settings: StudioSettings, runner: Runner | None = None) -> None:
        self.settings = settings
        self.runner: Runner = runner or transfer
        self._own_root = settings.workdir is None
        self._root = settings.workdir
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)  # workers: a job was queued, or the studio closes
        self._changed = threading.Condition(self._lock)  # wait(): some job changed
        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, deque[Job]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._listeners: dict[str, set[_Listener]] = {}
        self._closed = False

    @property
    def root(self) -> Path:
        """The folder of the job folders: ``workdir``, or a temporary folder made on first use."""
        with self._lock:
            try:
                if self._root is None:
                    self._root = Path(tempfile.mkdtemp(prefix="impasto-studio-"))
                    log.info("job files go to %s", self._root)
                self._root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageFull(f"the studio cannot make its job folder ({exc.strerror or exc})") from None
            return self._root

    # --- submitting -------------------------------------------------------------------------

    def reserve(self) -> tuple[str, Path]:
        """A new job id (uuid4) and an empty folder for its files; refuses when the queue is full."""
        self._check_capacity()
        job_id = str(uuid.uuid4())
        folder = self.root / job_id
        try:
            folder.mkdir()
        except OSError as exc:  # a full disk (no blocks or no inodes left), mostly
            raise StorageFull(f"the studio cannot make a folder for the job ({exc.strerror or exc})") from None
        return job_id, folder

    def _check_capacity(self) -> None:
        with self._lock:
            if self._closed:
                raise QueueFull("the studio is shutting down")
            waiting = sum(len(q) for q in self._queues.values())
            if waiting >= self.settings.max_queued:
                raise QueueFull(f"{waiting} jobs are already waiting: try again when one has finished")

    def submit(self, job_id: str, folder: Path, spec: JobSpec) -> Job:
        """Queue a job on its device's worker."""
        with self._lock:
            self._check_capacity()
            job = Job(job_id, spec, folder)
            self._jobs[job_id] = job
            self._queues.setdefault(spec.device, deque()).append(job)
            if spec.device not in self._workers:
                worker = threading.Thread(
                    target=self._work, args=(spec.device,), name=f"impasto-{spec.device}", daemon=True
                )
                self._workers[spec.device] = worker
                worker.start()
            self._wake.notify_all()
        log.info("job %s queued on %s", job_id, spec.device)
        self.prune()
        return job

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

    # --- cancelling and forgetting ----------------------------------------------------------

    def cancel(self, job: Job) -> None:
        """Stop a job: a queued one at once, a running one after its current step (keeping its image)."""
        with self._lock:
            if job.state in FINISHED:
                raise Conflict(f"job {job.id} has already finished ({job.state.value})")
            job.cancel.set()
            if job.state is State.QUEUED:
                queue = self._queues[job.spec.device]
                queue.remove(job)
                job.state, job.finished = State.CANCELLED, time.time()
                for other in queue:
                    self._bump(other)  # their positions moved
            self._bump(job)
        log.info("job %s: cancel requested", job.id)

    def prune(self, now: float | None = None) -> None:
        """Forget finished jobs older than ``keep_seconds`` and beyond the newest ``keep_jobs``."""
        now = time.time() if now is None else now
        with self._lock:
            done = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished or 0)
            expired = [j for j in done if now - (j.finished or now) > self.settings.keep_seconds]
            keep = [j for j in done if j not in expired]
            expired += keep[: max(0, len(keep) - self.settings.keep_jobs)]
            for job in expired:
                del self._jobs[job.id]
                self._bump(job)  # its event streams end
        for job in expired:
            shutil.rmtree(job.folder, ignore_errors=True)
            log.info("job %s: deleted", job.id)

    def close(self, timeout: float = 30.0) -> None:
        """Cancel everything, wait for the workers, delete the work folder if it was a temporary one."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state not in FINISHED:
                    job.cancel.set()
                if job.state is State.QUEUED:
                    job.state, job.finished = State.CANCELLED, time.time()
                    self._bump(job)
            for queue in self._queues.values():
                queue.clear()
            self._wake.notify_all()
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self._own_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    # --- the worker -------------------------------------------------------------------------

    def _work(self, device: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[device]
                while not self._closed and not queue:
                    self._wake.wait()
                if self._closed:
                    return
                job = queue.popleft()
                job.state, job.started = State.RUNNING, time.time()
                self._bump(job)
                for other in queue:
                    self._bump(other)
            log.info("job %s started", job.id)
            self._execute(job)
            log.info("job %s %s", job.id, job.state.value)
            self.prune()

    def _image_every(self, device: str) -> int:
        if self.settings.image_every > 0:
            return self.settings.image_every
        return 1 if device == "cpu" else 5  # a copy to the host costs a GPU a synchronisation

    def _execute(self, job: Job) -> None:
        spec = job.spec
        last_preview = [0.0]

        def on_step(s: Step) -> None:
            now = time.monotonic()
            with self._lock:
                new_scale = s.scale != job.progress["scale"]
                job.record(s)
                due = now - last_preview[0] >= self.settings.preview_seconds or s.step >= s.total or new_scale
                if s.image is not None and due:
                    job.preview, job.image_step = s.image, s.step
                    job.image_version += 1
                    last_preview[0] = now
                self._bump(job)

        outcome = run_job(
            self.runner,
            job,
            on_step=on_step,
            image_every=self._image_every(spec.device),
            should_stop=lambda: job.cancel.is_set() or self._closed,
            max_pixels=self.settings.max_pixels,
        )
        self._finish(job, outcome.state, error=outcome.error, result=outcome.result, path=outcome.path)

    def _finish(
        self,
        job: Job,
        state: State,
        *,
        error: str | None = None,
        result: Result | None = None,
        path: Path | None = None,
    ) -> None:
        with self._lock:
            job.state, job.error, job.finished = state, error, time.time()
            if result is not None:
                job.record_result(result)
                job.preview, job.image_step, job.result_path = result.image, result.steps, path
                job.image_version += 1
            self._bump(job)
