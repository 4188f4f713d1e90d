"""Total variation: the sum of squared differences of neighbouring pixels (a smoothness prior)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Features, LocalTerm, Where

__all__ = ["TotalVariation", "tv_loss"]


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation of an image (B, C, H, W): sum of squared neighbour differences."""
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    return dh.pow(2).sum() + dw.pow(2).sum()


@dataclass(frozen=True, eq=False)
class TotalVariation(LocalTerm):
    """:func:`tv_loss` of the output; a pair of neighbours counts at the tile whose core holds its first pixel."""

    name: str = "tv"

    def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
        if where.tile is None:
            return tv_loss(pixels)
        h, w = pixels.shape[-2:]
        rows, cols = where.rows_cols(h, w, 0)
        down = pixels[:, :, rows.start : min(rows.stop, h - 1), cols]  # pairs (y, y + 1), y in the core
        below = pixels[:, :, rows.start + 1 : min(rows.stop, h - 1) + 1, cols]
        left = pixels[:, :, rows, cols.start : min(cols.stop, w - 1)]  # pairs (x, x + 1), x in the core
        right = pixels[:, :, rows, cols.start + 1 : min(cols.stop, w - 1) + 1]
        return (below - down).pow(2).sum() + (right - left).pow(2).sum()
