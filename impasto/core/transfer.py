"""A whole style transfer: a short loop over the scales of the schedule, with progress events.

Each scale sets the objective's targets (the photo and the paintings at that scale's size),
starts from the previous scale's result (upsampled) or from the initial image, and optimises
for its share of the steps (:func:`impasto.optimize.optimize`). The schedule and the time budget
are in :mod:`impasto.schedule`, the targets and initial image of a scale in :mod:`impasto.targets`,
devices and the network cache in :mod:`impasto.network`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from ..config import Options
from ..image import DEFAULT_MAX_PIXELS
from ..inputs import ImageLike, Images, Inputs
from ..net.network import load_network, resolve_device, resolve_precision
from ..net.vgg import VGG19
from . import memory
from .checkpoint import Checkpoint, fingerprint
from .eq7 import Eq7
from .fidelity import preview_fidelity
from .masks import check_masks
from .memory import Fit
from .objective import Objective, Runner
from .phases import Phase, planned
from .progress import Course, Extra, Result, Step, Watch
from .scales import LastScale, run_scales
from .schedule import MIN_COARSE_SIDE, Plan, plan, plan_scales
from .targets import delivered, palette_of

NO_WATCH = Watch()  # a run no one follows

# MIN_COARSE_SIDE, plan_scales and resolve_device: re-exported from their modules.
__all__ = ["MIN_COARSE_SIDE", "Extra", "Result", "Step", "Watch", "paint", "plan_scales", "resolve_device", "transfer"]


def prepare(opts: Options, inputs: Inputs) -> tuple[Plan, torch.device]:
    """The run's plan (:func:`impasto.schedule.plan`: it refuses what cannot make a transfer, before
    any work), with the masks checked against their images; and the device."""
    n_style_masks = None if inputs.style_masks is None else len(inputs.style_masks)
    sizes = [s.size for s in inputs.styles]
    schedule = plan(opts, inputs.content.size, sizes, n_style_masks, inputs.content_mask is not None)
    check_masks(inputs.content, inputs.styles, inputs.content_mask, inputs.style_masks, inputs.content_mask_name)
    return schedule, resolve_device(opts.device)


def network_for(opts: Options, device: torch.device, given: VGG19 | None) -> tuple[VGG19, str]:
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


def equation_of(vgg: VGG19, opts: Options) -> Eq7:
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


def _fits(
    plan: Plan, equation: Eq7, opts: Options, device: torch.device, precision: str, runner: Runner | None
) -> list[Fit]:
    """How each scale fits the device's memory: its tile and L-BFGS history (:func:`impasto.memory.fit_scales`);
    with a ``runner``, tiles sized for its workers' memory (:func:`impasto.memory.worker_core`)."""
    tile, photo = opts.tile, opts.photorealism > 0
    if runner is not None and tile is None:
        width, height = plan.scales[-1].size
        bf16 = precision == "bf16"
        tile = memory.worker_core(height, width, equation.layers, runner.memory, bf16, runner.workers, photo)
    fits = memory.fit_scales(
        [sc.size for sc in plan.scales],
        [sc.steps for sc in plan.scales],
        equation.layers,
        opts.lbfgs_history,
        device,
        precision == "bf16",
        tile,
        opts.max_memory,
        photo,
    )
    return fits if runner is None else [dataclasses.replace(f, keep=0) for f in fits]  # workers keep nothing


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
    """:func:`paint` with the images and the callbacks as keyword arguments (its signature before 0.3)."""
    images = Images(content, styles, init_image, content_mask, style_masks)
    watch = Watch(on_step, image_every, should_stop, on_phase, start_time)
    return paint(images, opts, network=network, watch=watch, extra=extra, max_pixels=max_pixels)


def paint(
    images: Images,
    opts: Options,
    *,
    network: VGG19 | None = None,
    watch: Watch = NO_WATCH,
    extra: Sequence[Extra] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    runner: Runner | None = None,
    checkpoint: Checkpoint | None = None,
) -> Result:
    """Paint ``images.content`` in the manner of ``images.styles`` with options ``opts``.

    Every image is a path or a PIL image (:class:`impasto.inputs.Images`; a path's image must be
    within ``max_pixels``). ``network`` replaces the VGG19 that ``opts`` names (weights, pooling,
    network), used as given (cast when ``opts.precision`` is not ``auto``), on the device
    ``opts.device`` resolves to: e.g. the small stand-in of :mod:`impasto.testing`. ``watch``: the
    caller's callbacks (:class:`Watch`).

    ``extra`` adds terms to eq. 7 at every scale (:class:`Extra`; e.g. the temporal term of
    :mod:`impasto.video`), tiled like the others; each is reported under its name and counts in ``loss``.
    ``runner`` runs the tiled steps' passes elsewhere (:class:`impasto.cluster.RayTiles`: tiles sized
    for its workers' memory); ``checkpoint`` keeps the run's state and resumes from it
    (:mod:`impasto.core.checkpoint`; removed when the run ends other than by a stop or Ctrl-C).
    """
    start = watch.start_time if watch.start_time is not None else time.perf_counter()
    inputs = images.gather(opts.init, max_pixels)
    if checkpoint is not None:
        images_ = [inputs.content, *inputs.styles, inputs.init_image, inputs.content_mask, *(inputs.style_masks or [])]
        checkpoint.fingerprint = fingerprint(opts.to_dict(), images_)
    schedule, device = prepare(opts, inputs)
    phase = watch.on_phase or (lambda _: None)
    phase(Phase("network", f"loading the network on {device.type}"))
    network, compute = network_for(opts, device, network)
    precision = "bf16" if network.dtype == torch.bfloat16 else "fp32"
    equation = replace(equation_of(network, opts), runner=runner)
    fits = _fits(schedule, equation, opts, device, precision, runner)
    if (note := fits[-1].note()) is not None:
        compute += f"; {note}"
    if runner is not None:
        compute += f"; tiles {runner.describe()}"
    if watch.on_phase is not None:  # the estimate times a step: only for a front end that shows it
        watch.on_phase(planned(schedule, fits, network, device))
    budget = schedule.budget(start)
    run = Course(
        inputs.content, opts, schedule.scales, budget, start, watch.on_step, watch.image_every, watch.should_stop,
        compute, tuple(extra), checkpoint, palette_of(inputs.styles) if opts.photo_recolor else None,
    )  # fmt: skip
    last = run_scales(run, inputs, equation, fits, device, phase)
    if checkpoint is not None and not (last.result.interrupted or last.user_stopped):
        checkpoint.remove()
    params = opts.to_dict() | images.recorded(opts.init) | _computed(device, precision, last.objective, fits[-1])
    return _result(last, inputs, opts, schedule, network, params, start)


def _result(
    last: LastScale, inputs: Inputs, opts: Options, schedule: Plan, network: VGG19, params: dict[str, Any], start: float
) -> Result:
    """The delivered result of the scales' ``last``; a print refined from a smaller preview records
    how it compares with the preview (:func:`impasto.core.fidelity.preview_fidelity`)."""
    result = last.result
    palette = palette_of(inputs.styles) if opts.photo_recolor else None
    image = delivered(last.image, inputs.content, schedule.size, opts, last.photo, palette)
    if inputs.init_image is not None and max(inputs.init_image.size) < max(schedule.size):
        preview, painting = inputs.init_image, inputs.styles[0]
        params = params | {"preview_fidelity": preview_fidelity(image, preview, inputs.content, painting, network)}
    where = f"(scale {last.scale} of {len(schedule.scales)}): stopped there"
    return Result(
        image=image,
        loss=result.loss,
        losses=result.terms,
        steps=last.steps,
        elapsed=time.perf_counter() - start,
        interrupted=result.interrupted,
        stopped=last.user_stopped,
        params=params,
        fault=None if result.fault is None else f"{result.fault} {where}",
    )
