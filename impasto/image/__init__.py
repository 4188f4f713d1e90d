"""Reading and writing images: every common format and mode in, atomic PNG/JPEG/WebP out.

Images enter as RGB (EXIF orientation applied, alpha composited on white, CMYK, palette,
grayscale and 16-bit converted) and leave with the parameters that made them embedded:
a PNG text chunk, or EXIF ImageDescription for JPEG and WebP. Reading is :mod:`.load`,
writing (and reading the embedded parameters back) :mod:`.save`.
"""

from __future__ import annotations

from .load import DEFAULT_MAX_PIXELS, MIN_SIDE, fit_size, load_image, pil_to_tensor, resize, tensor_to_pil
from .save import (
    DEFAULT_QUALITY,
    OUTPUT_FORMATS,
    check_output_path,
    encode_png,
    output_folder,
    params_text,
    read_params,
    save_image,
)
from .save import PARAMS_KEY as PARAMS_KEY  # importable from here, as before the split

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "MIN_SIDE",
    "OUTPUT_FORMATS",
    "check_output_path",
    "encode_png",
    "fit_size",
    "load_image",
    "output_folder",
    "params_text",
    "pil_to_tensor",
    "read_params",
    "resize",
    "save_image",
    "tensor_to_pil",
]
