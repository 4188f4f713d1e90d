"""impasto: neural style transfer after Gatys, Ecker & Bethge, faithful and fast.

>>> import impasto
>>> image = impasto.stylize("photo.jpg", "painting.jpg", size=384)   # doctest: +SKIP
>>> image.save("out.png")                                             # doctest: +SKIP

``stylize`` is the one-call API; :func:`transfer`, :class:`Objective`, :func:`optimize`,
:func:`load_vgg19` and the loss functions are the lower-level pieces it is made of.
"""

import typing as _typing

from ._lazy import install as _install
from .errors import ConfigError, DeviceError, ImpastoError, InputError

if _typing.TYPE_CHECKING:  # the lazily loaded names, for type checkers
    from ._api import style_transfer, stylize, stylize_full
    from .config.options import Options
    from .config.presets import PRESETS, resolve
    from .core.eq7 import Eq7
    from .core.gram import gram
    from .core.objective import Objective
    from .core.optimize import optimize
    from .core.progress import Result, Step
    from .core.terms.content import content_loss
    from .core.terms.gram_style import style_layer_loss
    from .core.terms.tv import tv_loss
    from .core.transfer import transfer
    from .data import bundled_image
    from .image.load import load_image
    from .image.save import read_params, save_image
    from .inputs import ImageLike
    from .net.vgg import LAYER_NAMES, VGG19, load_vgg19
    from .video.frames import FrameStep, VideoSettings, stylize_video

from ._version import __version__

__all__ = [
    "LAYER_NAMES",
    "PRESETS",
    "VGG19",
    "ConfigError",
    "DeviceError",
    "Eq7",
    "FrameStep",
    "ImageLike",
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

# The public names are imported on first use (impasto._lazy): name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(("style_transfer", "stylize", "stylize_full"), "_api"),
    **dict.fromkeys(("PRESETS", "resolve"), "config.presets"),
    "Options": "config.options",
    "bundled_image": "data",
    "load_image": "image.load",
    **dict.fromkeys(("read_params", "save_image"), "image.save"),
    "ImageLike": "inputs",
    "Eq7": "core.eq7",
    "Objective": "core.objective",
    "content_loss": "core.terms.content",
    "style_layer_loss": "core.terms.gram_style",
    "tv_loss": "core.terms.tv",
    "gram": "core.gram",
    "optimize": "core.optimize",
    **dict.fromkeys(("Result", "Step"), "core.progress"),
    "transfer": "core.transfer",
    **dict.fromkeys(("LAYER_NAMES", "VGG19", "load_vgg19"), "net.vgg"),
    **dict.fromkeys(("FrameStep", "VideoSettings", "stylize_video"), "video.frames"),
}

__getattr__, __dir__ = _install(__name__, _LAZY, __all__)
