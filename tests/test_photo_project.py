"""The colour guided filter (He, Sun & Tang) against a slow per-window numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto.core.photo_project import guided_filter


def _reference(guide: np.ndarray, image: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al. eqs. 19-21 window by window: guide (3, H, W), image (C, H, W), windows clipped at borders."""
    _, h, w = guide.shape
    out = np.zeros_like(image)
    for c in range(image.shape[0]):
        a = np.zeros((h, w, 3))
        b = np.zeros((h, w))
        for y in range(h):
            for x in range(w):
                ys, xs = slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1)
                g = guide[:, ys, xs].reshape(3, -1)  # (3, n)
                p = image[c, ys, xs].ravel()  # (n,)
                mu, mp = g.mean(1), p.mean()
                sigma = (g - mu[:, None]) @ (g - mu[:, None]).T / g.shape[1]
                cov = (g - mu[:, None]) @ (p - mp) / g.shape[1]
                a[y, x] = np.linalg.solve(sigma + eps * np.eye(3), cov)
                b[y, x] = mp - a[y, x] @ mu
        for y in range(h):
            for x in range(w):
                ys, xs = slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1)
                out[c, y, x] = a[ys, xs].reshape(-1, 3).mean(0) @ guide[:, y, x] + b[ys, xs].mean()
    return out


@pytest.mark.parametrize(("radius", "eps"), [(1, 1e-3), (2, 1e-2), (4, 1e-4)])
def test_matches_the_windowed_definition_borders_included(radius: int, eps: float) -> None:
    g = torch.Generator().manual_seed(radius)
    guide = torch.rand(1, 3, 10, 13, generator=g, dtype=torch.float64)
    image = torch.rand(1, 3, 10, 13, generator=g, dtype=torch.float64)
    got = guided_filter(guide, image, radius, eps)[0].numpy()
    expected = _reference(guide[0].numpy(), image[0].numpy(), radius, eps)
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)
    assert np.abs(got - image[0].numpy()).max() > 0.05  # it did filter


def test_an_affine_function_of_the_guide_comes_back_unchanged_and_float32_stays_float32() -> None:
    g = torch.Generator().manual_seed(0)
    guide = torch.rand(1, 3, 16, 12, generator=g)
    a = torch.tensor([[0.6, 0.2, 0.1], [0.0, 0.8, -0.1], [0.3, 0.0, 0.5]])
    affine = torch.einsum("ck,bkhw->bchw", a, guide) + 0.05
    out = guided_filter(guide, affine, radius=3, eps=1e-6)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, affine, atol=2e-3, rtol=0)


def test_bad_arguments_are_refused() -> None:
    guide = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="guide"):
        guided_filter(guide, torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="radius"):
        guided_filter(guide, torch.rand(1, 3, 8, 8), radius=0)


@pytest.mark.parametrize(("strip", "radius"), [(1, 1), (5, 3), (16, 4)])
def test_rows_filtered_in_strips_equal_one_block_bit_for_bit(
    strip: int, radius: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import impasto.core.photo_project as project

    gen = torch.Generator().manual_seed(4)
    guide, image = torch.rand(1, 3, 53, 30, generator=gen), torch.rand(1, 3, 53, 30, generator=gen)
    whole = guided_filter(guide, image, radius, 1e-3)
    monkeypatch.setattr(project, "STRIP", strip)
    assert torch.equal(guided_filter(guide, image, radius, 1e-3), whole)
