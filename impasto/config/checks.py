"""Whether option values are valid, and what they become: numbers, layer lists, choices, ranges.

:func:`impasto.config.resolve` runs these on every set of options before a run. Each error is one
line that names the field as the library spells it (`size`); the front ends rename it
(:mod:`impasto.errors`).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..net.vgg import canonical_layer
from .options import LayerWeights, Options
from .paper import DPI_RANGE, print_side
from .schema import option_field, option_fields

__all__ = ["check", "coerce_numbers", "parse_layers", "parse_size", "print_pixels"]


MAX_SIDE = 2**16  # px: the longest side of any image a run makes (4.3 Gpx squared)
MAX_INT = 2**31 - 1  # no count or size of an option needs more; beyond it arithmetic elsewhere overflows
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts
MAX_FLOAT_INT = 2**1023  # a whole number given for a float option: beyond this it is no float


_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kb": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "g": 2**30,
    "gb": 2**30,
    "t": 2**40,
    "tb": 2**40,
}


def parse_size(text: str, name: str = "`max_memory`") -> int:
    """``512MB``, ``2GB``, ``1.5g`` or a number of bytes -> bytes (binary units); errors name ``name``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m[2].lower() not in _UNITS:
        raise ConfigError(f"{name}: cannot read '{text}' as a size (e.g. 512MB, 2GB)")
    return int(float(m[1]) * _UNITS[m[2].lower()])


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


def coerce_numbers(values: dict[str, Any]) -> None:
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


def _check_sides(opts: Options) -> None:
    """No image of the run (output, scales, style images) beyond :data:`MAX_SIDE`."""
    for name in ("size", "style_size", "tile"):
        if (getattr(opts, name) or 0) > MAX_SIDE:
            raise ConfigError(f"`{name}` must be at most {MAX_SIDE} px, got {getattr(opts, name)}")
    final = opts.final_size
    if final > MAX_SIDE:
        raise ConfigError(f"`scale_sizes` must be at most {MAX_SIDE} px, got {final}")
    if (opts.style_size or final) * opts.style_scale > MAX_SIDE:
        raise ConfigError(
            f"`style_scale` {opts.style_scale:g} would make the style images "
            f"{(opts.style_size or final) * opts.style_scale:.4g} px: at most {MAX_SIDE} px"
        )


def print_pixels(print_size: object, dpi: int) -> int:
    """The output's longest side for paper ``print_size`` at ``dpi``; a ConfigError naming `print` or `dpi` if
    either is not valid, or the print would be larger than :data:`MAX_SIDE` px."""
    low, high = DPI_RANGE
    if not low <= dpi <= high:
        raise ConfigError(f"`dpi` must be between {low} and {high}, got {dpi}")
    if not isinstance(print_size, str):
        raise ConfigError(f"`print` must be a paper size such as A2 or 50x70cm, got {print_size!r:.40}")
    side = print_side(print_size, dpi)
    if side > MAX_SIDE:
        raise ConfigError(
            f"`print` {print_size[:40]} at {dpi} dpi would be {side} px: at most {MAX_SIDE} px (lower `dpi`)"
        )
    return side


def _check_print(opts: Options) -> None:
    """``print`` sets the output's size: ``size`` must be its long side, and no option may set it otherwise."""
    low, high = DPI_RANGE
    if not low <= opts.dpi <= high:
        raise ConfigError(f"`dpi` must be between {low} and {high}, got {opts.dpi}")
    if opts.print is None:
        return
    side = print_pixels(opts.print, opts.dpi)
    if opts.scale_sizes is not None:
        raise ConfigError("`scale_sizes` and `print` both set the output's size: give one of them")
    if opts.style_size is not None:
        raise ConfigError(
            "`style_size` is in pixels, which a print and its preview do not share: with `print` use "
            "`style_scale` (relative to the output, so a preview shows the same strokes)"
        )
    if opts.size != side:
        raise ConfigError(
            f"`size` {opts.size} and `print` {opts.print} at {opts.dpi} dpi ({side} px) disagree: give one of them"
        )


def check(opts: Options) -> Options:
    """``opts`` if every value is in its range and every choice known; else a ConfigError naming the field."""
    if opts.size <= 0:
        raise ConfigError(f"`size` must be a positive number of pixels, got {opts.size}")
    if opts.style_size is not None and opts.style_size <= 0:
        raise ConfigError(f"`style_size` must be a positive number of pixels, got {opts.style_size}")
    if opts.steps < 0:
        raise ConfigError(f"`steps` must be >= 0, got {opts.steps}")
    if opts.scales < 1:
        raise ConfigError(f"`scales` must be >= 1, got {opts.scales}")
    for name in ("ratio", "style_weight", "tv_weight", "learning_rate", "photorealism"):
        if getattr(opts, name) < 0:
            raise ConfigError(f"`{name}` must be >= 0, got {getattr(opts, name):g}")
    if opts.content_weight is not None and opts.content_weight < 0:
        raise ConfigError(f"`content_weight` must be >= 0, got {opts.content_weight:g}")
    for name in ("style_loss", "optimizer", "precondition", "pooling", "precision", "network", "weights_format"):
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
    _check_print(opts)
    _check_sides(opts)
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
