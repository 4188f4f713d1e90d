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
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.nn import functional as F

from ..config import Options
from ..errors import NumericalError
from ..image import DEFAULT_MAX_PIXELS
from ..inputs import ImageLike, Inputs, gather, recorded
from ..net.network import load_network, resolve_device, resolve_precision
from ..net.vgg import VGG19
from . import memory
from .eq7 import Eq7
from .masks import check_masks
from .memory import Fit
from .objective import Objective
from .optimize import ScaleResult, optimize
from .phases import Phase, planned
from .progress import Course, Extra, Result, ScaleProgress, Step
from .schedule import MIN_COARSE_SIDE, Plan, plan, plan_scales
from .targets import delivered, scale_objective, start_image
from .terms.photoreal import Photorealism

# MIN_COARSE_SIDE, plan_scales and resolve_device: re-exported from their modules.
__all__ = ["MIN_COARSE_SIDE", "Extra", "Result", "Step", "plan_scales", "resolve_device", "transfer"]


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
        net = load_network(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network, precision)
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
    objective: Objective, init: torch.Tensor, run: Course, idx: int, done: int, content_t: torch.Tensor, history: int
) -> tuple[ScaleResult, bool]:
    """Scale ``idx`` from ``init``, ``done`` steps into the run; the result and whether the caller stopped it."""
    run.budget.start_scale(idx)
    progress = ScaleProgress(run, idx, done, content_t)
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
    """How each scale fits the device's memory: its tile and L-BFGS history (:func:`impasto.memory.fit_scales`)."""
    return memory.fit_scales(
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
    run = Course(content_img, opts, scales, budget, start, on_step, image_every, should_stop, compute, tuple(extra))
    last = _run_scales(run, inputs, equation, fits, device, phase)
    result = last.result
    return Result(
        image=delivered(last.image, content_img, schedule.size, opts, last.photo),
        loss=result.loss,
        losses=result.terms,
        steps=last.steps,
        elapsed=time.perf_counter() - start,
        interrupted=result.interrupted,
        stopped=last.user_stopped,
        params=opts.to_dict()
        | recorded(opts.init, init_image, content_mask, style_masks)
        | _computed(device, precision, last.objective, fits[-1]),
        fault=None if result.fault is None else f"{result.fault} (scale {last.scale} of {len(scales)}): stopped there",
    )


@dataclass(frozen=True)
class _LastScale:
    """Where the scales loop stopped: the last scale's result and what the delivered image needs."""

    result: ScaleResult
    image: torch.Tensor  # (1, 3, h, w) at that scale
    photo: torch.Tensor  # the photo at that scale
    objective: Objective
    scale: int  # 1-based
    steps: int  # over all scales
    user_stopped: bool


def _run_scales(
    run: Course,
    inputs: Inputs,
    equation: Eq7,
    fits: Sequence[Fit],
    device: torch.device,
    phase: Callable[[Phase], None],
) -> _LastScale:
    """Each scale from the previous one's result (upsampled) or the initial image, until done or stopped."""
    current: torch.Tensor | None = None
    ref: torch.Tensor | None = None  # the objective at the run's start, for relative weights
    done = 0
    for idx, scale in enumerate(run.scales):
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
        if ref is None or idx == 0:
            ref = _start_value(objective, run, init)
        objective = _with_extra(objective, run, content_t, ref)
        result, user_stopped = _optimise_scale(objective, init, run, idx, done, content_t, fits[idx].history)
        done += result.steps
        current = result.image
        if result.fault is not None and not math.isfinite(result.loss) and idx == 0:
            raise NumericalError(
                f"{result.fault} (scale 1 of {len(run.scales)}), before any finite image: check the weights "
                "and extreme option values (`style_weight`, `content_weight`, `ratio`, `learning_rate`)"
            )
        if result.interrupted or user_stopped or run.budget.out_of_time() or result.fault is not None:
            break
    assert current is not None  # the schedule has a scale at least
    return _LastScale(result, current, content_t, objective, idx + 1, done, user_stopped)
