"""The W2 style term (impasto.core.terms.w2_style): the Gaussian 2-Wasserstein distance, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from impasto.core.eq7 import Eq7
from impasto.core.terms.w2_style import sqrt_psd, trace_sqrt, w2_squared
from impasto.net.vgg import VGG19


def _spd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(n, dtype=torch.float64)


def _w2_scipy(m1: np.ndarray, c1: np.ndarray, m2: np.ndarray, c2: np.ndarray) -> float:
    """The textbook formula, with scipy's matrix square root: an independent oracle."""
    r2 = np.real(sqrtm(c2))
    cross = np.real(sqrtm(r2 @ c1 @ r2))
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross))


def test_w2_equals_the_textbook_formula() -> None:
    n = 7
    c1, c2 = _spd(n, 1), _spd(n, 2)
    m1, m2 = torch.randn(1, n, dtype=torch.float64), torch.randn(1, n, dtype=torch.float64)
    ours = float(w2_squared(m1, c1[None], m2, c2[None], sqrt_psd(c2)[None]))
    assert ours == pytest.approx(_w2_scipy(m1.numpy()[0], c1.numpy(), m2.numpy()[0], c2.numpy()), rel=1e-9)
    assert ours > 0


def test_w2_is_zero_for_the_same_gaussian_and_the_mean_distance_for_a_shift() -> None:
    c = _spd(5, 3)[None]
    m = torch.randn(1, 5, dtype=torch.float64)
    root = sqrt_psd(c)
    assert float(w2_squared(m, c, m, c, root)) == pytest.approx(0.0, abs=1e-9)
    assert float(w2_squared(m + 2.0, c, m, c, root)) == pytest.approx(4.0 * 5, rel=1e-9)


def test_trace_sqrt_gradient_is_finite_with_repeated_and_zero_eigenvalues() -> None:
    """tr M^1/2 by eigenvalues only: its gradient has no 1/(l_i - l_j), so equal eigenvalues are harmless."""
    m = torch.diag(torch.tensor([2.0, 2.0, 0.0, 1.0], dtype=torch.float64))[None].requires_grad_(True)
    trace_sqrt(m).sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad).all()
    assert float(m.grad[0, 0, 0]) == pytest.approx(0.5 / 2**0.5, rel=1e-6)  # d sqrt(l)/dl


def test_w2_gradient_matches_finite_differences() -> None:
    c2 = _spd(4, 5)[None]
    m2 = torch.randn(1, 4, dtype=torch.float64)
    root = sqrt_psd(c2)
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        cov = (x @ x.T + 0.2 * torch.eye(4, dtype=torch.float64))[None]
        return w2_squared(x[:1], cov, m2, c2, root)

    assert torch.autograd.gradcheck(f, (a.clone().requires_grad_(True),))


def test_the_w2_objective_is_zero_at_its_own_painting(tiny_vgg: VGG19) -> None:
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7)) * 255
    eq = Eq7(tiny_vgg, {}, {"conv1_1": 0.5, "conv2_1": 0.5}, 0.0, 1.0, style_loss="w2")
    _, report = eq.of(None, [img], shape=(32, 32))(img)
    other = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(8)) * 255
    _, far = eq.of(None, [img], shape=(32, 32))(other)
    assert float(far["style"]) > 1.0 and set(far) >= {"style:conv1_1", "style:conv2_1"}
    # 0 up to fp32's rounding of tr S + tr S - 2 tr (S^1/2 S S^1/2)^1/2 (traces ~1e4 here)
    assert abs(float(report["style"])) < 1e-4 * float(far["style"])
