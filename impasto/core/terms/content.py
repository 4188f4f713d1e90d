"""The content term, eq. 1 of Gatys et al. (2016): L_content = 1/2 sum (F - P)^2 at each content layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch

from ...net.vgg import layer_depth
from ..tile_layout import Tile
from .base import Features, LocalTerm, Where

__all__ = ["Content", "content_loss"]


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = 1/2 sum (F - P)^2 (eq. 1)."""
    return 0.5 * (features - target).pow(2).sum()


@dataclass(frozen=True, eq=False)
class Content(LocalTerm):
    """sum_l w_l L_content(F^l, P^l) over the content layers that have a target.

    ``targets``: layer -> P^l, the photo's responses over the whole image (1, C, H_l, W_l), fp32;
    empty for a run without a photo (the term is then 0).
    """

    weights: Mapping[str, float]  # layer -> w_l
    targets: Mapping[str, torch.Tensor] = field(default_factory=dict)
    name: str = "content"

    @property
    def layers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.weights)

    def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
        total = pixels.new_zeros(())
        for layer, w in self.weights.items():
            if layer in self.targets:
                depth = layer_depth(layer)
                f = where.core(feats[layer], depth)
                total = total + w * content_loss(f, where.part(self.targets[layer], depth))
        return total

    def at(self, tile: Tile) -> Content:
        where = Where(tile)
        return replace(self, targets={k: where.part(v, layer_depth(k)).clone() for k, v in self.targets.items()})
