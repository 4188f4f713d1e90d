"""Images in and out of the studio: checked uploads, the bundled examples.

Uploaded bytes are written under a server-chosen name (the client's file name is kept only as a
label for the page) and must decode with :func:`impasto.image.load_image`.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..data import data_dir
from ..errors import ImpastoError, InputError
from ..image import load_image

__all__ = [
    "Example",
    "StorageFull",
    "StoredImage",
    "TooLarge",
    "example_path",
    "examples",
    "plain_text",
    "safe_label",
    "store_image",
    "thumbnail",
]

THUMB_SIDE = 256


class TooLarge(InputError):
    """An upload over the size limit (HTTP 413)."""


class StorageFull(ImpastoError):
    """The studio cannot make a job folder or write an upload to it: a full disk, mostly (HTTP 507)."""


@dataclass(frozen=True)
class StoredImage:
    """An accepted input image, on disk under a server-chosen name."""

    path: Path
    label: str  # for display only: the client's file name or the example's name
    example: str | None  # the bundled example's name, if it is one
    width: int
    height: int
    media_type: str


@dataclass(frozen=True)
class Example:
    """A bundled image and its credit line."""

    name: str
    title: str
    author: str
    licence: str


def plain_text(markdown: str) -> str:
    """A line of Markdown as plain text (for a tooltip): links keep their text; emphasis and code marks go."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)  # [text](url)
    for mark in (r"\*", "_"):  # *em*, **strong**, _em_; not 2*3*4 or snake_case
        text = re.sub(rf"(?<![\w{mark}])({mark}{{1,3}})(?=\S)(.+?)(?<=\S)\1(?![\w{mark}])", r"\2", text)
    return re.sub(r"`([^`]*)`", r"\1", text)


@functools.cache
def examples() -> tuple[Example, ...]:
    """The bundled images (impasto/data/*.jpg) with the credits of data/CREDITS.md, as plain text."""
    credits: dict[str, tuple[str, str, str]] = {}
    credits_file = data_dir() / "CREDITS.md"
    text = credits_file.read_text(encoding="utf-8") if credits_file.is_file() else ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].endswith(".jpg"):
            credits[cells[0][: -len(".jpg")]] = (plain_text(cells[1]), plain_text(cells[2]), plain_text(cells[3]))
    out = []
    for path in sorted(data_dir().glob("*.jpg")):
        title, author, licence = credits.get(path.stem, (path.stem.replace("_", " "), "", ""))
        out.append(Example(path.stem, title, author, licence))
    return tuple(out)


def example_path(name: str) -> Path:
    """The file of a bundled example; only names from :func:`examples` are accepted."""
    names = {e.name for e in examples()}
    if name not in names:
        from ..errors import did_you_mean

        raise InputError(f"no bundled example '{name[:40]}'{did_you_mean(name, sorted(names))}")
    return data_dir() / f"{name}.jpg"


@functools.lru_cache(maxsize=64)
def thumbnail(name: str) -> bytes:
    """A JPEG of a bundled example, at most THUMB_SIDE px on its longest side."""
    img = load_image(example_path(name))
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def safe_label(name: str | None, fallback: str) -> str:
    """A client's file name, reduced to something harmless to show (never used as a path)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()[:80]
    return base or fallback


def store_image(data: bytes, dest: Path, label: str, role: str, max_pixels: int) -> StoredImage:
    """Write ``data`` to ``dest`` and check that it is a sound image within ``max_pixels``.

    Raises :class:`InputError` naming ``role`` and ``label``, never the server path.
    """
    if not data:
        raise InputError(f"{role} '{label}': file is empty")
    try:
        dest.write_bytes(data)
    except OSError as exc:
        dest.unlink(missing_ok=True)  # what part of it was written
        raise StorageFull(f"{role} '{label}': the studio cannot store it ({exc.strerror or exc})") from None
    try:
        img = load_image(dest, max_pixels=max_pixels)
        with Image.open(dest) as raw:
            fmt = raw.format or ""
    except InputError as exc:
        dest.unlink(missing_ok=True)
        message = exc.args[0].replace(f"{dest}: ", "").replace(str(dest), "the file")  # fields still `named`
        raise InputError(f"{role} '{label}': {message}") from None
    media_type = Image.MIME.get(fmt, "application/octet-stream")
    return StoredImage(dest, label, None, img.width, img.height, media_type)
