"""A whole style transfer: a short loop over the scales of the schedule, with progress events.

Each scale sets the objective's targets (the photo and the paintings at that scale's size),
starts from the previous scale's result (upsampled) or from the initial image, and optimises
for its share of the steps (:func:`impasto.optimize.optimize`). The schedule and the time budget
are in :mod:`impasto.schedule`, the targets and initial image of a scale in :mod:`impasto.targets`,
devices and the network cache in :mod:`impasto.network`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from torch.nn import functional as F

from ..config import Options
from ..errors import NumericalError
from ..image import DEFAULT_MAX_PIXELS
from ..inputs import ImageLike, Inputs, gather, recorded
from ..net.network import get_vgg, resolve_device, resolve_precision
from ..net.vgg import VGG19
from . import memory
from .eq7 import Eq7
from .masks import check_masks
from .memory import Fit
from .objective import Objective
from .optimize import ScaleResult, ScaleStep, optimize
from .phases import Phase, planned
from .schedule import MIN_COARSE_SIDE, Budget, Plan, Scale, plan, plan_scales
from .targets import delivered, scale_objective, start_image
from .terms.base import Term

# MIN_COARSE_SIDE, get_vgg, plan_scales and resolve_device: re-exported from their modules.
__all__ = ["MIN_COARSE_SIDE", "Extra", "Result", "Step", "get_vgg", "plan_scales", "resolve_device", "transfer"]


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
class _Run:
    """What the progress of every scale refers to: the schedule, the budget, the caller's callbacks."""

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


@dataclass(frozen=True)
class Extra:
    """A term added to eq. 7 at every scale (:mod:`impasto.core.terms`), with its weight.

    ``relative``: the weight multiplies the objective's value at the scale's initial image, so that
    it means the same for every network, size and style strength (the temporal term of video).
    """

    weight: float
    term: Term
    relative: bool = False


def _with_extra(objective: Objective, extra: Sequence[Extra], init: torch.Tensor) -> Objective:
    """``objective`` plus the ``extra`` terms, relative weights resolved against its value at ``init``."""
    if not extra:
        return objective
    ref: torch.Tensor | None = None
    if any(e.relative for e in extra):
        with torch.no_grad():  # as the optimiser first sees it: clamped
            ref = objective(init.detach().clamp(0, 255))[0]
    terms = [(float(e.weight * ref) if e.relative and ref is not None else e.weight, e.term) for e in extra]
    return replace(objective, terms=[*objective.terms, *terms])


def _prepare(opts: Options, inputs: Inputs) -> tuple[Plan, torch.device]:
    """The run's plan (:func:`impasto.schedule.plan`: it refuses what cannot make a transfer, before
    any work), with the masks checked against their images; and the device."""
    n_style_masks = None if inputs.style_masks is None else len(inputs.style_masks)
    sizes = [s.size for s in inputs.styles]
    schedule = plan(opts, inputs.content.size, sizes, n_style_masks, inputs.content_mask is not None)
    check_masks(inputs.content, inputs.styles, inputs.content_mask, inputs.style_masks, inputs.content_mask_name)
    return schedule, resolve_device(opts.device)


def _network(opts: Options, device: torch.device, given: VGG19 | None) -> tuple[VGG19, str]:
    """The VGG19 ``opts`` names in the precision it resolves to, or ``given``: as it is for ``auto``,
    else a copy cast to the precision asked for; and how it runs, in words (``Step.compute``)."""
    precision, why = resolve_precision(opts.precision, device)
    if given is None:
        net = get_vgg(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network, precision)
    elif opts.precision == "auto":
        net, why = given, "the network given"
    else:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        net = given if given.dtype == dtype else copy.deepcopy(given).to(dtype)
    return net, f"{device.type}, {'bf16' if net.dtype == torch.bfloat16 else 'fp32'} ({why})"


def _equation(vgg: VGG19, opts: Options) -> Eq7:
    """Eq. 7 with the options' layers, weights and style term; each scale gets its tiling and targets."""
    return Eq7(
        vgg,
        dict(opts.content_layers),
        dict(opts.style_layers),
        content_weight=opts.alpha,
        style_weight=opts.beta,
        tv_weight=opts.tv_weight,
        layer_balance=opts.layer_balance,
        style_loss=opts.style_loss,
    )


class _ScaleProgress:
    """:func:`optimize`'s two callbacks at one scale: it times the steps, sends Steps and says when to stop."""

    def __init__(self, run: _Run, idx: int, done: int, content_t: torch.Tensor) -> None:
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
            image = delivered(ev.image, run.content, run.scales[-1].size, run.opts, self.content_t)
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


COMPUTED = ("device", "precision", "alpha", "tile", "lbfgs_history")  # the parameters a run chooses itself


def _computed(device: torch.device, precision: str, objective: Objective, last: Fit) -> dict[str, Any]:
    """The parameters a run chose itself (:data:`COMPUTED`), recorded with the options in the output."""
    return {
        "device": str(device),
        "precision": precision,
        "alpha": objective.weight("content"),
        "tile": last.tile,
        "lbfgs_history": last.history,
    }


def _optimise_scale(
    objective: Objective, init: torch.Tensor, run: _Run, idx: int, done: int, content_t: torch.Tensor, history: int
) -> tuple[ScaleResult, bool]:
    """Scale ``idx`` from ``init``, ``done`` steps into the run; the result and whether the caller stopped it."""
    run.budget.start_scale(idx)
    progress = _ScaleProgress(run, idx, done, content_t)
    result = optimize(
        objective,
        init,
        run.budget.plan[idx],
        optimizer=run.opts.optimizer,
        learning_rate=run.opts.learning_rate,
        lbfgs_history=history,
        precondition=run.opts.precondition,
        on_step=progress.on_step,
        should_stop=progress.should_stop,
    )
    return result, progress.user_stopped


def _fits(plan: Plan, equation: Eq7, opts: Options, device: torch.device, precision: str) -> list[Fit]:
    """How each scale fits the device's memory: its tile and L-BFGS history (:func:`impasto.memory.plan`)."""
    return memory.plan(
        [sc.size for sc in plan.scales],
        [sc.steps for sc in plan.scales],
        equation.layers,
        opts.lbfgs_history,
        device,
        precision == "bf16",
        opts.tile,
        opts.max_memory,
    )


def transfer(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    opts: Options,
    *,
    init_image: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    network: VGG19 | None = None,
    on_step: Callable[[Step], None] | None = None,
    image_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
    start_time: float | None = None,
    extra: Sequence[Extra] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_phase: Callable[[Phase], None] | None = None,
) -> Result:
    """Paint ``content`` in the manner of ``styles`` with options ``opts``.

    Every image is a path or a PIL image (:mod:`impasto.inputs`; a path's image must be within
    ``max_pixels``). ``init_image`` is where ``opts.init == "image"`` starts from;
    ``content_mask``/``style_masks`` enable spatial control. ``network`` replaces the VGG19 that
    ``opts`` names (weights, pooling, network), used as given (cast when ``opts.precision`` is not
    ``auto``), on the device ``opts.device`` resolves to: e.g. the small stand-in of
    :mod:`impasto.testing`. ``start_time`` (a ``time.perf_counter()`` value) is when ``max_time``
    starts counting; default: now.

    ``extra`` adds terms to eq. 7 at every scale (:class:`Extra`; e.g. the temporal term of
    :mod:`impasto.video`), tiled like the others; each is reported under its name and counts in ``loss``.
    """
    start = start_time if start_time is not None else time.perf_counter()
    inputs = gather(
        content,
        styles,
        opts.init,
        init_image=init_image,
        content_mask=content_mask,
        style_masks=style_masks,
        max_pixels=max_pixels,
    )
    content_img = inputs.content
    schedule, device = _prepare(opts, inputs)
    phase = on_phase or (lambda _: None)
    phase(Phase("network", f"loading the network on {device.type}"))
    network, compute = _network(opts, device, network)
    precision = "bf16" if network.dtype == torch.bfloat16 else "fp32"
    equation = _equation(network, opts)
    scales = schedule.scales
    fits = _fits(schedule, equation, opts, device, precision)
    if (note := fits[-1].note()) is not None:
        compute += f"; {note}"
    if on_phase is not None:  # the estimate times a step: only for a front end that shows it
        on_phase(planned(schedule, fits, network, device))
    budget = schedule.budget(start)
    run = _Run(content_img, opts, scales, budget, start, on_step, image_every, should_stop, compute, tuple(extra))
    current: torch.Tensor | None = None
    result: ScaleResult | None = None
    done, user_stopped = 0, False
    for idx, scale in enumerate(scales):
        here = replace(equation, tile=fits[idx].tile, keep=fits[idx].keep)
        where = f"scale {idx + 1}/{len(scales)} {scale.size[0]}x{scale.size[1]}"
        phase(Phase("targets", f"{where}: the targets (the photo's and the painting's features)"))
        objective, content_t, content_in = scale_objective(here, inputs, opts, scale, device)
        phase(Phase("first step", f"{where}: the first step"))
        if current is None:
            init = start_image(inputs, opts, scale.size, content_in, device)
        else:  # the previous scale's result, upsampled
            width, height = scale.size
            init = F.interpolate(current, size=(height, width), mode="bicubic", align_corners=False)
        objective = _with_extra(objective, run.extra, init)
        result, user_stopped = _optimise_scale(objective, init, run, idx, done, content_t, fits[idx].history)
        done += result.steps
        current = result.image
        if result.fault is not None and not math.isfinite(result.loss) and idx == 0:
            raise NumericalError(
                f"{result.fault} (scale 1 of {len(scales)}), before any finite image: check the weights "
                "and extreme option values (`style_weight`, `content_weight`, `ratio`, `learning_rate`)"
            )
        if result.interrupted or user_stopped or budget.out_of_time() or result.fault is not None:
            break
    assert result is not None and current is not None
    return Result(
        image=delivered(current, content_img, schedule.size, opts, content_t),
        loss=result.loss,
        losses=result.terms,
        steps=done,
        elapsed=time.perf_counter() - start,
        interrupted=result.interrupted,
        stopped=user_stopped,
        params=opts.to_dict()
        | recorded(opts.init, init_image, content_mask, style_masks)
        | _computed(device, precision, objective, fits[-1]),
        fault=None if result.fault is None else f"{result.fault} (scale {idx + 1} of {len(scales)}): stopped there",
    )
