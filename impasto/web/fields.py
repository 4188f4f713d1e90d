"""The job form, derived from :class:`impasto.Options`, and the parsing of submitted values.

Each field of :class:`~impasto.config.Options` becomes a form field with the same name, help
text and type (as the CLI's flags do), so the page, the API and the CLI never disagree. The web
adds only bounds (:class:`~impasto.web.settings.StudioSettings`) and leaves out the options that
name files on the server's disk.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..config import PRESETS, Options, resolve
from ..errors import ConfigError, did_you_mean
from ..image import fit_size
from ..transfer import plan_scales
from ..vgg import layer_depth
from .settings import StudioSettings

__all__ = [
    "EXCLUDED",
    "FILE_FIELDS",
    "MAIN_FIELDS",
    "FormField",
    "check_sizes",
    "device_choices",
    "form_fields",
    "parse_options",
    "preset_values",
]

Kind = Literal["int", "float", "choice", "layers"]

# Options that name a file on the server: a web client must not choose those.
EXCLUDED = {
    "weights": "the weights file is a path on the server",
    "weights_format": "it only describes --weights, which is a path on the server",
}
# The controls shown first on the page; the others sit under "More options".
MAIN_FIELDS = ("size", "steps", "scales", "ratio", "seed", "pooling", "init", "tv_weight")
# Multipart fields that are not options.
FILE_FIELDS = ("content", "style", "content_example", "style_example", "init_image", "preset")
INIT_CHOICES = ("noise", "content")  # plus an uploaded init_image
MAX_SEED = 2**32 - 1
MAX_TEXT = 1000  # characters in a layer list


@dataclass(frozen=True)
class FormField:
    """One option as the page and the API see it."""

    name: str
    label: str
    help: str
    kind: Kind
    optional: bool  # an empty value means "the preset's value" (None)
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    main: bool = False


def device_choices() -> tuple[str, ...]:
    """``auto``, ``cpu`` and the accelerators this machine has."""
    found = ["auto", "cpu"]
    found += [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return tuple(found)


def _bounds(name: str, settings: StudioSettings) -> tuple[float | None, float | None]:
    return {
        "size": (16, settings.max_size),
        "style_size": (16, settings.max_size),
        "steps": (1, settings.max_steps),
        "scales": (1, settings.max_scales),
        "lbfgs_history": (1, settings.max_lbfgs_history),
        "seed": (0, MAX_SEED),
    }.get(name, (0, None))


def form_fields(settings: StudioSettings) -> list[FormField]:
    """The form fields, in the order of :class:`Options`."""
    hints = typing.get_type_hints(Options)
    out = []
    for f in dataclasses.fields(Options):
        if f.name in EXCLUDED:
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
        if optional:
            hint = args[0]
        choices: tuple[str, ...] | None = None
        kind: Kind
        if typing.get_origin(hint) is Literal:
            kind, choices = "choice", tuple(typing.get_args(hint))
        elif f.name == "init":
            kind, choices = "choice", INIT_CHOICES
        elif f.name == "device":
            kind, choices = "choice", device_choices()
        elif hint is int:
            kind = "int"
        elif hint is float:
            kind = "float"
        else:
            kind = "layers"
        low, high = _bounds(f.name, settings) if kind in ("int", "float") else (None, None)
        out.append(
            FormField(
                name=f.name,
                label=f.name.replace("_", " "),
                help=str(f.metadata.get("help", "")),
                kind=kind,
                optional=optional,
                choices=choices,
                minimum=low,
                maximum=high,
                main=f.name in MAIN_FIELDS,
            )
        )
    return out


def preset_values() -> dict[str, dict[str, Any]]:
    """Every field's value under each preset, as the page shows it."""
    return {name: {k: v for k, v in resolve(name).to_dict().items() if k not in EXCLUDED} for name in PRESETS}


def _convert(spec: FormField, raw: str) -> Any:
    """A submitted string as the field's type; ConfigError with a one-line message if it is not."""
    if spec.kind == "int":
        try:
            value: int | float = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{spec.name} must be a whole number, got '{raw[:40]}'") from None
    elif spec.kind == "float":
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{spec.name} must be a number, got '{raw[:40]}'") from None
        if not math.isfinite(value):
            raise ConfigError(f"{spec.name} must be a finite number, got '{raw[:40]}'")
    else:
        if len(raw) > MAX_TEXT:
            raise ConfigError(f"{spec.name} is too long ({len(raw)} characters, at most {MAX_TEXT})")
        if spec.kind == "choice" and spec.name in ("init", "device") and raw not in (spec.choices or ()):
            hint = " (upload an init_image to start from an image)" if spec.name == "init" else ""
            raise ConfigError(f"unknown {spec.name} '{raw[:40]}'{did_you_mean(raw, spec.choices or ())}{hint}")
        return raw
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{spec.name} must be >= {spec.minimum:g}, got {value:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{spec.name} must be <= {spec.maximum:g} for a web job, got {value:g}")
    return value


def parse_options(form: Mapping[str, str], settings: StudioSettings) -> tuple[str, dict[str, Any], Options]:
    """(preset, overrides, resolved options) from submitted text fields; raises :class:`ConfigError`.

    Empty values mean "the preset's value". Unknown names are refused with a suggestion.
    """
    specs = {s.name: s for s in form_fields(settings)}
    preset = form.get("preset", "") or "default"
    overrides: dict[str, Any] = {}
    for name, raw in form.items():
        if name in FILE_FIELDS:
            continue
        if name in EXCLUDED:
            raise ConfigError(f"option {name} cannot be set from the web: {EXCLUDED[name]}")
        if name not in specs:
            raise ConfigError(f"unknown field '{name[:40]}'{did_you_mean(name, [*specs, *FILE_FIELDS])}")
        if raw.strip() == "":
            continue
        overrides[name] = _convert(specs[name], raw)
    opts = resolve(preset, **overrides)
    for name in ("size", "style_size", "steps", "scales", "lbfgs_history"):
        value = getattr(opts, name)  # a preset's value is bounded too
        spec = specs[name]
        if value is not None and spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"{name} must be <= {spec.maximum:g} for a web job, got {value} (preset {preset})")
    return preset, overrides, opts


def check_sizes(opts: Options, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
    """Refuse, before queueing, a job whose images would be too small for the chosen layers.

    The same rule as :func:`impasto.transfer.transfer` applies at run time; checking it here
    turns a failed job into an immediate 422.
    """
    layers = [name for name, _ in (*opts.content_layers, *opts.style_layers)]
    deepest = max(layers, key=layer_depth)
    need = 2 ** layer_depth(deepest)
    style_size = opts.style_size or opts.size
    for side, _ in plan_scales(opts.size, opts.scales, opts.steps):
        w, h = fit_size(*content, side)
        if min(w, h) < need:
            raise ConfigError(
                f"the output would be {w}x{h} px at one scale, too small for layer {deepest} "
                f"(needs at least {need} px per side): raise size"
            )
        style_side = max(1, round(style_size * side / opts.size))
        for i, dims in enumerate(styles, start=1):
            sw, sh = fit_size(*dims, style_side)
            if min(sw, sh) < need:
                raise ConfigError(
                    f"style image {i} would be {sw}x{sh} px, too small for layer {deepest} "
                    f"(needs at least {need} px per side): raise size or style size"
                )
