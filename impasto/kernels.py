"""A fused 3x3 convolution + ReLU for the bf16 network on CPUs (oneDNN post-op), with its backward.

On CPUs with AMX or AVX-512 BF16 the convolutions themselves run at 1-3 TFLOP/s, so the separate
pass that rectifies each response (a read and a write of the whole activation) costs a sizeable
share of the step. oneDNN applies the ReLU while the convolution writes its output; PyTorch
exposes this as ``mkldnn::_convolution_pointwise`` (the op its own compiler emits for CPUs) but
without autograd, so the backward here is autograd's own: the ReLU's mask, then the input
gradient of the convolution (the weights are frozen, so no weight or bias gradient).

The result is bit-for-bit that of ``relu(conv2d(x, w, b, padding=1))``; anything other than a
bf16 CPU tensor, or a PyTorch without the op, takes that unfused path.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["conv_relu"]

_ONE = [1, 1]  # padding, stride and dilation of VGG's 3x3 convolutions


def _fused_available() -> bool:
    try:
        mkldnn: bool = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        return mkldnn and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


_FUSED = _fused_available()


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y: torch.Tensor = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, _ONE, _ONE, _ONE, 1, "relu", [], "")
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        x, weight, y = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        grad = torch.ops.aten.threshold_backward(grad, y, 0)  # the ReLU: zero where y <= 0
        mask = [True, False, False]  # the input's gradient only
        gx = torch.ops.aten.convolution_backward(grad, x, weight, None, _ONE, _ONE, _ONE, False, [0, 0], 1, mask)[0]
        return gx, None, None


def conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x))`` for one of VGG's 3x3 convolutions (padding 1), fused where that pays."""
    if _FUSED and x.device.type == "cpu" and x.dtype == torch.bfloat16 and not conv.weight.requires_grad:
        out: torch.Tensor = _ConvReLU.apply(x, conv.weight, conv.bias)  # type: ignore[no-untyped-call]
        return out
    return F.relu(conv(x), inplace=True)
