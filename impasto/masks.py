"""Region masks for spatial control (Gatys et al. 2017, Sec. 4).

A content mask is an image with one flat colour (or gray level) per region; regions are ordered
by gray level, darkest first, and region i is painted with style image i. A style mask marks,
in white, the part of a style image whose statistics are copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import ConfigError
from .image import load_image

__all__ = ["MAX_REGIONS", "check_aspect", "region_guides", "style_guide"]

MAX_REGIONS = 16


def check_aspect(mask: Image.Image, target: Image.Image, mask_name: str, target_name: str) -> None:
    """A mask must have its image's aspect ratio (within 2 %): it is resized to fit, never cropped."""
    ra, rb = mask.width / mask.height, target.width / target.height
    if abs(ra / rb - 1) > 0.02:
        raise ConfigError(
            f"{mask_name}: mask is {mask.width}x{mask.height}, which does not fit {target_name} "
            f"({target.width}x{target.height}): the aspect ratios differ"
        )


def region_guides(mask: Image.Image, width: int, height: int, name: str = "mask") -> list[torch.Tensor]:
    """One guide (1, 1, H, W) in {0, 1} per region of ``mask``, resized (nearest) to width x height."""
    small = mask.convert("RGB").resize((width, height), Image.Resampling.NEAREST)
    arr = np.asarray(small).reshape(-1, 3)
    colours, labels = np.unique(arr, axis=0, return_inverse=True)
    if len(colours) > MAX_REGIONS:
        raise ConfigError(
            f"{name}: {len(colours)} different colours, not a region mask (at most {MAX_REGIONS} flat "
            "colours; save masks as PNG, not JPEG)"
        )
    gray = colours @ np.array([0.299, 0.587, 0.114])
    order = np.argsort(gray, kind="stable")
    labels = labels.reshape(height, width)
    return [torch.from_numpy((labels == k).astype(np.float32))[None, None] for k in order]


def style_guide(mask: Image.Image, width: int, height: int) -> torch.Tensor:
    """(1, 1, H, W) guide in 0..1 from a style mask's gray levels (white = use this part)."""
    small = mask.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)[None, None]


def load_mask(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Read a mask image with the same checks as any input image."""
    return load_image(path) if max_pixels is None else load_image(path, max_pixels=max_pixels)
