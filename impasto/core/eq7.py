"""Eq. 7 for given layers and weights: the targets of a photo and paintings, and the objective of a scale.

    L_total = alpha L_content + beta L_style (+ tv_weight TV)     (Gatys et al. 2016, eq. 7)

:class:`Eq7` is a value: the network, the layers and weights, which style term (Gram matrices,
the paper's; or means and covariances, ``w2``), and the tiling of the scale it is for. It computes
targets (:meth:`Eq7.content_targets`, :meth:`Eq7.style_targets`; tile by tile for large images) and
builds an :class:`~impasto.core.objective.Objective` from them (:meth:`Eq7.objective`); a changed
weight is a new value (``dataclasses.replace``), never a write into an objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from ..config import StyleLoss
from ..net.vgg import VGG19, layer_depth
from .objective import Objective, Runner, Weighted, features_of
from .terms.base import EVERYWHERE, Where
from .terms.content import Content
from .terms.gram_style import GramStyle
from .terms.style import StyleRegion, StyleTerm, layer_guides, position_norm
from .terms.tv import TotalVariation
from .terms.w2_style import W2Style

__all__ = ["STYLE_TERMS", "Eq7", "StyleLoss"]

STYLE_TERMS: dict[str, type[StyleTerm]] = {"gram": GramStyle, "w2": W2Style}


@dataclass(frozen=True)
class Eq7:
    """The paper's objective without its targets: layers, weights, style term and tiling."""

    vgg: VGG19
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    content_weight: float  # alpha
    style_weight: float  # beta
    tv_weight: float = 0.0
    layer_balance: bool = False  # w_l divided by the size of layer l's loss (balance_weights)
    style_loss: StyleLoss = "gram"
    tile: int | None = None  # core size of a tiled evaluation (None: whole)
    keep: int = 0  # tiles whose forward is kept between the passes
    runner: Runner | None = None  # where the optimised objective's tile passes run (None: here)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content_layers, *self.style_layers]))

    @property
    def style_term(self) -> type[StyleTerm]:
        return STYLE_TERMS[self.style_loss]

    def _untiled(self, image: torch.Tensor) -> bool:
        return self.tile is None or len(self._objective_of(()).tiles(*image.shape[-2:])) == 1

    def _objective_of(self, terms: Sequence[Weighted]) -> Objective:
        """An objective with this tiling; its layout is that of all of this equation's layers."""
        return Objective(self.vgg, terms, self.tile, self.keep, layout_layers=tuple(self.layers))

    def content_targets(self, image: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """P^l of the photo (1, C, H_l, W_l) fp32 for every content layer; none without a photo."""
        if image is None or not self.content_layers:
            return {}
        layers = list(self.content_layers)
        if self._untiled(image):
            with torch.no_grad():
                feats = features_of(self.vgg, image, layers)
            return {k: v.detach().float() for k, v in feats.items()}
        out: dict[str, torch.Tensor] = {}
        for tile, responses in self._objective_of(()).cores(image, layers):
            for k, v in responses.items():
                if k not in out:
                    s = 2 ** layer_depth(k)
                    out[k] = v.new_zeros(1, v.shape[1], image.shape[-2] // s, image.shape[-1] // s).float()
                Where(tile).part(out[k], layer_depth(k)).copy_(Where(tile).core(v, layer_depth(k)))
        return out

    def style_targets(self, image: torch.Tensor, guide: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The style term's statistics of a painting (for Gram matrices, layer -> A^l / M_l), guided by ``guide``."""
        if not self.style_layers:
            return {}
        layers = list(self.style_layers)
        shape = (image.shape[-2], image.shape[-1])
        guides = layer_guides(guide, shape, layers)
        norms = {k: position_norm(guides[k], shape, k) for k in layers}
        stats = self.style_term.region_statistics
        if self._untiled(image):
            with torch.no_grad():
                return {
                    k: v.detach()
                    for k, v in stats(features_of(self.vgg, image, layers), EVERYWHERE, layers, guides, norms).items()
                }
        sums: dict[str, torch.Tensor] = {}  # summed over the tiles, then divided
        ones = dict.fromkeys(layers, 1.0)
        for tile, feats in self._objective_of(()).cores(image, layers):
            with torch.no_grad():
                for k, v in stats(feats, Where(tile), layers, guides, ones).items():
                    sums[k] = sums[k] + v if k in sums else v
        return {k: v / norms[k.split("/")[0]] for k, v in sums.items()}

    def blend(self, images: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> StyleRegion:
        """One region over the whole output whose targets blend the paintings' (weights ``blend``, default equal)."""
        weights = list(blend) if blend is not None else [1.0] * len(images)
        total = sum(weights)
        targets: dict[str, torch.Tensor] = {}
        for img, w in zip(images, weights, strict=True):
            if w == 0:
                continue
            for key, g in self.style_targets(img).items():
                term = g * (w / total)
                targets[key] = targets[key] + term if key in targets else term
        return StyleRegion(targets)

    def layer_weights(self, regions: Sequence[StyleRegion]) -> dict[str, float]:
        """w_l, or with ``layer_balance`` w_l / c_l * mean(c), c_l = E_l of an all-zero response (first region).

        Dividing by c_l makes every layer's loss a relative error, so no layer dominates (on the raw
        VGG19, conv4_1's E_l is ~100x the others'); multiplying by the mean keeps the overall
        magnitude, so alpha/beta stays comparable.
        """
        if not self.layer_balance or not regions:
            return dict(self.style_layers)
        targets = regions[0].targets
        scale = {
            k: self.style_term.scale(targets, k)
            for k in self.style_layers
            if any(t.split("/")[0] == k for t in targets)
        }
        mean = sum(scale.values()) / max(len(scale), 1)
        return {k: w * mean / max(scale.get(k, mean), 1e-30) for k, w in self.style_layers.items()}

    def objective(
        self,
        content: Mapping[str, torch.Tensor],
        regions: Sequence[StyleRegion],
        shape: tuple[int, int],
        extra: Sequence[Weighted] = (),
    ) -> Objective:
        """Eq. 7 for an output of ``shape`` (height, width) with these targets, plus ``extra`` terms."""
        terms: list[Weighted] = [
            (self.content_weight, Content(dict(self.content_layers), content)),
            (self.style_weight, self.style_term(self.layer_weights(regions), list(regions), shape)),
        ]
        if self.tv_weight:
            terms.append((self.tv_weight, TotalVariation()))
        return replace(self._objective_of([*terms, *extra]), runner=self.runner)

    def of(
        self,
        content: torch.Tensor | None,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> Objective:
        """Eq. 7 against a photo and paintings (one region, their targets blended), for outputs of the photo's shape."""
        if shape is None:
            assert content is not None, "without a photo, give the output's shape"
            shape = (content.shape[-2], content.shape[-1])
        return self.objective(self.content_targets(content), [self.blend(styles, blend)], shape)
