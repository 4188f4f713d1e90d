"""The package root: re-exports only, each name in __all__ and importable."""

from __future__ import annotations

import ast
import dataclasses
import types
from pathlib import Path

import pytest

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


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of the ``if TYPE_CHECKING:`` imports of ``__init__`` (what type checkers see)."""
    tree = ast.parse(Path(impasto.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test).endswith("TYPE_CHECKING"))
    return {
        alias.name: (node.module or "").lstrip(".")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_type_checkers_see_the_names_loaded_lazily() -> None:
    assert _type_checking_imports() == impasto._LAZY


def test_each_name_comes_from_the_module_that_defines_it() -> None:
    for name, module in impasto._LAZY.items():
        value = getattr(impasto, name)
        if isinstance(value, type) or (callable(value) and hasattr(value, "__module__")):
            assert value.__module__ == f"impasto.{module}", name


def test_nothing_public_is_missing() -> None:
    """The one-call API module is re-exported whole; ``import *`` gives exactly ``__all__``."""
    from impasto import _api

    assert set(_api.__all__) <= set(impasto.__all__)
    namespace: dict[str, object] = {}
    exec("from impasto import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(impasto.__all__)
    public = {n for n in dir(impasto) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(impasto, n), types.ModuleType)}
    assert public - modules <= set(impasto.__all__)  # nothing else public, bar the submodules


def test_a_submodule_import_keeps_the_function_of_its_name() -> None:
    import impasto.core.optimize
    import impasto.core.transfer

    assert callable(impasto.optimize) and not isinstance(impasto.optimize, types.ModuleType)
    assert callable(impasto.transfer) and not isinstance(impasto.transfer, types.ModuleType)


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        impasto.nope  # noqa: B018


def test_result_params() -> None:
    """What a finished run adds to its output's parameters (the CLI's and the studio's, one builder)."""
    from PIL import Image

    from impasto.core.record import made_with, result_params

    result = impasto.Result(Image.new("RGB", (16, 16)), 2.5, {"content": 1.0}, 7, 1.23456, stopped=True)
    params = result_params(result)
    assert params.pop("created")[:2] == "20"
    assert params == {"loss": 2.5, "losses": {"content": 1.0}, "steps_done": 7, "seconds": 1.23, "interrupted": True}
    assert result_params(dataclasses.replace(result, stopped=False))["interrupted"] is False
    assert made_with("paper") == {"impasto": impasto.__version__, "preset": "paper"}


def test_one_record_for_every_output() -> None:
    """made_with, then the inputs, the run's parameters and what it did; without times for batch items."""
    from PIL import Image

    from impasto.core.record import record

    result = impasto.Result(Image.new("RGB", (8, 8)), 2.5, {}, 7, 1.5, params={"size": 8, "device": "cpu"})
    full = record("default", result, inputs={"content": "a.png"})
    assert list(full)[:4] == ["impasto", "preset", "content", "size"]
    assert full["loss"] == 2.5 and full["steps_done"] == 7 and full["seconds"] == 1.5 and "created" in full
    untimed = record("default", result, inputs={"content": "a.png"}, timed=False)
    assert untimed == {k: v for k, v in full.items() if k not in ("seconds", "created")}
    assert record("paper") == {"impasto": impasto.__version__, "preset": "paper"}
