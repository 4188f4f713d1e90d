"""Labelled grids (impasto.grid): fonts, sizes, the footer's wrapping."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFont

from impasto.grid import MIN_CELL, Cell, _font, _wrap, make_grid


def test_grid_labels_are_drawn_in_a_scalable_font() -> None:
    font = _font(14)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.size == 14
    panel = Image.new("RGB", (64, 48), (200, 30, 30))
    grid = make_grid(
        [[Cell(panel, "caption α/β"), Cell(None, "text only")]], "Title", ["row"], ["col A", "col B"], "footer"
    )
    assert grid.width >= 2 * MIN_CELL  # small panels are enlarged to 128 px for legible labels
    dark = int((np.asarray(grid).max(axis=2) < 80).sum())
    assert dark > 200  # the text is there


def test_the_footer_wraps_word_by_word_and_keeps_its_paragraphs() -> None:
    text = "aa bb cc dd\neeeeeeeeee f"
    assert _wrap(text, 5, len) == "aa bb\ncc dd\neeeeeeeeee\nf"  # a word longer than a line stays whole
    assert _wrap("", 5, len) == ""


def test_a_long_footer_makes_the_sheet_taller_not_wider() -> None:
    panel = Image.new("RGB", (128, 96), (30, 30, 200))
    short = make_grid([[Cell(panel)]], "T", footer="one line")
    long = make_grid([[Cell(panel)]], "T", footer=" ".join(["word"] * 200))
    assert long.width == short.width and long.height > short.height + 50
