"""The terms of the objective, one module each: what each needs from the features and its value.

Local terms (a sum over positions): :class:`Content` (eq. 1), :class:`TotalVariation`,
:class:`Temporal` (video). Global terms (a function of sums over positions): :class:`GramStyle`
(eq. 3-5), :class:`W2Style` (means and covariances). :mod:`.base` says what a term is.
"""

from .base import EVERYWHERE, Features, GlobalTerm, LocalTerm, Report, Term, Where
from .content import Content, content_loss
from .gram_style import GramStyle, style_layer_loss
from .style import StyleRegion, StyleTerm
from .temporal import Temporal
from .tv import TotalVariation, tv_loss
from .w2_style import W2Style

__all__ = [
    "EVERYWHERE",
    "Content",
    "Features",
    "GlobalTerm",
    "GramStyle",
    "LocalTerm",
    "Report",
    "StyleRegion",
    "StyleTerm",
    "Temporal",
    "Term",
    "TotalVariation",
    "W2Style",
    "Where",
    "content_loss",
    "style_layer_loss",
    "tv_loss",
]
