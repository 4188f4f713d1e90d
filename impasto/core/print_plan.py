"""A run's plan before any work: sizes, tiles, memory, the bytes a cluster moves, and an ETA.

For each scale of the schedule (:mod:`impasto.core.schedule`): the tiling that fits the memory
budget (:func:`impasto.core.memory.fit_scales`, the same call a run makes) and its tiles
(:mod:`impasto.core.tile_layout`); the memory of one machine running it all, and, split over
workers, of a worker (the network and one crop's responses) and of the driver (the whole image's
vectors: pixels, gradient, L-BFGS's history, the content targets); the time of a step from a
calibration of one tile (:mod:`impasto.core.calibrate`).

The cluster model. Each step, every tile's crop (core and halo, fp32, 3 x h x w) goes to a worker
and its gradient (the same size) comes back; in pass 1 each tile also returns its share of every
style layer's statistics (a C x C matrix and C means, fp32), and the driver sends d(loss)/d(statistics)
(the same size) to each worker once. The tiles of a pass divide over the workers, rounded up; the
transfers are not overlapped with the work (an upper bound). The network's weights and each scale's
targets go to the workers once, not per step. An untiled scale runs on one machine, no transfers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import Options
from ..config.checks import parse_size
from ..config.paper import Paper, on_paper, parse_paper
from ..errors import ConfigError, InputError
from ..image import DEFAULT_MAX_PIXELS
from ..inputs import Images
from ..net.vgg import VGG19, layer_depth
from . import memory
from .calibrate import Calibration, Clock, tile_seconds, update_seconds
from .estimate import TARGET_PASSES
from .memory import WORKER_MEMORY, WORKER_THREADS, Fit
from .schedule import Plan
from .tile_layout import layout
from .traffic import FP32, Traffic, channels, weights_bytes
from .traffic import traffic as step_traffic
from .transfer import equation_of, network_for, prepare

__all__ = [
    "DEFAULT_BANDWIDTH",
    "KEPT_FORWARD",
    "WORKER_MEMORY",
    "PrintPlan",
    "ScalePlan",
    "Traffic",
    "fits_for",
    "make_plan",
    "plan_run",
    "weights_bytes",
]

DEFAULT_BANDWIDTH = 1.0  # Gbit/s between the driver and the workers: a plain Ethernet link
# A tile whose forward is kept from pass 1 for pass 2 still costs about half a pass 1 (its forward
# records the graph and holds the responses): benchmarks/results/tiles-amd-*.md, 2048 px, 512-px
# cores, 2 threads: 10.92 s/step with all 12 kept, 12.99 s with none, where a pass 1 is 1/3 of a tile.
KEPT_FORWARD = 0.5


@dataclass(frozen=True)
class ScalePlan:
    """One scale of the plan. Sizes are (width, height) px, memory in bytes, times in seconds."""

    size: tuple[int, int]
    steps: int
    style_side: int  # longest side of each style image at this scale
    tile: int | None  # core size, or None: untiled
    tiles: int
    crop: tuple[int, int]  # the largest crop through the network at once
    history: int  # L-BFGS corrections held
    keep: int  # tiles whose forward one machine keeps from pass 1 to pass 2
    memory: float  # one machine running the whole step (memory.fit's estimate)
    worker_memory: float  # a worker: the network and one crop
    driver_memory: float  # the driver: the whole image's vectors
    traffic: Traffic  # per step, with the plan's workers (zero on one machine or untiled)
    step_seconds: float  # with the plan's workers, transfers included
    transfer_seconds: float  # of step_seconds
    targets_seconds: float  # once per scale: the photo's and the painting's features

    @property
    def seconds(self) -> float:
        return self.steps * self.step_seconds + self.targets_seconds


@dataclass(frozen=True)
class PrintPlan:
    """What a run will take, before it starts (:func:`make_plan`)."""

    opts: Options
    paper: Paper | None  # with ``print``
    placement: str | None  # how the image sits on the paper, in words
    scales: tuple[ScalePlan, ...]  # coarsest first
    workers: int
    bandwidth: float  # Gbit/s
    weights: int  # bytes of the network's weights, sent once to each worker
    targets: int  # bytes of the final scale's targets (content responses, style statistics), once per scale
    calibration: Calibration
    budget: int  # the memory budget the tiling was fitted to, bytes
    over_budget: str | None  # why the budget does not hold the run on one machine, else None

    @property
    def size(self) -> tuple[int, int]:
        return self.scales[-1].size

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.scales)

    @property
    def seconds(self) -> float:
        """The whole run: every scale's steps and targets."""
        return sum(s.seconds for s in self.scales)


def fits_for(
    schedule: Plan,
    layers: list[str],
    device: torch.device,
    bf16: bool,
    workers: int = 1,
    worker_memory: int = WORKER_MEMORY,
) -> tuple[list[Fit], str | None]:
    """Each scale's :class:`Fit` as a run would make it; when nothing fits the budget, the frugal
    tiling (:data:`memory.FRUGAL_CORE` cores or ``tile``, the shortest history) with the reason why.

    With ``workers > 1``, as a run on a cluster (``impasto.core.transfer``): tiles sized for the
    workers' memory (:func:`memory.worker_core`, unless ``tile`` is given), no forward kept.
    """
    opts = schedule.opts
    sizes, steps = [s.size for s in schedule.scales], [s.steps for s in schedule.scales]
    tile, photo = opts.tile, opts.photorealism > 0
    if workers > 1 and tile is None:
        width, height = sizes[-1]
        tile = memory.worker_core(height, width, layers, worker_memory, bf16, workers, photo)
    args = (layers, opts.lbfgs_history, device, bf16, tile, opts.max_memory, photo)
    try:
        fits = memory.fit_scales(sizes, steps, *args)
    except InputError as exc:
        return _frugal(schedule, layers, device, bf16, tile), str(exc)
    fits = fits if workers == 1 else [dataclasses.replace(f, keep=0) for f in fits]
    last = fits[-1]
    if last.needed > memory.HEADROOM * last.budget:  # a given tile is not fitted to the budget (memory.fit)
        over = f"~{memory.format_size(last.needed)} needed with {last.tile}-px tiles and an L-BFGS history of "
        held = min(last.history, last.steps or last.history)
        return fits, over + f"{held}, more than the {memory.format_size(last.budget)} budget"
    return fits, None


def _frugal(schedule: Plan, layers: list[str], device: torch.device, bf16: bool, tile: int | None) -> list[Fit]:
    """Each scale with the frugal tiling (``tile`` or :data:`memory.FRUGAL_CORE`) and the shortest history."""
    opts = schedule.opts
    sizes, steps = [s.size for s in schedule.scales], [s.steps for s in schedule.scales]
    budget = parse_size(opts.max_memory) if opts.max_memory else memory.available(device)
    fits = []
    for (w, h), n in zip(sizes, steps, strict=True):
        history = min(opts.lbfgs_history, memory.MIN_HISTORY, n or 1)
        core = tile or memory.FRUGAL_CORE
        photo = opts.photorealism > 0
        needed = memory.step_bytes(h, w, layers, history, bf16, core, photo=photo)
        untiled = memory.step_bytes(h, w, layers, history, bf16, photo=photo)
        fits.append(Fit(core, history, needed, untiled, budget, steps=n))
    return fits


def _scale_plan(
    scale: tuple[tuple[int, int], int, int], fit: Fit, layers: list[str], style_layers: Sequence[str],
    calibration: Calibration, workers: int, bandwidth: float, bf16: bool, photo: bool,
) -> ScalePlan:  # fmt: skip
    (w, h), steps, style_side = scale
    tiles = layout(h, w, fit.tile, layers) if fit.tile is not None else layout(h, w, max(w, h), layers)
    crops = [(t.crop[3] - t.crop[2], t.crop[1] - t.crop[0]) for t in tiles]
    crop = max(crops, key=lambda c: c[0] * c[1])
    crop_pixels = sum(cw * ch for cw, ch in crops)
    first, second = calibration.per_pixel()
    update = calibration.update * w * h
    worker = memory.worker_bytes(crop[1], crop[0], layers, bf16, photo)
    driver = memory.fixed_bytes(bf16) + memory.image_bytes(h, w, min(fit.history, steps or fit.history), photo)
    if fit.tile is None or len(tiles) == 1:  # one pass with the gradient, on one machine
        traffic, transfer = Traffic(0, 0, 0, 0), 0.0
        step = second * w * h + update
        targets = TARGET_PASSES * first * w * h
    else:
        share = math.ceil(len(tiles) / workers) / len(tiles)  # of the tiles, on the busiest worker
        keep = fit.keep if workers == 1 else 0  # one machine keeps forwards for pass 2 (KEPT_FORWARD)
        kept = sum(cw * ch for cw, ch in crops[:keep])
        work = share * (crop_pixels * (first + second) - kept * first * (1 - KEPT_FORWARD))
        traffic = step_traffic(len(tiles), crop_pixels, style_layers, workers) if workers > 1 else Traffic(0, 0, 0, 0)
        transfer = traffic.total * 8 / (bandwidth * 1e9)
        step = work + update + transfer
        targets = TARGET_PASSES * first * crop_pixels * share
    return ScalePlan(
        (w, h), steps, style_side, fit.tile, len(tiles), crop, min(fit.history, steps or fit.history),
        fit.keep, fit.needed, worker, driver, traffic, step, transfer, targets,
    )  # fmt: skip


def _check_cluster(workers: int, bandwidth: float) -> None:
    if workers < 1:
        raise ConfigError(f"`workers` must be >= 1, got {workers}")
    if not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise ConfigError(f"`bandwidth` must be a number of Gbit/s > 0, got {bandwidth:g}")


def make_plan(
    schedule: Plan,
    layers: list[str],
    fits: Sequence[Fit],
    calibration: Calibration,
    workers: int = 1,
    bandwidth: float = DEFAULT_BANDWIDTH,
    bf16: bool = False,
    over_budget: str | None = None,
) -> PrintPlan:
    """The plan of ``schedule`` with each scale's ``fits``, the times of ``calibration``, on ``workers``
    machines linked at ``bandwidth`` Gbit/s (``workers=1``: this machine, nothing moved)."""
    _check_cluster(workers, bandwidth)
    opts = schedule.opts
    style_layers = [name for name, _ in opts.style_layers]
    photo = opts.photorealism > 0
    scales = tuple(
        _scale_plan(
            (sc.size, sc.steps, sc.style_side), fit, layers, style_layers, calibration, workers, bandwidth, bf16, photo
        )
        for sc, fit in zip(schedule.scales, fits, strict=True)
    )
    paper = parse_paper(opts.print) if opts.print is not None else None
    placement = on_paper(paper, opts.dpi, scales[-1].size) if paper is not None else None
    w, h = scales[-1].size
    content = sum(
        channels(name) * (h // 2 ** layer_depth(name)) * (w // 2 ** layer_depth(name))
        for name, _ in opts.content_layers
    )
    stats = sum((channels(name) ** 2 + channels(name)) for name in style_layers)
    return PrintPlan(
        opts, paper, placement, scales, workers, bandwidth, weights_bytes(layers), (content + stats) * FP32,
        calibration, fits[-1].budget, over_budget,
    )  # fmt: skip


def plan_run(
    images: Images,
    opts: Options,
    *,
    workers: int = 1,
    bandwidth: float = DEFAULT_BANDWIDTH,
    worker_memory: int = WORKER_MEMORY,
    network: VGG19 | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    clock: Clock = time.perf_counter,
) -> PrintPlan:
    """The plan of :func:`impasto.core.transfer.paint` with these arguments, without running it.

    Reads the images and checks them against the options as the run does (refusing what it would
    refuse: :func:`~impasto.core.transfer.prepare`), loads the network as it does (or takes
    ``network``: :func:`~impasto.core.transfer.network_for`) and times one tile and one update on
    this machine (:mod:`impasto.core.calibrate`, in seconds of ``clock``). Nothing is optimised or written.
    """
    _check_cluster(workers, bandwidth)  # before the images are read and the network loaded
    schedule, device = prepare(opts, images.gather(opts.init, max_pixels))
    network, _ = network_for(opts, device, network)
    bf16 = network.dtype == torch.bfloat16
    equation = equation_of(network, opts)  # the run's eq. 7
    fits, over = fits_for(schedule, equation.layers, device, bf16, workers, worker_memory)
    args = (schedule, equation.layers, fits)
    final = make_plan(*args, Calibration((1, 1), 0, 0, 0), workers, bandwidth, bf16, over).scales[-1]
    threads = WORKER_THREADS if workers > 1 else None  # a cluster's workers: one per CPU
    crop, first, second = tile_seconds(equation, final.crop, device, clock=clock, threads=threads)  # every step's tile
    precondition = opts.precondition if opts.optimizer == "lbfgs" else "none"
    update = update_seconds(final.history, precondition, device, clock=clock)
    return make_plan(*args, Calibration(crop, first, second, update), workers, bandwidth, bf16, over)
