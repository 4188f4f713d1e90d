"""Limits and housekeeping settings of the studio, with sane defaults for one local user."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

__all__ = ["ENV_PREFIX", "StudioSettings"]

ENV_PREFIX = "IMPASTO_STUDIO_"


@dataclass(frozen=True)
class StudioSettings:
    """What a web job may ask for, and how long results are kept.

    Every field can be set from the environment as ``IMPASTO_STUDIO_<FIELD>`` (upper case), e.g.
    ``IMPASTO_STUDIO_MAX_SIZE=2048 impasto serve``.
    """

    max_upload_bytes: int = field(default=20 * 2**20, metadata={"help": "largest uploaded file, bytes"})
    max_pixels: int = field(default=24_000_000, metadata={"help": "largest uploaded image, pixels"})
    max_size: int = field(default=1024, metadata={"help": "largest --size / --style-size of a web job, px"})
    max_steps: int = field(default=1000, metadata={"help": "most --steps of a web job"})
    max_scales: int = field(default=5, metadata={"help": "most --scales of a web job"})
    max_lbfgs_history: int = field(default=500, metadata={"help": "longest --lbfgs-history of a web job"})
    max_styles: int = field(default=8, metadata={"help": "most style images in one job"})
    max_queued: int = field(default=16, metadata={"help": "most jobs waiting at once"})
    max_connections: int = field(
        default=256, metadata={"help": "most open connections (lowered to fit the open-file limit); more: 503"}
    )
    header_seconds: float = field(
        default=10.0, metadata={"help": "a connection that sends no whole request header within this is closed"}
    )
    upload_seconds: float = field(
        default=120.0, metadata={"help": "longest time to receive a request's body, seconds (slower: 408)"}
    )
    keep_jobs: int = field(default=50, metadata={"help": "finished jobs kept (oldest are deleted first)"})
    keep_seconds: float = field(default=6 * 3600.0, metadata={"help": "finished jobs are deleted after this"})
    keep_unfetched_seconds: float = field(
        default=300.0, metadata={"help": "a result nobody has fetched yet is kept at least this long, seconds"}
    )
    preview_seconds: float = field(default=0.25, metadata={"help": "least time between two preview images"})
    image_every: int = field(
        default=0, metadata={"help": "copy the image off the device every N steps (0: 1 on the CPU, 5 on a GPU)"}
    )
    workdir: Path | None = field(
        default=None,
        metadata={"help": "folder of the jobs' database, uploads and results (default: ~/.local/share/impasto/studio)"},
    )
    allowed_hosts: tuple[str, ...] | None = field(
        default=None, metadata={"help": "accepted Host header names (None: any); guards against DNS rebinding"}
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and not value >= 0:  # NaN too
                raise ConfigError(f"studio setting {f.name} must be >= 0, got {value}")

    @property
    def max_request_bytes(self) -> int:
        """Largest whole request: every image a job can have (masks too), plus the form fields."""
        return self.max_upload_bytes * (2 * self.max_styles + 3) + 2**20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StudioSettings:
        """Settings with ``IMPASTO_STUDIO_*`` environment variables on top of the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            default = f.default
            try:
                if f.name == "workdir":
                    values[f.name] = Path(raw)
                elif f.name == "allowed_hosts":
                    values[f.name] = tuple(h.strip() for h in raw.split(",") if h.strip())
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = int(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}: '{raw}' is not a number") from None
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **values: object) -> StudioSettings:
        """These settings with ``values`` (field name -> value; None keeps the setting) on top."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]
