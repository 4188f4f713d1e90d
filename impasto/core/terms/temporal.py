"""The temporal term of video (Ruder, Dosovitskiy & Brox 2016, eq. 7 and 8).

    L_temporal = (1/D) sum_j sum_k c_jk (x_k - w_j(x)_k)^2 / 255^2

w_j: an earlier output warped into this frame by optical flow, c_j: where that warp is to be
trusted (0 at disocclusions and motion boundaries), D the number of values of the image. The
weight that multiplies it (gamma times the objective at the warm start) is the video's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..tile_layout import Tile
from .base import Features, LocalTerm, Where

__all__ = ["Temporal"]


@dataclass(frozen=True, eq=False)
class Temporal(LocalTerm):
    """``pairs``: (w_j (1, 3, H, W) in 0..255, c_j (1, 1, H, W) in 0..1) for each earlier frame used;
    ``values``: D (0: that of the pairs' images, which are the whole frame's unless cut by :meth:`at`)."""

    pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]
    name: str = "temporal"
    values: int = 0

    @property
    def count(self) -> int:
        """D, the number of values of the whole image."""
        return self.values or (self.pairs[0][0].numel() if self.pairs else 1)

    def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
        x = where.core(pixels, 0)
        n = self.count
        total = pixels.new_zeros(())
        for w, c in self.pairs:
            total = total + (where.part(c, 0) * (x - where.part(w, 0)) ** 2).sum() / (n * 255.0**2)
        return total

    def at(self, tile: Tile) -> Temporal:
        where = Where(tile)
        pairs = [(where.part(w, 0).clone(), where.part(c, 0).clone()) for w, c in self.pairs]
        return replace(self, pairs=pairs, values=self.count)
