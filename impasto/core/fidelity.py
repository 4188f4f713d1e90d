"""Preview fidelity: does the print, seen at the preview's size, look like the preview?

A print refined from a preview (``init="image"`` with an image smaller than the output) is
downscaled to the preview's size and measured as the preview is, by issue 10's two measures
(:func:`impasto.core.balance.look`): content kept r against the photo, style reached s against the
painting (at the preview's size, as the preview run saw it). The four numbers go into the output's
parameters (``preview_fidelity``) and the command line prints them.
"""

from __future__ import annotations

from PIL import Image

from ..image import pil_to_tensor, resize
from ..net.vgg import VGG19
from .balance import look

__all__ = ["preview_fidelity"]


def preview_fidelity(
    output: Image.Image, preview: Image.Image, photo: Image.Image, painting: Image.Image, vgg: VGG19
) -> dict[str, float]:
    """r and s of ``preview`` and of ``output`` downscaled to its size (rounded to 3 places)."""
    device = next(vgg.parameters()).device
    size = preview.size
    photo_t = pil_to_tensor(photo.convert("RGB").resize(size, Image.Resampling.BILINEAR), device)
    painting_t = pil_to_tensor(resize(painting.convert("RGB"), max(size)), device)
    seen = output.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    before = look(pil_to_tensor(preview.convert("RGB"), device), photo_t, painting_t, vgg)
    after = look(pil_to_tensor(seen, device), photo_t, painting_t, vgg)
    values = {
        "preview_content_kept": before.content_kept,
        "preview_style_reached": before.style_reached,
        "print_content_kept": after.content_kept,
        "print_style_reached": after.style_reached,
    }
    return {k: round(float(v), 3) for k, v in values.items()}
