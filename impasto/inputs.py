"""The images of a transfer: given as paths or PIL images, each loaded once, here.

The photo, the paintings, the init image and the masks are arguments of :func:`impasto.transfer`
(and of :func:`impasto.stylize`), never options: :class:`impasto.Options` holds only knobs.
:func:`gather` turns the arguments into one checked :class:`Inputs`; a path that is no sound image
gives :func:`impasto.load_image`'s one-line :class:`~impasto.InputError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .errors import ConfigError
from .image import DEFAULT_MAX_PIXELS, load_image

__all__ = [
    "IMAGE_ARGS",
    "IMAGE_HELP",
    "MASKS_AFTER",
    "ImageLike",
    "Images",
    "Inputs",
    "check_init",
    "gather",
    "load",
    "name_of",
    "recorded",
    "split_images",
]

ImageLike = str | os.PathLike[str] | Image.Image

IMAGE_ARGS = ("init_image", "content_mask", "style_masks")  # the keyword arguments that are images

# The CLI's flags and the web's form fields for the images that are not the photo and the paintings:
# name -> help text. ``init`` is an option that also takes a file (then init="image" with that file).
IMAGE_HELP = {
    "init": "initial image: noise, content or an image file",
    "content_mask": "mask image: one colour or gray level per region; region i gets style i",
    "style_masks": "one mask per style image: white marks the part to copy from",
}
MASKS_AFTER = "style_blend"  # the option after which the flags and form fields list the masks


@dataclass(frozen=True)
class Inputs:
    """The images of one transfer, loaded, checked against each other and the options."""

    content: Image.Image
    styles: Sequence[Image.Image]
    init_image: Image.Image | None
    content_mask: Image.Image | None
    style_masks: Sequence[Image.Image] | None
    content_mask_name: str = "content mask"  # how errors name the content mask: its path, if it had one


@dataclass(frozen=True)
class Images:
    """The images of one transfer as given (paths or PIL images), before loading: the photo, the
    paintings, and the optional init image and masks (:func:`gather` loads and checks them)."""

    content: ImageLike
    styles: ImageLike | Sequence[ImageLike]
    init_image: ImageLike | None = None
    content_mask: ImageLike | None = None
    style_masks: Sequence[ImageLike] | None = None

    def gather(self, init: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Inputs:
        """Each image loaded once and checked (``init``: the option, checked against ``init_image``)."""
        return gather(
            self.content,
            self.styles,
            init,
            init_image=self.init_image,
            content_mask=self.content_mask,
            style_masks=self.style_masks,
            max_pixels=max_pixels,
        )

    def recorded(self, init: str) -> dict[str, Any]:
        """The parameters that name the init image and masks (:func:`recorded`)."""
        return recorded(init, self.init_image, self.content_mask, self.style_masks)


def load(img: ImageLike, max_pixels: int = DEFAULT_MAX_PIXELS, *, rgb: bool = True) -> Image.Image:
    """A path's image (:func:`impasto.load_image`), or a PIL image as it is (as RGB with ``rgb``)."""
    if isinstance(img, Image.Image):
        return img.convert("RGB") if rgb and img.mode != "RGB" else img
    return load_image(img, max_pixels=max_pixels)


def name_of(img: ImageLike, fallback: str = "image") -> str:
    """How a run's errors and parameters name an input: its path as given, ``fallback`` for a PIL image."""
    return fallback if isinstance(img, Image.Image) else os.fspath(img)


def _many(images: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    return [images] if isinstance(images, str | os.PathLike | Image.Image) else list(images)


def recorded(
    init: str,
    init_image: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    style_masks: ImageLike | Sequence[ImageLike] | None = None,
) -> dict[str, Any]:
    """The parameters that name a run's init image and masks, next to its options in the output.

    ``init`` is the option's value, or with an init image its name (a path as given; ``image`` for a
    PIL image); each mask by its name, or None.
    """
    return {
        "init": name_of(init_image) if init == "image" and init_image is not None else init,
        "content_mask": None if content_mask is None else name_of(content_mask),
        "style_masks": None if style_masks is None else [name_of(m) for m in _many(style_masks)],
    }


def split_images(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options, images)`` from one dict of keyword arguments: the images are :data:`IMAGE_ARGS`.

    With an init image and no ``init`` among the options, ``init`` becomes ``image``: the init image
    given is where the run starts, whatever the preset's ``init``.
    """
    images = {k: v for k, v in values.items() if k in IMAGE_ARGS and v is not None}
    options = {k: v for k, v in values.items() if k not in IMAGE_ARGS}
    if "init_image" in images and options.get("init") is None:
        options["init"] = "image"
    return options, images


def check_init(init: str, has_image: bool) -> None:
    """An init image goes with ``init="image"``, and ``init="image"`` needs one."""
    if init == "image" and not has_image:
        raise ConfigError("`init` 'image' needs an init image: pass it as init_image (a path or a PIL image)")
    if has_image and init != "image":
        raise ConfigError(f"an init image was given with `init` '{init}': leave `init` out, or set it to 'image'")


def gather(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    init: str,
    *,
    init_image: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    style_masks: ImageLike | Sequence[ImageLike] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Inputs:
    """Load every image of a transfer once; ``init`` is the option, checked against ``init_image``."""
    style_list = _many(styles)
    if not style_list:
        raise ConfigError("at least one style image is needed")
    check_init(init, init_image is not None)
    return Inputs(
        content=load(content, max_pixels),
        styles=[load(s, max_pixels) for s in style_list],
        init_image=None if init_image is None else load(init_image, max_pixels),
        content_mask=None if content_mask is None else load(content_mask, max_pixels, rgb=False),
        style_masks=None if style_masks is None else [load(m, max_pixels, rgb=False) for m in _many(style_masks)],
        content_mask_name="content mask" if content_mask is None else name_of(content_mask, "content mask"),
    )
