"""Colour control (Gatys et al. 2017, Sec. 5): the colour-space helpers and histogram matching.

The transfer-level checks (the output's chroma with --color luminance, the style targets after
--color histogram) are in test_controls.py; here are the functions they rely on.
"""

from __future__ import annotations

import pytest
import torch

from impasto.config import ColorMatch
from impasto.core import color

METHODS: tuple[ColorMatch, ...] = ("sym", "cholesky", "pca")


def coloured(seed: int, h: int = 24, w: int = 32) -> torch.Tensor:
    """(1, 3, H, W) in 0..255 with correlated channels and a colour cast of its own."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.rand(3, 3, generator=gen) + torch.eye(3)  # correlated channels
    base = torch.rand(1, 3, h, w, generator=gen)
    x = torch.einsum("ij,bjhw->bihw", mix, base)
    x = x / x.amax() * 200 + torch.rand(3, generator=gen).view(1, 3, 1, 1) * 50
    return x.clamp(0, 255)


def mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3,) and covariance (3, 3) of the pixels, computed independently of impasto."""
    p = x.reshape(3, -1).double().T  # (H*W, 3)
    return p.mean(0), torch.cov(p.T, correction=0)


def test_yiq_round_trip() -> None:
    x = coloured(0)
    assert torch.allclose(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, atol=1e-3)


def test_yiq_of_gray_has_no_chroma() -> None:
    gray = torch.full((1, 3, 4, 4), 100.0)
    yiq = color.rgb_to_yiq(gray)
    assert torch.allclose(yiq[:, 0], torch.full((1, 4, 4), 100.0), atol=1e-3)
    assert yiq[:, 1:].abs().max() < 1e-3


def test_luminance_is_a_gray_image_of_y() -> None:
    x = coloured(1)
    lum = color.luminance(x)
    assert lum.shape == x.shape
    y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        assert torch.allclose(lum[:, c], y, atol=1e-3)


def test_match_luminance_takes_the_contents_mean_and_std() -> None:
    style, content = coloured(2) * 0.3, coloured(3, 40, 40)
    out = color.match_luminance(style, content)
    assert out.shape == style.shape
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    yc = color.rgb_to_yiq(content)[:, 0]
    assert float(out[:, 0].mean()) == pytest.approx(float(yc.mean()), abs=1e-3)
    assert float(out[:, 0].std()) == pytest.approx(float(yc.std()), rel=1e-4)
    # The pattern is the style's: its luminance, shifted and scaled.
    ys = color.rgb_to_yiq(style)[:, 0]
    assert torch.corrcoef(torch.stack([ys.flatten(), out[:, 0].flatten()]))[0, 1] > 0.9999


def test_with_chroma_of_keeps_luminance_and_takes_chroma() -> None:
    image = coloured(4) * 0.5 + 60  # inside the gamut, so clamping changes nothing
    source = color.yiq_to_rgb(color.rgb_to_yiq(coloured(5)) * torch.tensor([1.0, 0.4, 0.4]).view(1, 3, 1, 1))
    out = color.with_chroma_of(image, source)
    yo, yi, ys = color.rgb_to_yiq(out), color.rgb_to_yiq(image), color.rgb_to_yiq(source)
    assert torch.allclose(yo[:, 0], yi[:, 0], atol=1e-3)
    assert torch.allclose(yo[:, 1:], ys[:, 1:], atol=1e-3)
    assert float(out.min()) >= 0 and float(out.max()) <= 255


@pytest.mark.parametrize("method", METHODS)
def test_match_color_gives_the_contents_mean_and_covariance(method: ColorMatch) -> None:
    style, content = coloured(6), coloured(7, 40, 30)
    mu_c, cov_c = mean_cov(content)
    _, cov_s = mean_cov(style)
    assert not torch.allclose(cov_s, cov_c, rtol=0.1)  # there is something to match
    out = color.match_color(style, content, method)
    assert out.shape == style.shape and out.dtype == style.dtype
    mu_o, cov_o = mean_cov(out)
    assert torch.allclose(mu_o, mu_c, atol=1e-3)
    assert torch.allclose(cov_o, cov_c, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("method", METHODS)
def test_match_color_is_linear_and_keeps_the_pattern(method: ColorMatch) -> None:
    """x' = A (x - mu_s) + mu_c: one affine map for every pixel, so the image's structure stays."""
    style, content = coloured(8), coloured(9)
    out = color.match_color(style, content, method).reshape(3, -1).double()  # (3, HW)
    x = style.reshape(3, -1).double()
    design = torch.cat([x, torch.ones(1, x.shape[1], dtype=torch.float64)])  # (4, HW)
    coef = torch.linalg.lstsq(design.T, out.T).solution  # (4, 3)
    assert torch.allclose(design.T @ coef, out.T, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_matching_an_image_to_itself_changes_nothing(method: ColorMatch) -> None:
    x = coloured(10)
    assert torch.allclose(color.match_color(x, x, method), x, atol=1e-2)


def test_sym_does_not_depend_on_the_channel_order_but_cholesky_does() -> None:
    """The documented reason for the default: sym is the one map that treats R, G, B alike."""
    style, content = coloured(11), coloured(12)
    perm = [2, 0, 1]

    def permuted_result(method: ColorMatch) -> torch.Tensor:
        return color.match_color(style[:, perm], content[:, perm], method)

    cases: list[tuple[ColorMatch, bool]] = [("sym", True), ("cholesky", False)]
    for method, equivariant in cases:
        direct = color.match_color(style, content, method)[:, perm]
        assert torch.allclose(permuted_result(method), direct, atol=1e-3) is equivariant, method


def test_unknown_match_method() -> None:
    with pytest.raises(ValueError, match="unknown colour matching method"):
        color.match_color(coloured(0), coloured(1), "lab")  # type: ignore[arg-type]  # a wrong name on purpose
