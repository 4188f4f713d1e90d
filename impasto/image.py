"""Reading and writing images: every common format and mode in, atomic PNG/JPEG/WebP out.

Images enter as RGB (EXIF orientation applied, alpha composited on white, CMYK, palette,
grayscale and 16-bit converted) and leave with the parameters that made them embedded:
a PNG text chunk, or EXIF ImageDescription for JPEG and WebP.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .atomic import new_temp
from .errors import ConfigError, InputError, register_fields

DEFAULT_QUALITY = 95  # of JPEG and WebP outputs: Options.quality's default

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "OUTPUT_FORMATS",
    "check_output_path",
    "encode_png",
    "fit_size",
    "load_image",
    "output_folder",
    "params_text",
    "pil_to_tensor",
    "read_params",
    "resize",
    "save_image",
    "tensor_to_pil",
]

register_fields("max_pixels")  # the parameters its errors name (errors.py)

DEFAULT_MAX_PIXELS = 50_000_000  # about 7000 x 7000; larger files are refused as decompression bombs
MIN_SIDE = 16  # smallest side, px, of an input image: conv5_1 is 16x smaller than the image
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
PARAMS_KEY = "impasto"
_EXIF_DESCRIPTION = 0x010E


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


def _target(path: str | os.PathLike[str]) -> Path:
    """``path`` as an output file: a supported extension, in an existing folder, not a folder itself."""
    p = Path(path)
    if p.suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(
            f"{p}: unsupported output format '{p.suffix or '(none)'}' (use {', '.join(sorted(OUTPUT_FORMATS))})"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError(f"{p}: output folder '{parent}' does not exist")
    if not parent.is_dir():
        raise InputError(f"{p}: '{parent}' is not a folder")
    if p.is_dir():
        raise InputError(f"{p}: is a directory")
    return p


def output_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """The output folder ``path``, created if missing when its parent exists: the one rule of every
    command is that impasto makes the folder it is told to write into, never a missing parent."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder (the {what})")
    if not out.exists():
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(
                f"{out}: its parent folder '{parent}' does not exist (impasto makes the {what}, not its parents)"
            )
        try:
            out.mkdir(exist_ok=True)
        except OSError as exc:
            raise InputError(f"{out}: cannot create the {what} ({exc.strerror or exc})") from None
    return out


def check_output_path(path: str | os.PathLike[str], need_bytes: int = 0, needs: str = "the output needs") -> Path:
    """Fail early, before any work, on an output path that cannot be written.

    Beyond the checks of :func:`save_image` (extension, folder), a file is created in the folder
    and removed again, so that a folder without write permission or on a read-only or pseudo
    filesystem (``/proc``) is found now, and the folder must have ``need_bytes`` free (``needs``
    says for what, in the message).
    """
    p = _target(path)
    try:
        fd, probe = _new_file(p.parent, p.name)
        probe.unlink()  # while it is ours (locked): impasto.atomic
        os.close(fd)
    except OSError as exc:
        raise InputError(f"{p}: cannot create files in '{p.parent}' ({exc.strerror or exc})") from None
    if need_bytes > 0:
        free = shutil.disk_usage(p.parent).free
        if free < need_bytes:
            raise InputError(f"{p}: only {free / 1e6:.1f} MB free in '{p.parent}', {needs} about {_mb(need_bytes)}")
    return p


def _mb(n: int) -> str:
    """Bytes needed, for a message: ``1.2 MB``; ``37 kB`` below 0.1 MB (not "about 0.0 MB")."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 or n == 0 else f"{n / 1e3:.0f} kB"


def _new_file(folder: Path, name: str) -> tuple[int, Path]:
    """A new hidden temporary for ``folder/name``, locked, as a plain ``open()`` would create it:
    :func:`impasto.atomic.new_temp` (which first removes the stale ones a killed run left).
    :func:`tempfile.mkstemp` would make it 0o600, and that mode would leak into the renamed output."""
    return new_temp(folder, name)


def params_text(params: dict[str, Any] | None) -> str:
    """The text impasto embeds in an image: ``params`` as JSON, keys sorted (what :func:`read_params` reads)."""
    return json.dumps(params or {}, sort_keys=True, default=str)


def _png_info(params: dict[str, Any] | None) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMS_KEY, params_text(params))
    return info


def encode_png(img: Image.Image, params: dict[str, Any] | None, compress_level: int = 6) -> bytes:
    """The PNG file of ``img`` with ``params`` embedded as :func:`save_image` embeds them, as bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=_png_info(params), compress_level=compress_level)
    return buf.getvalue()


def save_image(
    img: Image.Image,
    path: str | os.PathLike[str],
    params: dict[str, Any] | None = None,
    quality: int = DEFAULT_QUALITY,
) -> Path:
    """Write ``img`` by extension with ``params`` embedded, atomically (temp file, then rename).

    ``quality`` (1-100) is that of JPEG and WebP files; PNG is lossless. The parameters of a print
    (``print`` and ``dpi``) give a PNG or JPEG its resolution, so that it opens at its paper size.

    A new file gets the mode a plain ``open()`` would give it; a replaced file keeps its mode.
    """
    p = _target(path)
    fmt = OUTPUT_FORMATS[p.suffix.lower()]
    kwargs: dict[str, Any] = {}
    if params and params.get("print") is not None and isinstance(params.get("dpi"), int) and fmt in ("PNG", "JPEG"):
        kwargs["dpi"] = (params["dpi"], params["dpi"])  # a print: the file says its size on paper too
    if fmt == "PNG":
        kwargs["pnginfo"] = _png_info(params)
    else:
        exif = Image.Exif()
        exif[_EXIF_DESCRIPTION] = f"{PARAMS_KEY}:{params_text(params)}"
        kwargs["exif"] = exif.tobytes()
        kwargs["quality"] = quality
    try:
        fd, tmp = _new_file(p.parent, p.name)
    except OSError as exc:
        raise InputError(f"{p}: cannot write to '{p.parent}' ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:  # open (and so locked: impasto.atomic) until renamed
            img.save(fh, format=fmt, **kwargs)
            fh.flush()
            with contextlib.suppress(FileNotFoundError):  # replacing a file: keep its mode, as open() would
                os.chmod(tmp, stat.S_IMODE(os.stat(p).st_mode))
            os.replace(tmp, p)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # disk full, permissions, ...: an output problem, not a crash
            raise InputError(f"{p}: cannot write the image ({exc.strerror or exc})") from None
        raise
    return p


def read_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parameters impasto embedded in an output image ({} if there are none)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found" if not p.exists() else f"{p}: not a file")
    try:
        with Image.open(p) as img:
            text = img.info.get(PARAMS_KEY) if img.format == "PNG" else None
            if text is None:
                desc = img.getexif().get(_EXIF_DESCRIPTION)
                if isinstance(desc, str) and desc.startswith(PARAMS_KEY + ":"):
                    text = desc[len(PARAMS_KEY) + 1 :]
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{p}: not a readable image ({exc})") from None
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(f"{p}: embedded impasto parameters are corrupt") from None
    return data if isinstance(data, dict) else {}
