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
    """``relu(conv(x))`` for one of VGG's 3x3 convolutions (padding 1), fused where that pays.

    An fp32 ``x`` into a bf16 convolution (the pixels into conv1_1) is carried as two bf16 parts,
    ``hi = bf16(x)`` and ``lo = bf16(x - hi)``, through one convolution of twice the input
    channels with the weights repeated: W (hi + lo) = W x to ~16 bits instead of bf16's 8. bf16
    alone would round the preprocessed pixels (up to +-152) to steps of up to 0.5 levels, and the
    small moves of the last optimisation steps would not change the loss at all.
    """
    weight = conv.weight
    if x.dtype == torch.float32 and weight.dtype == torch.bfloat16:
        hi = x.to(torch.bfloat16)
        lo = (x - hi.float()).to(torch.bfloat16)
        x = torch.cat([hi, lo], dim=1).contiguous(memory_format=torch.channels_last)  # (B, 2C, H, W)
        weight = torch.cat([weight, weight], dim=1).contiguous(memory_format=torch.channels_last)
    if _FUSED and x.device.type == "cpu" and x.dtype == torch.bfloat16 and not weight.requires_grad:
        out: torch.Tensor = _ConvReLU.apply(x, weight, conv.bias)  # type: ignore[no-untyped-call]
        return out
    if weight is not conv.weight:
        return F.relu(F.conv2d(x, weight, conv.bias, padding=1), inplace=True)
    return F.relu(conv(x), inplace=True)
