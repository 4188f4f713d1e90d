"""What a batch refuses before any work (as stylize does), its output folder, and its contact sheet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_painting, make_photo
from PIL import Image

from impasto.image import load_image

RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    make_photo(48, 40).save(tmp_path / "a.png")
    make_painting(40, 40).save(tmp_path / "s.png")
    return tmp_path / "a.png", tmp_path / "s.png"


@pytest.mark.parametrize("sizes", [["16"], ["64", "16"]], ids=["size", "swept"])
def test_a_size_too_small_is_refused_before_any_work_as_by_stylize(
    run_cli: RunCli, files: tuple[Path, Path], tmp_path: Path, sizes: list[str]
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(["batch", files[0], "--style", files[1], "-o", out, "--size", *sizes, "--steps", 2])
    too_small = (
        "the output would be 16x13 px, too small for layer conv5_1 (needs at least 16 px per side): raise --size"
    )
    assert code == 2 and err.splitlines() == [f"impasto: error: a.png with s.png: {too_small}"]
    assert not out.exists()  # nothing made, nothing run
    code, _, err = run_cli(["stylize", *files, "-o", tmp_path / "x.png", "--size", "16", "--steps", 2])
    assert code == 2 and err.splitlines() == [f"impasto: error: {too_small}"]  # the same check


def test_the_output_folder_is_made_but_never_its_parents(
    run_cli: RunCli, files: tuple[Path, Path], tmp_path: Path, narrow_network: None
) -> None:
    argv = ["batch", files[0], "--style", files[1], "--size", 32, "--steps", 2, "--scales", 1, "-q", "-o"]
    out = tmp_path / "typo" / "out"
    code, _, err = run_cli([*argv, out])
    assert code == 2
    assert err.splitlines() == [
        f"impasto: error: {out}: its parent folder '{out.parent}' does not exist "
        "(impasto makes the batch's output folder, not its parents)"
    ]
    assert not out.parent.exists()
    code, _, err = run_cli([*argv, tmp_path / "out"])
    assert code == 0 and (tmp_path / "out" / "a_s.png").is_file(), err


def test_the_contact_sheet_shows_the_inputs_and_never_enlarges_a_cell(
    run_cli: RunCli, files: tuple[Path, Path], tmp_path: Path, narrow_network: None
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(["batch", files[0], "--style", files[1], "-o", out, "--size", 32, "--steps", 2, "-q"])
    assert code == 0, err
    with Image.open(out / "a_s.png") as img:
        made = img.convert("RGB")
    assert made.size == (32, 27)
    photo, painting = load_image(files[0]), load_image(files[1])
    for img in (photo, painting):
        img.thumbnail((32, 32), Image.Resampling.LANCZOS)
    with Image.open(out / "contact.png") as opened:
        sheet: Image.Image = opened.convert("RGB")
    # 8 px margins; columns 96 px wide (the photos' column, then one per painting); rows 32 + 30 px (label)
    assert sheet.size == (8 + 2 * 104, 8 + 2 * 70)

    def at(x: int, y: int, img: Image.Image) -> bytes:
        return sheet.crop((x, y, x + img.width, y + img.height)).tobytes()

    assert at(8 + 104 + 32, 8 + 70 + 2, made) == made.tobytes()  # the output at 1:1, not 192 px
    assert at(8 + 32, 8 + 70 + 2, photo) == photo.tobytes()  # the row's photo
    assert at(8 + 104 + 32, 8, painting) == painting.tobytes()  # the column's painting
    page = (out / "index.html").read_text()
    assert page.count('<img src="data:image/jpeg;base64,') == 2 and 'width="192"' not in page
    assert '<img src="a_s.png">' in page and "max-width:192px" in page  # the browser shrinks, never enlarges
