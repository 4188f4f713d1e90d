"""The contact sheet of a batch: ``OUT_DIR/contact.png`` (a grid) and ``OUT_DIR/index.html``.

One row per photo, one column per (painting, swept values); each cell labelled with its inputs and
swept values, so a sweep can be judged at a glance. Failed items show their reason.
"""

from __future__ import annotations

import html
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .manifest import Manifest, write_atomic
from .plan import Item

__all__ = ["CONTACT_NAME", "INDEX_NAME", "write_sheet"]

CONTACT_NAME = "contact.png"
INDEX_NAME = "index.html"
THUMB = 192  # longest side of a thumbnail, px
LABEL_H = 30  # two lines of the default font


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


def write_sheet(manifest: Manifest, items: list[Item]) -> tuple[Path, Path]:
    """Write the grid and the page for ``items`` as the manifest records them; return their paths."""
    rows, cols, cells = _grid(items)
    font = ImageFont.load_default()
    sheet = Image.new("RGB", (len(cols) * (THUMB + 8) + 8, len(rows) * (THUMB + LABEL_H + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    page_rows = []
    for r, row in enumerate(rows):
        page_cells = []
        for c, col in enumerate(cols):
            item = cells.get((row, col))
            if item is None:
                page_cells.append("<td></td>")
                continue
            x, y = 8 + c * (THUMB + 8), 8 + r * (THUMB + LABEL_H + 8)
            entry = manifest.entries.get(item.id)
            label = item.label()
            first, _, second = label.partition("  ")
            if entry is not None and manifest.is_done(item) and entry.output:
                with Image.open(manifest.out_dir / entry.output) as img:
                    thumb = img.convert("RGB")
                scale = THUMB / max(thumb.size)  # small outputs are enlarged too: a sweep is judged by eye
                thumb = thumb.resize(
                    (round(thumb.width * scale), round(thumb.height * scale)), Image.Resampling.LANCZOS
                )
                sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
                cell = (
                    f'<a href="{html.escape(entry.output)}"><img src="{html.escape(entry.output)}" width="{THUMB}"></a>'
                )
            else:
                why = entry.reason if entry is not None and entry.reason else (entry.state if entry else "pending")
                draw.rectangle((x, y, x + THUMB - 1, y + THUMB - 1), outline="red")
                draw.text((x + 4, y + 4), (why or "")[:30], fill="red", font=font)
                cell = f'<div class="missing">{html.escape(why or "")}</div>'
                second = (second + "  " if second else "") + "(not done)"
            draw.text((x, y + THUMB + 2), first[:34], fill="black", font=font)
            draw.text((x, y + THUMB + 15), second[:34], fill="black", font=font)
            page_cells.append(f"<td>{cell}<br>{html.escape(first)}<br><b>{html.escape(second)}</b></td>")
        page_rows.append("<tr>" + "".join(page_cells) + "</tr>")
    contact = manifest.out_dir / CONTACT_NAME
    index = manifest.out_dir / INDEX_NAME
    from io import BytesIO

    buf = BytesIO()
    sheet.save(buf, format="PNG")
    write_atomic(contact, buf.getvalue())
    page = (
        '<!doctype html><meta charset="utf-8"><title>impasto batch</title>'
        "<style>body{font-family:sans-serif}td{vertical-align:top;padding:6px;font-size:13px}"
        ".missing{width:192px;height:192px;border:1px solid red;color:red}</style>"
        f"<h1>impasto batch: {manifest.count('done')} done, {manifest.count('failed')} failed</h1>"
        f'<p><a href="{CONTACT_NAME}">contact sheet</a></p><table>' + "".join(page_rows) + "</table>\n"
    )
    write_atomic(index, page.encode())
    return contact, index
