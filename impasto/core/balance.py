"""A style strength that means the same at every size and for every pair of images.

Eq. 7 weighs a content loss that is a *sum* over positions (eq. 1) against style losses that are
normalised by M_l^2 (eq. 4), so a fixed alpha/beta is four times more style-heavy at half the size,
and its meaning changes with the photo and the painting too (their feature magnitudes differ by
orders of magnitude). impasto's default instead measures each term against a reference of the
same pair at the same size:

- content reference  C_ref = L_content(the painting stretched to the output's size): the content
  loss of an image that kept none of the photo's structure;
- style reference    S_ref = L_style(the photo): the style loss of an image that took none of the
  painting's statistics.

and minimises  L = L_style / S_ref + (1 / strength) * L_content / C_ref,  scaled by S_ref so that
the numbers stay in the paper's units (L-BFGS is tuned to them). That is eq. 7 with

    beta = style_weight,    alpha = style_weight * S_ref / (strength * C_ref),

recomputed at every scale of the coarse-to-fine ladder. The two relative losses are exactly what
:func:`look` reports as 1 - content kept and 1 - style reached, so ``strength`` is the exchange
rate between them, whatever the size or the images.

Total variation is measured the same way, against the photo's own: the term is
``smoothing * TV(x) / TV(photo)`` in the same units, i.e. ``tv_weight = smoothing * beta * S_ref /
TV(photo)``. A little of it removes the pixel-level colour speckle that L-BFGS leaves in small
images without changing how much of the photo or the painting they show (docs/look.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..net.vgg import VGG19
from .eq7 import Eq7
from .objective import Objective
from .terms.tv import tv_loss

__all__ = ["Look", "balanced_content_weight", "balanced_tv_weight", "look", "references"]

PAPER_LOOK_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _stretch(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` (1, 3, h, w) resized to the height and width of ``like``, aspect ignored."""
    if image.shape[-2:] == like.shape[-2:]:
        return image
    return F.interpolate(image, size=like.shape[-2:], mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def references(
    objective: Objective,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
) -> tuple[float, float]:
    """(C_ref, S_ref) for the objective's current targets.

    C_ref: the content loss of each painting stretched to the photo's size, averaged over the
    paintings with ``weights`` (their blend weights; default equal), so a painting that takes
    no part contributes nothing; S_ref: the style loss of the photo itself. Both are unweighted
    (the ``content`` and ``style`` terms of the objective), so they share the objective's layers,
    layer weights and regions.
    """
    _, terms = objective(content)
    style_ref = float(terms["style"])
    weights = list(weights) if weights is not None else [1.0] * len(styles)
    used = [(s, w) for s, w in zip(styles, weights, strict=True) if w > 0]
    total = sum(w for _, w in used)
    content_loss = sum(w * float(objective(_stretch(s, content))[1]["content"]) for s, w in used)
    content_ref = content_loss / total if used else 0.0
    return content_ref, style_ref


def balanced_tv_weight(smoothing: float, style_weight: float, style_ref: float, photo: torch.Tensor) -> float:
    """The TV weight that makes the TV term ``smoothing * TV(x) / TV(photo)`` in the balance's units."""
    tv_ref = float(tv_loss(photo))
    if smoothing <= 0 or tv_ref <= 0:
        return 0.0
    return smoothing * style_weight * max(style_ref, 1e-30) / tv_ref


def balanced_content_weight(strength: float, style_weight: float, content_ref: float, style_ref: float) -> float:
    """alpha = beta * S_ref / (strength * C_ref) (see the module docstring); 0 when strength is infinite."""
    if content_ref <= 0 or strength == float("inf"):
        return 0.0
    if strength <= 0:
        raise ValueError("strength must be > 0")
    return style_weight * max(style_ref, 1e-30) / (strength * content_ref)


@dataclass(frozen=True)
class Look:
    """How much of the photo and of the painting an output shows, in the paper's own quantities.

    ``content_kept`` r = 1 - L_content(out) / L_content(painting stretched): 1 is the photo's
    structure, 0 the painting's layout. ``style_reached`` s = 1 - L_style(out) / L_style(photo):
    1 is the painting's Gram statistics, 0 the photo's.
    """

    content_kept: float
    style_reached: float


@torch.no_grad()
def look(output: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor, vgg: VGG19) -> Look:
    """r and s of ``output`` (1, 3, H, W in 0..255) against ``photo`` (resized to the output's size)
    and ``painting`` (as given: its size is the style size), with conv4_2 and the paper's five
    style layers at w_l = 1/5 on ``vgg``."""
    photo = _stretch(photo, output)
    objective = Eq7(vgg, {"conv4_2": 1.0}, dict.fromkeys(PAPER_LOOK_LAYERS, 0.2), 1.0, 1.0).of(photo, [painting])
    content_ref, style_ref = references(objective, photo, [painting])
    _, terms = objective(output)
    return Look(
        content_kept=1.0 - float(terms["content"]) / max(content_ref, 1e-30),
        style_reached=1.0 - float(terms["style"]) / max(style_ref, 1e-30),
    )
