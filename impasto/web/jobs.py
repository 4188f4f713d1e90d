"""The job queue: one worker thread per device runs one job at a time (:mod:`.worker`); the others wait in line.

What the HTTP side reads (snapshots, change notifications) is :class:`~.board.JobBoard`'s.
Finished jobs and their folders are deleted after ``keep_seconds`` or beyond ``keep_jobs`` (:mod:`.prune`).

Every job is recorded in the work folder's database (:mod:`.store`) as it changes state, so a
restarted studio serves its finished jobs, runs its queued ones, and runs again, saying so, the one
that was running. The manager holds the work folder's lock from construction to :meth:`close`.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from ..core.transfer import transfer
from ..errors import ImpastoError
from .job import FINISHED, Conflict, Job, JobSpec, QueueFull, State
from .media import StorageFull
from .prune import expired
from .records import job_from_row, remove_strays, spec_to_json
from .settings import StudioSettings
from .store import JobStore, StoreError, default_workdir, lock_workdir
from .worker import RERUN_NOTE, JobWorkers, Runner

__all__ = ["FINISHED", "RERUN_NOTE", "Conflict", "Job", "JobManager", "JobSpec", "QueueFull", "Runner", "State"]

log = logging.getLogger("impasto.web")


class JobManager(JobWorkers):
    """Queues, runs, cancels and forgets jobs. ``runner`` defaults to :func:`impasto.transfer.transfer`."""

    def __init__(self, settings: StudioSettings, runner: Runner | None = None) -> None:
        super().__init__(settings)
        self.runner: Runner = runner or transfer
        self._root = settings.workdir or default_workdir()
        self._workers: dict[str, threading.Thread] = {}
        self._lock_fd = lock_workdir(self._root)  # a second studio on this folder stops here, with one line
        try:
            self._store = JobStore(self._root)
            self._restore()
        except BaseException:
            os.close(self._lock_fd)
            raise

    @property
    def root(self) -> Path:
        """The work folder: the database, and a folder per job."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageFull(f"the studio cannot make its job folder ({exc.strerror or exc})") from None
        return self._root

    @property
    def closing(self) -> bool:
        """The studio is stopping: no new job, and every event stream is told so."""
        return self._closed

    def _restore(self) -> None:
        """The jobs of the database, as they were; a job that was running goes back in line."""
        for row in self._store.load():
            try:
                job = job_from_row(row, self._root)
            except (ImpastoError, KeyError, TypeError, ValueError) as exc:
                log.warning("job %s cannot be restored (%s): deleted", row["id"], exc)
                self._forget([row["id"]], [self._root / row["id"]])
                continue
            self._jobs[job.id] = job
            if job.state in (State.QUEUED, State.RUNNING):
                if job.state is State.RUNNING or job.runs:
                    job.state, job.started, job.note = State.QUEUED, None, RERUN_NOTE
                    self._record(
                        job, "queued again after a restart", state=job.state.value, note=job.note, started=None
                    )
                self._queues.setdefault(job.spec.device, deque()).append(job)
        remove_strays(self._root, set(self._jobs))
        for device in self._queues:
            self._start_worker(device)
        if self._jobs:
            log.info("restored %d jobs from %s", len(self._jobs), self._store.path)

    def _record(self, job: Job, event: str | None = None, **values: object) -> None:
        """Write ``values`` (columns of the jobs table) and ``event`` to the database; a failed write is
        logged, and the studio goes on from memory (a full disk must not stop a running job)."""
        try:
            self._store.update(job.id, time.time(), event, version=job.version, **values)
        except StoreError as exc:
            log.warning("job %s: %s", job.id, exc)

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
            try:
                self._store.add(job_id, job.created, job.state.value, spec_to_json(spec))
            except StoreError as exc:
                raise StorageFull(str(exc)) from None
            self._jobs[job_id] = job
            self._queues.setdefault(spec.device, deque()).append(job)
            self._start_worker(spec.device)
            self._wake.notify_all()
        log.info("job %s queued on %s", job_id, spec.device)
        self.prune()
        return job

    def _start_worker(self, device: str) -> None:  # under the lock
        if device not in self._workers:
            worker = threading.Thread(target=self._work, args=(device,), name=f"impasto-{device}", daemon=True)
            self._workers[device] = worker
            worker.start()

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
                self._record(job, "cancelled", state=job.state.value, finished=job.finished)
            else:
                self._bump(job)
        log.info("job %s: cancel requested", job.id)

    def fetched(self, job: Job) -> None:
        """Its result was sent to a client: from now on, pruning may delete it (see :mod:`.prune`)."""
        with self._lock:
            if job.fetched is None and job.has_result:
                job.fetched = time.time()
                self._record(job, fetched=job.fetched)

    def prune(self, now: float | None = None) -> None:
        """Forget finished jobs as :func:`.prune.expired` chooses (``keep_seconds``, ``keep_jobs``)."""
        now = time.time() if now is None else now
        s = self.settings
        with self._lock:
            jobs = list(self._jobs.values())
            gone = expired(jobs, now, s.keep_jobs, s.keep_seconds, s.keep_unfetched_seconds)
            for job in gone:
                del self._jobs[job.id]
                self._bump(job)  # its event streams end
            if gone:
                self._forget([j.id for j in gone], [j.folder for j in gone])
        for job in gone:
            log.info("job %s: deleted", job.id)

    def _forget(self, ids: list[str], folders: list[Path]) -> None:
        try:
            self._store.delete(ids)
        except StoreError as exc:  # the folders go all the same: a restart drops their records (_restore)
            log.warning("%s", exc)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def stop(self) -> None:
        """The studio is stopping: take no new job, stop the running ones after their current step, wake
        every event stream so it can say so and end. Queued jobs stay queued, for the next start."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state not in FINISHED:
                    self._bump(job)
            self._wake.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """:meth:`stop`, wait for the workers, close the database and give up the work folder's lock."""
        self.stop()
        with self._lock:
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._lock_fd < 0:
                return
            self._store.close()
            os.close(self._lock_fd)
            self._lock_fd = -1
