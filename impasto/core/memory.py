"""How much memory a run needs, how much there is, and the tiling that makes one fit.

The estimate is a model of a step's peak, fitted to measured peaks (CPU RSS, fp32 and bf16, the
paper's layers; ``tests/test_memory.py`` holds it to +-25 %): a fixed part (torch, the network),
a part per pixel of the crop that goes through the network at once (the responses autograd keeps
for the backward pass, per conv layer: channels x positions x bytes), and a part per pixel of the
whole image (the image, its gradient, the best image so far, the content targets, and L-BFGS's
history of 2 x history vectors of 3 values per pixel).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ..config.checks import parse_size
from ..errors import InputError
from ..net.vgg import LAYER_NAMES, canonical_layer, layer_depth
from .tile_layout import geometry, layout

__all__ = [
    "WORKER_MEMORY",
    "WORKER_THREADS",
    "Fit",
    "available",
    "crop_bytes",
    "fit",
    "fit_scales",
    "fixed_bytes",
    "format_size",
    "image_bytes",
    "step_bytes",
    "worker_bytes",
]

# VGG19's conv widths per block, for the responses kept for the backward pass.
_WIDTHS = (64, 128, 256, 512, 512)
FIXED = 500 * 2**20  # torch, the network's weights, the interpreter (measured, CPU)
BF16_FIXED = 300 * 2**20  # bf16: oneDNN-packed weights per input shape (kernels.py) and fp32 casts (measured)
KEPT = 1.6  # responses kept per conv output value (output, pooling indices, backward's transients)
IMAGE_COPIES = 8  # full-size 3-channel fp32 tensors alive in a step: images, gradients, L-BFGS (optimize.LBFGS)
PHOTO_GUIDE = 48  # bytes per pixel of the image: the photorealism term's window statistics (float32)
PHOTO_EVAL = 450  # bytes per pixel of a crop: one evaluation of that term with its gradient (measured at 2048 px)
WORKER_MEMORY = 2 * 2**30  # bytes a cluster worker's tile may take, unless told otherwise (--ray-memory)
WORKER_THREADS = 1  # threads of a cluster worker: one worker per CPU (impasto.cluster.RayTiles)
HEADROOM = 0.75  # a run plans to this share of its budget: measured peaks were up to 1.29x the model (bf16, tiled)
MIN_HISTORY = 5  # fewer L-BFGS corrections than this are not worth tiling for
# Without a budget of its own, a run that must tile uses cores of at most this size and keeps no
# forwards: on the CPU they are also the quickest (benchmarks/results/tiles-*.md, 2048 px: 512-px
# cores 1.38x the untiled step, 1024-px cores 1.77x), and the budget goes to L-BFGS's history.
FRUGAL_CORE = 512


def format_size(n: float) -> str:
    """Bytes as a short human size: ``1.4 GB``, ``380 MB``."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def available(device: torch.device) -> int:
    """What this run may use: 80 % of the free GPU memory, or of the RAM the system can give."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return int(0.8 * info["MemAvailable"])
    except (OSError, KeyError, ValueError, IndexError):
        return 8 * 2**30  # no /proc/meminfo (macOS, Windows): a modest laptop's share


def _network_bytes(height: int, width: int, layers: list[str], itemsize: int) -> float:
    """Bytes of responses a forward and backward through the network to the deepest layer keep."""
    last = max(LAYER_NAMES.index(canonical_layer(name)) for name in layers)
    total = 0.0
    for name in LAYER_NAMES[: last + 1]:
        block = int(name[4]) - 1
        depth = layer_depth(name)
        positions = (height // 2**depth) * (width // 2**depth)
        total += _WIDTHS[block] * positions * itemsize
    return KEPT * total


def fixed_bytes(bf16: bool = False) -> int:
    """Bytes every process running the network holds whatever the image: torch, the weights (and
    with ``bf16``, oneDNN's packed weights)."""
    return FIXED + (BF16_FIXED if bf16 else 0)


def image_bytes(height: int, width: int, history: int, photo: bool = False) -> float:
    """Bytes of the whole image's own vectors in a step (images, gradients, L-BFGS's ``history``
    corrections, the content targets; with ``photo``, the photorealism term's guide): the part of
    :func:`step_bytes` that grows with the image."""
    per_pixel = 4 * 3 * (IMAGE_COPIES + 2 * history) + 64  # + conv4_2's targets (512 / 64 per px)
    return (per_pixel + (PHOTO_GUIDE if photo else 0)) * height * width


def crop_bytes(height: int, width: int, layers: list[str], bf16: bool = False, photo: bool = False) -> float:
    """Bytes one crop's evaluation with its gradient takes: the network's responses and, with
    ``photo``, the photorealism term's window maps."""
    return _network_bytes(height, width, layers, 2 if bf16 else 4) + (PHOTO_EVAL * height * width if photo else 0)


def worker_bytes(height: int, width: int, layers: list[str], bf16: bool = False, photo: bool = False) -> float:
    """Bytes a cluster worker holds for a height x width crop: the network, the crop's evaluation,
    and the crop's own vectors and cut of the local terms (:meth:`LocalTerm.at`)."""
    return fixed_bytes(bf16) + crop_bytes(height, width, layers, bf16, photo) + image_bytes(height, width, 0, photo)


def step_bytes(
    height: int,
    width: int,
    layers: list[str],
    history: int,
    bf16: bool = False,
    tile: int | None = None,
    keep: int = 0,
    photo: bool = False,
) -> float:
    """Estimated peak bytes of an optimisation step at height x width (tiled with cores of ``tile`` px).

    ``history`` is the number of L-BFGS corrections held: ``min(lbfgs_history, steps)``; ``keep``
    tiles' forwards are held from pass 1 to pass 2 (all of them: no crop is recomputed); ``photo``:
    the objective has the photorealism term.
    """
    itemsize = 2 if bf16 else 4
    kept = 0.0
    if tile is None:
        crop_h, crop_w = height, width
    else:
        align, halo = geometry(layers)
        core = max(align, math.ceil(tile / align) * align)
        crop_h, crop_w = min(height, core + 2 * halo), min(width, core + 2 * halo)
        tiles = layout(height, width, core, layers)
        for t in tiles[: min(keep, len(tiles) - 1)]:  # their responses only: one backward runs at a time
            cy0, cy1, cx0, cx1 = t.crop
            kept += _network_bytes(cy1 - cy0, cx1 - cx0, layers, itemsize) / KEPT
    crop = crop_bytes(crop_h, crop_w, layers, bf16, photo)
    return fixed_bytes(bf16) + crop + kept + image_bytes(height, width, history, photo)


@dataclass(frozen=True)
class Fit:
    """How a run fits its memory budget."""

    tile: int | None  # core size in px, or None: untiled
    history: int  # L-BFGS corrections kept
    needed: float  # estimated peak bytes with this tiling
    untiled: float  # estimated peak bytes untiled with the asked history
    budget: int
    keep: int = 0  # tiles whose forward is kept from pass 1 to pass 2 (not recomputed)
    steps: int | None = None  # the scale's steps: L-BFGS holds min(history, steps) corrections

    def note(self) -> str | None:
        """One line for the user when impasto tiled or shortened the history, else None."""
        if self.tile is None:
            return None
        kept = f", {self.keep} tile forward(s) kept" if self.keep else ""
        held = min(self.history, self.steps or self.history)
        return (
            f"tiling into {self.tile}-px cores (exact gradients{kept}) with an L-BFGS history of {held}: "
            f"~{format_size(self.needed)} instead of ~{format_size(self.untiled)} untiled "
            f"(budget {format_size(self.budget)}; `max_memory` to change it)"
        )


def fit(
    height: int,
    width: int,
    layers: list[str],
    history: int,
    budget: int,
    bf16: bool = False,
    tile: int | None = None,
    steps: int | None = None,
    frugal: bool = False,
    photo: bool = False,
) -> Fit:
    """The largest tiling (and longest history) whose step fits ``budget``; ``tile`` forces a core size.

    L-BFGS holds ``min(history, steps)`` corrections. A run plans to :data:`HEADROOM` of the
    budget (measured peaks of tiled bf16 runs at 2048 px were up to 1.29x the model's). Raises
    :class:`InputError` naming the budget it would need when nothing fits.

    ``frugal`` (the default budget on the CPU): a run that must tile uses cores of at most
    :data:`FRUGAL_CORE` px and keeps no forwards, so that it needs little more than the image's
    own vectors; the history is still the longest that fits.
    """

    def need(hist: int, core: int | None, keep: int = 0) -> float:
        return step_bytes(height, width, layers, min(hist, steps or hist), bf16, core, keep, photo)

    def keeping(fitted: Fit) -> Fit:
        """``fitted`` with as many tiles' forwards kept for pass 2 as the rest of its budget holds."""
        assert fitted.tile is not None
        for keep in range(len(layout(height, width, fitted.tile, layers)), 0, -1):
            if (needed := need(fitted.history, fitted.tile, keep)) <= HEADROOM * budget:
                return dataclasses.replace(fitted, keep=keep, needed=needed)
        return fitted

    untiled = need(history, None)
    histories = sorted({history, min(history, 20), min(history, 10), min(history, MIN_HISTORY)}, reverse=True)
    if tile is not None:  # the tile given; the longest history that fits beside it (at least the shortest)
        hist = next((h for h in histories if need(h, tile) <= HEADROOM * budget), histories[-1])
        return keeping(Fit(tile, hist, need(hist, tile), untiled, budget, steps=steps))
    if untiled <= HEADROOM * budget:
        return Fit(None, history, untiled, untiled, budget, steps=steps)
    align, _ = geometry(layers)
    side = max(height, width)
    largest = FRUGAL_CORE if frugal else side
    cores = [c for c in (2048, 1536, 1024, 768, 512, 384, 256, 192, 128) if c % align == 0 and c < side]
    cores = [c for c in cores if c <= largest] or cores[-1:]
    for hist in histories:
        for core in cores:
            if need(hist, core) <= HEADROOM * budget:
                fitted = Fit(core, hist, need(hist, core), untiled, budget, steps=steps)
                return fitted if frugal else keeping(fitted)
    smallest = need(min(history, MIN_HISTORY), cores[-1] if cores else None) / HEADROOM  # the budget it needs
    raise InputError(
        f"a {width}x{height} run needs ~{format_size(smallest)} even tiled, more than the "
        f"{format_size(budget)} budget (raise `max_memory` or lower `size`)"
    )


def fit_scales(
    sizes: list[tuple[int, int]],
    steps: list[int],
    layers: list[str],
    history: int,
    device: torch.device,
    bf16: bool,
    tile: int | None = None,
    max_memory: str | None = None,
    photo: bool = False,
) -> list[Fit]:
    """One :class:`Fit` per scale (sizes are (width, height)), within ``max_memory`` or what is free.

    Without ``max_memory`` a CPU run that must tile is frugal (:func:`fit`); a budget given is used.
    """
    budget = parse_size(max_memory) if max_memory is not None else available(device)
    frugal = max_memory is None and device.type == "cpu"
    scales = list(zip(sizes, steps, strict=True))[::-1]  # the largest first: a refusal names the output size
    return [fit(h, w, layers, history, budget, bf16, tile, n, frugal, photo) for (w, h), n in scales][::-1]


def worker_core(
    height: int, width: int, layers: list[str], budget: int, bf16: bool, workers: int, photo: bool = False
) -> int:
    """The core size of tiles for workers of ``budget`` bytes each (one crop's forward and backward,
    its cut of the local terms, and the network): the largest that fits, and no larger than gives
    each of ``workers`` a tile."""
    align, halo = geometry(layers)
    cores = [c for c in (2048, 1536, 1024, 768, 512, 384, 256, 192, 128) if c % align == 0]

    def fits(core: int) -> bool:
        crop_h, crop_w = min(height, core + 2 * halo), min(width, core + 2 * halo)
        return worker_bytes(crop_h, crop_w, layers, bf16, photo) <= HEADROOM * budget

    fitting = [c for c in cores if fits(c)] or cores[-1:]
    shared = [c for c in fitting if len(layout(height, width, c, layers)) >= workers]
    return (shared or fitting[-1:])[0]
