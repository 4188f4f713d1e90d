"""Issue 10's artefact study: the peers' remedies measured on the default preset (docs/look.md).

Each variant renders photos x paintings at the given sizes and reports the look (content kept r,
style reached s: :func:`impasto.core.balance.look`) and two artefact measures on the saved image:

- band: how much the outer 2 px of each side differ in brightness from the 6 px inside them,
  beyond what the photo's own edges do (0 = no band along the edges);
- speckle: the mean absolute difference from a 3x3 median filter, RGB levels (pixel-level noise).

Variants (on top of the current default preset; `old` is the default before issue 10's item 3):

    old       coarsest scale 64 px, no TV             pad16    old + the image reflected 16 px on
    ema       old + the mean of the iterates                   every side, features cropped back
    tv        TV relative to the photo's (tv_weight)  round16  the image reflected up to a multiple
    refl1     old + reflect padding at conv1_1 only            of 16 px (the stride), cropped back
    new       the current default preset

    python benchmarks/artefacts.py old,new,refl1 128,256 --out /tmp/artefacts
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.nn import functional as F

import impasto.core.schedule as schedule
import impasto.net.vgg as vgg_module
from impasto import bundled_image, style_transfer
from impasto.core.balance import look
from impasto.image import load_image, pil_to_tensor, resize
from impasto.net.network import get_vgg

transfer_module = importlib.import_module("impasto.core.transfer")
FORWARD = vgg_module.VGG19.forward
OPTIMIZE = transfer_module.optimize
Forward = Callable[..., dict[str, torch.Tensor]]


def _factor(name: str) -> int:
    i = vgg_module._LAYER_INDEX[vgg_module.canonical_layer(name)]
    return int(2 ** sum(1 for n in vgg_module.LAYER_NAMES[:i] if n.startswith("pool")))


def padded(pad: int, multiple: int) -> Forward:
    """The network on the image reflected ``pad`` px around (and up to a ``multiple``), features cropped back."""

    def forward(self: Any, rgb: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        h, w = rgb.shape[-2:]
        eh, ew = (-(h + 2 * pad)) % multiple, (-(w + 2 * pad)) % multiple
        mode = "reflect" if pad + max(eh, ew) < min(h, w) else "replicate"
        out = FORWARD(self, F.pad(rgb, (pad, pad + ew, pad, pad + eh), mode=mode), layers)
        crops = {}
        for name, f in out.items():
            k = _factor(name)
            crops[name] = f[..., pad // k : pad // k + -(-h // k), pad // k : pad // k + -(-w // k)]
        return crops

    return forward


def first_reflect(self: Any, rgb: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """The network with reflect padding at conv1_1 only (zero padding everywhere else)."""
    wanted = {vgg_module.canonical_layer(n) for n in layers}
    last = max(vgg_module._LAYER_INDEX[n] for n in wanted)
    x, out, conv_i = self.preprocessing(rgb), {}, 0
    for name in vgg_module.LAYER_NAMES[: last + 1]:
        if name.startswith("conv"):
            if conv_i == 0:
                x = vgg_module.conv_relu(self._conv(0), F.pad(x, (1, 1, 1, 1), mode="reflect"))[..., 1:-1, 1:-1]
            else:
                x = vgg_module.conv_relu(self._conv(conv_i), x)
            conv_i += 1
        else:
            x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
        if name in wanted:
            out[name] = x
    return {n: out[vgg_module.canonical_layer(n)] for n in layers}


OLD = {"coarse": 64, "tv_weight": 0.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "old": OLD,
    "ema": OLD | {"average": 0.9},
    "tv": {"coarse": 64},  # the current relative TV on the old ladder; --set tv_weight=... to vary it
    "refl1": OLD | {"forward": first_reflect},
    "pad16": OLD | {"forward": padded(16, 16)},
    "round16": {"forward": padded(0, 16)},
    "new": {},
}


def band(out: np.ndarray, photo: np.ndarray) -> float:
    def sides(x: np.ndarray) -> np.ndarray:
        lum = x.mean(-1)
        return np.array(
            [
                lum[:2].mean() - lum[2:8].mean(),
                lum[-2:].mean() - lum[-8:-2].mean(),
                lum[:, :2].mean() - lum[:, 2:8].mean(),
                lum[:, -2:].mean() - lum[:, -8:-2].mean(),
            ]
        )

    return float(np.abs(sides(out) - sides(photo)).mean())


def speckle(img: Image.Image) -> float:
    a = np.asarray(img, dtype=np.float32)
    return float(np.abs(a - np.asarray(img.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)).mean())


def _averaging(decay: float) -> Callable[..., Any]:
    """optimize() returning the bias-corrected moving average of the iterates instead of the best one."""

    def run(objective: Any, init: torch.Tensor, steps: int, **kw: Any) -> Any:
        mean: list[torch.Tensor] = []
        weight = [0.0]
        user = kw.pop("on_step", None)

        def on_step(ev: Any) -> None:
            weight[0] = decay * weight[0] + (1 - decay)
            if not mean:
                mean.append(ev.image.detach().clone())
            else:
                mean[0].lerp_(ev.image.detach(), (1 - decay) / weight[0])
            if user is not None:
                user(ev)

        result = OPTIMIZE(objective, init, steps, on_step=on_step, **kw)
        if mean:
            result.image = mean[0]
        return result

    return run


def render(variant: str, photo: str, painting: str, size: int, out: Path, extra: dict[str, Any]) -> dict[str, Any]:
    v = VARIANTS[variant]
    path = out / f"{variant}-{photo}-{painting}-{size}.png"
    seconds = None
    if path.exists():
        img = Image.open(path).convert("RGB")
    else:
        if "forward" in v:
            vgg_module.VGG19.forward = v["forward"]
        if "average" in v:
            transfer_module.optimize = _averaging(v["average"])
        schedule.MIN_COARSE_SIDE = v.get("coarse", schedule.MIN_COARSE_SIDE)
        options = {k: val for k, val in v.items() if k == "tv_weight"} | extra
        start = time.perf_counter()
        try:
            img = style_transfer(bundled_image(photo), bundled_image(painting), size=size, seed=0, **options).image
        finally:
            vgg_module.VGG19.forward, transfer_module.optimize, schedule.MIN_COARSE_SIDE = FORWARD, OPTIMIZE, COARSE
        seconds = round(time.perf_counter() - start, 1)
        img.save(path)
    vgg = get_vgg(None, "auto", "max", "cpu", "raw")
    ph = resize(load_image(bundled_image(photo)), size)
    pa = resize(load_image(bundled_image(painting)), size)
    m = look(pil_to_tensor(img), pil_to_tensor(ph), pil_to_tensor(pa), vgg)
    photo_a = np.asarray(ph.convert("RGB"), np.float32)
    return {
        "variant": variant,
        "photo": photo,
        "painting": painting,
        "size": size,
        "r": round(m.content_kept, 3),
        "s": round(m.style_reached, 4),
        "band": round(band(np.asarray(img, np.float32), photo_a), 2),
        "speckle": round(speckle(img), 2),
        "seconds": seconds,
    }


COARSE = schedule.MIN_COARSE_SIDE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", help="comma-separated: " + ", ".join(VARIANTS))
    p.add_argument("sizes", help="comma-separated sides, e.g. 128,256")
    p.add_argument("--photos", default="tubingen,astronaut,coffee")
    p.add_argument("--paintings", default="starry_night,composition_vii")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=NUMBER", help="options on top, e.g. tv_weight=0.005")
    p.add_argument("--out", type=Path, default=Path("/tmp/artefacts"), help="renders (reused) and rows.jsonl")
    args = p.parse_args()
    torch.set_num_threads(1)
    extra = {k: (int(v) if v.isdigit() else float(v)) for k, v in (item.split("=", 1) for item in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "rows.jsonl").open("a") as log:
        for size in map(int, args.sizes.split(",")):
            for variant in args.variants.split(","):
                for photo in args.photos.split(","):
                    for painting in args.paintings.split(","):
                        row = render(variant, photo, painting, size, args.out, extra)
                        print(json.dumps(row), file=log, flush=True)
                        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
