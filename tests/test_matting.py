"""The matrix-free matting Laplacian against pymatting's explicit ``cf_laplacian`` (Levin et al. 2008)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto.core.matting import EPS, laplacian_apply, matting_energy, precompute

pymatting = pytest.importorskip("pymatting")

H, W = 9, 11


def _images(seed: int, flat: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    guide = torch.rand(1, 3, H, W, generator=g, dtype=torch.float64)
    if flat:  # a flat block and an edge: the windows where eps decides
        guide[..., :5, :6] = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64)[:, None, None]
    v = torch.rand(1, 3, H, W, generator=g, dtype=torch.float64)
    return guide, v


def _explicit(guide: torch.Tensor) -> np.ndarray:
    """pymatting's L (H*W, H*W), pixels in row-major order."""
    image = guide[0].permute(1, 2, 0).numpy()  # (H, W, 3)
    return np.asarray(pymatting.cf_laplacian(image, epsilon=EPS, radius=1).toarray())


@pytest.mark.parametrize(("seed", "flat"), [(0, False), (1, False), (2, True)])
def test_product_equals_the_explicit_matrix_everywhere_borders_included(seed: int, flat: bool) -> None:
    guide, v = _images(seed, flat)
    lap = _explicit(guide)
    expected = np.stack([lap @ v[0, c].numpy().ravel() for c in range(3)])  # (3, H*W)
    got = laplacian_apply(guide, v)[0].reshape(3, -1).numpy()
    scale = np.abs(expected).max()
    assert scale > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-9 * scale, rtol=0)
    energy = sum(v[0, c].numpy().ravel() @ lap @ v[0, c].numpy().ravel() for c in range(3))
    got_energy = float(matting_energy(v, precompute(guide, dtype=torch.float64)).sum())
    assert got_energy == pytest.approx(energy, rel=1e-10)


def test_affine_functions_of_the_guide_are_in_the_null_space() -> None:
    guide, v = _images(3)
    a = torch.tensor([[0.5, -0.3, 0.2], [0.1, 0.9, 0.0], [-0.4, 0.2, 0.6]], dtype=torch.float64)
    affine = (
        torch.einsum("ck,bkhw->bchw", a, guide) + torch.tensor([0.1, 0.2, -0.1], dtype=torch.float64)[:, None, None]
    )
    null = laplacian_apply(guide, affine).abs().max()
    assert null < 1e-5  # O(eps): the ridge of eps/|w| on the coefficients
    assert laplacian_apply(guide, v).abs().max() > 0.1  # a random image is not


def test_the_energy_gradient_is_twice_the_laplacian_times_v() -> None:
    guide, v = _images(4)
    x = v.clone().requires_grad_(True)
    matting_energy(x, precompute(guide, dtype=torch.float64)).sum().backward()
    assert x.grad is not None
    lap = _explicit(guide)
    expected = np.stack([2 * lap @ v[0, c].numpy().ravel() for c in range(3)])
    np.testing.assert_allclose(x.grad[0].reshape(3, -1).numpy(), expected, atol=1e-9, rtol=0)


def test_the_energy_passes_gradcheck() -> None:
    guide, v = _images(5)
    stats = precompute(guide[..., :6, :7], dtype=torch.float64)
    x = v[..., :6, :7].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: matting_energy(t, stats).sum(), (x,))


def test_windows_summed_over_a_partition_of_cores_give_the_whole_energy_and_gradient() -> None:
    guide, v = _images(6)
    stats = precompute(guide, dtype=torch.float64)
    whole = v.clone().requires_grad_(True)
    energy = matting_energy(whole, stats).sum()
    energy.backward()
    tiled = v.clone().requires_grad_(True)
    total = torch.zeros((), dtype=torch.float64)
    for top, height in ((0, 4), (4, 5)):  # cores of rows 0-3, 4-8 and columns 0-2, 3-6, 7-10
        for left, width in ((0, 3), (3, 4), (7, 4)):
            crop = stats.crop(top, left, height, width)
            (r, c), (rows, cols) = crop.offset, crop.windows
            total = total + matting_energy(tiled[..., r - 1 : r + rows + 1, c - 1 : c + cols + 1], crop).sum()
    total.backward()
    assert float(total.detach()) == pytest.approx(float(energy.detach()), rel=1e-12)
    assert whole.grad is not None and tiled.grad is not None
    torch.testing.assert_close(tiled.grad, whole.grad, rtol=0, atol=1e-12)


def test_float32_statistics_from_a_float64_build_keep_the_product_close() -> None:
    guide, v = _images(7, flat=True)
    exact = laplacian_apply(guide, v)
    single = laplacian_apply(guide.float(), v.float()).double()
    assert (single - exact).abs().max() < 1e-3 * exact.abs().max()


def test_wrong_shapes_are_refused_with_the_shapes_named() -> None:
    guide, v = _images(8)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        precompute(guide[:, :2])
    with pytest.raises(ValueError, match=f"{H}, {W}"):
        matting_energy(v[..., :-1], precompute(guide))
    with pytest.raises(ValueError, match="no window centre"):
        precompute(guide).crop(0, 0, 1, 1)


@pytest.mark.parametrize("strip", [1, 7, 64])
def test_statistics_built_in_strips_equal_one_block_bit_for_bit(strip: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The strips bound the float64 working memory; no window's statistics may depend on them."""
    import impasto.core.matting as matting

    guide = torch.rand(1, 3, 75, 41, generator=torch.Generator().manual_seed(3))
    whole = precompute(guide)
    monkeypatch.setattr(matting, "STRIP", strip)
    strips = precompute(guide)
    assert whole.windows == strips.windows == (73, 39)
    for a, b in ((whole.image, strips.image), (whole.mean, strips.mean), (whole.inv, strips.inv)):
        assert torch.equal(a, b)
