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
import hashlib
import random
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from PIL import Image
from torch import nn

from ..data import bundled_names, data_dir
from ..errors import InputError
from ..image import pil_to_tensor
from .vgg import LAYER_NAMES, VGG19

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

CONV_LAYERS: tuple[str, ...] = tuple(name for name in LAYER_NAMES if name.startswith("conv"))
DEAD_FRACTION = 1e-3
CACHE_FORMAT = 1
CACHE_FILE = "vgg19_normalization.pt"


@dataclass(frozen=True)
class CalibrationSet:
    """Random crops of the bundled photos and paintings: the "images and positions" of the means.

    Each image is rescaled so that its longest side is drawn from ``min_side..max_side`` (one draw
    per stratum of that range, so every image is seen at every scale), cut to a random crop of
    ``min_fraction..1`` of each side, and mirrored with probability 1/2.
    """

    images: tuple[str, ...] = ()  # bundled image names; () = every bundled .jpg
    crops_per_image: int = 16
    min_side: int = 128
    max_side: int = 512
    min_fraction: float = 0.6
    seed: int = 0

    def image_names(self) -> list[str]:
        """The bundled images used, sorted."""
        if self.images:
            return list(self.images)
        return bundled_names()

    def crops(self) -> Iterator[Image.Image]:
        """The crops, deterministic for a given seed (RGB PIL images)."""
        rng = random.Random(self.seed)
        n = self.crops_per_image
        for name in self.image_names():
            with Image.open(data_dir() / f"{name}.jpg") as f:
                img = f.convert("RGB")
            for k in range(n):
                side = self.min_side + (k + rng.random()) / n * (self.max_side - self.min_side)
                scale = side / max(img.size)
                size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
                im = img.resize(size, Image.Resampling.BILINEAR)  # antialiased, as impasto.image.resize
                cw = max(1, round(im.width * rng.uniform(self.min_fraction, 1.0)))
                ch = max(1, round(im.height * rng.uniform(self.min_fraction, 1.0)))
                x, y = rng.randrange(im.width - cw + 1), rng.randrange(im.height - ch + 1)
                crop = im.crop((x, y, x + cw, y + ch))
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                yield crop


# What the cached file is made of (scripts/compute_normalization.py), and the quick set used for
# weights without a cached entry (about a second on a CPU).
CALIBRATION = CalibrationSet()
HELD_OUT = CalibrationSet(crops_per_image=3, seed=1)  # for the checks: other crops, the same scales
QUICK_CALIBRATION = CalibrationSet(crops_per_image=1, min_side=128, max_side=256)


@dataclass
class Normalization:
    """The mean response m of every filter of the 16 convolutions, and how it was measured."""

    means: list[torch.Tensor]  # 16 tensors (N_l,), float64, in CONV_LAYERS order
    positions: list[int]  # positions (crops x H_l x W_l) each mean was taken over
    pooling: str
    preprocessing: str
    fingerprint: str
    calibration: dict[str, Any] = field(default_factory=dict)

    def dead(self) -> dict[str, list[int]]:
        """Filters treated as dead, by layer (only layers that have some)."""
        out = {}
        for name, m in zip(CONV_LAYERS, self.means, strict=True):
            idx = torch.nonzero(_dead_mask(m)).flatten().tolist()
            if idx:
                out[name] = idx
        return out

    def divisors(self) -> list[torch.Tensor]:
        """What each filter's response is divided by: m_j, or the layer's median mean if dead."""
        return [torch.where(_dead_mask(m.double()), m.double().median(), m.double()) for m in self.means]

    def to_dict(self) -> dict[str, Any]:
        """Plain types and tensors only: loadable with ``torch.load(weights_only=True)``."""
        out = asdict(self)
        out["means"] = [m.float() for m in self.means]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """The inverse of :meth:`to_dict`."""
        return cls(
            means=[torch.as_tensor(m).double() for m in d["means"]],
            positions=[int(p) for p in d["positions"]],
            pooling=str(d["pooling"]),
            preprocessing=str(d["preprocessing"]),
            fingerprint=str(d["fingerprint"]),
            calibration=dict(d.get("calibration", {})),
        )


def default_cache_path() -> Path:
    """The cache inside the package: ``impasto/data/vgg19_normalization.pt``."""
    return data_dir() / CACHE_FILE


def _convs(vgg: VGG19) -> list[nn.Conv2d]:
    return [cast(nn.Conv2d, c) for c in vgg.convs]


def _dead_mask(means: torch.Tensor) -> torch.Tensor:
    return means <= DEAD_FRACTION * means.median()


def fingerprint(vgg: VGG19) -> str:
    """SHA-256 of the raw convolution weights and biases (float32) and the preprocessing kind."""
    h = hashlib.sha256(vgg.preprocessing.kind.encode())
    for conv in _convs(vgg):
        for p in (conv.weight, conv.bias):
            assert p is not None
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def filter_means(
    vgg: VGG19, crops: Iterable[Image.Image | torch.Tensor], layers: Iterable[str] = CONV_LAYERS
) -> tuple[list[torch.Tensor], list[int]]:
    """Mean rectified response of every filter of ``layers`` over all crops and positions.

    Returns (means, positions): per layer a float64 tensor (N_l,) and the number of positions.
    Crops are PIL images or (1, 3, H, W) tensors in 0..255, of any sizes.
    """
    layers = list(layers)
    device = next(vgg.parameters()).device
    sums: list[torch.Tensor] = [
        torch.zeros(_convs(vgg)[CONV_LAYERS.index(n)].out_channels, dtype=torch.float64) for n in layers
    ]
    positions = [0] * len(layers)
    for crop in crops:
        x = crop if isinstance(crop, torch.Tensor) else pil_to_tensor(crop, device)  # (1, 3, H, W)
        feats = vgg(x.to(device), layers)
        for i, name in enumerate(layers):
            f = feats[name]  # (1, N_l, H_l, W_l)
            sums[i] += f.double().sum(dim=(0, 2, 3)).cpu()
            positions[i] += f.shape[0] * f.shape[2] * f.shape[3]
    if not positions or positions[0] == 0:
        raise InputError("no calibration crops: cannot measure mean activations")
    return [s / p for s, p in zip(sums, positions, strict=True)], positions


def apply_normalization(vgg: VGG19, norm: Normalization) -> VGG19:
    """A rescaled deep copy of ``vgg`` whose filter j of layer l responds relu(z_j) / m_j.

    Layer l's weights and bias are divided by m (per output channel), layer l+1's weights are
    multiplied by m (per input channel); ``vgg`` itself is left untouched.
    """
    if len(norm.means) != len(vgg.convs):
        raise InputError(f"normalisation has {len(norm.means)} layers, the network {len(vgg.convs)}")
    out = copy.deepcopy(vgg)
    scales = norm.divisors()
    convs = _convs(out)
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


def calibrate(
    vgg: VGG19, calibration: CalibrationSet = CALIBRATION, log: Callable[[str], None] | None = None
) -> Normalization:
    """Measure the means of the raw ``vgg`` over ``calibration`` (one pass; see the module doc)."""
    crops = list(calibration.crops())
    if log is not None:
        log(f"measuring mean activations over {len(crops)} crops ({vgg.pooling} pooling)")
    means, positions = filter_means(vgg, crops)
    info = asdict(calibration) | {"images": calibration.image_names(), "crops": len(crops)}
    return Normalization(means, positions, vgg.pooling, vgg.preprocessing.kind, fingerprint(vgg), info)


def load_cache(path: str | Path | None = None) -> list[Normalization]:
    """Every entry of a normalisation cache file (the package's by default; [] if missing)."""
    p = Path(path) if path is not None else default_cache_path()
    if not p.is_file():
        return []
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(f"{p}: not a normalisation cache ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise InputError(f"{p}: not a normalisation cache of format {CACHE_FORMAT}")
    return [Normalization.from_dict(d) for d in data["entries"]]


def save_cache(entries: Iterable[Normalization], path: str | Path | None = None) -> Path:
    """Write entries, replacing any earlier entry with the same (fingerprint, pooling)."""
    p = Path(path) if path is not None else default_cache_path()
    merged: dict[tuple[str, str], Normalization] = {(e.fingerprint, e.pooling): e for e in load_cache(p)}
    for e in entries:
        merged[(e.fingerprint, e.pooling)] = e
    data = {"format": CACHE_FORMAT, "entries": [e.to_dict() for e in merged.values()]}
    torch.save(data, p)
    return p


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
