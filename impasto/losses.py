"""The losses of Gatys, Ecker & Bethge (2016), exactly as the paper defines them.

Notation (paper, Sec. 2): layer l has N_l filters and M_l = height x width positions; F^l is the
(N_l x M_l) response of the generated image, P^l that of the photograph, A^l the Gram matrix of
the painting.

- content (eq. 1):  L_content = 1/2 * sum_ij (F_ij - P_ij)^2
- Gram (eq. 3):     G_ij = sum_k F_ik F_jk
- style layer (eq. 4): E_l = 1 / (4 N_l^2 M_l^2) * sum_ij (G_ij - A_ij)^2
- style (eq. 5):    L_style = sum_l w_l E_l
- total (eq. 7):    L_total = alpha * L_content + beta * L_style

One deviation, only when the style image has a different size from the output: the target A^l is
rescaled by M_l(output) / M_l(style), i.e. Gram matrices are compared per position. With equal
sizes (as in the paper) this is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .gram import gram, guided_mean_gram, mean_gram, mean_gram_minus
from .vgg import VGG19

__all__ = [
    "Objective",
    "StyleRegion",
    "Targets",
    "content_loss",
    "gram",
    "guided_mean_gram",
    "mean_gram",
    "style_layer_loss",
    "tv_loss",
]


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = 1/2 sum (F - P)^2 (eq. 1)."""
    return 0.5 * (features - target).pow(2).sum()


def style_layer_loss(features: torch.Tensor, target_mean_gram: torch.Tensor) -> torch.Tensor:
    """E_l = 1/(4 N^2 M^2) sum (G - A)^2 (eq. 4), with A given per position (A / M_l).

    Computed as sum ((G/M - A/M) / (2N))^2, which is the same number without squaring ~1e9 values.
    """
    n = features.shape[1]
    diff = mean_gram_minus(features, target_mean_gram) / (2 * n)
    return diff.pow(2).sum()


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation of an image (B, C, H, W): sum of squared neighbour differences."""
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    return dh.pow(2).sum() + dw.pow(2).sum()


@dataclass
class StyleRegion:
    """One style target: Gram matrices per layer, where in the output they apply, and a weight.

    Without spatial control there is one region covering the whole output (guide None).
    """

    grams: dict[str, torch.Tensor]  # layer -> A^l / M_l, (1, C, C)
    guide: torch.Tensor | None = None  # (1, 1, H, W) in 0..1 over the output, or None for all of it
    weight: float = 1.0
    area: float = 1.0  # fraction of the output the guide covers


@dataclass
class Targets:
    """What the generated image is compared with: content responses and style regions."""

    content: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> P^l, (1, C, H, W)
    style: list[StyleRegion] = field(default_factory=list)


class Objective:
    """L_total = alpha L_content + beta sum_l w_l E_l (+ tv_weight * TV), eq. 7.

    Calling it on an RGB image (1, 3, H, W) in 0..255 returns the total loss and each term
    (``content``, ``style``, ``tv`` and ``style:<layer>`` as unweighted E_l) as 0-d tensors.
    With several style regions (spatial control) E_l is the area-weighted sum of the regions'
    guided losses; with ``layer_balance`` each w_l is divided by the magnitude of its target
    (see :meth:`balance_weights`).
    """

    def __init__(
        self,
        vgg: VGG19,
        content_layers: Mapping[str, float],
        style_layers: Mapping[str, float],
        content_weight: float,
        style_weight: float,
        tv_weight: float = 0.0,
        layer_balance: bool = False,
    ) -> None:
        self.vgg = vgg
        self.content_layers = dict(content_layers)
        self.style_layers = dict(style_layers)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.layer_balance = layer_balance
        self.layers = list(dict.fromkeys([*self.content_layers, *self.style_layers]))
        self.targets = Targets()
        self.layer_weights = dict(self.style_layers)  # effective w_l

    def features(self, image: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """VGG responses of ``image`` (fp32, 0..255) in the network's dtype (bf16 for a bf16 network).

        The losses take them as they are and compute in fp32 (:func:`gram`, type promotion against
        the fp32 targets), so a bf16 network needs no per-step casts of weights or activations.
        """
        layers = list(layers) if layers is not None else self.layers
        image = image.contiguous(memory_format=torch.channels_last)
        feats: dict[str, torch.Tensor] = self.vgg(image, layers)
        return feats

    def set_content(self, image: torch.Tensor | None) -> None:
        """Record P^l for every content layer (no content term when ``image`` is None)."""
        if image is None or not self.content_layers:
            self.targets.content = {}
            return
        with torch.no_grad():
            feats = self.features(image, list(self.content_layers))
        self.targets.content = {k: v.detach().float() for k, v in feats.items()}

    def style_grams(self, image: torch.Tensor, guide: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """A^l / M_l of a style image for every style layer (guided by ``guide`` when given)."""
        if not self.style_layers:
            return {}
        with torch.no_grad():
            feats = self.features(image, list(self.style_layers))
        if guide is None:
            return {k: mean_gram(v).detach() for k, v in feats.items()}
        return {k: guided_mean_gram(v, guide).detach() for k, v in feats.items()}

    def set_style(self, images: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """One region over the whole output whose target blends the styles' Gram matrices."""
        blend = list(blend) if blend is not None else [1.0] * len(images)
        total = sum(blend)
        targets: dict[str, torch.Tensor] = {}
        for img, w in zip(images, blend, strict=True):
            if w == 0:
                continue
            for layer, g in self.style_grams(img).items():
                term = g * (w / total)
                targets[layer] = targets[layer] + term if layer in targets else term
        self.set_regions([StyleRegion(targets)])

    def set_regions(self, regions: Sequence[StyleRegion]) -> None:
        """Set the style targets (spatial control: one region per guide)."""
        self.targets.style = list(regions)
        self.layer_weights = self.balance_weights() if self.layer_balance else dict(self.style_layers)

    def balance_weights(self) -> dict[str, float]:
        """w_l / c_l * mean(c), with c_l = sum (A^l / (2 N_l M_l))^2 of the first region's target.

        c_l is E_l of an all-black image: the scale of layer l's loss. Dividing by it makes
        every term a relative error sum (G - A)^2 / sum A^2, so no layer dominates (on the raw
        VGG19, conv4_1's E_l is ~100x the others'); multiplying by the mean keeps the overall
        magnitude, so alpha/beta stays comparable.
        """
        if not self.targets.style:
            return dict(self.style_layers)
        grams = self.targets.style[0].grams
        scale = {k: float((g / (2 * g.shape[-1])).pow(2).sum()) for k, g in grams.items()}
        mean = sum(scale.values()) / max(len(scale), 1)
        return {k: w * mean / max(scale.get(k, mean), 1e-30) for k, w in self.style_layers.items()}

    def differences(self, grams: Mapping[tuple[int, str], torch.Tensor]) -> dict[tuple[int, str], torch.Tensor]:
        """G/M - A per (region index, layer), from the output's Gram matrices per position."""
        return {(i, layer): g - self.targets.style[i].grams[layer] for (i, layer), g in grams.items()}

    def style_regions(self, layer: str) -> list[tuple[int, StyleRegion]]:
        """The regions (with their index) that have a target at ``layer`` and a non-zero weight."""
        return [(i, r) for i, r in enumerate(self.targets.style) if layer in r.grams and r.weight != 0]

    def content_term(self, feats: Mapping[str, torch.Tensor], zero: torch.Tensor) -> torch.Tensor:
        """sum_l w_l L_content at the content layers (eq. 1), from the output's responses."""
        content = zero
        for layer, w in self.content_layers.items():
            if layer in self.targets.content:
                content = content + w * content_loss(feats[layer], self.targets.content[layer])
        return content

    def style_term(
        self, diffs: Mapping[tuple[int, str], torch.Tensor], zero: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """sum_l w_l E_l (eq. 5) from G/M - A per (region index, layer) (see :meth:`differences`).

        With a guide, E_l is the region's guided loss weighted by the area it covers. Returns the
        style term and each layer's unweighted E_l (detached) as ``style:<layer>``.
        """
        style, terms = zero, {}
        for layer in self.style_layers:
            e = zero
            for i, region in self.style_regions(layer):
                d = diffs[i, layer]
                diff = d / (2 * d.shape[-1])  # (1, N, N); (G - A) / (2 N M)
                e = e + region.weight * (region.area if region.guide is not None else 1.0) * diff.pow(2).sum()
            terms[f"style:{layer}"] = e.detach()
            style = style + self.layer_weights[layer] * e
        return style, terms

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(image)
        zero = image.new_zeros(())
        content = self.content_term(feats, zero)
        diffs = {
            (i, layer): mean_gram_minus(feats[layer], region.grams[layer], region.guide)
            for layer in self.style_layers
            for i, region in self.style_regions(layer)
        }
        style, terms = self.style_term(diffs, zero)
        total = self.content_weight * content + self.style_weight * style
        terms["content"] = content.detach()
        terms["style"] = style.detach()
        if self.tv_weight:
            tv = tv_loss(image)
            terms["tv"] = tv.detach()
            total = total + self.tv_weight * tv
        return total, terms
