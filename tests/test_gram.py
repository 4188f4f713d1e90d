"""G/M - A, fused for bf16 features: as accurate as the fp32 difference, not as the bf16 Gram."""

from __future__ import annotations

import torch

from impasto.core.gram import guided_mean_gram, mean_gram, mean_gram_minus


def _features(seed: int, c: int = 32, h: int = 24, w: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    f = torch.relu(torch.randn(1, c, h, w, generator=gen)).to(torch.bfloat16)
    return f.contiguous(memory_format=torch.channels_last)


def _target_near(g: torch.Tensor, seed: int) -> torch.Tensor:
    """A target 5 % away from ``g``, as late in an optimisation: G - A is small against G."""
    noise = torch.randn(g.shape, generator=torch.Generator().manual_seed(seed))
    a = g * (1 + 0.05 * noise)
    return (a + a.transpose(1, 2)) / 2


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_fp32_features_give_exactly_the_gram_minus_the_target() -> None:
    f = _features(0).float()
    a = _target_near(mean_gram(f), 1)
    assert torch.equal(mean_gram_minus(f, a), mean_gram(f) - a)
    guide = torch.rand(1, 1, 12, 16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(mean_gram_minus(f, a, guide), guided_mean_gram(f, guide) - a)


def test_bf16_difference_is_rounded_as_a_difference_not_as_a_gram() -> None:
    f = _features(3)
    exact = mean_gram(f.float()) - (a := _target_near(mean_gram(f.float()), 4))
    fused = mean_gram_minus(f, a)
    assert fused.dtype == torch.float32 and fused.shape == (1, 32, 32)
    bf16_gram = (f[0].flatten(1) @ f[0].flatten(1).t()).float() / (24 * 32) - a  # the naive bf16 product
    assert _rel(fused, exact) < 0.005  # ~2^-9 of |G/M - A|
    assert _rel(bf16_gram, exact) > 4 * _rel(fused, exact)


def test_bf16_gradient_matches_the_fp32_gradient() -> None:
    f = _features(5)
    a = _target_near(mean_gram(f.float()), 6)
    guide = torch.rand(1, 1, 24, 32, generator=torch.Generator().manual_seed(7))
    for g in (None, guide):
        x16 = f.clone().requires_grad_(True)
        x32 = f.float().requires_grad_(True)
        mean_gram_minus(x16, a, g).pow(2).sum().backward()
        mean_gram_minus(x32, a, g).pow(2).sum().backward()
        assert x16.grad is not None and x32.grad is not None and x16.grad.dtype == torch.bfloat16
        assert _rel(x16.grad.float(), x32.grad) < 0.01
