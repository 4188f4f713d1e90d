"""A fused 3x3 convolution + ReLU for the bf16 network on CPUs (oneDNN post-op), with its backward.

On CPUs with AMX or AVX-512 BF16 the convolutions themselves run at 1-3 TFLOP/s, so the separate
pass that rectifies each response (a read and a write of the whole activation) costs a sizeable
share of the step. oneDNN applies the ReLU while the convolution writes its output; PyTorch
exposes this as ``mkldnn::_convolution_pointwise`` (the op its own compiler emits for CPUs) but
without autograd, so the backward is written here: the ReLU's mask, then the input gradient of
the convolution (the weights are frozen, so no weight or bias gradient).

Two more things the per-call path repeats every step are done once per weight and input shape:
the weights are reordered into oneDNN's blocked layout (``_reorder_convolution_weight``), and the
input gradient of a 3x3, stride-1, padding-1 convolution is itself such a convolution, of the
output gradient with the weights transposed (in/out channels) and flipped, so the backward runs
the same forward kernel on its own pre-packed weights instead of reordering the weights for a
backward-data kernel each call. Both are bit-for-bit what the per-call ops give (at 512x384, the
reorders were ~25 ms of a ~300 ms bf16 step).

The result is bit-for-bit that of ``relu(conv2d(x, w, b, padding=1))``; anything other than a
bf16 CPU tensor, or a PyTorch without the ops, takes that unfused path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["conv_relu", "unpacked"]

_ONE = [1, 1]  # padding, stride and dilation of VGG's 3x3 convolutions


def _fused_available() -> bool:
    try:
        mkldnn: bool = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        ops = ("_convolution_pointwise", "_reorder_convolution_weight")
        return mkldnn and all(hasattr(torch.ops.mkldnn, op) for op in ops)
    except (AttributeError, RuntimeError):
        return False


_FUSED = _fused_available()


_PACKED_SHAPES = 4  # input shapes whose packed weights a convolution keeps (scales, tiles)
_CACHE = "_impasto_packed"  # where a convolution keeps them


def _pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, attr: str) -> torch.Tensor:
    out: torch.Tensor = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, _ONE, _ONE, _ONE, 1, attr, [], "")
    return out


def _packed(conv: nn.Conv2d, weight: torch.Tensor, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward and the input-gradient weights of ``conv`` in oneDNN's layout for inputs ``shape``.

    Kept on the module, keyed by the weight's identity and version (a cast or an in-place change
    repacks) and the input shape; the oldest of more than ``_PACKED_SHAPES`` shapes is dropped.
    """
    cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = conv.__dict__.setdefault(_CACHE, {})
    key = (conv.weight.data_ptr(), conv.weight._version, weight.shape[1], tuple(shape))
    if key not in cache:
        while len(cache) >= _PACKED_SHAPES:
            cache.pop(next(iter(cache)))
        out_shape = [shape[0], weight.shape[0], shape[2], shape[3]]
        back = weight.transpose(0, 1).flip(2, 3).contiguous(memory_format=torch.channels_last)
        reorder = torch.ops.mkldnn._reorder_convolution_weight
        cache[key] = (reorder(weight, _ONE, _ONE, _ONE, 1, list(shape)), reorder(back, _ONE, _ONE, _ONE, 1, out_shape))
    return cache[key]


@contextlib.contextmanager
def unpacked(network: nn.Module) -> Iterator[nn.Module]:
    """``network`` without its packed weights for as long as the block lasts (restored after):
    oneDNN's packed tensors cannot be pickled, e.g. to send the network to a cluster's workers,
    and a receiver packs its own for its inputs' shapes."""
    kept = {m: m.__dict__.pop(_CACHE) for m in network.modules() if _CACHE in m.__dict__}
    try:
        yield network
    finally:
        for m, cache in kept.items():
            m.__dict__[_CACHE] = cache


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        y = _pointwise(x, forward, bias, "relu")
        ctx.save_for_backward(y)
        ctx.backward_weight = backward
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        (y,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        grad = torch.ops.aten.threshold_backward(grad, y, 0)  # the ReLU: zero where y <= 0
        grad = grad.contiguous(memory_format=torch.channels_last)
        return _pointwise(grad, ctx.backward_weight, None, "none"), None, None, None


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
        x = x.contiguous(memory_format=torch.channels_last)
        forward, backward = _packed(conv, weight, x.shape)
        out: torch.Tensor = _ConvReLU.apply(x, forward, backward, conv.bias)  # type: ignore[no-untyped-call]
        return out
    if weight is not conv.weight:
        return F.relu(F.conv2d(x, weight, conv.bias, padding=1), inplace=True)
    return F.relu(conv(x), inplace=True)
