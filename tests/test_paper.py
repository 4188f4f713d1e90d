"""Print sizes (impasto.config.paper) and how they set the output's size (resolve, check, the schedule)."""

from __future__ import annotations

from typing import Any

import pytest

from impasto import ConfigError, Options, resolve
from impasto.config.paper import on_paper, parse_paper, print_side
from impasto.core.schedule import scale_plan

# ISO 216 at 300 dpi: round(mm / 25.4 * 300) for the short and the long side.
A_AT_300 = {
    "A4": (2480, 3508),
    "A3": (3508, 4961),
    "A2": (4961, 7016),
    "A1": (7016, 9933),
    "A0": (9933, 14043),
}


@pytest.mark.parametrize(("name", "pixels"), A_AT_300.items())
def test_each_a_size_at_300_dpi(name: str, pixels: tuple[int, int]) -> None:
    assert parse_paper(name).pixels(300) == pixels
    assert parse_paper(name.lower()).pixels(300) == pixels
    opts = resolve(print=name)
    assert (opts.size, opts.print, opts.dpi) == (pixels[1], name, 300)


def test_dpi_scales_the_pixels() -> None:
    assert resolve(print="A4", dpi=150).size == 1754  # 297 / 25.4 * 150 = 1753.9
    assert resolve(print="A0", dpi=72).size == 3370  # 1189 / 25.4 * 72 = 3370.4


@pytest.mark.parametrize(
    ("text", "mm", "long_px"),
    [
        ("50x70cm", (500, 700), 8268),  # 700 / 25.4 * 300 = 8267.7
        ("70x50cm", (500, 700), 8268),  # the order does not matter: the photo sets the orientation
        ("24x36in", (609.6, 914.4), 10800),
        ("24 x 36 IN", (609.6, 914.4), 10800),
        ("420x594mm", (420, 594), 7016),  # A2 in mm
        ("29.7x42cm", (297, 420), 4961),  # A3 in cm
    ],
)
def test_measures_in_cm_mm_and_inches(text: str, mm: tuple[float, float], long_px: int) -> None:
    paper = parse_paper(text)
    assert (paper.short_mm, paper.long_mm) == pytest.approx(mm)
    assert print_side(text, 300) == long_px == resolve(print=text).size


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"print": "B5"}, ["`print`", "unknown paper size 'B5'", "50x70cm"]),
        ({"print": "A5"}, ["`print`", "did you mean 'A4'?"]),
        ({"print": "50x70"}, ["`print`", "unknown paper size '50x70'"]),
        ({"print": "0x70cm"}, ["`print`", "both sides must be > 0"]),
        ({"print": "A4", "dpi": 49}, ["`dpi` must be between 50 and 1200, got 49"]),
        ({"print": "A4", "dpi": 1201}, ["`dpi` must be between 50 and 1200"]),
        ({"dpi": 0}, ["`dpi` must be between 50 and 1200, got 0"]),
        ({"print": "200x200in", "dpi": 400}, ["`print` 200x200in at 400 dpi would be 80000 px", "`dpi`"]),
        ({"print": "A2", "size": 512}, ["`size` 512 and `print` A2 at 300 dpi (7016 px) disagree"]),
        ({"print": "A2", "style_size": 512}, ["`style_size` is in pixels", "`style_scale`"]),
        ({"print": "A2", "scale_sizes": (128, 256)}, ["`scale_sizes` and `print` both set the output's size"]),
    ],
)
def test_refused_in_one_line_naming_the_option(options: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(**options)
    text = info.value.args[0]
    assert "\n" not in text
    for needle in needles:
        assert needle in text


def test_a_size_equal_to_the_prints_is_no_conflict() -> None:
    assert resolve(print="A2", size=7016).size == 7016


def test_options_changed_after_resolve_are_checked_again() -> None:
    from impasto.config.checks import check

    with pytest.raises(ConfigError, match="disagree"):
        check(Options(print="A4"))  # size 512 is not A4's 3508 px


def test_the_print_takes_the_photos_orientation_and_aspect() -> None:
    opts = resolve(print="A2", scales=1)
    assert scale_plan(opts, (4000, 3000))[-1].size == (7016, 5262)  # landscape: the long side across
    assert scale_plan(opts, (3000, 4000))[-1].size == (5262, 7016)  # portrait
    assert scale_plan(opts, (1000, 1000))[-1].size == (7016, 7016)


def test_the_strokes_keep_their_share_of_the_image_from_preview_to_print() -> None:
    """The style images follow the output's side (times style_scale) at every scale of both runs."""
    for style_scale in (1.0, 1.5):
        preview = scale_plan(resolve(size=512, style_scale=style_scale), (4000, 3000))
        poster = scale_plan(resolve(print="A0", style_scale=style_scale), (4000, 3000))
        for p, q in zip(preview, poster, strict=True):
            assert p.style_side / p.side == pytest.approx(q.style_side / q.side, rel=1e-3)


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ((14043, 9933), "fills the paper"),
        ((14043, 10532), "51 mm of its short side goes past the paper"),  # 4:3 on A0: (10532 - 9933) / 300 in
        ((14043, 7899), "the photo is longer than the paper, 172 mm of the short side stays blank"),  # 16:9
    ],
)
def test_how_the_image_sits_on_the_paper(size: tuple[int, int], words: str) -> None:
    text = on_paper(parse_paper("A0"), 300, size)
    assert words in text
    assert text.startswith(f"{size[0] / 300 * 2.54:.1f} x {size[1] / 300 * 2.54:.1f} cm")
