"""The named presets and :func:`resolve`: the options of a preset with overrides on top, checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, did_you_mean
from .checks import check, coerce_numbers, parse_layers, print_pixels
from .options import Options

__all__ = ["DEMO_OPTIONS", "PRESETS", "resolve", "unused"]

# Options() is the default preset: best look per second on a laptop CPU (docs/presets.md). The
# paper's losses, layers and alpha/beta, but coarse-to-fine over 3 scales (4:2:1 steps, ~5x less
# compute than one scale for the same step count), starting from the photo (its structure is kept
# from the first step, so no step is spent un-noising), max pooling (crisper strokes than avg),
# style strength 6 (the same look at every size) and L-BFGS in a spectral basis (the same objective
# in fewer steps: impasto.precondition). Every other preset lists only what differs.
PRESETS: dict[str, dict[str, Any]] = {
    # Gatys et al. 2016 as published: conv4_2 content, conv1_1..conv5_1 style with w_l = 1/5,
    # alpha/beta = 1e-3, L-BFGS on the pixels from white noise, average pooling, one scale. Faithful, slow.
    "paper": {
        "scales": 1,
        "steps": 500,
        "init": "noise",
        "pooling": "avg",
        "style_strength": None,
        "tv_weight": 0.0,
        "precondition": "none",
    },
    "default": {},
    # Photo to photo (Luan et al. 2017): a dark photo in the light of a sunny one, still a photograph.
    # Starts from the photo in the other photo's colours, keeps every 3x3 window an affine function of
    # the photo's colours (the matting Laplacian's term), and ends with a guided filter on the photo.
    # Costs ~5 % more than default (the term: box filters per step); measured in docs/photo.md.
    "photo": {
        "init": "mapped",
        "photorealism": 3000.0,
        "photo_projection": True,
        "photo_recolor": True,
    },
}

# Each preset in one line, for `impasto presets` and the studio's preset choice.
SUMMARIES: dict[str, str] = {
    "paper": "Gatys et al. 2016 as published: from white noise, one scale, average pooling; faithful and slow",
    "default": "a photo painted like the painting: the paper's losses, coarse to fine, the same look at every size",
    "photo": "a photo in the light and colours of another photo, still a photograph (Luan et al. 2017)",
}

# `impasto demo`'s options on top of the default preset: sized to finish in under 2 minutes on 2 cores.
DEMO_OPTIONS: dict[str, Any] = {"size": 384, "steps": 300, "max_time": 110.0}

_FIELDS = {f.name: f for f in dataclasses.fields(Options)}
_LITERAL_WEIGHTS = ("ratio", "content_weight")
_IMAGES = ("init_image", "content_mask", "style_masks")  # arguments of transfer(), not options (impasto.inputs)


def unused(opts: Options | Mapping[str, Any]) -> dict[str, str]:
    """The fields whose value has no effect under ``opts`` (or its :meth:`~Options.to_dict`, as an
    output's parameters hold it), and why: front ends show no value for them."""
    strength = opts.get("style_strength") if isinstance(opts, Mapping) else opts.style_strength
    if strength is None:
        return {}
    return {k: "`style_strength` is set" for k in _LITERAL_WEIGHTS}


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
    coerce_numbers(values)
    if values.get("print") is not None:  # the paper sets the size: its long side at `dpi`
        side = print_pixels(values["print"], values.get("dpi", Options.dpi))
        if overrides.get("size") is not None and values["size"] != side:
            raise ConfigError(
                f"`size` {values['size']} and `print` {values['print']} at {values.get('dpi', Options.dpi)} dpi "
                f"({side} px) disagree: give one of them"
            )
        values["size"] = side
    return check(Options(**values))
