"""The normalised VGG19 of Gatys, Ecker & Bethge (2016), Sec. 2.

    "We normalized the network by scaling the weights such that the mean activation of each
    convolutional filter over images and positions is equal to one. Such re-scaling can be done
    for the VGG network without changing its output, because it contains only rectifying linear
    activation functions and no normalization or pooling over feature maps."

With m_j the mean rectified response of filter j of layer l, filter j's weights and bias are
divided by m_j, so its response becomes relu(z_j) / m_j (ReLU is positive-homogeneous), and the
input weights of layer l+1 that read channel j are multiplied by m_j. Max and average pooling act
on each channel alone and commute with a positive scale, so layer l+1's pre-activations, and every
later layer, are exactly those of the raw network: the normalised network's features are the raw
ones divided by m, channel by channel. For the same reason, computing the means layer by layer on
the already-normalised previous layers gives the same m as one pass through the raw network, which
is what :func:`calibrate` does (and then checks with a second pass).

The means depend on the weights, the input preprocessing and the pooling type, so they are cached
per (weights fingerprint, pooling) in ``data/vgg19_normalization.pt``, made by
``scripts/compute_normalization.py`` from :data:`CALIBRATION`. Weights without a cached entry are
calibrated when first used, on the small :data:`QUICK_CALIBRATION` set, with a warning.

Dead filters (mean below :data:`DEAD_FRACTION` times the layer's median mean, zero included)
cannot be brought to one; they are scaled like a typical filter of their layer (by 1 / median),
so they stay as quiet, relative to their layer, as they were.
"""

from __future__ import annotations

import copy
import warnings
from typing import cast

import torch
from torch import nn

from ..errors import InputError
from .calibration import CACHE_FILE as CACHE_FILE  # importable from here, as before the split
from .calibration import CACHE_FORMAT as CACHE_FORMAT
from .calibration import (
    CALIBRATION,
    CONV_LAYERS,
    DEAD_FRACTION,
    HELD_OUT,
    QUICK_CALIBRATION,
    CalibrationSet,
    Normalization,
    calibrate,
    default_cache_path,
    filter_means,
    fingerprint,
    load_cache,
    save_cache,
)
from .vgg import VGG19

__all__ = [
    "CALIBRATION",
    "CONV_LAYERS",
    "DEAD_FRACTION",
    "HELD_OUT",
    "QUICK_CALIBRATION",
    "CalibrationSet",
    "Normalization",
    "apply_normalization",
    "calibrate",
    "default_cache_path",
    "filter_means",
    "fingerprint",
    "load_cache",
    "normalize_vgg",
    "save_cache",
]


def apply_normalization(vgg: VGG19, norm: Normalization) -> VGG19:
    """A rescaled deep copy of ``vgg`` whose filter j of layer l responds relu(z_j) / m_j.

    Layer l's weights and bias are divided by m (per output channel), layer l+1's weights are
    multiplied by m (per input channel); ``vgg`` itself is left untouched.
    """
    if len(norm.means) != len(vgg.convs):
        raise InputError(f"normalisation has {len(norm.means)} layers, the network {len(vgg.convs)}")
    out = copy.deepcopy(vgg)
    scales = norm.divisors()
    convs = [cast(nn.Conv2d, c) for c in out.convs]
    with torch.no_grad():
        for i, (conv, s) in enumerate(zip(convs, scales, strict=True)):
            assert conv.bias is not None
            if s.shape != (conv.out_channels,):
                raise InputError(f"normalisation of {CONV_LAYERS[i]} has {s.numel()} filters, not {conv.out_channels}")
            s_dev = s.to(conv.weight.device)
            conv.weight.copy_((conv.weight.double() / s_dev.view(-1, 1, 1, 1)).to(conv.weight.dtype))
            conv.bias.copy_((conv.bias.double() / s_dev).to(conv.bias.dtype))
            if i + 1 < len(convs):
                nxt = convs[i + 1]
                nxt.weight.copy_((nxt.weight.double() * s_dev.view(1, -1, 1, 1)).to(nxt.weight.dtype))
    out.normalization = norm  # type: ignore[assignment]
    return out


_MEMO: dict[tuple[str, str], Normalization] = {}


def _lookup(vgg: VGG19) -> Normalization:
    key = (fingerprint(vgg), vgg.pooling)
    if key not in _MEMO:
        for entry in load_cache():
            _MEMO.setdefault((entry.fingerprint, entry.pooling), entry)
    if key not in _MEMO:
        warnings.warn(
            f"no cached normalisation for these VGG19 weights with {vgg.pooling} pooling "
            f"(fingerprint {key[0][:12]}): measuring it now on {QUICK_CALIBRATION.crops_per_image} crop "
            "per bundled image; run scripts/compute_normalization.py --weights FILE for a precise, cached one",
            stacklevel=3,
        )
        _MEMO[key] = calibrate(vgg, QUICK_CALIBRATION)
    return _MEMO[key]


def normalize_vgg(vgg: VGG19, normalization: Normalization | None = None) -> VGG19:
    """The paper's normalised copy of ``vgg``: mean activation one per filter (see the module doc).

    ``normalization`` defaults to the cached means for these weights and this pooling type. The
    result is a new network; ``vgg`` is not modified. A network that is already normalised is
    returned as a copy, unchanged.
    """
    if getattr(vgg, "normalization", None) is not None and normalization is None:
        return copy.deepcopy(vgg)
    return apply_normalization(vgg, normalization if normalization is not None else _lookup(vgg))
