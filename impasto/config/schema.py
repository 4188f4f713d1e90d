"""What each field of :class:`~impasto.config.Options` is, read once from its type hint.

The one description the front ends are built from: the command line's flags
(:mod:`impasto.cli_parser`) and the studio's form fields (:mod:`impasto.web.fields`) take each
field's kind, choices, item type and help text from here, each adding only what is its own (a
flag's ``nargs``, a form field's bounds).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .options import Options

__all__ = ["Kind", "OptionField", "option_field", "option_fields"]

# int, float, bool: one value; choice: one of ``choices`` (a Literal); text: any string;
# numbers: a tuple of ``item`` values; layers: (layer, weight) pairs, written ``conv1_1:0.2``.
Kind = Literal["int", "float", "bool", "choice", "text", "numbers", "layers"]


@dataclass(frozen=True)
class OptionField:
    """One field of :class:`~impasto.config.Options`, as every front end sees it."""

    name: str
    kind: Kind
    optional: bool  # None is allowed: "the preset's value"
    help: str  # the field's ``metadata["help"]``
    choices: tuple[str, ...] | None = None  # of a "choice"
    item: Literal["int", "float"] | None = None  # the item type of "numbers"


def _describe(field: dataclasses.Field[Any], hint: Any) -> OptionField:
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    help_text = str(field.metadata.get("help", ""))

    def made(kind: Kind, **more: Any) -> OptionField:
        return OptionField(field.name, kind, optional, help_text, **more)

    if typing.get_origin(hint) is Literal:
        return made("choice", choices=tuple(str(a) for a in typing.get_args(hint)))
    if hint is bool:
        return made("bool")
    if hint is int or hint is float:
        return made("int" if hint is int else "float")
    if hint is str:
        return made("text")
    inner = [a for a in typing.get_args(hint) if a is not Ellipsis]
    if typing.get_origin(hint) is tuple and len(inner) == 1 and inner[0] in (int, float):
        return made("numbers", item="int" if inner[0] is int else "float")
    if typing.get_origin(hint) is tuple and len(inner) == 1 and typing.get_origin(inner[0]) is tuple:
        return made("layers")  # ((name, weight), ...)
    raise TypeError(f"Options.{field.name}: no front end knows the type {hint}")


@functools.cache
def option_fields() -> tuple[OptionField, ...]:
    """Every field of :class:`~impasto.config.Options`, in its order."""
    hints = typing.get_type_hints(Options)
    return tuple(_describe(f, hints[f.name]) for f in dataclasses.fields(Options))


def option_field(name: str) -> OptionField:
    """The field called ``name`` (KeyError if Options has none)."""
    return {f.name: f for f in option_fields()}[name]
