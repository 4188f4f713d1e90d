"""The mean response of every VGG19 filter: measured over calibration crops, and cached.

:func:`calibrate` measures the means (:class:`Normalization`) over a :class:`CalibrationSet` of
crops of the bundled images; the cache file (``data/vgg19_normalization.pt``) keeps them per
(weights fingerprint, pooling). :mod:`impasto.net.normalize` rescales a network with them.
"""

from __future__ import annotations

import hashlib
import random
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
    "calibrate",
    "default_cache_path",
    "filter_means",
    "fingerprint",
    "load_cache",
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
