"""The fused convolution + ReLU of the bf16 path: the same numbers as the unfused layers, forward and backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from impasto.net import kernels
from impasto.net.kernels import conv_relu


def _conv(seed: int, c_in: int = 8, c_out: int = 16) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1).to(torch.bfloat16).requires_grad_(False)
    # Module.to takes memory_format (documented, passed on to Tensor.to); torch's overloads leave it out.
    conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return conv


def _input(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 8, 20, 24, generator=gen).to(torch.bfloat16)
    return x.contiguous(memory_format=torch.channels_last).requires_grad_(True)


@pytest.mark.skipif(not kernels._FUSED, reason="this PyTorch build has no oneDNN fused convolution")
def test_fused_conv_relu_equals_conv_then_relu_forward_and_backward() -> None:
    conv = _conv(0)
    x1, x2 = _input(1), _input(1)
    fused = conv_relu(conv, x1)
    plain = F.relu(conv(x2))
    assert fused.grad_fn is not None and "ConvReLU" in type(fused.grad_fn).__name__  # the fused path ran
    torch.testing.assert_close(fused, plain, rtol=0, atol=0)
    upstream = torch.randn(fused.shape, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    fused.backward(upstream)
    plain.backward(upstream)
    assert x1.grad is not None and x2.grad is not None
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-2, atol=1e-2)
    assert (fused == 0).any() and (fused > 0).any()  # the ReLU did cut something


def test_fp32_and_trainable_convolutions_take_the_plain_path() -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(1, 8, 10, 10, requires_grad=True)
    y = conv_relu(conv, x)
    assert type(y.grad_fn).__name__ == "ReluBackward0"
    y.sum().backward()
    assert conv.weight.grad is not None  # a trainable convolution still gets its weight gradient
    torch.testing.assert_close(y, F.relu(conv(x)))


def test_an_fp32_input_to_a_bf16_convolution_keeps_16_bits() -> None:
    """The pixels into a bf16 conv1_1: hi + lo parts, one convolution with the weights repeated."""
    conv = _conv(3, c_in=3)
    gen = torch.Generator().manual_seed(4)
    x = (torch.rand(1, 3, 12, 12, generator=gen) * 300 - 150).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert conv.bias is not None
    exact = F.relu(F.conv2d(x.detach().double(), conv.weight.double(), conv.bias.double(), padding=1))
    split = conv_relu(conv, x)
    plain = conv_relu(conv, x.detach().to(torch.bfloat16))
    assert split.dtype == torch.bfloat16
    err_split = float((split.detach().double() - exact).abs().mean())
    err_plain = float((plain.double() - exact).abs().mean())
    assert err_split < err_plain  # the input's rounding is gone; the output's own rounding remains
    split.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    w_sum = conv.weight.double().sum(dim=0)  # (C_in, 3, 3): d(sum relu(conv))/dx where every output is > 0
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    assert w_sum.shape == (3, 3, 3)


@pytest.mark.skipif(not kernels._FUSED, reason="this PyTorch build has no oneDNN fused convolution")
def test_packed_weights_follow_the_input_shape_and_the_weights() -> None:
    """One packed copy per input shape (bounded), repacked when the weights change in place."""
    conv = _conv(5)
    grads = []
    for h, w in ((20, 24), (12, 16), (20, 24)):
        x = torch.randn(1, 8, h, w, generator=torch.Generator().manual_seed(h)).to(torch.bfloat16)
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        y = conv_relu(conv, x)
        ref_x = x.detach().clone().requires_grad_(True)
        ref = F.relu(conv(ref_x))
        torch.testing.assert_close(y, ref, rtol=0, atol=0)
        y.sum().backward()
        ref.sum().backward()
        assert x.grad is not None and ref_x.grad is not None
        torch.testing.assert_close(x.grad, ref_x.grad, rtol=0, atol=0)  # the backward as a forward: bit-exact
        grads.append(x.grad)
    assert len(conv.__dict__["_impasto_packed"]) == 2  # two shapes, the first reused
    for i in range(kernels._PACKED_SHAPES + 2):
        conv_relu(conv, torch.zeros(1, 8, 4 + i, 4, dtype=torch.bfloat16))
    assert len(conv.__dict__["_impasto_packed"]) == kernels._PACKED_SHAPES
    x = torch.ones(1, 8, 6, 6, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    before = conv_relu(conv, x)
    conv.weight.mul_(2)  # in place: the version changes, so the packed copy must too
    torch.testing.assert_close(conv_relu(conv, x), F.relu(conv(x)), rtol=0, atol=0)
    assert not torch.equal(before, conv_relu(conv, x))


@pytest.mark.skipif(not kernels._FUSED, reason="this PyTorch build has no oneDNN fused convolution")
def test_a_network_with_packed_weights_pickles_while_unpacked() -> None:
    """Sending a bf16 network to a cluster's workers pickles it: oneDNN's packed copies cannot be."""
    import pickle

    conv = _conv(7)
    net = nn.Sequential(conv)
    conv_relu(conv, _input(1))
    assert conv.__dict__["_impasto_packed"]
    with pytest.raises(NotImplementedError, match="OpaqueTensorImpl"):
        pickle.dumps(net)
    with kernels.unpacked(net):
        copy = pickle.loads(pickle.dumps(net))
    received = copy[0]
    assert isinstance(received, nn.Conv2d)
    assert "_impasto_packed" in conv.__dict__ and "_impasto_packed" not in received.__dict__  # restored here
    x = _input(2)
    torch.testing.assert_close(conv_relu(received, x), conv_relu(conv, x), rtol=0, atol=0)
