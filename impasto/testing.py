"""Test doubles for code built on impasto: a narrow stand-in for VGG19.

The stand-in has VGG19's layers, names and pooling but only a few channels per layer, and seeded
random weights: a transfer on it runs every line of impasto's pipeline (schedule, targets, masks,
colour control, progress) in milliseconds, without the weights file. Its images mean nothing;
use it to test plumbing, not looks::

    from impasto.testing import narrow_vgg

    result = impasto.transfer(photo, [painting], opts, network=narrow_vgg(opts.pooling))
"""

from __future__ import annotations

import torch

from .config import Options
from .net.vgg import VGG19, InputKind, Pooling, Preprocessing

__all__ = ["CONVS_PER_BLOCK", "narrow_vgg"]

CONVS_PER_BLOCK = (2, 2, 4, 4, 4)  # VGG19's five blocks


def narrow_vgg(
    pooling: Pooling = Options.pooling,  # the options' default, as a transfer's network has
    seed: int = 0,
    widths: tuple[int, ...] = (4, 6, 8, 8, 8),
    preprocessing: InputKind = "caffe",
) -> VGG19:
    """A VGG19-shaped network with ``widths[b]`` channels in every convolution of block ``b``.

    Weights are He-scaled normal (so activations neither explode nor vanish over 16 layers),
    biases small; the same ``seed`` gives the same network.
    """
    if len(widths) != len(CONVS_PER_BLOCK):
        raise ValueError(f"one width per block: {len(CONVS_PER_BLOCK)}, got {len(widths)}")
    gen = torch.Generator().manual_seed(seed)
    convs = []
    n_in = 3
    for n_conv, n_out in zip(CONVS_PER_BLOCK, widths, strict=True):
        for _ in range(n_conv):
            std = (2.0 / (9 * n_in)) ** 0.5
            weight = torch.randn(n_out, n_in, 3, 3, generator=gen) * std  # (out, in, 3, 3)
            convs.append((weight, torch.randn(n_out, generator=gen) * 0.01))
            n_in = n_out
    return VGG19(convs, Preprocessing(preprocessing), pooling)
