"""Reading an input image: every common format and mode in, as RGB; its size and its tensor.

Images enter as RGB (EXIF orientation applied, alpha composited on white, CMYK, palette,
grayscale and 16-bit converted), refused with one line naming the file when they are not a sound,
reasonably sized image; :func:`resize` and the tensor conversions take them to the network and back.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, InputError

__all__ = ["DEFAULT_MAX_PIXELS", "MIN_SIDE", "fit_size", "load_image", "pil_to_tensor", "resize", "tensor_to_pil"]

DEFAULT_MAX_PIXELS = 50_000_000  # about 7000 x 7000; larger files are refused as decompression bombs
MIN_SIDE = 16  # smallest side, px, of an input image: conv5_1 is 16x smaller than the image


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read an image file as RGB, refusing anything that is not a sound, reasonably sized image.

    Raises :class:`InputError` whose message names the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not an image")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    try:
        with contextlib.ExitStack() as stack, warnings.catch_warnings():
            # Our own limit (checked just below, before decoding) replaces Pillow's warning, so
            # that raising --max-pixels past Pillow's ~89 Mpx threshold works.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns of damage it reads past ("Corrupt EXIF data", "Truncated File Read"): the
            # image either decodes (and is what it is) or fails below with one line.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            src = stack.enter_context(Image.open(p))  # closed on every path (an animation keeps it open)
            w, h = src.size
            if w * h > max_pixels:
                raise InputError(
                    f"{p}: image is {w}x{h} = {w * h:,} px, over the limit of {max_pixels:,} px "
                    "(raise it with `max_pixels`)"
                )
            src.seek(0)  # first frame of an animation
            src.load()
            img = src
            with contextlib.suppress(Exception):  # a malformed EXIF block must not stop us: keep the stored orientation
                img = ImageOps.exif_transpose(src) or src
            img = _to_rgb(img)
            if img is src:  # still backed by the file, which the with-block closes
                img = src.copy()
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{p}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{p}: image over Pillow's decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{p}: truncated or corrupt image ({exc})") from None
    if min(img.size) < MIN_SIDE:
        raise InputError(
            f"{p}: image is {img.width}x{img.height} px, too small: the network needs at least {MIN_SIDE} px per side"
        )
    return img


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """(width, height) scaled so that the longest side is ``longest`` px, keeping the aspect."""
    if longest <= 0:
        raise ConfigError(f"size must be a positive number of pixels, got {longest}")
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(img: Image.Image, longest: int) -> Image.Image:
    """Resize so that the longest side is ``longest`` px.

    Antialiased bilinear, as the peers use; a no-op at the same size.
    """
    size = fit_size(img.width, img.height, longest)
    return img if size == img.size else img.resize(size, Image.Resampling.BILINEAR)


def pil_to_tensor(img: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB PIL image -> float tensor (1, 3, H, W) with values 0..255."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor with values 0..255 -> RGB PIL image (rounded, clamped)."""
    x = x.detach().float().reshape(-1, *x.shape[-2:])  # (3, H, W)
    arr = x.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, mode="RGB")
