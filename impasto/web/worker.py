"""The workers: one thread per device takes the next queued job, runs it, and records how it ended.

:class:`JobWorkers` is the part of :class:`~.jobs.JobManager` that runs jobs; the manager queues,
cancels, records and forgets them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..core.transfer import Result, Step
from .board import JobBoard
from .job import Job, State
from .run_job import run_job

__all__ = ["RERUN_NOTE", "JobWorkers", "Runner"]

log = logging.getLogger("impasto.web")
RERUN_NOTE = "run again from the start: the studio stopped during its run"

Runner = Callable[..., Result]  # the signature of impasto.transfer.transfer: the job's checked Options


class JobWorkers(JobBoard):
    """The loop of each device's worker thread, over the queues of :class:`~.board.JobBoard`."""

    runner: Runner  # what runs a job: impasto.transfer.transfer, or a test's double

    def _record(self, job: Job, event: str | None = None, **values: object) -> None:
        """Write ``values`` and ``event`` to the database (:class:`~.jobs.JobManager`'s)."""
        raise NotImplementedError

    def prune(self, now: float | None = None) -> None:
        """Forget the finished jobs that are due (:class:`~.jobs.JobManager`'s)."""
        raise NotImplementedError

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
                job.runs += 1
                self._bump(job)
                for other in queue:
                    self._bump(other)
                self._record(job, "started", state=job.state.value, started=job.started, runs=job.runs)
            log.info("job %s started%s", job.id, "" if job.runs == 1 else f" (run {job.runs})")
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
        if self._closed and not job.cancel.is_set():  # stopped by the studio's shutdown: it runs again
            with self._lock:
                if outcome.path is not None:
                    outcome.path.unlink(missing_ok=True)
                job.state, job.note = State.QUEUED, "the studio stopped during its run: it runs again when it restarts"
                self._bump(job)
                self._record(job, "interrupted by the studio's shutdown", state=job.state.value, note=RERUN_NOTE)
            return
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
            result_name = None if job.result_path is None else job.result_path.name
            self._record(
                job, job.state.value, state=job.state.value, finished=job.finished, error=error,
                progress=job.progress, result=result_name, image_step=job.image_step,
            )  # fmt: skip
