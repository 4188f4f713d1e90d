"""A whole style transfer: devices, the network, the coarse-to-fine schedule, progress events.

Coarse-to-fine (``scales > 1``): optimise at 1/2**(n-1) of the final size first, upsample the
result as the next scale's initial image, and so on up to the final size (the style image is
scaled alike, so brush strokes keep their size relative to the image). Most steps are spent
where they are cheap. With ``scales=1`` this is the paper's single-scale optimisation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch.nn import functional as F

from .config import Options
from .errors import ConfigError, DeviceError, did_you_mean
from .image import load_image, pil_to_tensor, resize, tensor_to_pil
from .losses import Objective
from .optimize import optimize
from .vgg import VGG19, layer_depth, load_vgg19

__all__ = ["Result", "Step", "get_vgg", "plan_scales", "resolve_device", "transfer"]

MIN_COARSE_SIDE = 64  # a coarsest scale smaller than this carries too little structure


@dataclass(frozen=True)
class Step:
    """A progress event, sent after every optimisation step."""

    step: int  # 1-based, counted over all scales
    total: int  # planned steps over all scales
    scale: int  # 1-based
    scales: int
    size: tuple[int, int]  # (width, height) at this scale
    loss: float  # total loss of the image just evaluated
    losses: dict[str, float]  # terms: content, style, tv, style:<layer>
    elapsed: float  # seconds since the transfer started
    eta: float | None  # estimated seconds left
    image: Image.Image | None = None  # the current image, when requested


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
    return vgg.to(device=torch.device(device), memory_format=torch.channels_last)


def plan_scales(size: int, scales: int, steps: int) -> list[tuple[int, int]]:
    """(longest side, steps) for each scale, coarsest first.

    Sides halve from the final size, never below ``MIN_COARSE_SIDE`` (fewer scales then).
    Each scale gets half the steps of the one before it (4:2:1 for three scales): a step at
    half the size costs a quarter as much, so most of the work is done where it is cheap and
    the full size only refines the texture.
    """
    sides = [size]
    while len(sides) < scales and sides[0] // 2 >= MIN_COARSE_SIDE:
        sides.insert(0, sides[0] // 2)
    n = len(sides)
    weights = [2 ** (n - 1 - i) for i in range(n)]
    share = [steps * w // sum(weights) for w in weights]
    share[0] += steps - sum(share)
    return list(zip(sides, share, strict=True))


def _noise(width: int, height: int, seed: int, device: torch.device) -> torch.Tensor:
    """Seeded white noise (1, 3, H, W), uniform over 0..255, identical on every device."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, height, width, generator=gen) * 255.0).to(device)


def _check_size(label: str, width: int, height: int, opts: Options) -> None:
    layers = [name for name, _ in (*opts.content_layers, *opts.style_layers)]
    need = 2 ** max(layer_depth(name) for name in layers)
    if min(width, height) < need:
        raise ConfigError(
            f"{label} would be {width}x{height} px, too small for layer "
            f"{max(layers, key=layer_depth)} (needs at least {need} px per side): raise --size"
        )


def transfer(
    content: Image.Image,
    styles: Sequence[Image.Image],
    opts: Options,
    *,
    init_image: Image.Image | None = None,
    on_step: Callable[[Step], None] | None = None,
    image_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Paint ``content`` in the manner of ``styles`` (RGB PIL images) with options ``opts``."""
    start = time.perf_counter()
    if not styles:
        raise ConfigError("at least one style image is needed")
    device = resolve_device(opts.device)
    if opts.init not in ("noise", "content") and init_image is None:
        init_image = load_image(opts.init)
    vgg = get_vgg(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network)
    # bf16 convolutions pay off on GPUs (tensor cores); CPUs without native bf16 run them slower.
    use_bf16 = opts.precision == "bf16" or (opts.precision == "auto" and device.type == "cuda")
    autocast = torch.bfloat16 if use_bf16 else None
    objective = Objective(
        vgg,
        dict(opts.content_layers),
        dict(opts.style_layers),
        content_weight=opts.alpha,
        style_weight=opts.beta,
        tv_weight=opts.tv_weight,
        autocast_dtype=autocast,
    )
    schedule = plan_scales(opts.size, opts.scales, opts.steps)
    final_w, final_h = resize(content, opts.size).size
    _check_size("the output", final_w, final_h, opts)
    total = sum(s for _, s in schedule)
    style_size = opts.style_size or opts.size
    dims = [resize(content, side).size for side, _ in schedule]
    pixels = [w * h for w, h in dims]

    done = 0
    rate: float | None = None  # seconds per step per pixel, smoothed
    current = None
    last_time = time.perf_counter()
    result = None
    for idx, ((side, steps), (w, h)) in enumerate(zip(schedule, dims, strict=True)):
        _check_size(f"scale {idx + 1}", w, h, opts)
        content_t = pil_to_tensor(content.resize((w, h), Image.Resampling.BILINEAR), device)
        style_side = max(1, round(style_size * side / opts.size))
        style_ts = [pil_to_tensor(resize(s, style_side), device) for s in styles]
        for s, t in zip(styles, style_ts, strict=True):
            _check_size(f"style image ({s.width}x{s.height}) at this size", t.shape[3], t.shape[2], opts)
        objective.set_content(content_t)
        objective.set_style(style_ts)
        if current is not None:
            init = F.interpolate(current, size=(h, w), mode="bicubic", align_corners=False)
        elif opts.init == "noise":
            init = _noise(w, h, opts.seed, device)
        elif opts.init == "content":
            init = content_t
        else:
            assert init_image is not None
            init = pil_to_tensor(init_image.resize((w, h), Image.Resampling.BILINEAR), device)

        def report(
            step: int,
            loss: torch.Tensor,
            terms: dict[str, torch.Tensor],
            image: torch.Tensor,
            idx: int = idx,
            w: int = w,
            h: int = h,
            offset: int = done,
        ) -> None:
            nonlocal rate, last_time
            now = time.perf_counter()
            per_pixel = (now - last_time) / pixels[idx]
            last_time = now
            rate = per_pixel if rate is None else 0.8 * rate + 0.2 * per_pixel
            left_here = schedule[idx][1] - step
            left = left_here * pixels[idx] + sum(
                s * p for (_, s), p in zip(schedule[idx + 1 :], pixels[idx + 1 :], strict=True)
            )
            if on_step is None:
                return
            want_image = image_every > 0 and (offset + step) % image_every == 0
            on_step(
                Step(
                    step=offset + step,
                    total=total,
                    scale=idx + 1,
                    scales=len(schedule),
                    size=(w, h),
                    loss=float(loss),
                    losses={k: float(v) for k, v in terms.items()},
                    elapsed=now - start,
                    eta=rate * left,
                    image=tensor_to_pil(image) if want_image else None,
                )
            )

        last_time = time.perf_counter()
        result = optimize(
            objective,
            init,
            steps,
            optimizer=opts.optimizer,
            learning_rate=opts.learning_rate,
            lbfgs_history=opts.lbfgs_history,
            on_step=report,
            should_stop=should_stop,
        )
        done += result.steps
        current = result.image
        if result.interrupted or result.stopped:
            break
    assert result is not None and current is not None
    if current.shape[-2:] != (final_h, final_w):  # stopped at a coarse scale: deliver full size
        current = F.interpolate(current, size=(final_h, final_w), mode="bicubic", align_corners=False)
    return Result(
        image=tensor_to_pil(current),
        loss=result.loss,
        losses=result.terms,
        steps=done,
        elapsed=time.perf_counter() - start,
        interrupted=result.interrupted,
        stopped=result.stopped,
        params=opts.to_dict() | {"device": str(device)},
    )
