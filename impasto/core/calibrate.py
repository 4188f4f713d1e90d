"""Timings of the parts of a step, measured on this machine, for a plan's ETA (:mod:`impasto.core.print_plan`).

A tiled step has three parts (:mod:`impasto.core.objective`): pass 1 runs every tile's crop through
the network without a gradient and sums its share of the style statistics; pass 2 runs every crop
again with the gradient and back-propagates it; then the optimiser updates the whole image (the
L-BFGS two-loop recursion over its history, and the spectral basis's FFTs). :func:`tile_seconds`
times the two passes on one crop of the run's size with the run's objective (random pixels:
the time does not depend on them); :func:`update_seconds` times the update per pixel on a small
image with the run's history. Each takes the fastest of a few repeats after a warm-up, a few
seconds in all at a 700-px crop on 2 CPU cores.

``clock`` is wall time (``time.perf_counter``) for a plan; ``time.process_time`` (the CPU time of
every thread) checks the model on a machine that others share (``benchmarks/print_plan.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..config import Precondition
from .eq7 import Eq7
from .optimize import LBFGS
from .precondition import Spectral

__all__ = ["MAX_SIDE", "Calibration", "Clock", "tile_seconds", "update_seconds"]

Clock = Callable[[], float]  # seconds, e.g. time.perf_counter

MAX_SIDE = 768  # px: a larger crop (an untiled scale) is timed at this side and scaled by its pixels
UPDATE_SIDE = 256  # px: the optimiser's update is timed on an image this size, per pixel
UPDATE_HISTORY = 10  # L-BFGS corrections timed; a longer history is extrapolated (its cost is linear in it)


@dataclass(frozen=True)
class Calibration:
    """Seconds measured for one crop of ``crop`` (width, height) px, and for the update per pixel."""

    crop: tuple[int, int]  # the crop timed (width, height)
    statistics: float  # pass 1: the forward and the style statistics, no gradient, s
    gradient: float  # pass 2: the forward, the loss and the backward, s
    update: float  # the optimiser's update per pixel of the whole image, s

    def per_pixel(self) -> tuple[float, float]:
        """(pass 1, pass 2) seconds per pixel of a crop."""
        n = self.crop[0] * self.crop[1]
        return self.statistics / n, self.gradient / n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tile_seconds(
    equation: Eq7,
    crop: tuple[int, int],
    device: torch.device,
    repeats: int = 3,
    clock: Clock = time.perf_counter,
    threads: int | None = None,
) -> tuple[tuple[int, int], float, float]:
    """(crop timed, pass 1 s, pass 2 s) of ``equation`` on one crop of ``crop`` (width, height) px,
    on ``threads`` CPU threads (None: this process's; a cluster worker's are fewer).

    The crop is shrunk to :data:`MAX_SIDE` on its longest side (keeping its aspect) first.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return _tile_seconds(equation, crop, device, repeats, clock)
    finally:
        torch.set_num_threads(before)


def _tile_seconds(
    equation: Eq7, crop: tuple[int, int], device: torch.device, repeats: int, clock: Clock
) -> tuple[tuple[int, int], float, float]:
    w, h = crop
    if max(w, h) > MAX_SIDE:
        w, h = max(16, round(w * MAX_SIDE / max(crop))), max(16, round(h * MAX_SIDE / max(crop)))
    gen = torch.Generator().manual_seed(0)
    photo = (torch.rand(1, 3, h, w, generator=gen) * 255).to(device)  # (1, 3, h, w)
    painting = (torch.rand(1, 3, h, w, generator=gen) * 255).to(device)
    objective = replace(equation, tile=None, keep=0).of(photo, [painting])
    first, second = [], []
    for i in range(repeats + 1):  # the first of each is a warm-up: allocation, kernel choice
        _sync(device)
        begin = clock()
        with torch.no_grad():
            objective(photo)
        _sync(device)
        middle = clock()
        x = photo.clone().requires_grad_(True)
        loss, _ = objective(x)
        loss.backward()
        _sync(device)
        if i:
            first.append(middle - begin)
            second.append(clock() - middle)
    return (w, h), min(first), min(second)


def _update_seconds(
    history: int, precondition: Precondition, device: torch.device, repeats: int, clock: Clock
) -> float:
    """Seconds of one optimiser step beyond the objective on an :data:`UPDATE_SIDE` image, ``history`` held."""
    side = UPDATE_SIDE
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.rand(1, 3, side, side, generator=gen) * 255).to(device)  # (1, 3, H, W)
    target = (torch.rand(1, 3, side, side, generator=gen) * 255).to(device)
    if precondition == "spectral":
        basis = Spectral(side, side, device)
        z = torch.zeros(basis.shape(x0), device=device, requires_grad=True)
        opt = LBFGS(z, history, basis.to_pixels)

        def pixels() -> torch.Tensor:
            return x0 + basis.to_pixels(z)
    else:
        z = x0.clone().requires_grad_(True)
        opt = LBFGS(z, history)

        def pixels() -> torch.Tensor:
            return z

    def closure() -> torch.Tensor:
        z.grad = None
        loss = (pixels() - target).square().mean()
        loss.backward()
        return loss

    times = []
    for i in range(history + 1 + repeats):  # the history fills one correction a step
        _sync(device)
        begin = clock()
        opt.step(closure)
        _sync(device)
        if i > history:
            times.append(clock() - begin)
    return min(times)


def update_seconds(
    history: int, precondition: Precondition, device: torch.device, repeats: int = 5, clock: Clock = time.perf_counter
) -> float:
    """Seconds per pixel of one optimiser step beyond the objective: L-BFGS with ``history``
    corrections held (its two-loop recursion), and the spectral basis's transforms if used.

    The recursion costs in proportion to the history: timed with 1 and with up to
    :data:`UPDATE_HISTORY` corrections, and extrapolated from there (a history of 100 would
    take 100 steps to fill).
    """
    one = _update_seconds(1, precondition, device, repeats, clock)
    if history <= 1:
        return one / UPDATE_SIDE**2
    held = min(history, UPDATE_HISTORY)
    more = _update_seconds(held, precondition, device, repeats, clock)
    per_correction = max(0.0, more - one) / (held - 1)
    return (one + per_correction * (history - 1)) / UPDATE_SIDE**2
