"""Checkpoints of a long run: the state to resume from, written atomically beside the output.

A checkpoint holds where the run is (the scale, the steps done before it, the objective's value
at the start for relative weights) and the optimiser's whole state at that scale (its variables,
L-BFGS's curvature pairs or Adam's moments, the best image so far, the loss scale): resumed, the
run takes exactly the steps it would have taken. It is written every ``every`` steps, or (by
default) every ``seconds`` of work, and at each scale's end; a finished run removes it.

Its ``fingerprint`` is a digest of everything that decides the image (the options, the inputs'
pixels, impasto's version): a checkpoint of another run is never resumed (:meth:`Checkpoint.load`
says why in :attr:`Checkpoint.note`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .._version import __version__
from ..atomic import write_atomic

__all__ = ["DEFAULT_SECONDS", "Checkpoint", "Saved", "fingerprint", "path_for"]

DEFAULT_SECONDS = 120.0  # without ``every``: a checkpoint about every two minutes of work
FORMAT = 1


def path_for(output: str | os.PathLike[str]) -> Path:
    """The checkpoint of the run writing ``output``: ``.NAME.impasto-checkpoint`` beside it."""
    out = Path(output)
    return out.with_name(f".{out.name}.impasto-checkpoint")


def fingerprint(params: dict[str, Any], images: Sequence[Image.Image | None]) -> str:
    """A digest of the run's options and its images' pixels (and impasto's version)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(__version__.encode())
    for img in images:
        if img is not None:
            h.update(f"{img.mode}{img.size}".encode())
            h.update(img.tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Saved:
    """A run's place: scale ``scale`` (0-based) after ``done`` steps of the earlier scales."""

    scale: int
    done: int
    ref: torch.Tensor | None  # the objective at the run's start (relative weights)
    optimiser: dict[str, Any] | None  # optimize's state at this scale; None: the scale starts from ``image``
    image: torch.Tensor | None = None  # the previous scale's result, when the scale has not started


@dataclass
class Checkpoint:
    """The checkpoint file ``path``: written every ``every`` steps (0: every ``seconds`` of work).

    ``fingerprint`` is the run's (:func:`fingerprint`): the transfer sets it from its options and images."""

    path: Path
    every: int = 0
    seconds: float = DEFAULT_SECONDS
    fingerprint: str = ""
    note: str | None = None  # why a checkpoint found was not resumed
    written: int = 0  # checkpoints written by this run
    _last: float = field(default_factory=time.monotonic)

    def load(self) -> Saved | None:
        """The saved place of this run, or None (no file, or another run's: then :attr:`note` says so)."""
        if not self.path.exists():
            return None
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a damaged file is not resumed: the run starts afresh
            self.note = f"checkpoint {self.path} could not be read ({type(exc).__name__}): starting afresh"
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("fingerprint") != self.fingerprint:
            self.note = f"checkpoint {self.path} is of a run with other options or images: starting afresh"
            return None
        saved: Saved = data["saved"]
        return saved

    def due(self, step: int | None) -> bool:
        """Whether to write one after ``step`` (counted at this scale; None: at a scale's end)."""
        if self.every > 0:
            return step is None or step % self.every == 0
        return time.monotonic() - self._last >= self.seconds

    def write(self, saved: Saved) -> None:
        """Write ``saved`` atomically (a temporary, then a rename: a kill leaves the last one whole)."""
        state = {"format": FORMAT, "fingerprint": self.fingerprint, "saved": saved}
        write_atomic(self.path, lambda fh: torch.save(state, fh))
        self.written += 1
        self._last = time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


Keeper = Callable[[int, Callable[[], dict[str, Any]]], None]  # (step, the optimiser's state) -> maybe written
