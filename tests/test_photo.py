"""The photo preset (issue 32): the photorealism term in a run, the mapped start, the final projection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import resolve, transfer
from impasto.config import PRESETS
from impasto.core import color
from impasto.core.photo_project import guided_filter
from impasto.image import pil_to_tensor
from impasto.testing import narrow_vgg

TINY: dict[str, Any] = {"size": 48, "steps": 6, "scales": 2, "device": "cpu", "precision": "fp32"}


def _photos() -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:48, 0:64]
    dark = np.stack([x * 2, y * 3, 40 + 0 * x], -1) + rng.normal(0, 8, (48, 64, 3))  # a scene with texture
    sunny = np.stack([200 + 0 * x, 160 + y, 60 + x], -1) + rng.normal(0, 20, (48, 64, 3))
    return (Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)) for a in (dark, sunny))  # type: ignore[return-value]


def _affine_residual(out: torch.Tensor, photo: torch.Tensor) -> float:
    """How far ``out`` is from locally affine in ``photo``'s colours: what the guided filter changes."""
    o, c = out / 255, photo / 255
    return float((guided_filter(c, o, 4, 1e-3) - o).pow(2).mean())


def test_the_photo_preset_is_the_recipe() -> None:
    recipe = {"init": "mapped", "photorealism": 3000.0, "photo_projection": True, "photo_recolor": True}
    assert PRESETS["photo"] == recipe
    opts = resolve("photo")
    assert (opts.init, opts.photorealism, opts.photo_projection, opts.photo_recolor) == ("mapped", 3000.0, True, True)
    default = resolve("default")
    assert default.photorealism == 0.0 and not default.photo_projection and not default.photo_recolor


def test_a_photo_run_has_the_term_and_ends_locally_affine() -> None:
    dark, sunny = _photos()
    net = narrow_vgg("max")
    photo = transfer(dark, [sunny], resolve("photo", photo_recolor=False, **TINY), network=net)
    plain = transfer(dark, [sunny], resolve("default", **TINY), network=net)
    assert "photorealism" in photo.losses and photo.losses["photorealism"] >= 0
    assert "photorealism" not in plain.losses
    assert photo.params["photorealism"] == 3000.0 and photo.params["init"] == "mapped"
    c = pil_to_tensor(dark.resize(photo.image.size))
    assert _affine_residual(pil_to_tensor(photo.image), c) < 0.2 * _affine_residual(pil_to_tensor(plain.image), c)


def test_the_mapped_start_is_the_photo_in_the_paintings_colours() -> None:
    dark, sunny = _photos()
    c, s = pil_to_tensor(dark), pil_to_tensor(sunny)
    mapped = color.colour_map(c, s)
    for a, b in ((mapped, s),):
        assert torch.allclose(a.mean((2, 3)), b.mean((2, 3)), atol=3.0)  # the other photo's mean colour
    # affine in the photo's colours: a 3x4 least-squares fit reproduces it (but for the clamping)
    x = torch.cat([c[0].reshape(3, -1), torch.ones(1, c[0, 0].numel())]).T.double()  # (HW, 4)
    y = mapped[0].reshape(3, -1).T.double()
    fit = x @ torch.linalg.lstsq(x, y).solution
    assert float((fit - y).abs().mean()) < 1.0


@pytest.mark.parametrize("weight", [-1.0])
def test_a_negative_photorealism_is_refused(weight: float) -> None:
    from impasto.errors import ConfigError

    with pytest.raises(ConfigError, match="photorealism"):
        resolve("photo", photorealism=weight)


def test_the_recolor_finish_moves_the_colours_onto_the_style_photos_as_a_whole() -> None:
    dark, sunny = _photos()
    net = narrow_vgg("max")
    kept = transfer(dark, [sunny], resolve("photo", photo_recolor=False, **TINY), network=net)
    moved = transfer(dark, [sunny], resolve("photo", **TINY), network=net)
    s = pil_to_tensor(sunny)
    kept_t, moved_t = pil_to_tensor(kept.image), pil_to_tensor(moved.image)

    def gap(x: torch.Tensor) -> float:  # how far its colours' Gaussian fit is from the style photo's
        fx, fs = x[0].reshape(3, -1), s[0].reshape(3, -1)
        return float((fx.mean(1) - fs.mean(1)).abs().max() + (torch.cov(fx) - torch.cov(fs)).abs().max().sqrt())

    assert gap(moved_t) < 3.0 and gap(moved_t) < 0.5 * gap(kept_t)
    # the same picture: every pixel's colour through one affine map (fitted here), up to the clamping
    x = torch.cat([kept_t[0].reshape(3, -1), torch.ones(1, kept_t[0, 0].numel())]).T.double()  # (HW, 4)
    y = moved_t[0].reshape(3, -1).T.double()
    fit = x @ torch.linalg.lstsq(x, y).solution
    assert float((fit - y).abs().mean()) < 2.0
    assert moved.params["photo_recolor"] is True


def test_the_photo_preset_works_with_masks_two_styles_and_tiles() -> None:
    """Region correspondence (sky to sky) through the guided Gram matrices, several styles, tiles."""
    dark, sunny = _photos()
    w, h = dark.size
    top = Image.fromarray(np.repeat((np.arange(h) < h // 2)[:, None] * 255, w, 1).astype(np.uint8))
    bottom = Image.fromarray(255 - np.asarray(top))
    net = narrow_vgg("max")
    masked = transfer(
        dark, [sunny, sunny.transpose(Image.Transpose.FLIP_TOP_BOTTOM)], resolve("photo", **TINY), network=net,
        content_mask=top.convert("L"), style_masks=[top, bottom],
    )  # fmt: skip
    tiled = transfer(dark, [sunny], resolve("photo", **TINY | {"tile": 16}), network=net)
    for result in (masked, tiled):
        assert result.image.size == (48, 36) and result.fault is None and result.steps == TINY["steps"]
        assert np.isfinite(result.losses["photorealism"]) and result.losses["photorealism"] >= 0
    assert masked.params["content_mask"] == "image" and tiled.params["tile"] == 16


def test_the_term_keeps_a_flat_sky_flat_rather_than_amplify_its_banding() -> None:
    """A dusk sky: nearly flat, with 8-bit steps. Levin's eps (1e-7) lets the output stretch those
    steps at a tenth of the term's cost (the rings across the launch pad's sky); with the term's eps a
    20x stretch costs 400x what brightening the sky as a whole does (the regulariser: eps |a|^2)."""
    from impasto.core.matting import precompute
    from impasto.core.terms import EVERYWHERE
    from impasto.core.terms.photoreal import EPS, Photorealism

    rows = torch.arange(64, dtype=torch.float64)[:, None].expand(64, 64)
    sky = (40 + torch.floor(rows / 16)).expand(1, 3, 64, 64).clone()  # four 8-bit bands, 0..255
    stretched = (sky - 40) * 20 + 60  # the bands 20 levels apart
    brighter = sky + 60  # the same sky, lighter: affine in the photo
    term = Photorealism.of(sky)
    assert EPS >= 1e-6 and term.guide.inv.dtype == torch.float32
    cost = {
        name: float(term.local({}, x, EVERYWHERE)) for name, x in (("stretched", stretched), ("brighter", brighter))
    }
    levin = Photorealism(precompute(sky / 255, 1e-7)).local({}, stretched, EVERYWHERE)
    assert cost["brighter"] < cost["stretched"] / 100
    assert cost["stretched"] > 5 * float(levin)
