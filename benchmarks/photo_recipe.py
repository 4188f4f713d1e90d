"""A photo-to-photo recipe run through ``transfer(extra_loss=...)``: Luan et al.'s photorealism term.

The term (Deep Photo Style Transfer, CVPR 2017, eq. 2-3) is  lambda * L_0 * E(O) / n,  with
E(O) = sum_c V_c[O]^T L V_c[O] the matting-Laplacian energy of the output (colours in [0, 1]) for
the content photo at the scale's size (:mod:`impasto.matting`), n the number of 3x3 windows, and
L_0 the objective's value at the run's first evaluation (the photo itself with ``init="content"``):
impasto's objective is in the units of the balance (:mod:`impasto.balance`), not in Luan's, so
lambda is relative, as the temporal weight of :mod:`impasto.video`. Deviation: Luan's energy is a
sum over pixels with lambda = 1e4 at style weight 1e2; a mean makes lambda the same at every size.

A recipe also names the scales where the term is on (Luan's two stages: the last ``term_scales``
only), an optional start from the global colour map (``init_map``) and an optional final
projection (:func:`impasto.photo_project.guided_filter`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from photo_metrics import global_colour_map
from PIL import Image

from impasto import bundled_image
from impasto.config import resolve
from impasto.image import load_image, pil_to_tensor, tensor_to_pil
from impasto.inputs import ImageLike
from impasto.matting import MattingGuide, matting_energy, precompute
from impasto.photo_project import guided_filter
from impasto.transfer import transfer

__all__ = ["PhotoTerm", "Recipe", "project", "render"]


@dataclass(frozen=True)
class Recipe:
    """Options on a preset, the term's lambda and scales, and the projection (None: none)."""

    options: dict[str, Any] = field(default_factory=dict)
    lam: float = 0.0
    term_scales: int = 99  # the term is on at the last this many scales (99: all)
    project: tuple[int, float] | None = None  # (radius, eps) of the guided filter
    init_map: bool = False  # start from the global colour map of the photo onto the style (init="image")
    preset: str = "default"


class PhotoTerm:
    """``extra_loss`` for :func:`impasto.transfer.transfer`: lambda * L_0 * mean per-window energy."""

    def __init__(self, content: Image.Image, lam: float, sizes: list[tuple[int, int]], term_scales: int) -> None:
        self.content = content
        self.lam = lam
        self.on = set(sizes[-term_scales:]) if term_scales > 0 else set()  # (width, height) of the scales with it
        self.guides: dict[tuple[int, int], MattingGuide] = {}
        self.ref: torch.Tensor | None = None

    def guide(self, image: torch.Tensor) -> MattingGuide:
        h, w = image.shape[-2:]
        if (w, h) not in self.guides:  # the photo as set_targets resizes it for this scale
            photo = pil_to_tensor(self.content.resize((w, h), Image.Resampling.BILINEAR), image.device) / 255
            self.guides[(w, h)] = precompute(photo)
        return self.guides[(w, h)]

    def __call__(self, image: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        if self.ref is None:
            self.ref = value
        h, w = image.shape[-2:]
        if self.lam == 0 or (w, h) not in self.on:
            return image.new_zeros(())
        energy = matting_energy(image / 255, self.guide(image))  # (1, 1, h-2, w-2)
        return self.lam * self.ref * energy.mean()


def _sizes(opts: Any, content: Image.Image) -> list[tuple[int, int]]:
    from impasto.schedule import plan

    return [sc.size for sc in plan(opts, content.size, [content.size], None, False).scales]


def render(content: ImageLike, style: ImageLike, size: int, recipe: Recipe) -> tuple[Image.Image, float, float, int]:
    """The recipe's output at ``size``, its seconds (wall and this process's CPU: transfer and projection) and steps."""
    content_img = content if isinstance(content, Image.Image) else load_image(content)
    opts = resolve(recipe.preset, size=size, seed=0, **recipe.options)
    start, cpu = time.perf_counter(), time.process_time()
    extra = None
    if recipe.lam > 0:
        extra = PhotoTerm(content_img, recipe.lam, _sizes(opts, content_img), recipe.term_scales)
    init = None
    if recipe.init_map:  # the zeroth-order answer, affine in the photo: the term is 0 there
        style_img = style if isinstance(style, Image.Image) else load_image(style)
        init = tensor_to_pil(global_colour_map(pil_to_tensor(content_img), pil_to_tensor(style_img)))
        opts = resolve(recipe.preset, size=size, seed=0, **(recipe.options | {"init": "image"}))
    result = transfer(content_img, style, opts, init_image=init, extra_loss=extra, start_time=start)
    image = result.image if recipe.project is None else project(content_img, result.image, recipe.project)
    return image, time.perf_counter() - start, time.process_time() - cpu, result.steps


def project(content: Image.Image, image: Image.Image, params: tuple[int, float]) -> Image.Image:
    """``image`` through the guided filter (radius, eps) with ``content`` (at its size) as the guide."""
    photo = pil_to_tensor(content.resize(image.size, Image.Resampling.BILINEAR)) / 255
    out = guided_filter(photo, pil_to_tensor(image) / 255, *params)
    return tensor_to_pil(out.clamp(0, 1) * 255)


if __name__ == "__main__":  # a smoke run
    print(render(bundled_image("tubingen"), "/work/shared/images/photos/rocket.jpg", 128, Recipe(lam=100))[1:])


def overhead(size: int, repeats: int = 3) -> dict[str, float]:
    """Seconds per evaluation (value and gradient) of the default objective and of the term, at ``size``."""
    from impasto.balance import PAPER_LOOK_LAYERS
    from impasto.losses import Objective
    from impasto.transfer import get_vgg

    photo_img = load_image(bundled_image("tubingen"))
    photo_img = photo_img.resize((size, round(size * photo_img.height / photo_img.width)), Image.Resampling.BILINEAR)
    photo = pil_to_tensor(photo_img)
    objective = Objective(get_vgg(None, "auto", "max", "cpu", "raw"), {"conv4_2": 1.0},
                          dict.fromkeys(PAPER_LOOK_LAYERS, 0.2), 1.0, 1.0)  # fmt: skip
    objective.set_content(photo)
    objective.set_style([photo])
    term = PhotoTerm(photo_img, 1.0, [photo_img.size], 1)
    x = (photo + 10 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    times: dict[str, float] = {}
    for name, fn in (("objective", lambda: objective(x)[0]), ("term", lambda: term(x, torch.ones(())))):
        fn().backward()  # warm-up (and the term's guide statistics)
        start = time.perf_counter()
        for _ in range(repeats):
            fn().backward()
        times[name] = (time.perf_counter() - start) / repeats
    return times
