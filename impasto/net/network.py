"""Where and how the network runs: the device by name, the precision by what the processor can do,
and the loaded networks (one VGG19 per setting and process)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import torch

from ..errors import DeviceError, did_you_mean
from .heap import keep_freed_memory
from .vgg import VGG19, load_vgg19

__all__ = [
    "Dtype",
    "Loader",
    "NetworkKind",
    "Precision",
    "cpu_bf16",
    "get_vgg",
    "load_network",
    "network_loader",
    "resolve_device",
    "resolve_precision",
]

NetworkKind = Literal["raw", "normalized"]  # the raw VGG19 or the paper's normalised copy (impasto.normalize)
Precision = Literal["auto", "fp32", "bf16"]  # of the network; auto: see resolve_precision
Dtype = Literal["fp32", "bf16"]  # a precision resolved


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error.

    On the CPU, the process keeps freed memory for the next step from now on (:mod:`impasto.heap`).
    """
    device = _device(name)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def _device(name: str) -> torch.device:
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
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available (use `device` cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' requested but Apple MPS is not available (use `device` cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"invalid device '{name}'") from None


CPUINFO = Path("/proc/cpuinfo")


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where there is none."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return set(value.split())
    return set()


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and why we think so (one short phrase).

    x86: AMX-BF16 or AVX-512 BF16 in the kernel's CPU flags (or, without /proc/cpuinfo, torch's
    own checks in ``torch.cpu``). Without them oneDNN emulates bf16, 10-40x slower than fp32. Elsewhere (ARM,
    where bf16 support varies by core and by torch build) the answer comes from timing one
    convolution both ways, cached per machine and torch version (:func:`_calibrate`).
    """
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        units = (
            ("AMX-BF16", "amx_bf16", "_is_amx_tile_supported"),
            ("AVX-512 BF16", "avx512_bf16", "_is_avx512_bf16_supported"),
        )
        flags = _cpu_flags()
        for label, flag, name in units:
            check = getattr(torch.cpu, name, None)
            if flag in flags if flags else (check is not None and check()):
                return True, label
        return False, "no AMX-BF16 or AVX-512 BF16"
    return _calibrate()


def _calibrate() -> tuple[bool, str]:
    """Time a 3x3 convolution 256->256 on 64x64 in fp32 and bf16; bf16 if it is 1.5x faster."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "impasto" / "precision.json"
    key = f"{platform.machine()} {platform.processor() or platform.node()} torch {torch.__version__}"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return bool(known[key]), "measured (cached)"
    x = torch.randn(1, 256, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        xd, wd = x.to(dtype), w.to(dtype)
        torch.nn.functional.conv2d(xd, wd, padding=1)  # warm-up
        t = time.perf_counter()
        for _ in range(3):
            torch.nn.functional.conv2d(xd, wd, padding=1)
        seconds[dtype] = time.perf_counter() - t
    fast = seconds[torch.bfloat16] * 1.5 < seconds[torch.float32]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known | {key: fast}))
    except OSError:
        pass  # a read-only home: measure again next time
    return fast, "measured"


def resolve_precision(precision: Precision, device: torch.device) -> tuple[Dtype, str]:
    """The network's dtype for ``precision`` on ``device``, and the reason for an ``auto`` choice.

    ``auto`` is bf16 on CUDA (tensor cores) and on CPUs with native bf16 (:func:`cpu_bf16`), fp32
    elsewhere (MPS, older CPUs). Losses, Gram matrices, the pixels and the optimiser stay fp32.
    """
    if precision != "auto":
        return precision, "requested"
    if device.type == "cuda":
        return "bf16", "CUDA"
    if device.type == "cpu":
        native, why = cpu_bf16()
        return ("bf16" if native else "fp32"), f"CPU: {why}"
    return "fp32", device.type


@functools.lru_cache(maxsize=4)
def get_vgg(
    weights: str | None,
    weights_format: str,
    pooling: str,
    device: str,
    network: NetworkKind,
    dtype: Dtype = "fp32",
) -> VGG19:
    """Load (once per process) the network for these settings, in channels-last layout.

    A bf16 network has its weights cast once, here, and runs bf16 from input to output.
    """
    vgg = load_vgg19(weights, pooling=pooling, weights_format=weights_format)  # type: ignore[arg-type]
    if network == "normalized":
        from .normalize import normalize_vgg

        vgg = normalize_vgg(vgg)
    moved: VGG19 = vgg.to(device=torch.device(device), memory_format=torch.channels_last)  # type: ignore[call-overload]
    if dtype == "bf16":
        moved.to(torch.bfloat16)
    return moved


# The network a transfer loads, given its options: (weights, weights_format, pooling, device, network, dtype).
Loader = Callable[[str | None, str, str, str, NetworkKind, Dtype], VGG19]
_LOADERS: list[Loader] = []  # network_loader()'s, innermost last


@contextlib.contextmanager
def network_loader(loader: Loader) -> Iterator[None]:
    """Inside the block, every transfer that loads its network (the CLI, the studio, a batch, the
    one-call API) gets it from ``loader`` instead of :func:`get_vgg`: a test double (the narrow
    stand-in of :mod:`impasto.testing`), or a network of one's own. One call can instead pass
    ``transfer(network=...)``."""
    _LOADERS.append(loader)
    try:
        yield
    finally:
        _LOADERS.remove(loader)


def load_network(
    weights: str | None, weights_format: str, pooling: str, device: str, network: NetworkKind, dtype: Dtype = "fp32"
) -> VGG19:
    """The network for these settings: from the innermost :func:`network_loader`, else :func:`get_vgg`."""
    loader = _LOADERS[-1] if _LOADERS else get_vgg
    return loader(weights, weights_format, pooling, device, network, dtype)
