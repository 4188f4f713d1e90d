"""The style term of Gatys et al. (2016): Gram matrices compared (eq. 3-5).

    G^l = F^l F^l^T (eq. 3),   E_l = 1 / (4 N_l^2 M_l^2) sum (G^l - A^l)^2 (eq. 4)

computed per position: sum ((G/M - A/M) / (2 N))^2, the same number without squaring ~1e9
values. One deviation, only when the painting has a different size from the output: its target
is taken per position (A / M_l of the painting), i.e. rescaled by M_l(output) / M_l(painting).
With equal sizes (as in the paper) this is the identity. With a guide (Gatys et al. 2017) the
Gram matrix is (F o T)(F o T)^T / sum T^2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..gram import gram, gram_fp32, mean_gram_minus
from .base import Features, Report, Where
from .style import Guides, StyleTerm, counted

__all__ = ["GramStyle", "core_gram", "style_layer_loss"]


def style_layer_loss(features: torch.Tensor, target_mean_gram: torch.Tensor) -> torch.Tensor:
    """E_l = 1/(4 N^2 M^2) sum (G - A)^2 (eq. 4), with A given per position (A / M_l)."""
    n = features.shape[1]
    diff = mean_gram_minus(features, target_mean_gram) / (2 * n)
    return diff.pow(2).sum()


def core_gram(x: torch.Tensor, where: Where) -> torch.Tensor:
    """F F^T in fp32 of the counted positions: :func:`gram` (autograd's one-product backward, and a
    view of channels-last responses), or one copy of a tile core's strided view when no gradient is wanted."""
    if where.tile is None or (x.requires_grad and torch.is_grad_enabled()):
        return gram(x)
    return gram_fp32(x)


@dataclass(frozen=True, eq=False)
class GramStyle(StyleTerm):
    """sum_l w_l E_l with Gram matrices; targets: layer -> A^l / M_l (1, C, C)."""

    @staticmethod
    def region_statistics(
        feats: Features, where: Where, layers: Sequence[str], guides: Guides, norms: Mapping[str, float | torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        out = {}
        for layer in layers:
            f, t = counted(feats, where, guides, layer)
            out[layer] = core_gram(f if t is None else f * t, where) / norms[layer]
        return out

    @staticmethod
    def scale(targets: Mapping[str, torch.Tensor], layer: str) -> float:
        g = targets[layer]
        return float((g / (2 * g.shape[-1])).pow(2).sum())

    def layer_loss(
        self, stats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layer: str
    ) -> torch.Tensor:
        d = stats[layer] - targets[layer]
        return (d / (2 * d.shape[-1])).pow(2).sum()

    def whole(self, feats: Features) -> tuple[torch.Tensor, Report]:
        """Untiled, G/M - A in one product (fused with the target for bf16 responses: :mod:`impasto.gram`)."""

        def loss_of(i: int, layer: str) -> torch.Tensor:
            region = self.regions[i]
            d = mean_gram_minus(feats[layer], region.targets[layer], self._guides[i][layer])
            return (d / (2 * d.shape[-1])).pow(2).sum()

        zero = next(iter(feats.values())).new_zeros((), dtype=torch.float32) if feats else torch.zeros(())
        return self.combine(loss_of, zero)
