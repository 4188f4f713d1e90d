"""What one scale optimises against and starts from, and the image the user gets from it.

At each scale of the schedule the photo and the paintings are resized to that scale's sizes and
become the objective's targets (after the colour control, and per region with masks); the first
scale starts from noise, the photo or a given image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from PIL import Image
from torch.nn import functional as F

from ..config import Options
from ..image import pil_to_tensor, resize, tensor_to_pil
from ..inputs import Inputs
from . import color
from .balance import balanced_content_weight, balanced_tv_weight, references
from .eq7 import Eq7
from .masks import region_guides, style_guide
from .objective import Objective
from .photo_project import guided_filter
from .schedule import Scale
from .terms.style import StyleRegion
from .upscale import start_from

# Inputs: re-exported from impasto.inputs, where the images of a transfer are loaded.
__all__ = ["PROJECTION", "Inputs", "delivered", "noise", "palette_of", "scale_objective", "start_image"]

# The final projection's guided filter: (radius px, eps on [0, 1] colours), the smallest window that
# kept the photo preset's structure on every test pair (docs/photo.md).
PROJECTION = (4, 1e-3)


def noise(width: int, height: int, seed: int, device: torch.device) -> torch.Tensor:
    """Seeded white noise (1, 3, H, W), uniform over 0..255, identical on every device."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, height, width, generator=gen) * 255.0).to(device)


def delivered(
    image: torch.Tensor,
    content: Image.Image,
    size: tuple[int, int],
    opts: Options,
    content_t: torch.Tensor,
    palette: torch.Tensor | None = None,
) -> Image.Image:
    """``image`` (1, 3, h, w) as the user gets it: the result, the Ctrl-C image and the snapshots.

    At the output ``size`` (width, height), bicubic from a coarser scale, and with ``luminance``
    colour or ``original_colors`` on the photo's colours; ``content_t`` is the photo at ``image``'s
    scale. With ``photo_recolor``, its colours moved onto ``palette``'s (:func:`palette_of`).
    """
    width, height = size
    if image.shape[-2:] != (height, width):  # a coarse scale: deliver full size
        image = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)
        content_t = pil_to_tensor(content.resize((width, height), Image.Resampling.BILINEAR), image.device)
    if opts.color == "luminance" or opts.original_colors:
        image = color.with_chroma_of(image, content_t)  # the result's luminance, the photo's colours
    if opts.photo_projection:  # locally affine in the photo's colours (Luan et al.'s final step)
        image = guided_filter(content_t / 255.0, image.clamp(0, 255) / 255.0, PROJECTION[0], PROJECTION[1]) * 255.0
    if opts.photo_recolor and palette is not None:  # globally affine: locally affine stays so
        image = color.colour_map(image.clamp(0, 255), palette.to(image.device))
    return tensor_to_pil(image)


def palette_of(styles: Sequence[Image.Image], side: int = 512) -> torch.Tensor:
    """The style images' colours, for ``photo_recolor``: each at most ``side`` px, side by side (1, 3, 1, N)."""
    pixels = [pil_to_tensor(s if max(s.size) <= side else resize(s, side)).reshape(1, 3, 1, -1) for s in styles]
    return torch.cat(pixels, dim=-1)


def scale_objective(
    eq7: Eq7, inputs: Inputs, opts: Options, scale: Scale, device: torch.device
) -> tuple[Objective, torch.Tensor, torch.Tensor]:
    """This scale's objective: eq. 7 against the photo and the paintings at this scale's sizes.

    Returns it, the photo at this scale (1, 3, h, w) and what the network sees of it (its
    luminance with ``color="luminance"``, else the photo). With ``style_strength`` the content and
    TV weights come from this scale's references (:mod:`impasto.balance`).
    """
    w, h = scale.size
    content_t = pil_to_tensor(inputs.content.resize((w, h), Image.Resampling.BILINEAR), device)
    style_ts = [pil_to_tensor(resize(s, scale.style_side), device) for s in inputs.styles]
    content_in = content_t
    if opts.color == "luminance":
        content_in = color.luminance(content_t)
        style_ts = [color.match_luminance(t, content_t) for t in style_ts]
    elif opts.color == "histogram":
        style_ts = [color.match_color(t, content_t, opts.color_match) for t in style_ts]
    content = eq7.content_targets(content_in)
    weights = opts.style_blend  # how much each painting counts in the content reference
    if inputs.content_mask is not None:
        regions = _regions(eq7, inputs, opts, style_ts, scale.size, device)
        weights = tuple(r.weight * r.area for r in regions)  # with masks: its region's share of the image too
    else:
        regions = [eq7.blend(style_ts, opts.style_blend)]
    objective = eq7.objective(content, regions, (h, w))
    if opts.style_strength is not None:  # size-invariant balance: alpha and TV from this scale's references
        content_ref, style_ref = references(objective, content_in, style_ts, weights)
        eq7 = replace(
            eq7,
            content_weight=balanced_content_weight(
                opts.style_strength * eq7.style_term.STRENGTH, opts.beta, content_ref, style_ref
            ),
            tv_weight=balanced_tv_weight(opts.tv_weight, opts.beta, style_ref, content_in),
        )
        objective = eq7.objective(content, regions, (h, w))
    return objective, content_t, content_in


def _regions(
    eq7: Eq7,
    inputs: Inputs,
    opts: Options,
    style_ts: list[torch.Tensor],
    size: tuple[int, int],
    device: torch.device,
) -> list[StyleRegion]:
    """Spatial control: region i of the content mask (at ``size``) gets style image i."""
    assert inputs.content_mask is not None
    guides = region_guides(inputs.content_mask, *size, inputs.content_mask_name)
    regions = []
    for i, (guide, t) in enumerate(zip(guides, style_ts, strict=True)):
        sg = None
        if inputs.style_masks is not None:
            sg = style_guide(inputs.style_masks[i], t.shape[3], t.shape[2], f"style mask {i + 1}").to(device)
        weight = opts.style_blend[i] if opts.style_blend is not None else 1.0
        guide = guide.to(device)
        regions.append(StyleRegion(eq7.style_targets(t, sg), guide, weight, float(guide.mean())))
    return regions


def start_image(
    inputs: Inputs, opts: Options, size: tuple[int, int], content_in: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The first scale's initial image (1, 3, h, w): noise, the photo, the photo in the painting's colours
    or ``init_image``, with noise mixed in."""
    w, h = size
    if opts.init == "noise":
        init = noise(w, h, opts.seed, device)
    else:
        if opts.init == "content":
            init = content_in
        elif opts.init == "mapped":  # the photo in the (first) painting's colours
            init = color.colour_map(content_in, pil_to_tensor(resize(inputs.styles[0], max(w, h)), device))
        else:
            assert inputs.init_image is not None
            init = start_from(inputs.init_image, content_in)  # a smaller one gets the photo's detail
        if opts.init_noise_blend > 0:
            b = opts.init_noise_blend
            init = (1 - b) * init + b * noise(w, h, opts.seed, device)
    if opts.color == "luminance":  # the network sees luminance only: the start too
        init = color.luminance(init)
    return init
