"""What every style term shares: regions of the output with their targets, and per-layer weights.

A style term compares statistics of the output's responses, sums over positions, with the same
statistics of a painting (its *targets*). With spatial control (Gatys et al. 2017, Sec. 4) each
region of the output has its own targets and a guide T (1, 1, H, W in 0..1): positions count with
weight T^2 and the sums are divided by sum T^2 instead of M_l. A term says how its statistics are
computed (:meth:`StyleTerm.region_statistics`, also used on the paintings for the targets) and
what a layer's loss is (:meth:`StyleTerm.layer_loss`); the sum over regions and layers is here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch.nn import functional as F

from ...net.vgg import layer_depth
from .base import Features, GlobalTerm, Report, Where

__all__ = ["Guides", "StyleRegion", "StyleTerm", "counted", "layer_guides"]

Guides = Mapping[str, torch.Tensor | None]  # layer -> the guide at that layer's resolution (None: everywhere)


def layer_guides(
    guide: torch.Tensor | None, shape: tuple[int, int], layers: Sequence[str]
) -> dict[str, torch.Tensor | None]:
    """Per layer: ``guide`` at the layer's resolution of an image of ``shape`` (area-averaged), or None."""
    out: dict[str, torch.Tensor | None] = {}
    for k in layers:
        s = 2 ** layer_depth(k)
        size = (shape[0] // s, shape[1] // s)
        out[k] = (
            None
            if guide is None
            else (F.interpolate(guide, size=size, mode="area") if guide.shape[-2:] != size else guide)
        )
    return out


def counted(feats: Features, where: Where, guides: Guides, layer: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer's responses at ``where``'s positions and the region's guide there (None: no guide)."""
    depth = layer_depth(layer)
    t = guides.get(layer)
    return where.core(feats[layer], depth), None if t is None else where.part(t, depth)


def position_norm(guide: torch.Tensor | None, shape: tuple[int, int], layer: str) -> float | torch.Tensor:
    """What a sum over positions is divided by: M_l, or sum T^2 for a guided one."""
    if guide is not None:
        norm: torch.Tensor = guide.pow(2).sum().clamp_min(1e-8)
        return norm
    s = 2 ** layer_depth(layer)
    return float((shape[0] // s) * (shape[1] // s))


@dataclass(frozen=True)
class StyleRegion:
    """One style target: statistics per layer, where in the output they apply, and a weight.

    Without spatial control there is one region covering the whole output (guide None).
    ``targets`` holds the painting's statistics under the keys of the term's
    :meth:`StyleTerm.region_statistics` (for the Gram term, layer -> A^l / M_l, (1, C, C)).
    """

    targets: Mapping[str, torch.Tensor]
    guide: torch.Tensor | None = None  # (1, 1, H, W) in 0..1 over the output, or None for all of it
    weight: float = 1.0
    area: float = 1.0  # fraction of the output the guide covers


@dataclass(frozen=True, eq=False)
class StyleTerm(GlobalTerm):
    """sum_l w_l E_l (eq. 5) with E_l = sum over regions of weight * area * the layer's loss.

    ``shape`` is the output's (height, width); the guides and the divisors are taken at each layer.
    """

    # How strong a style strength is for this term, relative to the Gram term's (impasto.core.balance):
    # the balance divides alpha by it, so that the same --style-strength keeps about as much of the photo.
    STRENGTH: ClassVar[float] = 1.0

    layer_weights: Mapping[str, float]  # layer -> effective w_l
    regions: Sequence[StyleRegion]
    shape: tuple[int, int]
    name: str = "style"
    _guides: list[dict[str, torch.Tensor | None]] = field(init=False, repr=False)
    _norms: list[dict[str, float | torch.Tensor]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        layers = list(self.layer_weights)
        guides = [layer_guides(r.guide, self.shape, layers) for r in self.regions]
        object.__setattr__(self, "_guides", guides)
        norms = [{k: position_norm(g[k], self.shape, k) for k in layers} for g in guides]
        object.__setattr__(self, "_norms", norms)

    @property
    def layers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.layer_weights)

    def active(self, layer: str) -> list[int]:
        """The regions that have a target at ``layer`` and a non-zero weight."""
        return [
            i for i, r in enumerate(self.regions) if r.weight != 0 and any(k.split("/")[0] == layer for k in r.targets)
        ]

    @staticmethod
    @abstractmethod
    def region_statistics(
        feats: Features, where: Where, layers: Sequence[str], guides: Guides, norms: Mapping[str, float | torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The statistics of ``layers`` at ``where``'s positions over ``norms``; keys ``layer`` or ``layer/part``."""

    @abstractmethod
    def layer_loss(
        self, stats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layer: str
    ) -> torch.Tensor:
        """E_l of one region from its statistics and targets (both keyed as :meth:`region_statistics`)."""

    @staticmethod
    @abstractmethod
    def scale(targets: Mapping[str, torch.Tensor], layer: str) -> float:
        """E_l of an image with no response at all (all zero): the size of layer ``layer``'s loss."""

    def statistics(self, feats: Features, where: Where) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i in range(len(self.regions)):
            layers = [k for k in self.layer_weights if i in self.active(k)]
            stats = self.region_statistics(feats, where, layers, self._guides[i], self._norms[i])
            out |= {f"{i}:{key}": v for key, v in stats.items()}
        return out

    def value(self, stats: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Report]:
        def loss_of(i: int, layer: str) -> torch.Tensor:
            mine = {key.split(":", 1)[1]: v for key, v in stats.items() if key.startswith(f"{i}:")}
            return self.layer_loss(mine, self.regions[i].targets, layer)

        zero = next(iter(stats.values())).new_zeros(()) if stats else torch.zeros(())
        return self.combine(loss_of, zero)

    def combine(self, loss_of: Callable[[int, str], torch.Tensor], zero: torch.Tensor) -> tuple[torch.Tensor, Report]:
        """sum_l w_l sum_regions weight * area * E_l(region), with each ``loss_of(region index, layer)``."""
        style, report = zero, {}
        for layer in self.layer_weights:
            e = zero
            for i in self.active(layer):
                region = self.regions[i]
                e = e + region.weight * (region.area if region.guide is not None else 1.0) * loss_of(i, layer)
            report[f"style:{layer}"] = e.detach()
            style = style + self.layer_weights[layer] * e
        return style, report
