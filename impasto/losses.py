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
from dataclasses import dataclass

import torch

from .vgg import VGG19

__all__ = [
    "Objective",
    "content_loss",
    "gram",
    "mean_gram",
    "style_layer_loss",
    "tv_loss",
]


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T (eq. 3) for features (B, C, H, W) -> (B, C, C), without copying the features.

    A channels-last tensor is already a (H*W, C) matrix in memory, so F^T F is taken on that view.
    """
    b, c, h, w = features.shape
    if c > 1 and features.is_contiguous(memory_format=torch.channels_last):
        x = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, HW, C), a view
        return x.transpose(1, 2) @ x
    x = features.reshape(b, c, h * w)  # (B, C, HW)
    return x @ x.transpose(1, 2)


def mean_gram(features: torch.Tensor) -> torch.Tensor:
    """G / M_l: the Gram matrix per position, (B, C, C)."""
    return gram(features) / (features.shape[2] * features.shape[3])


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = 1/2 sum (F - P)^2 (eq. 1)."""
    return 0.5 * (features - target).pow(2).sum()


def style_layer_loss(features: torch.Tensor, target_mean_gram: torch.Tensor) -> torch.Tensor:
    """E_l = 1/(4 N^2 M^2) sum (G - A)^2 (eq. 4), with A given per position (A / M_l).

    Computed as sum ((G/M - A/M) / (2N))^2, which is the same number without squaring ~1e9 values.
    """
    n = features.shape[1]
    diff = (mean_gram(features) - target_mean_gram) / (2 * n)
    return diff.pow(2).sum()


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation of an image (B, C, H, W): sum of squared neighbour differences."""
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    return dh.pow(2).sum() + dw.pow(2).sum()


@dataclass
class Targets:
    """What the generated image is compared with: content responses and style Gram matrices."""

    content: dict[str, torch.Tensor]  # layer -> P^l, (1, C, H, W)
    style: dict[str, torch.Tensor]  # layer -> A^l / M_l, (1, C, C)


class Objective:
    """L_total = alpha L_content + beta sum_l w_l E_l (+ tv_weight * TV), eq. 7.

    Calling it on an RGB image (1, 3, H, W) in 0..255 returns the total loss and each term
    (``content``, ``style``, ``tv`` and ``style:<layer>`` as unweighted E_l) as 0-d tensors.
    """

    def __init__(
        self,
        vgg: VGG19,
        content_layers: Mapping[str, float],
        style_layers: Mapping[str, float],
        content_weight: float,
        style_weight: float,
        tv_weight: float = 0.0,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.vgg = vgg
        self.content_layers = dict(content_layers)
        self.style_layers = dict(style_layers)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.autocast_dtype = autocast_dtype
        self.layers = list(dict.fromkeys([*self.content_layers, *self.style_layers]))
        self.targets = Targets({}, {})

    def features(self, image: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """VGG responses (fp32) of ``image``; convolutions in ``autocast_dtype`` when set."""
        layers = list(layers) if layers is not None else self.layers
        image = image.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            return self.vgg(image, layers)
        with torch.autocast(image.device.type, dtype=self.autocast_dtype):
            feats = self.vgg(image, layers)
        return {k: v.float() for k, v in feats.items()}

    def set_content(self, image: torch.Tensor | None) -> None:
        """Record P^l for every content layer (no content term when ``image`` is None)."""
        if image is None or not self.content_layers:
            self.targets.content = {}
            return
        with torch.no_grad():
            feats = self.features(image, list(self.content_layers))
        self.targets.content = {k: v.detach() for k, v in feats.items()}

    def style_grams(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """A^l / M_l of a style image for every style layer."""
        with torch.no_grad():
            feats = self.features(image, list(self.style_layers))
        return {k: mean_gram(v).detach() for k, v in feats.items()}

    def set_style(self, images: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """Set the style targets from one or more style images, blending their Gram matrices."""
        blend = list(blend) if blend is not None else [1.0] * len(images)
        total = sum(blend)
        targets: dict[str, torch.Tensor] = {}
        for img, w in zip(images, blend, strict=True):
            if w == 0:
                continue
            for layer, g in self.style_grams(img).items():
                term = g * (w / total)
                targets[layer] = targets[layer] + term if layer in targets else term
        self.targets.style = targets

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(image)
        zero = image.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        content = zero
        for layer, w in self.content_layers.items():
            if layer in self.targets.content:
                content = content + w * content_loss(feats[layer], self.targets.content[layer])
        style = zero
        for layer, w in self.style_layers.items():
            if layer in self.targets.style:
                e = style_layer_loss(feats[layer], self.targets.style[layer])
                terms[f"style:{layer}"] = e.detach()
                style = style + w * e
        total = self.content_weight * content + self.style_weight * style
        terms["content"] = content.detach()
        terms["style"] = style.detach()
        if self.tv_weight:
            tv = tv_loss(image)
            terms["tv"] = tv.detach()
            total = total + self.tv_weight * tv
        return total, terms
