"""One job's run, as a worker makes it: the runner called with the job's checked options, the
result saved with its parameters, and every way it can end turned into a state and one line.

Error lines name the job's images by their labels, never by the server's paths (:func:`_scrub`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.record import result_params
from ..core.transfer import COMPUTED, Result, Step
from ..errors import ImpastoError, out_of_memory
from ..image import save_image
from .fields import worded
from .job import Job, State

__all__ = ["Outcome", "run_job"]

log = logging.getLogger("impasto.web")


@dataclass(frozen=True)
class Outcome:
    """How a job ended: its state, the line the client sees, and the result and its file if any."""

    state: State
    error: str | None = None
    result: Result | None = None
    path: Path | None = None


def _scrub(message: str, job: Job) -> str:
    """An error message for the client: the server's paths of the job's images become their labels."""
    spec = job.spec
    named = [("content image", spec.content), *((f"style image {i}", s) for i, s in enumerate(spec.styles, 1))]
    named += [(name.replace("_", " "), s) for name, images in spec.uploads.items() for s in images]
    for role, image in named:
        message = message.replace(str(image.path), f"{role} '{image.label}'")
    return message.replace(str(job.folder), "(job folder)").splitlines()[0] if message else message


def _release_device_memory() -> None:
    """After an out-of-memory error: give the allocator's cached blocks back, for the next job."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_job(
    runner: Callable[..., Result],
    job: Job,
    *,
    on_step: Callable[[Step], None],
    image_every: int,
    should_stop: Callable[[], bool],
    max_pixels: int,
) -> Outcome:
    """Run ``job`` with ``runner`` (:func:`impasto.transfer.transfer`'s signature) and save its result."""
    spec = job.spec
    try:
        # The options checked at submit (web.fields.parse_options, schedule.plan), not resolved again.
        result = runner(
            spec.content.path,
            [s.path for s in spec.styles],
            spec.options,
            on_step=on_step,
            image_every=image_every,
            should_stop=should_stop,
            max_pixels=max_pixels,
            **spec.images(),
        )
        chosen = {k: result.params[k] for k in COMPUTED if k in result.params}  # device, precision, tiling...
        meta = job.params() | chosen | result_params(result)
        path = save_image(result.image, job.folder / "result.png", meta)
    except ImpastoError as exc:
        return Outcome(State.FAILED, _scrub(worded(exc), job))
    except Exception as exc:  # a bug or an exhausted device must not take the worker down
        if (oom := out_of_memory(exc)) is not None:
            log.warning("job %s: %s", job.id, oom)
            _release_device_memory()
            return Outcome(State.FAILED, _scrub(worded(oom), job))
        log.exception("job %s failed", job.id)
        return Outcome(State.FAILED, _scrub(f"internal error: {type(exc).__name__}: {exc}", job))
    stopped = result.stopped or result.interrupted
    state = State.FAILED if result.fault else State.CANCELLED if stopped else State.DONE
    fault = None if result.fault is None else f"{result.fault}: the image is the best one before it"
    return Outcome(state, fault, result, path)
