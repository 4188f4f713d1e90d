"""impasto.config.schema: one description of every Options field, read by the CLI and the web form."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from impasto.cli.parser import build_parser
from impasto.config import Options
from impasto.config.schema import _describe, option_field, option_fields
from impasto.errors import cli_flag, word
from impasto.inputs import IMAGE_HELP
from impasto.web.fields import excluded, form_fields, label
from impasto.web.settings import StudioSettings


def test_every_field_in_order() -> None:
    assert [f.name for f in option_fields()] == [f.name for f in dataclasses.fields(Options)]


@pytest.mark.parametrize(
    ("name", "kind", "optional", "choices", "item"),
    [
        ("size", "int", False, None, None),
        ("style_size", "int", True, None, None),
        ("max_time", "float", True, None, None),
        ("scale_sizes", "numbers", True, None, "int"),
        ("style_blend", "numbers", True, None, "float"),
        ("style_layers", "layers", False, None, None),
        ("pooling", "choice", False, ("max", "avg"), None),
        ("init", "choice", False, ("noise", "content", "mapped", "image"), None),
        ("original_colors", "bool", False, None, None),
        ("weights", "text", True, None, None),
        ("device", "text", False, None, None),
    ],
)
def test_kinds(name: str, kind: str, optional: bool, choices: tuple[str, ...] | None, item: str | None) -> None:
    f = option_field(name)
    assert (f.kind, f.optional, f.choices, f.item) == (kind, optional, choices, item)


def test_help_is_the_fields() -> None:
    assert option_field("size").help == "longest side of the output, px"


def test_unknown_type_is_refused() -> None:
    @dataclasses.dataclass
    class Odd:
        table: dict[str, int]

    with pytest.raises(TypeError, match=r"Options\.table: no front end"):
        _describe(dataclasses.fields(Odd)[0], dict[str, int])


def _flags() -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["stylize"]._actions}


def test_cli_flags_follow_the_schema() -> None:
    flags = _flags()
    types = {"int": int, "float": float, "text": str, "choice": str, "layers": str}
    for f in option_fields():
        action = flags[f.name]
        if f.kind == "bool":
            assert isinstance(action, argparse._StoreTrueAction), f.name
            continue
        if f.name != "init":  # init takes an image file too
            assert action.choices == (list(f.choices) if f.choices else None), f.name
        expected = {"int": int, "float": float}[f.item] if f.item else types[f.kind]
        assert action.type is expected, f.name
        assert (action.nargs == "+") == (f.kind in ("numbers", "layers")), f.name
        expected_help = word(IMAGE_HELP.get(f.name, f.help), cli_flag)  # `style_strength` -> --style-strength
        assert action.help is not None and action.help.startswith(expected_help.replace("%", "%%")), f.name


def test_ratio_and_content_weight_exclude_each_other() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    groups = [[a.dest for a in g._group_actions] for g in sub.choices["stylize"]._mutually_exclusive_groups]
    assert groups == [["ratio", "content_weight"]]


def test_web_fields_follow_the_schema() -> None:
    web = {f.name: f for f in form_fields(StudioSettings())}
    skip = excluded()
    for f in option_fields():
        if f.name in skip:
            assert f.name not in web
            continue
        field = web[f.name]
        expected_help = word(IMAGE_HELP.get(f.name, f.help), lambda n: f"'{label(n)}'")  # the page's names
        assert field.optional == f.optional and field.help == expected_help, f.name
        if f.name not in ("init", "device"):  # the studio's own choices: no init file, this machine's devices
            assert (field.kind, field.item) == (f.kind, f.item), f.name
            assert field.choices == (list(f.choices) if f.choices else None), f.name
    assert web["init"].choices == ["noise", "content", "mapped"] and (web["device"].choices or [])[:2] == [
        "auto",
        "cpu",
    ]
    assert {f.name for f in option_fields() if f.kind == "text"} <= set(skip) | {"device"}
