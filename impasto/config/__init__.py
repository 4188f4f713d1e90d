"""The options of a transfer: :class:`Options` and its choice types (:mod:`.options`), what each
field is for the front ends (:mod:`.schema`), the checks of values (:mod:`.checks`), the named
presets and :func:`resolve` (:mod:`.presets`)."""

from .checks import parse_layers
from .options import (
    NAMED_INITS,
    PAPER_STYLE_LAYERS,
    ColorMatch,
    ColorMode,
    Init,
    LayerWeights,
    Optimizer,
    Options,
    Precondition,
    StyleLoss,
)
from .presets import DEMO_OPTIONS, PRESETS, SUMMARIES, resolve, unused

__all__ = [
    "DEMO_OPTIONS",
    "NAMED_INITS",
    "PAPER_STYLE_LAYERS",
    "PRESETS",
    "SUMMARIES",
    "ColorMatch",
    "ColorMode",
    "Init",
    "LayerWeights",
    "Optimizer",
    "Options",
    "Precondition",
    "StyleLoss",
    "parse_layers",
    "resolve",
    "unused",
]
