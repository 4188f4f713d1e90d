"""Where the network runs and the loaded networks: the device by name, one VGG19 per setting and process."""

from __future__ import annotations

import functools
from typing import Literal

import torch

from .errors import DeviceError, did_you_mean
from .vgg import VGG19, load_vgg19

__all__ = ["NetworkKind", "Precision", "get_vgg", "resolve_device"]

NetworkKind = Literal["raw", "normalized"]  # the raw VGG19 or the paper's normalised copy (impasto.normalize)
Precision = Literal["auto", "fp32", "bf16"]  # of the convolutions; auto: bf16 on CUDA


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device '{name}'{did_you_mean(name, ['auto', 'cpu', 'cuda', 'mps'])}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' requested but Apple MPS is not available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"invalid device '{name}'") from None


@functools.lru_cache(maxsize=4)
def get_vgg(weights: str | None, weights_format: str, pooling: str, device: str, network: NetworkKind = "raw") -> VGG19:
    """Load (once per process) the network for these settings, in channels-last layout."""
    vgg = load_vgg19(weights, pooling=pooling, weights_format=weights_format)  # type: ignore[arg-type]
    if network == "normalized":
        from .normalize import normalize_vgg

        vgg = normalize_vgg(vgg)
    moved: VGG19 = vgg.to(device=torch.device(device), memory_format=torch.channels_last)  # type: ignore[call-overload]
    return moved
