"""Writing an output image: where it may go, atomic PNG/JPEG/WebP files, the parameters embedded.

An output leaves with the parameters that made it embedded (a PNG text chunk, or EXIF
ImageDescription for JPEG and WebP), written to a temporary file and renamed (:mod:`impasto.atomic`);
:func:`read_params` reads them back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ..atomic import new_temp
from ..errors import InputError

__all__ = [
    "DEFAULT_QUALITY",
    "OUTPUT_FORMATS",
    "check_output_path",
    "encode_png",
    "output_folder",
    "params_text",
    "read_params",
    "save_image",
]

DEFAULT_QUALITY = 95  # of JPEG and WebP outputs: Options.quality's default
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
PARAMS_KEY = "impasto"
_EXIF_DESCRIPTION = 0x010E


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
