"""The bytes a cluster moves for one image (:mod:`impasto.cluster.tiles`): per step and once per run.

Each step, pass 1 sends every tile's crop (core and halo, fp32, 3 x h x w) to a worker and brings
back its share of every style layer's statistics (a C x C matrix and C means, fp32); the driver
puts d(loss)/d(statistics) (the same size) in the object store once, and each worker reads it;
pass 2 sends every crop again and brings back its gradient (the crop's size). The network's
weights and each scale's targets go once per run, not per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..net.vgg import LAYER_NAMES, canonical_layer

__all__ = ["FP32", "Traffic", "channels", "traffic", "weights_bytes"]

FP32 = 4  # bytes
_WIDTHS = (64, 128, 256, 512, 512)  # VGG19's channels per block


def channels(layer: str) -> int:
    return _WIDTHS[int(canonical_layer(layer)[4]) - 1]


def weights_bytes(layers: Sequence[str]) -> int:
    """Bytes of VGG19's fp32 convolution weights and biases up to the deepest of ``layers``."""
    last = max(LAYER_NAMES.index(canonical_layer(name)) for name in layers)
    total, inputs = 0, 3
    for name in LAYER_NAMES[: last + 1]:
        if name.startswith("conv"):
            out = channels(name)
            total += (inputs * out * 9 + out) * FP32
            inputs = out
    return total


@dataclass(frozen=True)
class Traffic:
    """Bytes moved between the driver and the workers in one step of a scale."""

    inputs: int  # every tile's crop to a worker in each pass, fp32 3 x h x w
    gradients: int  # every crop's gradient back, the same size
    statistics: int  # pass 1: every tile's share of each style layer's C x C matrix and C means
    broadcast: int  # d(loss)/d(statistics), the same size as one set of statistics, to each worker

    @property
    def total(self) -> int:
        return self.inputs + self.gradients + self.statistics + self.broadcast


def traffic(tiles: int, crop_pixels: int, style_layers: Sequence[str], workers: int) -> Traffic:
    """One step's bytes: ``crop_pixels`` summed over the ``tiles`` crops, the style layers' statistics."""
    stats = sum((channels(name) ** 2 + channels(name)) * FP32 for name in style_layers)
    crops = 3 * crop_pixels * FP32
    return Traffic(2 * crops, crops, tiles * stats, workers * stats)  # each crop goes in both passes
