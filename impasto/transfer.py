"""A whole style transfer: devices, the network, the coarse-to-fine schedule, progress events.

Coarse-to-fine (``scales > 1``): optimise at 1/2**(n-1) of the final size first, upsample the
result as the next scale's initial image, and so on up to the final size (the style image is
scaled alike, so brush strokes keep their size relative to the image). Most steps are spent
where they are cheap. With ``scales=1`` this is the paper's single-scale optimisation.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch.nn import functional as F

from . import color
from .balance import balanced_content_weight, references
from .config import Options
from .errors import ConfigError, DeviceError, did_you_mean
from .image import fit_size, load_image, pil_to_tensor, resize, tensor_to_pil
from .losses import Objective, StyleRegion
from .masks import check_aspect, region_count, region_guides, style_guide
from .optimize import optimize
from .vgg import VGG19, layer_depth, load_vgg19

__all__ = ["Result", "Step", "check_inputs", "get_vgg", "plan_scales", "resolve_device", "transfer"]

MIN_COARSE_SIDE = 64  # a coarsest scale smaller than this carries too little structure


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
    eta: float | None  # estimated seconds left; None until a step has been timed (see _Budget.observe)
    image: Image.Image | None = None  # when requested: the current image as it would be delivered (full size, colours)
    schedule: tuple[tuple[int, int, int], ...] = ()  # (width, height, steps) per scale, as now planned
    best: float | None = None  # lowest loss so far at this scale: the image a stop now would deliver
    budget: float | None = None  # max_time, seconds: with it, elapsed/budget is the progress ("total" may move)


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


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device '{name}'{did_you_mean(name, ['auto', 'cpu', 'cuda', 'mps'])}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' requested but Apple MPS is not available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"invalid device '{name}'") from None


@functools.lru_cache(maxsize=4)
def get_vgg(weights: str | None, weights_format: str, pooling: str, device: str, network: str = "raw") -> VGG19:
    """Load (once per process) the network for these settings, in channels-last layout."""
    vgg = load_vgg19(weights, pooling=pooling, weights_format=weights_format)  # type: ignore[arg-type]
    if network == "normalized":
        from .normalize import normalize_vgg

        vgg = normalize_vgg(vgg)
    return vgg.to(device=torch.device(device), memory_format=torch.channels_last)  # type: ignore[call-overload]


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


def _noise(width: int, height: int, seed: int, device: torch.device) -> torch.Tensor:
    """Seeded white noise (1, 3, H, W), uniform over 0..255, identical on every device."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, height, width, generator=gen) * 255.0).to(device)


def check_inputs(
    opts: Options,
    content_size: tuple[int, int],
    style_sizes: Sequence[tuple[int, int]],
    n_style_masks: int | None = None,
    has_content_mask: bool | None = None,
) -> None:
    """Refuse, before any work, images and options that cannot make a transfer.

    ``content_size`` and ``style_sizes`` are (width, height) of the input images. Checks: one
    blend weight and one style mask per style image, style masks only with a content mask, and
    every image big enough for the deepest layer at every scale. Raises :class:`ConfigError`.
    """
    n = len(style_sizes)
    if n == 0:
        raise ConfigError("at least one style image is needed")
    if opts.style_blend is not None and len(opts.style_blend) != n:
        raise ConfigError(f"--style-blend has {len(opts.style_blend)} weights for {n} style image(s)")
    if n_style_masks is not None:
        if not (has_content_mask if has_content_mask is not None else opts.content_mask):
            raise ConfigError("--style-masks needs --content-mask (which region gets which style)")
        if n_style_masks != n:
            raise ConfigError(f"--style-masks has {n_style_masks} mask(s) for {n} style image(s)")
    layers = [name for name, _ in (*opts.content_layers, *opts.style_layers)]
    deepest = max(layers, key=layer_depth)
    need = 2 ** layer_depth(deepest)
    schedule = plan_scales(opts.size, opts.scales, opts.steps, opts.scale_sizes)
    final_side = schedule[-1][0]
    style_size = (opts.style_size or final_side) * opts.style_scale
    for i, (side, _) in enumerate(schedule, start=1):
        w, h = fit_size(*content_size, side)
        if min(w, h) < need:
            where = "the output" if i == len(schedule) else f"scale {i}"
            raise ConfigError(
                f"{where} would be {w}x{h} px, too small for layer {deepest} "
                f"(needs at least {need} px per side): raise --size"
            )
        style_side = max(1, round(style_size * side / final_side))
        for k, dims in enumerate(style_sizes, start=1):
            sw, sh = fit_size(*dims, style_side)
            if min(sw, sh) < need:
                raise ConfigError(
                    f"style image {k} ({dims[0]}x{dims[1]}) would be {sw}x{sh} px, too small for layer "
                    f"{deepest} (needs at least {need} px per side): raise --size or --style-size"
                )


def _check_masks(
    content: Image.Image,
    styles: Sequence[Image.Image],
    opts: Options,
    content_mask: Image.Image | None,
    style_masks: Sequence[Image.Image] | None,
) -> None:
    n = len(styles)
    if style_masks is not None:
        for i, (m, s) in enumerate(zip(style_masks, styles, strict=True)):
            check_aspect(m, s, f"style mask {i + 1}", f"style image {i + 1}")
            style_guide(m, *resize(m, 64).size, name=f"style mask {i + 1}")  # refuses a mask with no white
    if content_mask is not None:
        check_aspect(content_mask, content, opts.content_mask or "content mask", "the content image")
        regions = region_count(content_mask, opts.content_mask or "content mask")
        if regions != n:
            raise ConfigError(
                f"{opts.content_mask or 'content mask'}: {regions} region(s) for {n} style image(s): "
                "give one style image per region"
            )


def _delivered(
    image: torch.Tensor, content: Image.Image, size: tuple[int, int], opts: Options, content_t: torch.Tensor
) -> Image.Image:
    """``image`` (1, 3, h, w) as the user gets it: the result, the Ctrl-C image and the snapshots.

    At the output ``size`` (width, height), bicubic from a coarser scale, and with ``luminance``
    colour or ``original_colors`` on the photo's colours; ``content_t`` is the photo at ``image``'s
    scale.
    """
    width, height = size
    if image.shape[-2:] != (height, width):  # a coarse scale: deliver full size
        image = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)
        content_t = pil_to_tensor(content.resize((width, height), Image.Resampling.BILINEAR), image.device)
    if opts.color == "luminance" or opts.original_colors:
        image = color.with_chroma_of(image, content_t)  # the result's luminance, the photo's colours
    return tensor_to_pil(image)


class _Budget:
    """Steps per scale and, with ``max_time``, a wall-time slice per scale.

    When a scale starts, the time left is shared among the remaining scales in proportion to
    their planned cost (steps x pixels), and the scale stops when its slice is used up: every
    scale gets its share of the budget even when steps are slower than expected (a busy
    machine), and time a scale leaves unused passes to the next ones.
    """

    def __init__(self, plan: list[int], pixels: list[int], deadline: float | None) -> None:
        self.plan = plan
        self.alloc = list(plan)
        self.pixels = pixels
        self.deadline = deadline
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


def transfer(
    content: Image.Image,
    styles: Sequence[Image.Image],
    opts: Options,
    *,
    init_image: Image.Image | None = None,
    content_mask: Image.Image | None = None,
    style_masks: Sequence[Image.Image] | None = None,
    on_step: Callable[[Step], None] | None = None,
    image_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
    start_time: float | None = None,
) -> Result:
    """Paint ``content`` in the manner of ``styles`` (RGB PIL images) with options ``opts``.

    ``content_mask``/``style_masks`` (images; loaded from ``opts`` paths when not given) enable
    spatial control. ``start_time`` (a ``time.perf_counter()`` value) is when ``max_time``
    starts counting; default: now.
    """
    start = start_time if start_time is not None else time.perf_counter()
    if not styles:
        raise ConfigError("at least one style image is needed")
    if content_mask is None and opts.content_mask:
        content_mask = load_image(opts.content_mask)
    if style_masks is None and opts.style_masks:
        style_masks = [load_image(m) for m in opts.style_masks]
    check_inputs(
        opts,
        content.size,
        [s.size for s in styles],
        None if style_masks is None else len(style_masks),
        content_mask is not None,
    )
    _check_masks(content, styles, opts, content_mask, style_masks)
    device = resolve_device(opts.device)
    if opts.init not in ("noise", "content") and init_image is None:
        init_image = load_image(opts.init)
    vgg = get_vgg(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network)
    # bf16 convolutions pay off on GPUs (tensor cores); CPUs without native bf16 run them slower.
    use_bf16 = opts.precision == "bf16" or (opts.precision == "auto" and device.type == "cuda")
    objective = Objective(
        vgg,
        dict(opts.content_layers),
        dict(opts.style_layers),
        content_weight=opts.alpha,
        style_weight=opts.beta,
        tv_weight=opts.tv_weight,
        autocast_dtype=torch.bfloat16 if use_bf16 else None,
        layer_balance=opts.layer_balance,
    )
    schedule = plan_scales(opts.size, opts.scales, opts.steps, opts.scale_sizes)
    final_side = schedule[-1][0]
    final_w, final_h = resize(content, final_side).size
    style_size = (opts.style_size or final_side) * opts.style_scale
    dims = [resize(content, side).size for side, _ in schedule]
    budget = _Budget(
        [s for _, s in schedule],
        [w * h for w, h in dims],
        start + opts.max_time if opts.max_time is not None else None,
    )
    user_stopped = False
    done = 0
    here = 0  # steps taken at the current scale
    best = math.inf  # lowest loss reported at the current scale
    idx = 0
    current: torch.Tensor | None = None
    content_t = torch.empty(0)  # the photo at the current scale
    last_time = time.perf_counter()

    def stop() -> bool:
        nonlocal user_stopped
        if should_stop is not None and should_stop():
            user_stopped = True
            return True
        return budget.scale_done(here, idx) or budget.out_of_time()

    def report(step: int, loss: torch.Tensor, terms: dict[str, torch.Tensor], image: torch.Tensor) -> None:
        nonlocal last_time, here, best
        now = time.perf_counter()
        here = step
        budget.observe(now - last_time, idx, step)
        last_time = now
        if on_step is None:
            return
        value = float(loss)
        best = min(best, value)
        want_image = image_every > 0 and (done + step) % image_every == 0
        on_step(
            Step(
                step=done + step,
                total=done + sum(budget.alloc[idx:]),
                scale=idx + 1,
                scales=len(schedule),
                size=dims[idx],
                loss=value,
                losses={k: float(v) for k, v in terms.items()},
                elapsed=now - start,
                eta=budget.eta(idx, here),
                image=_delivered(image, content, (final_w, final_h), opts, content_t) if want_image else None,
                schedule=tuple((w, h, a) for (w, h), a in zip(dims, budget.alloc, strict=True)),
                best=best,
                budget=opts.max_time,
            )
        )

    result = None
    for idx, (side, _) in enumerate(schedule):  # idx is also read by stop() and report()
        w, h = dims[idx]
        content_t = pil_to_tensor(content.resize((w, h), Image.Resampling.BILINEAR), device)
        style_side = max(1, round(style_size * side / final_side))
        style_ts = [pil_to_tensor(resize(s, style_side), device) for s in styles]
        content_in = content_t
        if opts.color == "luminance":
            content_in = color.luminance(content_t)
            style_ts = [color.match_luminance(t, content_t) for t in style_ts]
        elif opts.color == "histogram":
            style_ts = [color.match_color(t, content_t, opts.color_match) for t in style_ts]
        objective.set_content(content_in)
        if content_mask is not None:
            guides = region_guides(content_mask, w, h, opts.content_mask or "content mask")
            regions = []
            for i, (guide, t) in enumerate(zip(guides, style_ts, strict=True)):
                sg = None
                if style_masks is not None:
                    sg = style_guide(style_masks[i], t.shape[3], t.shape[2], f"style mask {i + 1}").to(device)
                weight = opts.style_blend[i] if opts.style_blend is not None else 1.0
                guide = guide.to(device)
                regions.append(StyleRegion(objective.style_grams(t, sg), guide, weight, float(guide.mean())))
            objective.set_regions(regions)
        else:
            objective.set_style(style_ts, opts.style_blend)
        if opts.style_strength is not None:  # size-invariant balance: alpha from this scale's references
            objective.content_weight = balanced_content_weight(
                opts.style_strength, opts.beta, *references(objective, content_in, style_ts)
            )
        if current is not None:
            init = F.interpolate(current, size=(h, w), mode="bicubic", align_corners=False)
        elif opts.init == "noise":
            init = _noise(w, h, opts.seed, device)
        else:
            if opts.init == "content":
                init = content_in
            else:
                assert init_image is not None
                init = pil_to_tensor(init_image.resize((w, h), Image.Resampling.BILINEAR), device)
            if opts.init_noise_blend > 0:
                b = opts.init_noise_blend
                init = (1 - b) * init + b * _noise(w, h, opts.seed, device)
        if current is None and opts.color == "luminance":  # the network sees luminance only: the start too
            init = color.luminance(init)
        here, best = 0, math.inf
        budget.start_scale(idx)
        last_time = time.perf_counter()
        result = optimize(
            objective,
            init,
            budget.plan[idx],
            optimizer=opts.optimizer,
            learning_rate=opts.learning_rate,
            lbfgs_history=opts.lbfgs_history,
            on_step=report,
            should_stop=stop,
        )
        done += result.steps
        current = result.image
        if result.interrupted or user_stopped or budget.out_of_time():
            break
    assert result is not None and current is not None
    return Result(
        image=_delivered(current, content, (final_w, final_h), opts, content_t),
        loss=result.loss,
        losses=result.terms,
        steps=done,
        elapsed=time.perf_counter() - start,
        interrupted=result.interrupted,
        stopped=user_stopped,
        params=opts.to_dict() | {"device": str(device), "alpha": objective.content_weight},
    )
