"""The one-call API, :func:`stylize` and :func:`style_transfer`, and the parameters an output records.

Re-exported by the package; kept out of ``impasto/__init__.py`` so that importing the package
(and so starting the command line) does not import torch: see ``__init__``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .config import Options, resolve
from .core.checkpoint import Checkpoint
from .core.objective import Runner
from .core.progress import Watch
from .core.record import made_with
from .core.transfer import Result, Step, paint
from .data import bundled_image
from .image import DEFAULT_MAX_PIXELS
from .inputs import ImageLike, Images, split_images

# What the package re-exports.
__all__ = ["ImageLike", "bundled_image", "style_transfer", "stylize", "stylize_full"]


def style_transfer(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    init_image: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    preset: str = "default",
    on_step: Callable[[Step], None] | None = None,
    image_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    start_time: float | None = None,
    ray: str | Runner | None = None,
    checkpoint: str | os.PathLike[str] | Checkpoint | None = None,
    **options: Any,
) -> Result:
    """Run a style transfer as :func:`stylize` does; returns its :class:`Result` (image, losses, steps, parameters).

    ``on_step`` receives a :class:`Step` after every step (with the image every ``image_every``
    steps); ``should_stop`` is polled before every step; ``start_time`` (``time.perf_counter()``)
    is when ``max_time`` starts counting. The images are paths or PIL images, as for :func:`stylize`.

    ``ray``: the address of a Ray cluster (``"auto"``) whose workers run each step's tiles, or a
    :class:`impasto.cluster.RayTiles`; ``checkpoint``: a file that keeps the run's state about every
    two minutes of work (or a :class:`impasto.core.checkpoint.Checkpoint`): the same call resumes
    from it, and a finished run removes it.
    """
    options, _ = split_images(options | {"init_image": init_image})  # with an init image, init="image"
    opts: Options = resolve(preset, **options)
    images = Images(content, style, init_image, content_mask, style_masks)
    watch = Watch(on_step, image_every, should_stop, None, start_time)
    if isinstance(checkpoint, str | os.PathLike):
        checkpoint = Checkpoint(Path(checkpoint))
    with _runner(ray) as runner:
        result = paint(images, opts, watch=watch, max_pixels=max_pixels, runner=runner, checkpoint=checkpoint)
    result.params = made_with(preset) | result.params
    return result


@contextlib.contextmanager
def _runner(ray: str | Runner | None) -> Iterator[Runner | None]:
    """The runner ``ray`` names: one made here (its workers stopped after), or the one given."""
    if ray is None or not isinstance(ray, str):
        yield ray
        return
    from .cluster import RayTiles  # lazy on purpose: Ray is an optional extra

    runner = RayTiles(ray)
    try:
        yield runner
    finally:
        runner.close()


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    init_image: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    preset: str = "default",
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the manner of ``style`` (paths or PIL images); returns an RGB image.

    Minimises L_total = alpha L_content + beta sum_l w_l E_l (Gatys et al. 2016, eq. 7) over the
    pixels. ``preset`` ("default" or "paper") sets every option; any field of :class:`Options`
    given as a keyword overrides it, e.g. ``stylize(c, s, size=256, ratio=1e-4, seed=3)``.

    The other images are paths or PIL images too: ``init_image`` the start (``init="image"``, implied),
    ``content_mask`` and ``style_masks`` the regions of spatial control (Gatys et al. 2017).
    """
    return style_transfer(
        content,
        style,
        init_image=init_image,
        content_mask=content_mask,
        style_masks=style_masks,
        preset=preset,
        **options,
    ).image


stylize_full = style_transfer  # its name before 0.2
