"""The package root: re-exports only, each name in __all__ and importable."""

from __future__ import annotations

import ast
from pathlib import Path

import impasto


def test_every_public_name_is_exported_and_resolves() -> None:
    assert impasto.__all__ == sorted(impasto.__all__, key=lambda n: (not n.isupper(), n))
    for name in impasto.__all__:
        assert getattr(impasto, name) is not None, name
    assert impasto.stylize_full is impasto.style_transfer  # the old name stays an alias


def test_the_package_root_defines_no_function_of_the_api() -> None:
    """Logic lives in modules; ``__init__`` only maps names to them (and loads them lazily)."""
    tree = ast.parse(Path(impasto.__file__).read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions <= {"__getattr__", "__dir__"}
    assert set(impasto.__all__) - {"__version__", "ConfigError", "DeviceError", "ImpastoError", "InputError"} == set(
        impasto._LAZY
    )
