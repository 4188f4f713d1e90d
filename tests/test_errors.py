"""Errors name fields; each front end words them its own way (issue 11: the library never sees a CLI flag)."""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import impasto
from impasto import cli
from impasto.cli.parser import build_parser
from impasto.config import resolve
from impasto.errors import ConfigError, InputError, cli_flag
from impasto.image import load_image
from impasto.web.fields import worded


def test_the_library_names_the_field_the_cli_the_flag_the_web_the_form_field() -> None:
    with pytest.raises(ConfigError) as info:
        resolve("default", style_size=0)
    exc = info.value
    assert str(exc) == "style_size must be a positive number of pixels, got 0"
    assert exc.worded(cli_flag) == "--style-size must be a positive number of pixels, got 0"
    assert worded(exc) == "style_size must be a positive number of pixels, got 0"  # the form's own field name


def test_a_name_in_backquotes_is_a_field_and_braces_are_left_alone() -> None:
    exc = ConfigError("`size` and `temporal_weight` and {n} and 'Size' and `Size`")
    assert str(exc) == "size and temporal_weight and {n} and 'Size' and `Size`"
    assert exc.worded(cli_flag) == "--size and --temporal-weight and {n} and 'Size' and `Size`"


# A library user imports only what they call: the message must not depend on what else was imported.
_CHECK_INIT = """
from impasto.errors import ConfigError, cli_flag
from impasto.inputs import check_init
try:
    check_init("image", False)
except ConfigError as exc:
    print(str(exc))
    print(exc.worded(cli_flag))
"""
_EVERYTHING = "import impasto.cli.parser, impasto.config, impasto.web.fields, impasto.video.frames, impasto.batch.plan"


@pytest.mark.slow  # a few seconds: make test runs it, make check leaves it out
@pytest.mark.parametrize("prelude", ["", _EVERYTHING], ids=["library-only", "front-ends-imported"])
def test_a_message_reads_the_same_whatever_else_was_imported(prelude: str) -> None:
    env = os.environ | {"PYTHONPATH": str(Path(impasto.__file__).parent.parent)}
    out = subprocess.run(
        [sys.executable, "-c", prelude + "\n" + _CHECK_INIT], capture_output=True, text=True, env=env, check=True
    ).stdout
    text = "'image' needs an init image: pass it as init_image (a path or a PIL image)"
    assert out.splitlines() == [f"init {text}", f"--init {text}"]


def _messages_names() -> dict[str, str]:
    """Every name the package's strings (not its docstrings) put in backquotes, and where."""
    names: dict[str, str] = {}
    for path in sorted(Path(impasto.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                for name in re.findall(r"`([a-z][a-z0-9_]*)`", node.value):
                    names.setdefault(name, f"{path.name}:{node.lineno}")
    return names


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    out: set[str] = set()
    for action in parser._actions:
        out.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= _flags(sub)
    return out


def test_every_name_a_message_puts_in_backquotes_is_a_flag_of_the_cli() -> None:
    """A name in backquotes is a field (an option or a parameter): the command line words it as a flag."""
    names = _messages_names()
    assert {"size", "init", "max_pixels", "temporal_weight", "pairs", "ray"} <= set(names)  # the scan sees them
    flags = _flags(build_parser())
    assert {name: where for name, where in names.items() if cli_flag(name) not in flags} == {}


def test_server_settings_are_named_as_the_servers(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 48)).save(path)
    with pytest.raises(InputError) as info:
        load_image(path, max_pixels=100)
    assert str(info.value).endswith("(raise it with max_pixels)")
    assert info.value.worded(cli_flag).endswith("(raise it with --max-pixels)")
    assert worded(info.value).endswith("(raise it with the server's max_pixels setting)")


def test_the_command_line_prints_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    code = cli.main(["stylize", str(image), str(image), "-o", str(tmp_path / "o.png"), "--style-size", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "impasto: error: --style-size must be a positive number of pixels, got 0"
    assert not (tmp_path / "o.png").exists()
