"""Gram matrices (eq. 3 of Gatys et al. 2016) and their difference from a target, fast in bf16.

The style loss needs only G/M - A (the output's Gram matrix per position minus the painting's).
For fp32 features that is :func:`mean_gram` minus the target. For bf16 features (the bf16
network on CPUs with AMX or AVX-512 BF16, or CUDA) :func:`mean_gram_minus` computes it in one
bf16 product with the target folded in: ``addmm(-A_hi, F^T, F / M)`` accumulates F^T F in fp32
inside the matrix unit and subtracts A_hi before the result is rounded to bf16, so the rounding
error is 2^-9 of |G/M - A| rather than of |G/M| (a bf16 Gram alone would be ~3 % off on the
difference near convergence); the low part A_lo = A - A_hi is subtracted afterwards in fp32. It
is ~5x faster than casting the features to fp32 for an fp32 product, which at 512 px was a
fifth of the bf16 step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["gram", "gram_fp32", "guided_mean_gram", "mean_gram", "mean_gram_minus"]

_HALF = (torch.bfloat16, torch.float16)


def _per_item(op: Callable[..., torch.Tensor], *batches: torch.Tensor) -> torch.Tensor:
    """``op`` on each item of the batches, restacked: 2-D products are faster than bmm on CPUs."""
    if batches[0].shape[0] == 1:
        return op(*(b[0] for b in batches)).unsqueeze(0)
    return torch.stack([op(*items) for items in zip(*batches, strict=True)])


def _positions(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, HW, C), a view when the features are channels-last."""
    b, c, h, w = features.shape
    if c > 1 and features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return features.reshape(b, c, h * w).transpose(1, 2)


def _symmetric_backward(x: torch.Tensor, grad: torch.Tensor, scale: float) -> torch.Tensor:
    """dL/dX of scale * X^T X: X (dL/dG + dL/dG^T) * scale, one product in X's dtype."""
    sym = ((grad + grad.transpose(1, 2)) * scale).to(x.dtype)  # (B, C, C)
    return _per_item(torch.mm, x, sym)  # (B, M, C)


class _Gram(torch.autograd.Function):
    """G = X^T X in fp32 for X (B, M, C) of any float dtype, with a one-product backward.

    Autograd would differentiate X^T X as two products (one per operand); since G is symmetric in
    X, dL/dX = X (dL/dG + dL/dG^T) is one. bf16 features are accumulated in fp32 (a bf16 Gram
    would round every entry to 3 significant digits); the gradient product runs in the features'
    dtype, which is what the network's backward takes next.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        xf = x.float() if x.dtype in _HALF else x  # (B, M, C)
        return _per_item(lambda m: m.t() @ m, xf)  # (B, C, C)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return _symmetric_backward(x, grad, 1.0)


class _GramMinus(torch.autograd.Function):
    """D = scale * X^T X - A for half-precision X (B, M, C) and an fp32 target A (B or 1, C, C)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.scale = scale
        hi = target.to(x.dtype)
        lo = target - hi.float()
        hi = hi.expand(x.shape[0], -1, -1)
        out = _per_item(lambda m, h: torch.addmm(h, m.t(), m, alpha=scale), x, -hi)  # scale G - A_hi
        return out.float() - lo

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return _symmetric_backward(x, grad, ctx.scale), None, None


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T (eq. 3) for features (B, C, H, W) -> (B, C, C) in fp32, without copying fp32 features.

    A channels-last tensor is already a (H*W, C) matrix in memory, so F^T F is taken on that view.
    """
    out: torch.Tensor = _Gram.apply(_positions(features))  # type: ignore[no-untyped-call]
    return out


def gram_fp32(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T in fp32 (or wider) with no autograd, for any strided view (a tile's core): one copy, not two."""
    b, c, h, w = features.shape
    wide = torch.promote_types(features.dtype, torch.float32)  # float64 stays float64
    x = features.permute(0, 2, 3, 1).to(wide).reshape(b, h * w, c)  # (B, HW, C)
    return _per_item(lambda m: m.t() @ m, x)


def mean_gram(features: torch.Tensor) -> torch.Tensor:
    """G / M_l: the Gram matrix per position, (B, C, C)."""
    return gram(features) / (features.shape[2] * features.shape[3])


def _resized_guide(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    if guide.shape[-2:] == features.shape[-2:]:
        return guide
    return F.interpolate(guide, size=features.shape[-2:], mode="area")


def guided_mean_gram(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Guided Gram matrix per position (Gatys et al. 2017, Sec. 4): (F o T)(F o T)^T / sum T^2.

    ``guide`` (1, 1, h, w) with values in 0..1 is resized to the layer's resolution by area
    averaging, so a region keeps its share of every position it partly covers.
    """
    t = _resized_guide(features, guide)
    return gram(features * t) / t.pow(2).sum().clamp_min(1e-8)


def mean_gram_minus(features: torch.Tensor, target: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
    """G/M - A in fp32 (guided: (F o T)(F o T)^T / sum T^2 - A), for the style loss.

    fp32 features take :func:`mean_gram` (or :func:`guided_mean_gram`) minus ``target``, exactly;
    bf16 and fp16 features take the fused product of the module's docstring.
    """
    if features.dtype not in _HALF:
        g = mean_gram(features) if guide is None else guided_mean_gram(features, guide)
        return g - target
    if guide is None:
        x, scale = features, 1.0 / (features.shape[2] * features.shape[3])
    else:
        t = _resized_guide(features, guide)
        x, scale = features * t.to(features.dtype), 1.0 / float(t.pow(2).sum().clamp_min(1e-8))
    out: torch.Tensor = _GramMinus.apply(_positions(x), target.float(), scale)  # type: ignore[no-untyped-call]
    return out
