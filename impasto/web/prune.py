"""Which finished jobs the studio forgets: a pure choice, so the rule is easy to read and to test.

1. A job finished longer ago than ``keep_seconds`` goes.
2. Beyond the newest ``keep_jobs`` finished jobs, the oldest go: cancelled and failed ones first,
   jobs that are done only once no cancelled or failed one is left to go (a flood of submitted and
   cancelled jobs must not push someone's result out).
3. Neither rule deletes the result of a job that is done, nobody has fetched yet, and is younger than
   ``protect_seconds`` (the image a cancelled job keeps is no such result).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from .job import FINISHED, State

__all__ = ["expired"]


class _Finished(Protocol):
    state: State
    finished: float | None
    fetched: float | None

    @property
    def has_result(self) -> bool: ...


J = TypeVar("J", bound=_Finished)


def expired(jobs: Sequence[J], now: float, keep_jobs: int, keep_seconds: float, protect_seconds: float) -> list[J]:
    """The jobs of ``jobs`` to forget now, oldest first."""
    done = sorted((j for j in jobs if j.state in FINISHED), key=lambda j: j.finished or 0.0)

    def protected(job: J) -> bool:
        young = now - (job.finished or now) < protect_seconds
        return job.state is State.DONE and job.has_result and job.fetched is None and young

    old = [j for j in done if now - (j.finished or now) > keep_seconds and not protected(j)]
    kept = [j for j in done if j not in old]
    surplus = len(kept) - keep_jobs
    for wanted in ((State.CANCELLED, State.FAILED), (State.DONE,)):
        for job in kept:
            if surplus <= 0:
                break
            if job.state in wanted and not protected(job) and job not in old:
                old.append(job)
                surplus -= 1
    return sorted(old, key=lambda j: j.finished or 0.0)
