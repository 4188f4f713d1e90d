"""The flags every image-making subcommand shares: one per field of :class:`impasto.Options`, the
common ones (preset, snapshots, paths, pixel limit, quiet), and the options read back from them.

The imports of :mod:`impasto.config` stay inside the functions on purpose: it imports torch (its
choice types come from the network's modules), and ``impasto -h`` or a usage error should not
wait for torch to load.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import cli_flag, word

if TYPE_CHECKING:
    from ..config.schema import OptionField

__all__ = ["add_common", "add_option_flags", "option_values", "shown"]

# One or the other: eq. 7's alpha/beta, or alpha itself. Listed last, in a group of their own.
_EXCLUSIVE = ("ratio", "content_weight")


def shown(value: Any) -> str:
    """A value of :meth:`Options.to_dict` as it is typed on the command line."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return " ".join(shown(v) for v in value)
    return "none" if value is None else str(value)


def _flag_kind(f: OptionField) -> dict[str, Any]:
    """The ``add_argument`` keywords of an option's type."""
    if f.name == "init":
        return {"type": str}  # noise, content or an image file
    if f.kind == "choice":
        return {"type": str, "choices": list(f.choices or ())}
    if f.kind == "bool":
        return {"action": "store_true"}
    if f.kind == "numbers":
        return {"type": int if f.item == "int" else float, "nargs": "+"}
    if f.kind == "layers":
        return {"type": str, "nargs": "+"}
    return {"type": {"int": int, "float": float}.get(f.kind, str)}


def add_option_flags(parser: argparse.ArgumentParser, overrides: dict[str, Any] | None = None) -> None:
    """A flag per field of Options, and the masks' (images: ``inputs.IMAGE_HELP``); the help shows
    the value of the default preset (with ``overrides``)."""
    from ..config import resolve, unused
    from ..config.schema import option_field, option_fields
    from ..inputs import IMAGE_HELP, MASKS_AFTER

    opts = resolve("default", **(overrides or {}))
    defaults, idle = opts.to_dict(), unused(opts)
    group = parser.add_argument_group(
        "style transfer options",
        "Defaults shown are the 'default' preset's; --preset NAME changes them ('impasto presets' lists them all).",
    )
    helps = {f.name: f.help for f in option_fields()} | IMAGE_HELP

    def text(name: str) -> str:
        default = "" if defaults.get(name) is None else f" (default: {shown(defaults[name])})"
        if name in idle:  # the default preset's value would mislead: it is not used
            default = f" (default: not used, as {word(idle[name], cli_flag)})"
        return (word(helps[name], cli_flag) + default).replace("%", "%%")

    for f in option_fields():
        if f.name in _EXCLUSIVE:
            continue
        group.add_argument(cli_flag(f.name), dest=f.name, default=None, help=text(f.name), **_flag_kind(f))
        if f.name == MASKS_AFTER:
            group.add_argument("--content-mask", default=None, help=text("content_mask"))
            group.add_argument("--style-masks", nargs="+", default=None, help=text("style_masks"))
    weights = group.add_mutually_exclusive_group()
    for name in _EXCLUSIVE:
        weights.add_argument(cli_flag(name), dest=name, default=None, help=text(name), **_flag_kind(option_field(name)))


def add_common(p: argparse.ArgumentParser) -> None:
    """The flags of every command that makes images: preset, snapshots, paths, pixel limit, quiet."""
    from ..config import PRESETS
    from ..image import DEFAULT_MAX_PIXELS

    p.add_argument("--preset", default="default", help=f"one of: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="save an intermediate image every N steps")
    p.add_argument(
        "--embed-paths",
        action="store_true",
        help="store the input files' absolute paths in the output's parameters (default: file names only)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger input images (default: {DEFAULT_MAX_PIXELS:,})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def option_values(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options, images)`` from the flags: every field of Options (None: not given), and the image
    files (``--init FILE``: ``init="image"`` and that file as ``init_image``; the masks)."""
    from ..config import NAMED_INITS
    from ..config.schema import option_fields

    options = {f.name: getattr(args, f.name) for f in option_fields()}
    images = {"content_mask": args.content_mask, "style_masks": args.style_masks}
    if args.init is not None and args.init not in NAMED_INITS:
        options["init"], images["init_image"] = "image", args.init
    return options, {k: v for k, v in images.items() if v is not None}
