"""A job: what it was asked to do (:class:`JobSpec`), where it is (:class:`State`), its progress.

Its progress is the latest :class:`~impasto.transfer.Step`'s fields that :class:`JobStatus` shows
(:data:`PROGRESS`): one record from the optimiser to the API's JSON.

:class:`Job` records are mutated only by :class:`~impasto.web.jobs.JobManager`, under its lock.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Options
from ..core.record import made_with
from ..core.transfer import Result, Step
from ..errors import ImpastoError
from .fields import UPLOAD_ARGS
from .media import StoredImage
from .models import JobStatus

__all__ = ["FINISHED", "PROGRESS", "Conflict", "Job", "JobSpec", "QueueFull", "State"]

# The fields of a Step a job's status shows: those JobStatus declares too (not the image, which
# becomes the preview, nor the best loss, the budget or the compute line).
PROGRESS = tuple(f.name for f in dataclasses.fields(Step) if f.name in JobStatus.model_fields)


class State(str, enum.Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (State.DONE, State.FAILED, State.CANCELLED)


class QueueFull(ImpastoError):
    """Too many jobs are waiting (HTTP 429)."""


class Conflict(ImpastoError):
    """The request does not fit the job's state, e.g. cancelling a finished job (HTTP 409)."""


@dataclass(frozen=True)
class JobSpec:
    """What a job was asked to do: checked options and stored input images."""

    preset: str
    overrides: dict[str, Any]  # the option fields as submitted: what the run gets, and "restore these settings"
    options: Options  # resolved (init "image" with an uploaded init image)
    content: StoredImage
    styles: tuple[StoredImage, ...]
    uploads: dict[str, tuple[StoredImage, ...]]  # form field (init, content_mask, style_masks) -> images
    device: str  # resolved: one queue per device

    def images(self) -> dict[str, Any]:
        """The uploaded images as the runner's arguments: ``init_image``, ``content_mask``, ``style_masks``."""
        out: dict[str, Any] = {}
        for name, images in self.uploads.items():
            paths = [s.path for s in images]
            out[UPLOAD_ARGS[name]] = paths if name == "style_masks" else paths[0]
        return out


@dataclass(eq=False)
class Job:
    """A job and its latest progress. Mutated only by :class:`JobManager` under its lock."""

    id: str
    spec: JobSpec
    folder: Path
    created: float = field(default_factory=time.time)
    state: State = State.QUEUED
    progress: dict[str, Any] = field(default_factory=dict)  # the PROGRESS fields, as JSON values
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    preview: Image.Image | None = None
    image_version: int = 0  # +1 whenever ``preview`` changes
    image_step: int = 0
    version: int = 0  # +1 whenever anything changes
    result_path: Path | None = None
    png: tuple[int, bytes] | None = None  # (image_version, encoded preview)
    note: str | None = None  # e.g. that it was run again after the studio restarted
    runs: int = 0  # how often a run of it started (more than 1: it was run again)
    fetched: float | None = None  # when its result was first fetched

    @property
    def has_result(self) -> bool:
        """It has a result file (done, or stopped with its best image)."""
        return self.result_path is not None

    def __post_init__(self) -> None:
        # Before the first step: the steps planned, nothing else known yet.
        blank = {"step": 0, "total": self.spec.options.steps, "schedule": [], "scale": 0, "scales": 0}
        self.progress = self.progress or blank | {"size": None, "loss": None, "losses": {}, "elapsed": 0.0, "eta": None}

    @property
    def step(self) -> int:
        """Steps done, over all scales."""
        return int(self.progress["step"])

    def record(self, s: Step) -> None:
        """Take the progress of ``s``."""
        self.progress = {name: _json(getattr(s, name)) for name in PROGRESS}

    def record_result(self, result: Result) -> None:
        """Take the finished run's steps, loss and time (the schedule and scale stay the last step's)."""
        self.progress |= {"step": result.steps, "loss": result.loss, "losses": dict(result.losses)}
        self.progress |= {"elapsed": result.elapsed, "eta": 0.0}

    def params(self) -> dict[str, Any]:
        """The parameters embedded in this job's images (as ``impasto info`` shows them)."""
        spec = self.spec
        opts = spec.options.to_dict() | {"content_mask": None, "style_masks": None}
        for name, images in spec.uploads.items():  # not the server's paths
            labels = [f"upload: {s.label}" for s in images]
            opts[name] = labels if name == "style_masks" else labels[0]
        return made_with(spec.preset) | {
            "content": spec.content.label,
            "styles": [s.label for s in spec.styles],
            **{k: v for k, v in opts.items() if k not in ("weights", "weights_format")},
            "device": spec.device,
        }


def _json(value: Any) -> Any:
    """A Step field's value as its JSON form: tuples become lists, dicts are copied."""
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return dict(value) if isinstance(value, dict) else value
