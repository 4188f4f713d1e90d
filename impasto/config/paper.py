"""Print sizes: ISO 216 paper names and ``WxHcm`` / ``WxHin``, at a resolution in dots per inch.

``print`` names the paper (``A2``, ``50x70cm``, ``24x36in``) and ``dpi`` its resolution; together
they give the output's longest side in pixels, ``round(mm / 25.4 * dpi)`` of the paper's long side
(A0 at 300 dpi: 14043 px). The image keeps the photo's aspect ratio and its orientation (a
landscape photo makes a landscape print): its long side is the paper's long side, and its short
side follows the photo, so it fills the paper exactly only when the photo has the paper's aspect
(ISO A sizes: 1.414). :func:`on_paper` says how the image then sits on the paper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError, did_you_mean

__all__ = ["DPI_RANGE", "ISO_A", "MM_PER_INCH", "Paper", "on_paper", "parse_paper", "print_side"]

MM_PER_INCH = 25.4
DPI_RANGE = (50, 1200)  # below: a screen, not a print; above: no printer resolves it, the pixels only cost time
# ISO 216 A sizes, (short, long) in mm.
ISO_A: dict[str, tuple[float, float]] = {
    "A0": (841, 1189),
    "A1": (594, 841),
    "A2": (420, 594),
    "A3": (297, 420),
    "A4": (210, 297),
}
_UNIT_MM = {"cm": 10.0, "mm": 1.0, "in": MM_PER_INCH}
_MEASURE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*[x×]\s*([0-9]*\.?[0-9]+)\s*(cm|mm|in)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Paper:
    """A paper size: its name as given (``A0``, ``50x70cm``) and its sides in mm, short first."""

    name: str
    short_mm: float
    long_mm: float

    def pixels(self, dpi: int) -> tuple[int, int]:
        """(short, long) sides in pixels at ``dpi``: ``round(mm / 25.4 * dpi)`` each."""
        return round(self.short_mm / MM_PER_INCH * dpi), round(self.long_mm / MM_PER_INCH * dpi)


def parse_paper(text: str) -> Paper:
    """``A0``..``A4`` (any case), ``WxHcm``, ``WxHmm`` or ``WxHin`` as a :class:`Paper` (a ConfigError if not).

    The order of W and H does not matter: the print takes the photo's orientation.
    """
    name = text.strip()
    if name.upper() in ISO_A:
        short, long = ISO_A[name.upper()]
        return Paper(name.upper(), short, long)
    m = _MEASURE.fullmatch(name)
    if m is None:
        hint = did_you_mean(name.upper(), ISO_A) if name[:1].lower() == "a" else ""
        raise ConfigError(
            f"`print`: unknown paper size '{name[:40]}'{hint}: A0 to A4, or WxH in cm, mm or in (e.g. 50x70cm, 24x36in)"
        )
    a, b = (float(m[1]) * _UNIT_MM[m[3].lower()], float(m[2]) * _UNIT_MM[m[3].lower()])
    if min(a, b) <= 0:
        raise ConfigError(f"`print`: both sides must be > 0, got '{name[:40]}'")
    return Paper(f"{m[1]}x{m[2]}{m[3].lower()}", min(a, b), max(a, b))


def print_side(print_size: str, dpi: int) -> int:
    """The output's longest side in pixels for paper ``print_size`` at ``dpi`` (the paper's long side)."""
    return parse_paper(print_size).pixels(dpi)[1]


def on_paper(paper: Paper, dpi: int, size: tuple[int, int]) -> str:
    """How an image of ``size`` (width, height) px sits on ``paper`` at ``dpi``, in words."""
    short_px = min(paper.pixels(dpi))
    w, h = size
    short = min(w, h)
    cm = f"{w / dpi * 2.54:.1f} x {h / dpi * 2.54:.1f} cm"
    if abs(short - short_px) <= 1:
        return f"{cm}: fills the paper"
    if short < short_px:
        margin = (short_px - short) / dpi * 25.4
        return f"{cm}: the photo is longer than the paper, {margin:.0f} mm of the short side stays blank"
    over = (short - short_px) / dpi * 25.4
    return f"{cm}: the photo is squarer than the paper, {over:.0f} mm of its short side goes past the paper (trim it)"
