"""A job: what it was asked to do (:class:`JobSpec`), where it is (:class:`State`), its progress.

:class:`Job` records are mutated only by :class:`~impasto.web.jobs.JobManager`, under its lock.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import __version__
from ..config import Options
from ..errors import ImpastoError
from .fields import UPLOAD_ARGS
from .media import StoredImage

__all__ = ["FINISHED", "Conflict", "Job", "JobSpec", "QueueFull", "State"]


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
    step: int = 0
    total: int = 0  # steps planned over all scales (a time budget may lower it as it goes)
    schedule: tuple[tuple[int, int, int], ...] = ()  # (width, height, steps) per scale
    scale: int = 0
    scales: int = 0
    size: tuple[int, int] | None = None
    loss: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    eta: float | None = None
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

    def __post_init__(self) -> None:
        self.total = self.total or self.spec.options.steps

    def params(self) -> dict[str, Any]:
        """The parameters embedded in this job's images (as ``impasto info`` shows them)."""
        spec = self.spec
        opts = spec.options.to_dict() | {"content_mask": None, "style_masks": None}
        for name, images in spec.uploads.items():  # not the server's paths
            labels = [f"upload: {s.label}" for s in images]
            opts[name] = labels if name == "style_masks" else labels[0]
        return {
            "impasto": __version__,
            "preset": spec.preset,
            "content": spec.content.label,
            "styles": [s.label for s in spec.styles],
            **{k: v for k, v in opts.items() if k not in ("weights", "weights_format")},
            "device": spec.device,
        }
