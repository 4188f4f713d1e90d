"""Labelled grids of images: the sheets of ``impasto reproduce`` and of the look evaluation.

:func:`make_grid` lays panels (:class:`Cell`) out in a table on white, with a title, column heads,
row labels, captions and a footer wrapped to the sheet's width, in DejaVu Sans where the system has
it (Greek letters, umlauts) and in ASCII spelling where it has not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .image import resize

__all__ = ["MIN_CELL", "Cell", "make_grid"]

MIN_CELL = 128  # panels are shown at least this large, so that labels stay legible next to them


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans if the system has it (Greek letters, umlauts), else Pillow's default font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for base in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/Library/Fonts", "C:/Windows/Fonts"):
        try:
            return ImageFont.truetype(str(Path(base) / name), size)
        except OSError:
            continue
    try:
        return ImageFont.truetype(name, size)  # on the font path
    except OSError:
        return ImageFont.load_default(size=size)


def _ascii_fallback(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    """Replace α, β, ü, … by ASCII when the font cannot draw them."""
    if isinstance(font, ImageFont.FreeTypeFont) and "DejaVu" in (font.getname()[0] or ""):
        return text
    return text.replace("α/β", "alpha/beta").replace("ü", "ue").replace("…", "...").replace("–", "-").replace("×", "x")


def _wrap(text: str, width: int, measure: Callable[[str], int]) -> str:
    """``text`` broken into lines at most ``width`` wide (``measure``: a line's width), word by word."""
    lines: list[str] = []
    for para in text.split("\n") if text else []:
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if measure(trial) > width and line:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return "\n".join(lines)


@dataclass
class Cell:
    """One panel of a grid: an image (or None for text only) and a caption below it."""

    image: Image.Image | None
    caption: str = ""


def make_grid(
    rows: Sequence[Sequence[Cell]],
    title: str,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    footer: str = "",
    cell_size: int | None = None,
) -> Image.Image:
    """A white sheet with the panels in a table: title, column heads, row labels, captions, footer."""
    images = [c.image for row in rows for c in row if c.image is not None]
    side = max(cell_size or max(max(im.size) for im in images), MIN_CELL)
    cw = side
    ch = max((round(im.height * side / max(im.size)) for im in images), default=side)
    fs = max(11, round(side / 11))
    bold, small = _font(fs, bold=True), _font(max(10, fs - 2))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str, f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
        if not text:
            return 0, 0
        box = probe.multiline_textbbox((0, 0), _ascii_fallback(text, f), font=f, spacing=2)
        return int(box[2] - box[0]), int(box[3] - box[1])

    pad = max(4, fs // 2)
    n_cols = max(len(r) for r in rows)
    cap_h = max((text_size(c.caption, small)[1] for r in rows for c in r), default=0)
    cap_h = cap_h + pad if cap_h else 0
    label_w = max((text_size(t, bold)[0] for t in row_labels), default=0)
    label_w = label_w + 2 * pad if label_w else 0
    head_h = max((text_size(t, bold)[1] for t in col_labels), default=0)
    head_h = head_h + pad if head_h else 0
    title_font = _font(round(fs * 1.3), bold=True)
    width = label_w + n_cols * (cw + pad) + pad
    title_h = text_size(title, title_font)[1] + 2 * pad
    foot_text = _wrap(footer, width - 2 * pad, lambda text: text_size(text, small)[0])
    foot_h = text_size(foot_text, small)[1] + 2 * pad if foot_text else 0
    height = title_h + head_h + len(rows) * (ch + cap_h + pad) + foot_h + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)

    def put(xy: tuple[float, float], text: str, f: ImageFont.FreeTypeFont | ImageFont.ImageFont, anchor: str) -> None:
        draw.multiline_text(
            xy, _ascii_fallback(text, f), fill="black", font=f, anchor=anchor, spacing=2, align="center"
        )

    put((width / 2, pad), title, title_font, "ma")
    y0 = title_h
    for j, text in enumerate(col_labels):
        put((label_w + pad + j * (cw + pad) + cw / 2, y0), text, bold, "ma")
    y0 += head_h
    for i, row in enumerate(rows):
        y = y0 + i * (ch + cap_h + pad)
        if i < len(row_labels):
            put((label_w / 2, y + ch / 2), row_labels[i], bold, "mm")
        for j, cell in enumerate(row):
            x = label_w + pad + j * (cw + pad)
            if cell.image is not None:
                im = cell.image
                if max(im.size) != side:
                    im = resize(im, side)
                sheet.paste(im, (x + (cw - im.width) // 2, y + (ch - im.height) // 2))
                if cell.caption:
                    put((x + cw / 2, y + ch + pad // 2), cell.caption, small, "ma")
            elif cell.caption:
                put((x + cw / 2, y + ch / 2), cell.caption, small, "mm")
    if foot_text:
        draw.multiline_text(
            (pad, height - foot_h), _ascii_fallback(foot_text, small), fill=(60, 60, 60), font=small, spacing=2
        )
    return sheet
