"""An earlier, smaller result as the start of a larger run ("preview, then print").

Upscaling a 512-px preview to 2048 px blurs it: the strokes and colours are the preview's, but
every detail finer than the preview's pixels is gone, so the style layers (conv1_1, conv2_1) see
no texture and conv4_2 sees a soft photo. Measured on the bundled pair, the plain 2x upscale of a
preview with content kept r = 0.69 and style reached s = 0.99 (:func:`impasto.balance.look`)
starts the 1024-px run at r = 0.40, s = -0.27, and the first L-BFGS steps trade the photo away
while they restore the texture (r = 0.23 after 5 steps, 0.63 after 30).

So the start is the upscaled preview *plus the photo's own detail band*, the part of the photo
that a round trip through the preview's size removes:

    start = up(preview) + (photo - up(down(photo)))

Below the preview's resolution it is the preview, above it the photo: nothing the preview
decided is changed, and the refinement begins from a sharp image (r = 0.61, s = 0.41 at 1024 px;
0.61 after 15 steps, 0.69 after 30). An init image at least as large as the run is resized as
before.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch.nn import functional as F

from ..image import pil_to_tensor

__all__ = ["start_from"]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, h, w) resized to (height, width) ``size``: bilinear, antialiased when it shrinks."""
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def start_from(image: Image.Image, photo: torch.Tensor) -> torch.Tensor:
    """``image`` as the start of a run on ``photo`` (1, 3, H, W, 0..255): (1, 3, H, W), 0..255.

    Larger than the photo (or as large) on either side: resized (PIL bilinear, as every init).
    Smaller on both: upscaled, plus the photo's detail above the image's resolution (module doc).
    """
    height, width = photo.shape[-2:]
    if image.width >= width or image.height >= height:
        return pil_to_tensor(image.resize((width, height), Image.Resampling.BILINEAR), photo.device)
    small = pil_to_tensor(image, photo.device).to(photo.dtype)
    coarse = (image.height, image.width)
    detail = photo - _resize(_resize(photo, coarse), (height, width))
    return (_resize(small, (height, width)) + detail).clamp_(0, 255)
