"""A photo-to-photo recipe on impasto's options: Luan et al.'s photorealism term (the photo preset's).

The term (Deep Photo Style Transfer, CVPR 2017, eq. 2-3) is  lambda * L_0 * E(O) / n,  with
E(O) = sum_c V_c[O]^T L V_c[O] the matting-Laplacian energy of the output (colours in [0, 1]) for
the content photo at the scale's size (:mod:`impasto.core.matting`), n the number of 3x3 windows, and
L_0 the objective's value at the run's first evaluation (the photo itself with ``init="content"``):
impasto's objective is in the units of the balance (:mod:`impasto.core.balance`), not in Luan's, so
lambda is relative, as the temporal weight of :mod:`impasto.video`. Deviation: Luan's energy is a
sum over pixels with lambda = 1e4 at style weight 1e2; a mean makes lambda the same at every size.

A recipe also names the scales where the term is on (Luan's two stages: the last ``term_scales``
only), an optional start from the global colour map (``init_map``) and an optional final
projection (:func:`impasto.core.photo_project.guided_filter`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from impasto import bundled_image
from impasto.config import resolve
from impasto.core.balance import PAPER_LOOK_LAYERS
from impasto.core.eq7 import Eq7
from impasto.core.photo_project import guided_filter
from impasto.core.terms import EVERYWHERE
from impasto.core.terms.photoreal import Photorealism
from impasto.core.transfer import transfer
from impasto.image import load_image, pil_to_tensor, tensor_to_pil
from impasto.inputs import ImageLike
from impasto.net.network import get_vgg

__all__ = ["Recipe", "overhead", "project", "render"]


@dataclass(frozen=True)
class Recipe:
    """Options on a preset, the term's lambda and scales, and the projection (None: none)."""

    options: dict[str, Any] = field(default_factory=dict)
    lam: float = 0.0
    term_scales: int = 99  # the term is on at the last this many scales (99: all)
    project: tuple[int, float] | None = None  # (radius, eps) of the guided filter
    init_map: bool = False  # start from the global colour map of the photo onto the style (init="image")
    recolor: bool = False  # finish (after the projection) with the colours moved onto the style photo's (photo_recolor)
    preset: str = "default"


def render(content: ImageLike, style: ImageLike, size: int, recipe: Recipe) -> tuple[Image.Image, float, float, int]:
    """The recipe's output at ``size`` before its projection (applied on top by :func:`project`), its
    seconds (wall and this process's CPU) and steps. The recipe maps onto impasto's options:
    ``lam`` is ``photorealism``, ``init_map`` is ``init="mapped"``."""
    if recipe.term_scales != 99:
        raise SystemExit("term_scales: impasto's photorealism term is on at every scale")
    content_img = content if isinstance(content, Image.Image) else load_image(content)
    options = recipe.options | {"photorealism": recipe.lam, "photo_projection": False}
    if recipe.init_map:  # the zeroth-order answer, affine in the photo: the term is 0 there
        options |= {"init": "mapped"}
    opts = resolve(recipe.preset, size=size, seed=0, **options)
    start, cpu = time.perf_counter(), time.process_time()
    result = transfer(content_img, style, opts, start_time=start)
    return result.image, time.perf_counter() - start, time.process_time() - cpu, result.steps


def project(content: Image.Image, image: Image.Image, params: tuple[int, float]) -> Image.Image:
    """``image`` through the guided filter (radius, eps) with ``content`` (at its size) as the guide."""
    photo = pil_to_tensor(content.resize(image.size, Image.Resampling.BILINEAR)) / 255
    out = guided_filter(photo, pil_to_tensor(image) / 255, *params)
    return tensor_to_pil(out.clamp(0, 1) * 255)


if __name__ == "__main__":  # a smoke run
    print(render(bundled_image("tubingen"), "/work/shared/images/photos/rocket.jpg", 128, Recipe(lam=100))[1:])


def overhead(size: int, repeats: int = 3) -> dict[str, float]:
    """Seconds per evaluation (value and gradient) of the default objective and of the term, at ``size``."""
    photo_img = load_image(bundled_image("tubingen"))
    photo_img = photo_img.resize((size, round(size * photo_img.height / photo_img.width)), Image.Resampling.BILINEAR)
    photo = pil_to_tensor(photo_img)
    vgg = get_vgg(None, "auto", "max", "cpu", "raw")
    objective = Eq7(vgg, {"conv4_2": 1.0}, dict.fromkeys(PAPER_LOOK_LAYERS, 0.2), 1.0, 1.0).of(photo, [photo])
    term = Photorealism.of(photo)
    x = (photo + 10 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    times: dict[str, float] = {}
    for name, fn in (("objective", lambda: objective(x)[0]), ("term", lambda: term.local({}, x, EVERYWHERE))):
        fn().backward()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            fn().backward()
        times[name] = (time.perf_counter() - start) / repeats
    return times
