"""What a run is doing before its first step, as events: the network, the plan with its estimate, targets.

A large run spends minutes before its first step (loading, the targets of a 10,000-px photo and
painting); :func:`impasto.transfer` reports each phase to its ``on_phase`` callback, so that a
front end can say what is happening from the start, and the plan with the estimated time
(:mod:`impasto.core.estimate`) before the expensive work, when a front end may still refuse it (by
raising from the callback: nothing is computed after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ..net.vgg import VGG19
from .estimate import estimate_seconds, rough, seconds_per_pixel
from .memory import Fit, format_size
from .schedule import Plan

__all__ = ["Phase", "PhaseName", "planned"]

PhaseName = Literal["network", "plan", "targets", "first step", "checkpoint"]


@dataclass(frozen=True)
class Phase:
    """One phase of a run before (or between) its steps."""

    name: PhaseName
    text: str  # in words, naming fields as ```field```
    seconds: float | None = None  # the run's estimated duration (on "plan")


def planned(schedule: Plan, fits: Sequence[Fit], network: VGG19, device: torch.device) -> Phase:
    """The "plan" phase: scales, tiles and memory, and the estimated time from a step measured now."""
    per_pixel = seconds_per_pixel(network, device)
    sized = [(*sc.size, sc.steps) for sc in schedule.scales]
    seconds = estimate_seconds(sized, per_pixel, [f.tile is not None for f in fits])
    if schedule.opts.max_time is not None:
        seconds = min(seconds, schedule.opts.max_time)
    width, height = schedule.size
    n = len(schedule.scales)
    last = fits[-1]
    memory = (
        f"tiles of {last.tile} px, ~{format_size(last.needed)} of memory"
        if last.tile is not None
        else f"~{format_size(last.needed)} of memory"
    )
    scales = f"{n} scale{'s' if n > 1 else ''}"
    steps = f"{schedule.steps} step{'s' if schedule.steps != 1 else ''}"
    text = f"planned {scales} up to {width}x{height}, {steps}; {memory}; {rough(seconds)} on {device.type}"
    return Phase("plan", text, seconds)
