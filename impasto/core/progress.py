"""What a transfer tells its caller as it goes: a :class:`Step` after every optimisation step, the
:class:`Result` at the end; :class:`ScaleProgress` makes the steps of one scale into those events."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from ..config import Options
from .checkpoint import Checkpoint
from .objective import Weighted
from .optimize import ScaleStep
from .phases import Phase
from .schedule import Budget, Scale
from .targets import delivered
from .terms.base import Term

__all__ = ["Course", "Extra", "Result", "ScaleProgress", "Step", "Watch"]


@dataclass(frozen=True)
class Extra:
    """A term added to eq. 7 at every scale (:mod:`impasto.core.terms`), with its weight.

    ``relative``: the weight multiplies the objective's value at the scale's initial image, so that
    it means the same for every network, size and style strength (the temporal term of video).
    """

    weight: float
    term: Term
    relative: bool = False

    def weighted(self, ref: torch.Tensor | None) -> Weighted:
        """(weight, term), a relative weight resolved against the objective's value ``ref``."""
        return (float(self.weight * ref) if self.relative and ref is not None else self.weight, self.term)


@dataclass(frozen=True)
class Step:
    """A progress event, sent after every optimisation step."""

    step: int  # 1-based, counted over all scales
    total: int  # planned steps over all scales
    scale: int  # 1-based
    scales: int
    size: tuple[int, int]  # (width, height) at this scale
    loss: float  # total loss of the image just evaluated (the current one)
    losses: dict[str, float]  # terms: content, style, tv, style:<layer>
    elapsed: float  # seconds since the transfer started
    eta: float | None  # estimated seconds left; None until a step has been timed (see Budget.observe)
    image: Image.Image | None = None  # when requested: the current image as it would be delivered (full size, colours)
    schedule: tuple[tuple[int, int, int], ...] = ()  # (width, height, steps) per scale, as now planned
    best: float | None = None  # lowest loss so far at this scale: the image a stop now would deliver
    budget: float | None = None  # max_time, seconds: with it, elapsed/budget is the progress ("total" may move)
    compute: str = ""  # where and how the network runs, e.g. "cpu, bf16 (CPU: AMX-BF16)"; fields: `name` (errors.word)


@dataclass
class Result:
    """The finished (or interrupted) transfer."""

    image: Image.Image
    loss: float
    losses: dict[str, float]
    steps: int
    elapsed: float
    interrupted: bool = False
    stopped: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    fault: str | None = None  # the run stopped early on a NaN or infinite loss or gradient: what happened


@dataclass(frozen=True)
class Watch:
    """How a caller follows a transfer: a :class:`Step` after every step to ``on_step`` (with the
    image every ``image_every`` steps), ``should_stop`` polled before every step, a
    :class:`~impasto.core.phases.Phase` before each slow stage to ``on_phase``; ``start_time`` (a
    ``time.perf_counter()`` value) is when ``max_time`` starts counting (None: when the transfer starts)."""

    on_step: Callable[[Step], None] | None = None
    image_every: int = 0
    should_stop: Callable[[], bool] | None = None
    on_phase: Callable[[Phase], None] | None = None
    start_time: float | None = None


@dataclass(frozen=True)
class Course:
    """What the progress of every scale of one transfer refers to: the schedule, the budget, the caller's callbacks."""

    content: Image.Image
    opts: Options
    scales: Sequence[Scale]
    budget: Budget
    start: float  # time.perf_counter() when the transfer (and max_time) started
    on_step: Callable[[Step], None] | None
    image_every: int
    should_stop: Callable[[], bool] | None
    compute: str = ""  # Step.compute
    extra: Sequence[Extra] = ()  # transfer(extra=...)
    checkpoint: Checkpoint | None = None  # where the run's state is kept, and resumed from
    palette: torch.Tensor | None = None  # the style images' colours, for ``photo_recolor`` (targets.palette_of)


class ScaleProgress:
    """:func:`optimize`'s two callbacks at one scale: it times the steps, sends Steps and says when to stop."""

    def __init__(self, run: Course, idx: int, done: int, content_t: torch.Tensor) -> None:
        self.run = run
        self.idx = idx  # 0-based index of the scale
        self.done = done  # steps taken at the earlier scales
        self.content_t = content_t  # the photo at this scale, for the delivered images
        self.here = 0  # steps taken at this scale
        self.best = math.inf  # lowest loss reported at this scale
        self.user_stopped = False
        self.last_time = time.perf_counter()

    def should_stop(self) -> bool:
        if self.run.should_stop is not None and self.run.should_stop():
            self.user_stopped = True
            return True
        return self.run.budget.scale_done(self.here, self.idx) or self.run.budget.out_of_time()

    def on_step(self, ev: ScaleStep) -> None:
        run, idx = self.run, self.idx
        now = time.perf_counter()
        self.here = ev.step
        run.budget.observe(now - self.last_time, idx, ev.step)
        self.last_time = now
        if run.on_step is None:
            return
        value = float(ev.loss)
        self.best = min(self.best, value)
        step = self.done + ev.step
        image = None
        if run.image_every > 0 and step % run.image_every == 0:
            image = delivered(ev.image, run.content, run.scales[-1].size, run.opts, self.content_t, run.palette)
        run.on_step(
            Step(
                step=step,
                total=self.done + sum(run.budget.alloc[idx:]),
                scale=idx + 1,
                scales=len(run.scales),
                size=run.scales[idx].size,
                loss=value,
                losses={k: float(v) for k, v in ev.terms.items()},
                elapsed=now - run.start,
                eta=run.budget.eta(idx, self.here),
                image=image,
                schedule=tuple((*s.size, a) for s, a in zip(run.scales, run.budget.alloc, strict=True)),
                best=self.best,
                budget=run.opts.max_time,
                compute=run.compute,
            )
        )
