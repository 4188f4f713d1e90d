"""Where the tiles of an image go: aligned cores that partition it, each with the halo it needs.

:func:`geometry` derives both numbers from VGG19's layer table for the layers a run reads;
:func:`layout` cuts an image into :class:`Tile` s. :class:`impasto.core.objective.Objective` runs its terms over
them, and :mod:`impasto.memory` sizes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..net.vgg import LAYER_NAMES, canonical_layer, layer_depth

__all__ = ["Tile", "geometry", "layout"]


def geometry(layers: Sequence[str]) -> tuple[int, int]:
    """(alignment, halo) in pixels for responses at ``layers``.

    Alignment: 2^d for d poolings before the deepest layer. Halo: how far the wrong values at a
    crop's edge (zero padding where the image goes on) travel inward by the deepest layer,
    followed exactly: each 3x3 convolution moves the edge of the wrong region one position in,
    each aligned 2x2 pooling halves positions (rounding outward). For conv5_1 that is 80 px, half
    its 156-px receptive field; the halo is rounded up to the alignment.
    """
    canon = [canonical_layer(name) for name in layers]
    last = max(LAYER_NAMES.index(name) for name in canon)
    align = 2 ** max(layer_depth(name) for name in canon)
    right, left, stride = 0, 0, 1  # wrong from position `right` on / below position `left`
    for name in LAYER_NAMES[: last + 1]:
        if name.startswith("pool"):
            right, left, stride = right // 2, -(-left // 2), stride * 2
        else:
            right, left = right - 1, left + 1
    spread = max(-right, left) * stride
    return align, -(-spread // align) * align


@dataclass(frozen=True)
class Tile:
    """A core (the pixels this tile answers for) and its crop (core + halo, clipped to the image)."""

    core: tuple[int, int, int, int]  # y0, y1, x0, x1
    crop: tuple[int, int, int, int]

    def at(self, depth: int) -> tuple[slice, slice, slice, slice]:
        """(rows, cols) of the core in the crop's responses, then in the image's, ``depth`` poolings down."""
        s = 2**depth
        (y0, y1, x0, x1), (cy0, _, cx0, _) = self.core, self.crop
        local = (slice(y0 // s - cy0 // s, y1 // s - cy0 // s), slice(x0 // s - cx0 // s, x1 // s - cx0 // s))
        return (*local, slice(y0 // s, y1 // s), slice(x0 // s, x1 // s))

    def core_of(self, responses: torch.Tensor, layer: str) -> torch.Tensor:
        """The core's positions of a crop's responses (B, C, h, w) at ``layer`` (a view)."""
        rows, cols, _, _ = self.at(layer_depth(layer))
        return responses[:, :, rows, cols]

    def in_image(self, full: torch.Tensor, layer: str) -> torch.Tensor:
        """The core's positions of an image-wide map (B, C, H_l, W_l) at ``layer`` (a view)."""
        _, _, rows, cols = self.at(layer_depth(layer))
        return full[:, :, rows, cols]


def layout(height: int, width: int, core: int, layers: Sequence[str]) -> list[Tile]:
    """Tiles whose cores (``core`` px, rounded up to the alignment) partition a height x width image."""
    align, halo = geometry(layers)
    core = max(align, -(-core // align) * align)

    def spans(n: int) -> list[tuple[int, int, int, int]]:
        starts = range(0, n, core)
        return [(a, min(a + core, n), max(0, a - halo), min(n, a + core + halo)) for a in starts]

    return [
        Tile((y0, y1, x0, x1), (cy0, cy1, cx0, cx1))
        for y0, y1, cy0, cy1 in spans(height)
        for x0, x1, cx0, cx1 in spans(width)
    ]
