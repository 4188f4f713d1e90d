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
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int, bold: bool = False) -> Font:
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


def _ascii_fallback(text: str, font: Font) -> str:
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


@dataclass
class _Sheet:
    """Where everything goes on a grid's sheet, in px, and the fonts it is written in."""

    side: int  # a panel's longest side; each panel sits in a cell of cw x ch
    cw: int
    ch: int
    pad: int
    bold: Font
    small: Font
    title_font: Font
    label_w: int  # the row labels' column
    head_h: int  # the column heads' row
    cap_h: int  # below each panel, for its caption
    title_h: int
    foot_text: str  # the footer, wrapped to the sheet's width
    foot_h: int
    width: int
    height: int


def _text_size(probe: ImageDraw.ImageDraw, text: str, f: Font) -> tuple[int, int]:
    if not text:
        return 0, 0
    box = probe.multiline_textbbox((0, 0), _ascii_fallback(text, f), font=f, spacing=2)
    return int(box[2] - box[0]), int(box[3] - box[1])


def _measure(
    rows: Sequence[Sequence[Cell]],
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    footer: str,
    cell_size: int | None,
) -> _Sheet:
    """The sizes of the cells, labels, title and footer of :func:`make_grid`'s sheet."""
    images = [c.image for row in rows for c in row if c.image is not None]
    side = max(cell_size or max(max(im.size) for im in images), MIN_CELL)
    cw = side
    ch = max((round(im.height * side / max(im.size)) for im in images), default=side)
    fs = max(11, round(side / 11))
    bold, small = _font(fs, bold=True), _font(max(10, fs - 2))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = max(4, fs // 2)
    n_cols = max(len(r) for r in rows)
    cap_h = max((_text_size(probe, c.caption, small)[1] for r in rows for c in r), default=0)
    cap_h = cap_h + pad if cap_h else 0
    label_w = max((_text_size(probe, t, bold)[0] for t in row_labels), default=0)
    label_w = label_w + 2 * pad if label_w else 0
    head_h = max((_text_size(probe, t, bold)[1] for t in col_labels), default=0)
    head_h = head_h + pad if head_h else 0
    title_font = _font(round(fs * 1.3), bold=True)
    width = label_w + n_cols * (cw + pad) + pad
    title_h = _text_size(probe, title, title_font)[1] + 2 * pad
    foot_text = _wrap(footer, width - 2 * pad, lambda text: _text_size(probe, text, small)[0])
    foot_h = _text_size(probe, foot_text, small)[1] + 2 * pad if foot_text else 0
    height = title_h + head_h + len(rows) * (ch + cap_h + pad) + foot_h + pad
    return _Sheet(side, cw, ch, pad, bold, small, title_font, label_w, head_h, cap_h, title_h, foot_text, foot_h,
                  width, height)  # fmt: skip


def _put(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, f: Font, anchor: str) -> None:
    draw.multiline_text(xy, _ascii_fallback(text, f), fill="black", font=f, anchor=anchor, spacing=2, align="center")


def _draw_rows(
    sheet: Image.Image, m: _Sheet, rows: Sequence[Sequence[Cell]], row_labels: Sequence[str], y0: int
) -> None:
    """The rows from ``y0`` down: each one's label, then its panels with their captions."""
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        y = y0 + i * (m.ch + m.cap_h + m.pad)
        if i < len(row_labels):
            _put(draw, (m.label_w / 2, y + m.ch / 2), row_labels[i], m.bold, "mm")
        for j, cell in enumerate(row):
            x = m.label_w + m.pad + j * (m.cw + m.pad)
            if cell.image is not None:
                im = cell.image
                if max(im.size) != m.side:
                    im = resize(im, m.side)
                sheet.paste(im, (x + (m.cw - im.width) // 2, y + (m.ch - im.height) // 2))
                if cell.caption:
                    _put(draw, (x + m.cw / 2, y + m.ch + m.pad // 2), cell.caption, m.small, "ma")
            elif cell.caption:
                _put(draw, (x + m.cw / 2, y + m.ch / 2), cell.caption, m.small, "mm")


def make_grid(
    rows: Sequence[Sequence[Cell]],
    title: str,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    footer: str = "",
    cell_size: int | None = None,
) -> Image.Image:
    """A white sheet with the panels in a table: title, column heads, row labels, captions, footer."""
    m = _measure(rows, title, row_labels, col_labels, footer, cell_size)
    sheet = Image.new("RGB", (m.width, m.height), "white")
    draw = ImageDraw.Draw(sheet)
    _put(draw, (m.width / 2, m.pad), title, m.title_font, "ma")
    for j, text in enumerate(col_labels):
        _put(draw, (m.label_w + m.pad + j * (m.cw + m.pad) + m.cw / 2, m.title_h), text, m.bold, "ma")
    _draw_rows(sheet, m, rows, row_labels, m.title_h + m.head_h)
    if m.foot_text:
        foot = _ascii_fallback(m.foot_text, m.small)
        draw.multiline_text((m.pad, m.height - m.foot_h), foot, fill=(60, 60, 60), font=m.small, spacing=2)
    return sheet
