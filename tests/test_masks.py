"""Region masks (Gatys et al. 2017, Sec. 4): regions, their order, guides, hand-drawn masks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from impasto.core.masks import (
    MAX_REGIONS,
    check_aspect,
    load_mask,
    mask_palette,
    region_count,
    region_guides,
    style_guide,
)
from impasto.errors import ConfigError, InputError


def three_levels(width: int = 200, height: int = 150) -> Image.Image:
    """Gray 128 on the left, black in the middle, white on the right (not in gray order)."""
    img = Image.new("L", (width, height), 0)
    img.paste(128, (0, 0, width // 3, height))
    img.paste(255, (2 * width // 3, 0, width, height))
    return img


def guides_array(guides: list[torch.Tensor]) -> np.ndarray:
    return np.stack([g[0, 0].numpy() for g in guides])  # (K, H, W)


def test_regions_are_ordered_darkest_first_and_partition_the_image() -> None:
    guides = region_guides(three_levels(), 60, 45)
    assert len(guides) == 3
    assert all(g.shape == (1, 1, 45, 60) and g.dtype == torch.float32 for g in guides)
    arr = guides_array(guides)
    assert set(np.unique(arr)) <= {0.0, 1.0}
    assert np.array_equal(arr.sum(axis=0), np.ones((45, 60)))  # every pixel in exactly one region
    black, gray, white = arr
    assert black[:, 25:35].all() and gray[:, :15].all() and white[:, 45:].all()


def test_colour_regions_are_ordered_by_their_gray_level() -> None:
    mask = Image.new("RGB", (60, 40), (255, 0, 0))  # red: gray 76
    mask.paste((0, 0, 255), (30, 0, 60, 40))  # blue: gray 29, so region 1
    blue, red = guides_array(region_guides(mask, 60, 40))
    assert blue[:, 30:].all() and not blue[:, :30].any()
    assert red[:, :30].all()
    assert mask_palette(mask).tolist() == [[0, 0, 255], [255, 0, 0]]


def test_one_colour_is_one_region() -> None:
    assert region_count(Image.new("RGB", (40, 40), (10, 200, 30))) == 1


def test_guides_follow_the_mask_at_any_size() -> None:
    mask = Image.new("L", (100, 50), 0)
    mask.paste(255, (75, 0, 100, 50))  # the right quarter
    for w, h in ((100, 50), (40, 20), (8, 4)):
        _, right = guides_array(region_guides(mask, w, h))
        assert right.shape == (h, w)
        assert right.mean() == pytest.approx(0.25)


def test_a_thin_region_that_vanishes_at_a_small_size_keeps_its_place() -> None:
    """The palette comes from the whole mask: a coarse scale gets an empty guide, not fewer regions."""
    mask = Image.new("RGB", (256, 256), (0, 0, 0))
    mask.paste((255, 0, 0), (102, 0, 103, 256))  # one pixel wide (0.4 % of the mask), gray level 76
    mask.paste((255, 255, 255), (128, 0, 256, 256))
    big, small = region_guides(mask, 256, 256), region_guides(mask, 32, 32)
    assert len(big) == len(small) == 3
    assert float(big[1].sum()) == 256
    assert float(small[1].sum()) == 0  # vanished here, but still region 2: style 2 stays region 2's


def test_antialiased_and_jpeg_masks_keep_their_regions() -> None:
    """Edge blends and JPEG noise join the nearest flat colour; they are not extra regions."""
    sharp = Image.new("L", (400, 300), 0)
    draw = ImageDraw.Draw(sharp)
    draw.ellipse((50, 50, 250, 250), fill=128)
    draw.rectangle((280, 0, 400, 300), fill=255)
    soft = sharp.filter(ImageFilter.GaussianBlur(2)).convert("RGB")
    buf = io.BytesIO()
    soft.save(buf, "JPEG", quality=70)
    jpeg = Image.open(buf).convert("RGB")
    want = guides_array(region_guides(sharp, 100, 75))
    for mask in (soft, jpeg):
        assert region_count(mask) == 3
        got = guides_array(region_guides(mask, 100, 75))
        assert (got != want).any(axis=0).mean() < 0.03  # only pixels on an edge may change sides
        palette = mask_palette(mask)
        assert np.abs(palette - np.array([[0] * 3, [128] * 3, [255] * 3])).max() <= 12


def test_a_gray_region_between_black_and_white_is_a_region() -> None:
    """A mid-gray region lies "between" black and white, but it is large: not an edge blend."""
    assert region_count(three_levels()) == 3


def test_a_photo_is_not_a_region_mask(content_image: Image.Image) -> None:
    with pytest.raises(ConfigError, match="not a region mask"):
        region_count(content_image, "photo.png")


def test_noise_and_gradients_are_not_region_masks() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match=r"noise\.png: .*not a region mask"):
        region_count(Image.fromarray(noise), "noise.png")
    ramp = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1)))
    with pytest.raises(ConfigError, match="not a region mask"):
        region_count(ramp)


def test_too_many_regions() -> None:
    n = MAX_REGIONS + 1
    arr = np.repeat(np.arange(n, dtype=np.uint8) * 15, 10)[None].repeat(20, axis=0)  # n flat stripes
    assert region_count(Image.fromarray(arr[:, :-10])) == MAX_REGIONS
    with pytest.raises(ConfigError, match=f"more than {MAX_REGIONS}"):
        region_count(Image.fromarray(arr))


@pytest.mark.parametrize(("size", "fits"), [((64, 48), True), ((128, 97), True), ((64, 64), False), ((48, 64), False)])
def test_check_aspect(size: tuple[int, int], fits: bool) -> None:
    target = Image.new("RGB", (640, 480))
    mask = Image.new("L", size)
    if fits:
        check_aspect(mask, target, "m.png", "the content image")
    else:
        with pytest.raises(ConfigError, match=r"m\.png: mask is .* does not fit the content image \(640x480\)"):
            check_aspect(mask, target, "m.png", "the content image")


def test_style_guide_reads_gray_levels() -> None:
    mask = Image.new("L", (40, 20), 0)
    mask.paste(255, (20, 0, 40, 20))
    guide = style_guide(mask, 40, 20)
    assert guide.shape == (1, 1, 20, 40)
    assert float(guide[..., :, :20].max()) == 0 and float(guide[..., :, 20:].min()) == 1
    half = style_guide(Image.new("L", (10, 10), 255), 5, 5)
    assert torch.equal(half, torch.ones(1, 1, 5, 5))


def test_a_style_mask_without_white_is_refused() -> None:
    with pytest.raises(ConfigError, match="style mask 2: no white part"):
        style_guide(Image.new("L", (40, 20), 30), 40, 20, "style mask 2")


def test_load_mask(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    three_levels().save(path)
    assert load_mask(path).mode == "RGB"
    with pytest.raises(InputError, match="not found"):
        load_mask(tmp_path / "missing.png")
