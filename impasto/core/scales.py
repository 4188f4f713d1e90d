"""The scales of one transfer, coarse to fine: each from the previous one's result, kept in a checkpoint.

Each scale sets the objective's targets (the photo and the paintings at that scale's size),
starts from the previous scale's result (upsampled) or from the initial image, and optimises
for its share of the steps (:func:`impasto.core.optimize.optimize`). With a checkpoint
(:mod:`impasto.core.checkpoint`) the state is written as it goes and a run resumes where the
checkpoint left it: at its scale, with its optimiser's state, taking the steps it would have taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.nn import functional as F

from ..errors import NumericalError
from ..inputs import Inputs
from .checkpoint import Saved
from .eq7 import Eq7
from .memory import Fit
from .objective import Objective
from .optimize import ScaleResult, optimize
from .phases import Phase
from .progress import Course, ScaleProgress
from .targets import scale_objective, start_image
from .terms.photoreal import Photorealism

__all__ = ["LastScale", "run_scales"]


@dataclass(frozen=True)
class LastScale:
    """Where the scales loop stopped: the last scale's result and what the delivered image needs."""

    result: ScaleResult
    image: torch.Tensor  # (1, 3, h, w) at that scale
    photo: torch.Tensor  # the photo at that scale
    objective: Objective
    scale: int  # 1-based
    steps: int  # over all scales
    user_stopped: bool


def _with_extra(objective: Objective, run: Course, photo: torch.Tensor, ref: torch.Tensor | None) -> Objective:
    """``objective`` plus the run's ``extra`` terms and, with ``photorealism``, the photorealism term
    for ``photo`` (this scale's); relative weights multiply ``ref``, the objective at the run's start."""
    terms = [e.weighted(ref) for e in run.extra]
    if run.opts.photorealism > 0 and ref is not None:
        term = Photorealism.of(photo)
        rows, cols = term.guide.windows  # the weight is per window: the same at every size
        terms.append((float(run.opts.photorealism * ref) / (rows * cols), term))
    return replace(objective, terms=[*objective.terms, *terms]) if terms else objective


def _start_value(objective: Objective, run: Course, init: torch.Tensor) -> torch.Tensor | None:
    """The objective at the run's initial image (as the optimiser first sees it: clamped), when a term's
    weight is relative to it (video's temporal term, the photorealism term); else None."""
    if not (run.opts.photorealism > 0 or any(e.relative for e in run.extra)):
        return None
    with torch.no_grad():
        return objective(init.detach().clamp(0, 255))[0]


def _keeper(run: Course, idx: int, done: int, ref: torch.Tensor | None) -> Callable[[int, Any], None] | None:
    """optimize's ``keep``: the checkpoint written when due, at scale ``idx`` after ``done`` earlier steps."""
    checkpoint = run.checkpoint
    if checkpoint is None:
        return None

    def keep(step: int, state: Callable[[], dict[str, Any]]) -> None:
        if checkpoint.due(step):
            checkpoint.write(Saved(idx, done, ref, state()))

    return keep


def _optimise_scale(
    objective: Objective, init: torch.Tensor, run: Course, where: tuple[int, int], ref: torch.Tensor | None, **kw: Any
) -> tuple[ScaleResult, bool]:
    """Scale ``idx`` from ``init``, ``done`` steps into the run (``where``: both); the result, and
    whether the caller stopped it."""
    idx, done = where
    run.budget.start_scale(idx)
    progress = ScaleProgress(run, idx, done, kw.pop("content_t"))
    result = optimize(
        objective,
        init,
        run.budget.plan[idx],
        optimizer=run.opts.optimizer,
        learning_rate=run.opts.learning_rate,
        precondition=run.opts.precondition,
        on_step=progress.on_step,
        should_stop=progress.should_stop,
        keep=_keeper(run, idx, done, ref),
        **kw,
    )
    return result, progress.user_stopped


def _resumed(run: Course, phase: Callable[[Phase], None]) -> Saved:
    """Where the run starts: the checkpoint's place (said as a phase), or the first scale."""
    checkpoint = run.checkpoint
    saved = checkpoint.load() if checkpoint is not None else None
    if checkpoint is not None and checkpoint.note is not None:
        phase(Phase("checkpoint", checkpoint.note))
    if checkpoint is None or saved is None or saved.scale >= len(run.scales):
        return Saved(0, 0, None, None)
    step = saved.done + (0 if saved.optimiser is None else int(saved.optimiser["step"]))
    phase(Phase("checkpoint", f"resuming from {checkpoint.path} at step {step} (scale {saved.scale + 1})"))
    return saved


def run_scales(
    run: Course,
    inputs: Inputs,
    equation: Eq7,
    fits: Sequence[Fit],
    device: torch.device,
    phase: Callable[[Phase], None],
) -> LastScale:
    """Each scale from the previous one's result (upsampled) or the initial image, until done or stopped."""
    at = _resumed(run, phase)
    current = None if at.image is None else at.image.to(device)
    ref = None if at.ref is None else at.ref.to(device)  # the objective at the run's start, for relative weights
    done = at.done
    for idx in range(at.scale, len(run.scales)):
        scale = run.scales[idx]
        here = replace(equation, tile=fits[idx].tile, keep=fits[idx].keep)
        where = f"scale {idx + 1}/{len(run.scales)} {scale.size[0]}x{scale.size[1]}"
        phase(Phase("targets", f"{where}: the targets (the photo's and the painting's features)"))
        objective, content_t, content_in = scale_objective(here, inputs, run.opts, scale, device)
        phase(Phase("first step", f"{where}: the first step"))
        if current is None:
            init = start_image(inputs, run.opts, scale.size, content_in, device)
        else:  # the previous scale's result, upsampled
            width, height = scale.size
            init = F.interpolate(current, size=(height, width), mode="bicubic", align_corners=False)
        if ref is None or (idx == 0 and at.optimiser is None):
            ref = _start_value(objective, run, init)
        objective = _with_extra(objective, run, content_t, ref)
        resume = at.optimiser if idx == at.scale else None
        kw = {"content_t": content_t, "lbfgs_history": fits[idx].history, "resume": resume}
        result, user_stopped = _optimise_scale(objective, init, run, (idx, done), ref, **kw)
        done += result.steps  # at this scale, with the steps taken before a resume
        current = result.image
        if result.fault is not None and not math.isfinite(result.loss) and idx == 0:
            raise NumericalError(
                f"{result.fault} (scale 1 of {len(run.scales)}), before any finite image: check the weights "
                "and extreme option values (`style_weight`, `content_weight`, `ratio`, `learning_rate`)"
            )
        if result.interrupted or user_stopped or run.budget.out_of_time() or result.fault is not None:
            break
        if (
            run.checkpoint is not None and idx + 1 < len(run.scales) and run.checkpoint.due(None)
        ):  # the next starts here
            run.checkpoint.write(Saved(idx + 1, done, ref, None, image=current.cpu()))
    assert current is not None  # the schedule has a scale at least
    return LastScale(result, current, content_t, objective, idx + 1, done, user_stopped)
