"""An earlier, smaller result as a start (impasto.core.upscale): the preview below its resolution, the photo above."""

from __future__ import annotations

import importlib

import torch
from conftest import make_photo
from PIL import Image
from torch.nn import functional as F

from impasto.config import Options
from impasto.core.upscale import start_from
from impasto.image import pil_to_tensor, tensor_to_pil

targets_module = importlib.import_module("impasto.core.targets")


def _photo(width: int = 96, height: int = 64) -> torch.Tensor:
    return pil_to_tensor(make_photo(width, height, seed=3))


def _down(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def test_the_photos_own_downscale_comes_back_as_the_photo() -> None:
    photo = _photo()
    small = tensor_to_pil(_down(photo, 16, 24))  # rounded to 8 bits, as a saved preview is
    start = start_from(small, photo)
    assert start.shape == photo.shape
    assert float((start - photo).abs().mean()) < 0.6  # the rounding of the small image, upscaled
    plain = F.interpolate(pil_to_tensor(small), size=(64, 96), mode="bilinear", align_corners=False)
    assert float((plain - photo).abs().mean()) > 10 * float((start - photo).abs().mean())


def test_below_the_previews_resolution_the_start_is_the_preview() -> None:
    photo = _photo()
    preview = Image.new("RGB", (24, 16), (200, 40, 90))  # a flat painting-coloured preview
    start = start_from(preview, photo)
    coarse = _down(start, 16, 24)
    assert torch.allclose(coarse.mean((2, 3)), torch.tensor([[200.0, 40.0, 90.0]]), atol=3.0)
    assert float(start.std((2, 3)).min()) > 5  # and the photo's detail is on top of it
    assert float(start.min()) >= 0 and float(start.max()) <= 255


def test_a_flat_photo_adds_nothing() -> None:
    photo = torch.full((1, 3, 64, 96), 128.0)
    preview = make_photo(24, 16, seed=5)
    plain = F.interpolate(pil_to_tensor(preview), size=(64, 96), mode="bilinear", align_corners=False)
    assert torch.allclose(start_from(preview, photo), plain.clamp(0, 255), atol=1e-3)


def test_an_image_as_large_as_the_run_is_resized_as_before() -> None:
    photo = _photo()
    for size in ((96, 64), (200, 100), (96, 32)):  # as large, larger, as wide but less tall
        image = make_photo(*size, seed=7)
        expected = pil_to_tensor(image.resize((96, 64), Image.Resampling.BILINEAR))
        assert torch.equal(start_from(image, photo), expected)


def test_a_transfer_starts_from_it() -> None:
    photo = _photo()
    preview = tensor_to_pil(_down(photo, 16, 24))
    inputs = targets_module.Inputs(make_photo(96, 64, seed=3), [], preview, None, None)
    start = targets_module.start_image(inputs, Options(init="image"), (96, 64), photo, torch.device("cpu"))
    assert torch.equal(start, start_from(preview, photo))
