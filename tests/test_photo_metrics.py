"""benchmarks/photo_metrics.py: the four figures of issue 32 on images whose answers are known."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def metrics() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("photo_metrics")
    finally:
        sys.path.remove(str(BENCH_DIR))


def _photo(seed: int = 0) -> torch.Tensor:
    """A smooth image with edges (1, 3, 40, 48), 0..255."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 5, 6, generator=g), size=(40, 48), mode="bilinear")
    base[..., 10:30, 20:24] += 0.4
    return (base.clamp(0, 1) * 200 + 20).float()


def test_a_relit_photo_scores_as_a_photograph_and_noise_does_not(metrics: ModuleType) -> None:
    c = _photo()
    relit = (c * torch.tensor([0.8, 0.9, 1.1])[:, None, None] + 10).clamp(0, 255)
    assert metrics.structure(c, c) == pytest.approx(1.0, abs=1e-9)
    assert metrics.structure(relit, c) > 0.99
    assert metrics.affine_residual(relit, c) < 0.5  # the ridge leaves a little in flat windows
    noisy = (c + 40 * torch.randn(c.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 255)
    assert metrics.structure(noisy, c) < 0.8
    assert metrics.affine_residual(noisy, c) > 100


def test_w2_of_gaussians_and_the_monge_map_closes_the_colour_gap(metrics: ModuleType) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    assert metrics.w2_gauss(x, x + torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)) == pytest.approx(5.0, rel=1e-6)
    assert metrics.w2_gauss(x, 2 * x) == pytest.approx((x.var(0, unbiased=False).sum() ** 0.5).item(), rel=1e-2)
    c, s = _photo(3), _photo(4) * 0.5 + 60
    mapped = metrics.global_colour_map(c, s)
    assert metrics.colour_closed(c, c, s) == pytest.approx(0.0, abs=1e-9)
    assert metrics.colour_closed(mapped, c, s) > 0.9
    assert metrics.affine_residual(mapped, c) < 0.5  # a global affine map is locally affine too
