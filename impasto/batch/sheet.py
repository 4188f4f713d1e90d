"""The contact sheet of a batch: ``OUT_DIR/contact.png`` (a grid) and ``OUT_DIR/index.html``.

One row per photo, one column per (painting, swept values). The first column shows each row's photo
and the first row each column's painting, so an output is seen next to what it was made from; each
cell is labelled with its swept values. Cells are as large as the outputs, at most ``THUMB`` px:
a thumbnail is never enlarged (a 64-px output stays 64 px). Failed items show their reason.
"""

from __future__ import annotations

import base64
import html
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..atomic import write_atomic
from .manifest import Manifest
from .plan import Item

__all__ = ["CONTACT_NAME", "INDEX_NAME", "THUMB", "write_sheet"]

CONTACT_NAME = "contact.png"
INDEX_NAME = "index.html"
THUMB = 192  # longest side of a thumbnail at most, px
MIN_COL = 96  # narrowest column, px: room for a label beside a small thumbnail
LABEL_H = 30  # two lines of the default font
PAD = 8
CHAR_W = 6  # the default font's advance, px


def _grid(items: list[Item]) -> tuple[list[str], list[str], dict[tuple[str, str], Item]]:
    rows: dict[str, None] = {}
    cols: dict[str, None] = {}
    cells = {}
    for item in items:
        row = item.content
        col = item.style + "".join(f" {k}={v}" for k, v in item.sweep)
        rows[row], cols[col] = None, None
        cells[(row, col)] = item
    return list(rows), list(cols), cells


def _thumb(path: Path, side: int) -> Image.Image | None:
    """The image at ``path`` as RGB, shrunk to fit ``side`` px (never enlarged); None if unreadable."""
    from ..errors import InputError
    from ..image import load_image

    try:
        img = load_image(path)
    except InputError:
        return None
    img.thumbnail((side, side), Image.Resampling.LANCZOS)  # only ever shrinks
    return img


def _data_uri(img: Image.Image) -> str:
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


class _Sheet:
    """The grid being drawn: a header row and column of inputs, then the outputs."""

    def __init__(self, n_rows: int, n_cols: int, cell: int) -> None:
        self.cell, self.col_w, self.row_h = cell, max(cell, MIN_COL), cell + LABEL_H
        size = ((n_cols + 1) * (self.col_w + PAD) + PAD, (n_rows + 1) * (self.row_h + PAD) + PAD)
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default()

    def put(self, r: int, c: int, img: Image.Image | None, lines: tuple[str, str], why: str = "") -> None:
        """Cell (r, c) of the grid, the inputs' row and column included (0)."""
        x, y = PAD + c * (self.col_w + PAD), PAD + r * (self.row_h + PAD)
        chars = self.col_w // CHAR_W
        if img is not None:
            self.image.paste(img, (x + (self.col_w - img.width) // 2, y + (self.cell - img.height) // 2))
        else:
            self.draw.rectangle((x, y, x + self.col_w - 1, y + self.cell - 1), outline="red")
            self.draw.text((x + 4, y + 4), why[:chars], fill="red", font=self.font)
        self.draw.text((x, y + self.cell + 2), lines[0][:chars], fill="black", font=self.font)
        self.draw.text((x, y + self.cell + 15), lines[1][:chars], fill="black", font=self.font)


def _cell_side(manifest: Manifest, items: list[Item]) -> int:
    """The outputs' longest side (at most THUMB): the sheet's cells are no larger than what they show."""
    side = 0
    for item in items:
        entry = manifest.entries.get(item.id)
        if entry is not None and entry.output and manifest.is_done(item):
            with Image.open(manifest.out_dir / entry.output) as img:
                side = max(side, *img.size)
    return min(THUMB, side or THUMB)


def write_sheet(manifest: Manifest, items: list[Item]) -> tuple[Path, Path]:
    """Write the grid and the page for ``items`` as the manifest records them; return their paths."""
    rows, cols, cells = _grid(items)
    grid = _Sheet(len(rows), len(cols), _cell_side(manifest, items))
    inputs = {p: _thumb(Path(p), grid.cell) for p in dict.fromkeys([*rows, *(i.style for i in items)])}
    head = ["<tr><td></td>"]
    for c, col in enumerate(cols, start=1):
        first = next(cells[(r, col)] for r in rows if (r, col) in cells)
        swept = "  ".join(f"{k}={v}" for k, v in first.sweep)
        grid.put(0, c, inputs.get(first.style), (Path(first.style).stem, swept), "unreadable")
        head.append(f"<th>{_input_html(inputs.get(first.style), Path(first.style).name)}<br>{html.escape(swept)}</th>")
    page_rows = ["".join(head) + "</tr>"]
    for r, row in enumerate(rows, start=1):
        grid.put(r, 0, inputs.get(row), (Path(row).stem, ""), "unreadable")
        page_cells = [f"<th>{_input_html(inputs.get(row), Path(row).name)}</th>"]
        for c, col in enumerate(cols, start=1):
            item = cells.get((row, col))
            page_cells.append("<td></td>" if item is None else _output_cell(grid, manifest, item, r, c))
        page_rows.append("<tr>" + "".join(page_cells) + "</tr>")
    contact, index = manifest.out_dir / CONTACT_NAME, manifest.out_dir / INDEX_NAME
    buf = BytesIO()
    grid.image.save(buf, format="PNG")
    write_atomic(contact, buf.getvalue())
    page = (
        '<!doctype html><meta charset="utf-8"><title>impasto batch</title>'
        "<style>body{font-family:sans-serif}td,th{vertical-align:top;padding:6px;font-size:13px;font-weight:normal}"
        f"img{{max-width:{THUMB}px;max-height:{THUMB}px}}"  # shrinks large outputs, never enlarges small ones
        f".missing{{width:{grid.cell}px;height:{grid.cell}px;border:1px solid red;color:red}}</style>"
        f"<h1>impasto batch: {manifest.count('done')} done, {manifest.count('failed')} failed</h1>"
        f'<p><a href="{CONTACT_NAME}">contact sheet</a></p><table>' + "".join(page_rows) + "</table>\n"
    )
    write_atomic(index, page.encode())
    return contact, index


def _input_html(thumb: Image.Image | None, name: str) -> str:
    """An input's thumbnail, embedded (the page names inputs by file name only, as outputs record them)."""
    img = f'<img src="{_data_uri(thumb)}" alt="{html.escape(name)}"><br>' if thumb is not None else ""
    return f"{img}{html.escape(name)}"


def _output_cell(grid: _Sheet, manifest: Manifest, item: Item, r: int, c: int) -> str:
    """Draw the item's cell on the grid; its cell of the page."""
    entry = manifest.entries.get(item.id)
    swept = "  ".join(f"{k}={v}" for k, v in item.sweep)
    if entry is not None and entry.output and manifest.is_done(item):
        with Image.open(manifest.out_dir / entry.output) as img:
            thumb = img.convert("RGB")
        thumb.thumbnail((grid.cell, grid.cell), Image.Resampling.LANCZOS)  # only ever shrinks
        grid.put(r, c, thumb, (swept, ""))
        link = html.escape(entry.output)
        return f'<td><a href="{link}"><img src="{link}"></a><br><b>{html.escape(swept)}</b></td>'
    why = entry.reason if entry is not None and entry.reason else (entry.state if entry else "pending")
    grid.put(r, c, None, (swept, "(not done)"), why or "")
    return f'<td><div class="missing">{html.escape(why or "")}</div><b>{html.escape(swept)}</b> (not done)</td>'
