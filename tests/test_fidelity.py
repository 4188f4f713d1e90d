"""A print refined from a smaller preview records how it compares with the preview, at the preview's size."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_painting, make_photo

from impasto.config import resolve
from impasto.core.fidelity import preview_fidelity
from impasto.core.transfer import paint
from impasto.inputs import Images
from impasto.testing import narrow_vgg

KEYS = {"preview_content_kept", "preview_style_reached", "print_content_kept", "print_style_reached"}


def test_a_print_of_a_preview_records_its_fidelity(tmp_path: Path) -> None:
    make_photo(96, 72).save(tmp_path / "photo.png")
    make_painting(48, 48).save(tmp_path / "paint.png")
    preview = paint(
        Images(tmp_path / "photo.png", [tmp_path / "paint.png"]),
        resolve("default", size=48, steps=6),
        network=narrow_vgg(),
    )
    preview.image.save(tmp_path / "preview.png")
    opts = resolve("default", size=96, steps=0, scales=1, init="image")
    images = Images(tmp_path / "photo.png", [tmp_path / "paint.png"], init_image=tmp_path / "preview.png")
    printed = paint(images, opts, network=narrow_vgg())
    fidelity = printed.params["preview_fidelity"]
    assert set(fidelity) == KEYS
    # no step taken: the print is the preview upscaled (plus the photo's finer detail), so at the
    # preview's size it measures as the preview does
    assert fidelity["print_content_kept"] == pytest.approx(fidelity["preview_content_kept"], abs=0.1)
    assert fidelity["print_style_reached"] == pytest.approx(fidelity["preview_style_reached"], abs=0.1)
    same_size = paint(
        Images(tmp_path / "photo.png", [tmp_path / "paint.png"]),
        resolve("default", size=96, steps=2),
        network=narrow_vgg(),
    )
    assert "preview_fidelity" not in same_size.params


def test_the_photo_itself_keeps_all_content_and_reaches_no_style() -> None:
    photo, painting = make_photo(64, 48), make_painting(48, 48)
    f = preview_fidelity(photo.resize((128, 96)), photo, photo, painting, narrow_vgg())
    assert f["preview_content_kept"] == pytest.approx(1.0, abs=1e-6)
    assert f["preview_style_reached"] == pytest.approx(0.0, abs=1e-6)
    assert f["print_content_kept"] > 0.9
