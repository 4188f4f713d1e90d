"""The one-call API, :func:`stylize` and :func:`style_transfer`, and the bundled example images.

Re-exported by the package; kept out of ``impasto/__init__.py`` so that importing the package
(and so starting the command line) does not import torch: see ``__init__``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from .config import Options, resolve
from .data import bundled_image
from .errors import ConfigError
from .image import DEFAULT_MAX_PIXELS, load_image
from .transfer import Result, Step, transfer

__all__ = ["ImageLike", "bundled_image", "style_transfer", "stylize", "stylize_full"]

ImageLike = str | os.PathLike[str] | Image.Image


def _as_image(img: ImageLike, max_pixels: int) -> Image.Image:
    if isinstance(img, Image.Image):
        return img.convert("RGB") if img.mode != "RGB" else img
    return load_image(img, max_pixels=max_pixels)


def style_transfer(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    preset: str = "default",
    on_step: Callable[[Step], None] | None = None,
    image_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    start_time: float | None = None,
    **options: Any,
) -> Result:
    """Run a style transfer as :func:`stylize` does; returns its :class:`Result` (image, losses, steps, parameters).

    ``on_step`` receives a :class:`Step` after every step (with the image every ``image_every``
    steps); ``should_stop`` is polled before every step; ``start_time`` (``time.perf_counter()``)
    is when ``max_time`` starts counting.
    """
    from . import __version__

    opts: Options = resolve(preset, **options)
    styles = [style] if isinstance(style, str | os.PathLike | Image.Image) else list(style)
    if not styles:
        raise ConfigError("at least one style image is needed")
    content_img = _as_image(content, max_pixels)
    style_imgs = [_as_image(s, max_pixels) for s in styles]
    init_img = None
    if opts.init not in ("noise", "content"):
        init_img = load_image(opts.init, max_pixels=max_pixels)
    result = transfer(
        content_img,
        style_imgs,
        opts,
        init_image=init_img,
        on_step=on_step,
        image_every=image_every,
        should_stop=should_stop,
        start_time=start_time,
    )
    result.params = {"impasto": __version__, "preset": preset} | result.params
    return result


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    preset: str = "default",
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the manner of ``style`` (paths or PIL images); returns an RGB image.

    Minimises L_total = alpha L_content + beta sum_l w_l E_l (Gatys et al. 2016, eq. 7) over the
    pixels. ``preset`` ("default" or "paper") sets every option; any field of :class:`Options`
    given as a keyword overrides it, e.g. ``stylize(c, s, size=256, ratio=1e-4, seed=3)``.
    """
    return style_transfer(content, style, preset=preset, **options).image


stylize_full = style_transfer  # its name before 0.2
