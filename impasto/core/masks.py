"""Region masks for spatial control (Gatys et al. 2017, Sec. 4).

A content mask is an image with one flat colour (or gray level) per region; regions are ordered
by gray level, darkest first, and region i is painted with style image i. A style mask marks,
in white, the part of a style image whose statistics are copied.

Masks drawn by hand are rarely perfectly flat: editors antialias edges and JPEG adds noise. The
regions are therefore the mask's *main* colours; a pixel of any other colour (an edge blend of
two regions, a JPEG artefact) joins the region of the nearest main colour. The palette is found
once, on the whole mask, so every scale of a coarse-to-fine run sees the same regions, even
where a thin region vanishes at a coarse size (its guide is then empty there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..image import fit_size, load_image

__all__ = [
    "MAX_REGIONS",
    "check_aspect",
    "check_masks",
    "load_mask",
    "mask_palette",
    "region_count",
    "region_guides",
    "style_guide",
]

MAX_REGIONS = 16
ANALYSIS_SIDE = 512  # the palette is found on the mask at most this large (nearest resampling)
NEAR = 24.0  # RGB distance within which a colour is noise around a main colour
BLEND = 8.0  # RGB distance from the segment between two main colours: an antialiased edge
MAX_BLEND_SHARE = 0.01  # ... unless the colour covers at least this much of the mask
MAX_STRAY_SHARE = 0.15  # more of the mask than this off the main colours: not a region mask
MIN_REGION_SHARE = 0.001  # a colour covering less of the mask is never a region of its own
_GRAY = np.array([0.299, 0.587, 0.114])


def check_aspect(mask: Image.Image, target: Image.Image, mask_name: str, target_name: str) -> None:
    """A mask must have its image's aspect ratio (within 2 %): it is resized to fit, never cropped."""
    ra, rb = mask.width / mask.height, target.width / target.height
    if abs(ra / rb - 1) > 0.02:
        raise ConfigError(
            f"{mask_name}: mask is {mask.width}x{mask.height}, which does not fit {target_name} "
            f"({target.width}x{target.height}): the aspect ratios differ"
        )


def check_masks(
    content: Image.Image,
    styles: Sequence[Image.Image],
    content_mask: Image.Image | None,
    style_masks: Sequence[Image.Image] | None,
    content_mask_name: str = "content mask",
) -> None:
    """Refuse, before any work, masks that do not fit their images.

    Each mask must have its image's aspect ratio, each style mask a white part, and the content
    mask one region per style image.
    """
    if style_masks is not None:
        for i, (m, s) in enumerate(zip(style_masks, styles, strict=True)):
            check_aspect(m, s, f"style mask {i + 1}", f"style image {i + 1}")
            style_guide(m, *fit_size(m.width, m.height, 64), name=f"style mask {i + 1}")  # refuses a mask with no white
    if content_mask is not None:
        check_aspect(content_mask, content, content_mask_name, "the content image")
        regions = region_count(content_mask, content_mask_name)
        if regions != len(styles):
            raise ConfigError(
                f"{content_mask_name}: {regions} region(s) for {len(styles)} style image(s): "
                "give one style image per region"
            )


def _blend_distance(colours: np.ndarray, main: np.ndarray) -> np.ndarray:
    """Distance of each colour (N, 3) to the nearest segment between two main colours (K, 3)."""
    best = np.full(len(colours), np.inf)
    for i in range(len(main)):
        for j in range(i + 1, len(main)):
            a, ab = main[i], main[j] - main[i]
            t = np.clip((colours - a) @ ab / max(float(ab @ ab), 1e-9), 0.0, 1.0)  # (N,)
            best = np.minimum(best, np.linalg.norm(a + t[:, None] * ab - colours, axis=1))
    return best


def mask_palette(mask: Image.Image, name: str = "mask") -> np.ndarray:
    """The main colours of a region mask, (K, 3) float, ordered by gray level, darkest first.

    Colours are taken by decreasing pixel count; one within ``NEAR`` of a main colour, or a
    small one on the line between two main colours (an antialiased edge), is not a region, nor
    is one covering less than ``MIN_REGION_SHARE`` of the mask.
    """
    small = mask.convert("RGB")
    if max(small.size) > ANALYSIS_SIDE:
        small = small.resize(fit_size(small.width, small.height, ANALYSIS_SIDE), Image.Resampling.NEAREST)
    rgb = np.asarray(small, dtype=np.int64).reshape(-1, 3)  # (H*W, 3)
    codes, counts = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2], return_counts=True)  # (N,)
    colours = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.float64)  # (N, 3)
    share = counts / counts.sum()
    main: list[np.ndarray] = []
    for k in np.argsort(-counts, kind="stable"):
        if share[k] < MIN_REGION_SHARE:
            break
        c = colours[k]
        if any(np.linalg.norm(c - m) <= NEAR for m in main):
            continue
        if share[k] < MAX_BLEND_SHARE and len(main) > 1 and _blend_distance(c[None], np.stack(main))[0] <= BLEND:
            continue
        main.append(c)
        if len(main) > MAX_REGIONS:
            raise ConfigError(
                f"{name}: more than {MAX_REGIONS} different colours, not a region mask (use one flat "
                "colour or gray level per region)"
            )
    if not main:
        raise ConfigError(f"{name}: no flat colour covers {MIN_REGION_SHARE:.1%} of the mask: not a region mask")
    palette = np.stack(main)  # (K, 3)
    near = np.sqrt(((colours[:, None] - palette[None]) ** 2).sum(axis=2)).min(axis=1) <= NEAR
    stray = ~near & (_blend_distance(colours, palette) > BLEND)
    if share[stray].sum() > MAX_STRAY_SHARE:
        raise ConfigError(
            f"{name}: {share[stray].sum():.0%} of the mask is not a flat region colour: not a region mask "
            "(use one flat colour or gray level per region)"
        )
    return palette[np.argsort(palette @ _GRAY, kind="stable")]


def region_count(mask: Image.Image, name: str = "mask") -> int:
    """Number of regions of a content mask."""
    return len(mask_palette(mask, name))


def region_guides(mask: Image.Image, width: int, height: int, name: str = "mask") -> list[torch.Tensor]:
    """One guide (1, 1, H, W) in {0, 1} per region of ``mask`` (darkest first), at width x height.

    The mask is resized with nearest-neighbour resampling and each pixel joins the region of the
    nearest main colour, so the guides partition the image.
    """
    palette = mask_palette(mask, name)  # (K, 3)
    small = mask.convert("RGB").resize((width, height), Image.Resampling.NEAREST)
    pixels = np.asarray(small, dtype=np.float64).reshape(-1, 1, 3)  # (H*W, 1, 3)
    labels = np.argmin(((pixels - palette[None]) ** 2).sum(axis=2), axis=1).reshape(height, width)  # (H, W)
    return [torch.from_numpy((labels == k).astype(np.float32))[None, None] for k in range(len(palette))]


def style_guide(mask: Image.Image, width: int, height: int, name: str = "style mask") -> torch.Tensor:
    """(1, 1, H, W) guide in 0..1 from a style mask's gray levels (white = use this part)."""
    small = mask.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    guide = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)[None, None]
    if float(guide.max()) < 0.5:
        raise ConfigError(f"{name}: no white part: mark the part of the style image to copy in white")
    return guide


def load_mask(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Read a mask image with the same checks as any input image."""
    return load_image(path) if max_pixels is None else load_image(path, max_pixels=max_pixels)
