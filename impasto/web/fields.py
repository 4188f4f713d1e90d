"""The job form, derived from :class:`impasto.Options`, and the parsing of submitted values.

Each field of :class:`~impasto.config.Options`, as :mod:`impasto.options_schema` describes it (the
description the CLI's flags are built from too), becomes a form field with the same name, help
text and type, so the page, the API and the CLI never disagree. The web
adds bounds (:class:`~impasto.web.settings.StudioSettings`), turns options that hold image paths
into uploads, and leaves out the options that name files on the server. A text option the studio
does not know is left out too (safe by default) until it is listed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch

from ..config import PRESETS, Options, resolve
from ..config.schema import OptionField, option_fields
from ..errors import ConfigError, ImpastoError, did_you_mean, word
from ..inputs import IMAGE_HELP, MASKS_AFTER
from .models import FieldInfo, FieldKind
from .settings import StudioSettings

__all__ = [
    "IMAGE_FIELDS",
    "LABELS",
    "MAIN_FIELDS",
    "UPLOADS",
    "UPLOAD_ARGS",
    "FieldInfo",
    "device_choices",
    "excluded",
    "form_fields",
    "parse_options",
    "preset_values",
]

# Options that name a file on the server: a web client must not choose those.
_SERVER_FILES = {
    "weights": "the weights file is a path on the server",
    "weights_format": "it only describes --weights, which is a path on the server",
    "max_memory": "the server's memory is budgeted by the server (free RAM or GPU memory)",
}
# The images beyond the photo and the paintings, as uploads: form field -> multipart file field.
# init is an option (noise or content) or an uploaded init image; the masks are images only.
UPLOADS = {"init": "init_image", "content_mask": "content_mask", "style_masks": "style_mask"}
# The transfer() argument each upload becomes.
UPLOAD_ARGS = {"init": "init_image", "content_mask": "content_mask", "style_masks": "style_masks"}
# The controls shown first on the page, in this order; the others (the paper's knobs) sit under "Advanced".
MAIN_FIELDS = ("style_strength", "color", "original_colors", "size")
# The page's words for a field where its name is not plain enough (the others: the name, spaced).
LABELS = {
    "size": "size (longest side, px)",
    "color": "colour",
    "original_colors": "keep the photo's colours",
    "color_match": "colour matching",
    "tv_weight": "smoothing",
    "init": "start from",
    "lbfgs_history": "L-BFGS history",
}
# Multipart fields that are images, not options.
IMAGE_FIELDS = ("content", "style", "content_example", "style_example", *UPLOADS.values())
INIT_CHOICES = ("noise", "content", "mapped")  # plus an uploaded init_image
MAX_SEED = 2**32 - 1
MAX_TEXT = 1000  # characters in a text field
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


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
        "scale_sizes": (16, settings.max_size),
        "steps": (1, settings.max_steps),
        "scales": (1, settings.max_scales),
        "lbfgs_history": (1, settings.max_lbfgs_history),
        "tile": (16, settings.max_size),
        "seed": (0, MAX_SEED),
    }.get(name, (0, None))


def _kind(f: OptionField) -> tuple[FieldKind, tuple[str, ...] | None, Literal["int", "float"] | None] | None:
    """(kind, choices, item type) of a form field, or None for a text option the studio does not know."""
    if f.name == "init":
        return "choice", INIT_CHOICES, None
    if f.name == "device":
        return "choice", device_choices(), None
    if f.kind == "text":
        return None
    return f.kind, f.choices, f.item


def excluded() -> dict[str, str]:
    """Options a web client cannot set, and why."""
    out = dict(_SERVER_FILES)
    for f in option_fields():
        if f.name not in out and _kind(f) is None:
            out[f.name] = "the studio does not know how to check this option yet"
    # A poster is far beyond a web job's size limit (max_size); the resolution does nothing without it.
    out["print"] = "a print size is larger than the studio's jobs: use impasto stylize --print"
    out["dpi"] = "it is the resolution of a print size, which the studio does not offer"
    return out


def web_name(field: str) -> str:
    """How the studio words a field an error names: the form's own name, or the server's setting."""
    return f"the server's {field} setting" if field in excluded() or field == "max_pixels" else field


def worded(exc: ImpastoError) -> str:
    """An error's message for a web client (see :meth:`ImpastoError.worded`)."""
    return exc.worded(web_name)


def label(name: str) -> str:
    """A field's label on the page."""
    return LABELS.get(name, name.replace("_", " "))


def _field(name: str, help_text: str, kind: FieldKind, optional: bool, **more: Any) -> FieldInfo:
    """A form field; what ``more`` does not give is absent (None) or off. A field the help names
    (```original_colors```) is called by its label."""
    blank = {"choices": None, "minimum": None, "maximum": None, "item": None, "upload": None}
    values = blank | {"multiple": False, "main": False} | more
    text = word(help_text, lambda n: f"'{label(n)}'")
    return FieldInfo(name=name, label=label(name), help=text, kind=kind, optional=optional, **values)


def _mask_fields() -> list[FieldInfo]:
    """The masks' upload fields: images, not options."""
    return [
        _field(name, IMAGE_HELP[name], "file", True, upload=UPLOADS[name], multiple=name == "style_masks")
        for name in ("content_mask", "style_masks")
    ]


def form_fields(settings: StudioSettings) -> list[FieldInfo]:
    """The form fields: the main ones in the order of ``MAIN_FIELDS``, then the others in the order of
    :class:`Options` (the masks after ``MASKS_AFTER``)."""
    skip = excluded()
    out = []
    for f in option_fields():
        kind_info = _kind(f)
        if f.name in skip or kind_info is None:
            continue
        kind, choices, item = kind_info
        low, high = _bounds(f.name, settings) if kind in ("int", "float", "numbers") else (None, None)
        help_text = IMAGE_HELP.get(f.name, f.help)
        more = {"choices": choices, "minimum": low, "maximum": high, "item": item, "upload": UPLOADS.get(f.name)}
        out.append(_field(f.name, help_text, kind, f.optional, main=f.name in MAIN_FIELDS, **more))
        if f.name == MASKS_AFTER:
            out += _mask_fields()
    out.sort(
        key=lambda f: MAIN_FIELDS.index(f.name) if f.main else len(MAIN_FIELDS)
    )  # stable: the rest keep their order
    return out


def preset_values() -> dict[str, dict[str, Any]]:
    """Every field's value under each preset, as the page shows it (None for the masks: no preset has any)."""
    skip = excluded()
    masks = {f.name: None for f in _mask_fields()}
    return {name: {k: v for k, v in resolve(name).to_dict().items() if k not in skip} | masks for name in PRESETS}


def _bound(value: float) -> str:
    """A field's bound as a message shows it: 4294967295, not 4.29497e+09."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _number(spec: FieldInfo, raw: str, kind: str) -> int | float:
    text = raw.strip()
    try:
        value: int | float = int(text) if kind == "int" else float(text)
    except ValueError:
        what = "a whole number" if kind == "int" else "a number"
        raise ConfigError(f"{spec.name} must be {what}, got '{raw[:40]}'") from None
    # An int of 309 digits is no float: math.isfinite and "%g" would raise OverflowError (a 500).
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{spec.name} must be a finite number, got '{raw[:40]}'")
    shown = f"{value:g}" if isinstance(value, float) or abs(value) < 10**15 else f"'{text[:40]}...'"
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{spec.name} must be >= {_bound(spec.minimum)}, got {shown}")
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{spec.name} must be <= {_bound(spec.maximum)} for a web job, got {shown}")
    return value


def _convert(spec: FieldInfo, raw: str) -> Any:
    """A submitted string as the field's type; ConfigError with a one-line message if it is not."""
    if len(raw) > MAX_TEXT:
        raise ConfigError(f"{spec.name} is too long ({len(raw)} characters, at most {MAX_TEXT})")
    if spec.kind in ("int", "float"):
        return _number(spec, raw, spec.kind)
    if spec.kind == "numbers":
        items = raw.replace(",", " ").split()
        return tuple(_number(spec, item, spec.item or "float") for item in items)
    if spec.kind == "file":
        raise ConfigError(f"{spec.name} is an image: upload it as a '{spec.upload}' file")
    if spec.kind == "bool":
        word = raw.strip().lower()
        if word not in (*_TRUE, *_FALSE):
            raise ConfigError(f"{spec.name} must be true or false, got '{raw[:40]}'")
        return word in _TRUE
    if spec.kind == "choice" and spec.name in ("init", "device") and raw not in (spec.choices or ()):
        hint = " (upload an init_image to start from an image)" if spec.name == "init" else ""
        raise ConfigError(f"unknown {spec.name} '{raw[:40]}'{did_you_mean(raw, spec.choices or ())}{hint}")
    return raw  # other choices and layer lists are checked by resolve()


def parse_options(form: Mapping[str, str], settings: StudioSettings) -> tuple[str, dict[str, Any], Options]:
    """(preset, overrides, resolved options) from submitted text fields; raises :class:`ConfigError`.

    Empty values mean "the preset's value". Unknown names are refused with a suggestion.
    """
    specs = {s.name: s for s in form_fields(settings)}
    skip = excluded()
    preset = form.get("preset", "") or "default"
    overrides: dict[str, Any] = {}
    for name, raw in form.items():
        if name in IMAGE_FIELDS or name == "preset":
            continue
        if name in skip:
            raise ConfigError(f"option {name} cannot be set from the web: {skip[name]}")
        if name not in specs:
            raise ConfigError(f"unknown field '{name[:40]}'{did_you_mean(name, [*specs, *IMAGE_FIELDS, 'preset'])}")
        if raw.strip() == "":
            continue
        overrides[name] = _convert(specs[name], raw)
    opts = resolve(preset, **overrides)
    for name in ("size", "style_size", "steps", "scales", "lbfgs_history"):
        value = getattr(opts, name)  # a preset's value is bounded too
        spec = specs[name]
        if value is not None and spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"{name} must be <= {spec.maximum:g} for a web job, got {value} (preset {preset})")
    style_side = (opts.style_size or opts.final_size) * opts.style_scale
    if style_side > 2 * settings.max_size:
        raise ConfigError(
            f"style images would be {style_side:g} px (style size x style scale): "
            f"at most {2 * settings.max_size} for a web job"
        )
    return preset, overrides, opts
