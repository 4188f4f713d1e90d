"""impasto: neural style transfer after Gatys, Ecker & Bethge, faithful and fast.

>>> import impasto
>>> image = impasto.stylize("photo.jpg", "painting.jpg", size=384)   # doctest: +SKIP
>>> image.save("out.png")                                             # doctest: +SKIP

``stylize`` is the one-call API; :func:`transfer`, :class:`Objective`, :func:`optimize`,
:func:`load_vgg19` and the loss functions are the lower-level pieces it is made of.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DeviceError, ImpastoError, InputError

if TYPE_CHECKING:
    from ._api import bundled_image, style_transfer, stylize, stylize_full
    from .config import PRESETS, Options, resolve
    from .image import load_image, read_params, save_image
    from .losses import Objective, content_loss, gram, style_layer_loss, tv_loss
    from .optimize import optimize
    from .transfer import Result, Step, transfer
    from .vgg import LAYER_NAMES, VGG19, load_vgg19
    from .video import FrameStep, VideoSettings, stylize_video

__version__ = "0.1.0"

__all__ = [
    "LAYER_NAMES",
    "PRESETS",
    "VGG19",
    "ConfigError",
    "DeviceError",
    "FrameStep",
    "ImpastoError",
    "InputError",
    "Objective",
    "Options",
    "Result",
    "Step",
    "VideoSettings",
    "__version__",
    "bundled_image",
    "content_loss",
    "gram",
    "load_image",
    "load_vgg19",
    "optimize",
    "read_params",
    "resolve",
    "save_image",
    "style_layer_loss",
    "style_transfer",
    "stylize",
    "stylize_full",
    "stylize_video",
    "transfer",
    "tv_loss",
]

# The public names are imported on first use: ``import impasto`` (and so the command line's start)
# does not import torch, which takes a second or more, during which Ctrl-C could only give a
# traceback. Name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(("bundled_image", "style_transfer", "stylize", "stylize_full"), "_api"),
    **dict.fromkeys(("PRESETS", "Options", "resolve"), "config"),
    **dict.fromkeys(("load_image", "read_params", "save_image"), "image"),
    **dict.fromkeys(("Objective", "content_loss", "gram", "style_layer_loss", "tv_loss"), "losses"),
    "optimize": "optimize",
    **dict.fromkeys(("Result", "Step", "transfer"), "transfer"),
    **dict.fromkeys(("LAYER_NAMES", "VGG19", "load_vgg19"), "vgg"),
    **dict.fromkeys(("FrameStep", "VideoSettings", "stylize_video"), "video"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'impasto' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package, whose ``optimize`` and ``transfer`` stay the functions once their modules load.

    Importing a submodule binds it as an attribute of its package, and two submodules share
    their names with the functions they define: without this, ``impasto.optimize`` would become
    the module as soon as anything imported ``impasto.optimize``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("optimize", "transfer") and isinstance(value, types.ModuleType):
            return  # __getattr__ finds the function in the module, from sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
