"""Errors name fields; each front end words them its own way (issue 11: the library never sees a CLI flag)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from impasto import cli
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


def test_only_known_fields_are_reworded() -> None:
    exc = ConfigError("`size` and `no_such_field` and {n}")
    assert exc.worded(cli_flag) == "--size and `no_such_field` and {n}"


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
