"""Lazy re-exports for the package root: each public name is imported from its module on first use.

``import impasto`` (and so the command line's start) must not import torch, which takes a second
or more, during which Ctrl-C could only give a traceback. ``impasto/__init__.py`` lists the names
and their modules; :func:`install` gives the package the ``__getattr__`` and ``__dir__`` that load
them, and keeps a function whose module has its name (``impasto.optimize``) from being replaced by
that module when it is imported.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["install"]


class _Package(types.ModuleType):
    """A package whose re-exported functions stay functions once the modules of the same name load.

    Importing a submodule binds it as an attribute of its package, and two submodules share
    their names with the functions they define: without this, ``impasto.optimize`` would become
    the module as soon as anything imported ``impasto.optimize``.
    """

    _shadowed: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._shadowed and isinstance(value, types.ModuleType):
            return  # __getattr__ finds the function in the module, from sys.modules
        super().__setattr__(name, value)


def install(
    package: str, modules: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose names ``modules`` maps to their modules.

    ``public`` is the package's ``__all__``. Call it once, from the package's ``__init__``.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    sys.modules[package].__class__ = _Package
    _Package._shadowed = frozenset(name for name, module in modules.items() if name == module)
    return __getattr__, __dir__
