"""How long a run will take on this machine, before it starts: from a measured step time.

A step of eq. 7 is a forward and a backward pass of VGG19 over the image, and both cost in
proportion to its pixels. :func:`seconds_per_pixel` times one such pass at a small size on the
device (once per network and device: a second or so) and :func:`estimate_seconds` scales it to
every scale of a schedule. A tiled scale (one that does not fit in memory) evaluates its
statistics and its gradient in two passes: about twice the time. The result is a rough figure
("about 3 min"), good to a factor of two: the front ends show it as such.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..net.vgg import VGG19

__all__ = [
    "CALIBRATION_SIDE",
    "STEP_OVERHEAD",
    "TARGET_PASSES",
    "TILED_FACTOR",
    "estimate_seconds",
    "rough",
    "seconds_per_pixel",
]

CALIBRATION_SIDE = 128  # px: big enough to use the machine as a real step does, small enough to take ~0.1 s
STEP_OVERHEAD = 1.3  # an L-BFGS step: a forward and backward pass, plus line search and the update
TILED_FACTOR = 2.0  # a tiled step: the statistics in a first pass, the gradient in a second
TARGET_PASSES = 2  # a scale's targets: a pass over the photo and one over the painting
_LAYERS = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]  # the paper's, the deepest used
_measured: dict[tuple[int, str], float] = {}


def seconds_per_pixel(network: VGG19, device: torch.device | str, repeats: int = 2) -> float:
    """Seconds of one forward and backward pass of ``network`` per image pixel, measured on ``device``.

    The first pass warms up (allocation, kernel choice) and is not counted; the fastest of
    ``repeats`` timed passes is. Cached per network and device.
    """
    key = (id(network), str(device))
    if key in _measured:
        return _measured[key]
    side = CALIBRATION_SIDE
    image = torch.rand(1, 3, side, side, device=device) * 255  # (1, 3, H, W)
    times = []
    for i in range(repeats + 1):
        x = image.clone().requires_grad_(True)
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        begin = time.perf_counter()
        feats = network.forward(x, _LAYERS)  # not __call__: hooks on the network (tests count passes) stay out
        torch.stack([f.float().square().mean() for f in feats.values()]).sum().backward()
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - begin)
    _measured[key] = min(times) / (side * side)
    return _measured[key]


def estimate_seconds(
    scales: Sequence[tuple[int, int, int]], per_pixel: float, tiled: Sequence[bool] | None = None
) -> float:
    """Seconds for ``scales`` ((width, height, steps), coarsest first) at ``per_pixel`` seconds per pixel pass.

    Each scale also pays for its targets (:data:`TARGET_PASSES` passes).
    """
    total = 0.0
    for i, (width, height, steps) in enumerate(scales):
        factor = TILED_FACTOR if tiled is not None and tiled[i] else 1.0
        total += (steps * STEP_OVERHEAD + TARGET_PASSES) * width * height * per_pixel * factor
    return total


def rough(seconds: float) -> str:
    """A duration as a person says it: ``under a minute``, ``about 4 min``, ``about 3 h 20 min``."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours >= 48:
        return f"about {round(seconds / 86400)} days"
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
