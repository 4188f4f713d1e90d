"""The coarse-to-fine schedule: the sizes and steps of every scale, and the time budget.

Coarse-to-fine (``scales > 1``): optimise at 1/2**(n-1) of the final size first, upsample the
result as the next scale's initial image, and so on up to the final size (the style image is
scaled alike, so brush strokes keep their size relative to the image). Most steps are spent
where they are cheap. With ``scales=1`` this is the paper's single-scale optimisation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Options
from ..errors import ConfigError
from ..image import fit_size
from ..net.vgg import layer_depth

__all__ = ["MIN_COARSE_SIDE", "Budget", "Plan", "Scale", "clock", "plan", "plan_scales", "scale_plan"]

# A coarsest scale smaller than this carries too little of the photo: at 64 px conv4_2 is 8 x 6
# positions, the painting's layout wins there and the finer scales inherit it (docs/look.md: 128
# kept 0.03-0.10 more of the photo at 128 and 256 px with the same style reached).
MIN_COARSE_SIDE = 128


def plan_scales(size: int, scales: int, steps: int, sizes: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """(longest side, steps) for each scale, coarsest first.

    Sides halve from the final size, never below ``MIN_COARSE_SIDE`` (fewer scales then), unless
    an explicit ladder ``sizes`` is given (its last entry is then the output size). Each scale
    gets half the steps of the one before it (4:2:1 for three scales): a step at half the size
    costs a quarter as much, so most of the work is done where it is cheap and the full size
    only refines the texture.
    """
    if sizes:
        sides = list(sizes)
    else:
        sides = [size]
        while len(sides) < scales and sides[0] // 2 >= MIN_COARSE_SIDE:
            sides.insert(0, sides[0] // 2)
    if 0 < steps < len(sides):  # too few steps for every scale: keep the finest ones
        sides = sides[-steps:]
    n = len(sides)
    weights = [2 ** (n - 1 - i) for i in range(n)]
    share = [steps * w // sum(weights) for w in weights]
    share[0] += steps - sum(share)
    if steps >= n:  # every scale is optimised at least once, paid for by the coarsest
        for i in range(1, n):
            if share[i] == 0:
                share[i], share[0] = 1, share[0] - 1
    return list(zip(sides, share, strict=True))


@dataclass(frozen=True)
class Scale:
    """One scale of the schedule for a given photo."""

    side: int  # longest side of the image at this scale, px
    size: tuple[int, int]  # (width, height) of the image at this scale
    steps: int  # planned steps
    style_side: int  # longest side of each style image at this scale, px


def scale_plan(opts: Options, content_size: tuple[int, int]) -> list[Scale]:
    """Every scale of ``opts``' schedule for a photo of ``content_size`` (width, height), coarsest first.

    The style images follow the output: ``style_size`` (default: the output's) times
    ``style_scale`` at the final scale, and in proportion at the coarser ones.
    """
    schedule = plan_scales(opts.size, opts.scales, opts.steps, opts.scale_sizes)
    final_side = schedule[-1][0]
    style_size = (opts.style_size or final_side) * opts.style_scale
    return [
        Scale(side, fit_size(*content_size, side), steps, max(1, round(style_size * side / final_side)))
        for side, steps in schedule
    ]


@dataclass(frozen=True)
class Plan:
    """A validated run: its options and the scales of its schedule for the images given.

    Made by :func:`plan`, the one check every front end and :func:`impasto.transfer` use.
    """

    opts: Options
    scales: tuple[Scale, ...]  # coarsest first; the last is the output

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output."""
        return self.scales[-1].size

    @property
    def steps(self) -> int:
        """The planned steps, all scales together."""
        return sum(s.steps for s in self.scales)

    def budget(self, start: float) -> Budget:
        """The run's :class:`Budget`, ``max_time`` counted from ``start`` (a ``time.perf_counter()`` value)."""
        deadline = start + self.opts.max_time if self.opts.max_time is not None else None
        return Budget([s.steps for s in self.scales], [w * h for w, h in (s.size for s in self.scales)], deadline)


def plan(
    opts: Options,
    content_size: tuple[int, int],
    style_sizes: Sequence[tuple[int, int]],
    n_style_masks: int | None = None,
    has_content_mask: bool = False,
) -> Plan:
    """The schedule of ``opts`` for these images, refusing before any work what cannot make a transfer.

    ``content_size`` and ``style_sizes`` are (width, height) of the input images. Checks: one
    blend weight and one style mask per style image, style masks only with a content mask, and
    every image big enough for the deepest layer at every scale. Raises :class:`ConfigError`.
    """
    n = len(style_sizes)
    if n == 0:
        raise ConfigError("at least one style image is needed")
    if opts.style_blend is not None and len(opts.style_blend) != n:
        raise ConfigError(f"`style_blend` has {len(opts.style_blend)} weights for {n} style image(s)")
    if n_style_masks is not None:
        if not has_content_mask:
            raise ConfigError("`style_masks` needs `content_mask` (which region gets which style)")
        if n_style_masks != n:
            raise ConfigError(f"`style_masks` has {n_style_masks} mask(s) for {n} style image(s)")
    layers = [name for name, _ in (*opts.content_layers, *opts.style_layers)]
    deepest = max(layers, key=layer_depth)
    need = 2 ** layer_depth(deepest)
    scales = scale_plan(opts, content_size)
    for i, scale in enumerate(scales, start=1):
        w, h = scale.size
        if min(w, h) < need:
            where = "the output" if i == len(scales) else f"scale {i}"
            raise ConfigError(
                f"{where} would be {w}x{h} px, too small for layer {deepest} "
                f"(needs at least {need} px per side): raise `size`"
            )
        for k, dims in enumerate(style_sizes, start=1):
            sw, sh = fit_size(*dims, scale.style_side)
            if min(sw, sh) < need:
                raise ConfigError(
                    f"style image {k} ({dims[0]}x{dims[1]}) would be {sw}x{sh} px, too small for layer "
                    f"{deepest} (needs at least {need} px per side): raise `size` or `style_size`"
                )
    return Plan(opts, tuple(scales))


class Budget:
    """Steps per scale and, with ``max_time``, a wall-time slice per scale.

    When a scale starts, the time left is shared among the remaining scales in proportion to
    their planned cost (steps x pixels), and the scale stops when its slice is used up: every
    scale gets its share of the budget even when steps are slower than expected (a busy
    machine), and time a scale leaves unused passes to the next ones.
    """

    def __init__(self, plan: list[int], pixels: list[int], deadline: float | None) -> None:
        self.plan = plan
        self.alloc = list(plan)  # steps per scale: the plan, cut to those taken once a scale ends early
        self.pixels = pixels
        self.deadline = deadline  # a time.perf_counter() value, or None without max_time
        self.scale_deadline: float | None = None
        self.step_time: dict[int, float] = {}  # scale index -> seconds per step, smoothed (for the ETA)

    def start_scale(self, idx: int) -> None:
        if self.deadline is None:
            return
        costs = [p * s for p, s in zip(self.pixels[idx:], self.plan[idx:], strict=True)]
        share = costs[0] / max(sum(costs), 1)
        self.scale_deadline = time.perf_counter() + max(self.deadline - time.perf_counter(), 0.0) * share

    def observe(self, seconds: float, idx: int, step: int) -> None:
        """The time of step ``step`` (1-based) of scale ``idx``, for the ETA.

        A scale's first step is left out: it carries the warm-up (the first pass at a new size
        allocates and selects kernels, several times a step's time), so an ETA made from it is
        far off. Until another step has been timed there is no ETA.
        """
        if step <= 1:
            return
        previous = self.step_time.get(idx)
        self.step_time[idx] = seconds if previous is None else 0.7 * previous + 0.3 * seconds

    def scale_done(self, here: int, idx: int) -> bool:
        """Whether scale ``idx``, ``here`` steps in, has taken its steps or used its time slice."""
        if here >= self.alloc[idx]:
            return True
        if self.scale_deadline is not None and time.perf_counter() >= self.scale_deadline:
            self.alloc[idx] = here
            return True
        return False

    def eta(self, idx: int, here: int) -> float | None:
        """Seconds left, or None before any step has been timed.

        The steps left at this scale take its own step time; those of the later scales, the
        latest timed scale's time per pixel (an upper bound: small images use the machine less well).
        """
        if not self.step_time:
            return None
        latest = max(self.step_time)
        per_pixel = self.step_time[latest] / self.pixels[latest]
        estimate = (self.alloc[idx] - here) * self.step_time.get(idx, per_pixel * self.pixels[idx])
        estimate += per_pixel * sum(p * s for p, s in zip(self.pixels[idx + 1 :], self.alloc[idx + 1 :], strict=True))
        if self.deadline is not None:
            estimate = min(estimate, max(self.deadline - time.perf_counter(), 0.0))
        return estimate

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), rounded to the nearest second: how progress and
    reports show a duration, as the studio's ``clock`` in job.js does."""
    whole = max(0, round(seconds))
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
