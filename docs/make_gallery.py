"""The perceptual controls (Gatys et al. 2017) on the bundled images: one labelled grid per control.

Run: make gallery   (or .venv/bin/python docs/make_gallery.py [--size 160] [--steps 100])

Writes docs/gallery/{color,blend,regions,scale,noise,layer_balance}.png and the masks the region
grid uses, and prints the per-layer style losses E_l with and without --layer-balance (the table
in docs/controls.md). Every panel is the `default` preset at --size/--steps with seed 0; panels
that share their settings are computed once (a 1 0 blend is the first style alone, which is
tested, so the strip's ends are the plain runs). 16 transfers of about 20 s each on two quiet
CPU cores at the default size: 5-6 minutes (38 on a busy shared machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import impasto
from impasto.core import color
from impasto.core.eq7 import Eq7
from impasto.image import pil_to_tensor, resize, tensor_to_pil
from impasto.net.network import get_vgg

OUT = Path(__file__).resolve().parent / "gallery"
CONTENT = "tubingen"
PAD = 6
LABEL_H = 36
TITLE_H = 30

Panel = tuple[Image.Image, str]  # image, caption (one or two lines)


class Gallery:
    """Runs transfers at one size and step count, each distinct setting once.

    With ``cache`` (a folder), finished transfers are kept there (image and losses) and reused by
    a later run with the same settings: handy when retouching one grid.
    """

    def __init__(self, size: int, steps: int, cache: Path | None = None) -> None:
        self.size = size
        self.steps = steps
        self.cache = cache
        self.height = photo(CONTENT, size).height  # panels are shown at the outputs' own size
        self.done: dict[str, tuple[Image.Image, dict[str, float]]] = {}
        self.seconds = 0.0

    def run(self, styles: Sequence[str], **options: Any) -> tuple[Image.Image, dict[str, float]]:
        """(image, losses) of the content painted with ``styles`` under ``options`` (seed 0 by default)."""
        key = json.dumps([list(styles), options, self.size, self.steps], sort_keys=True)
        if key in self.done:
            return self.done[key]
        name = hashlib.sha1(key.encode()).hexdigest()[:16]
        if self.cache is not None and (self.cache / f"{name}.json").is_file():
            image = Image.open(self.cache / f"{name}.png").convert("RGB")
            self.done[key] = image, json.loads((self.cache / f"{name}.json").read_text())["losses"]
            return self.done[key]
        options = dict(options)
        start = time.perf_counter()
        result = impasto.style_transfer(
            impasto.bundled_image(CONTENT),
            [impasto.bundled_image(s) for s in styles],
            size=self.size,
            steps=self.steps,
            seed=options.pop("seed", 0),
            **options,
        )
        took = time.perf_counter() - start
        self.seconds += took
        print(f"  {key}: {result.steps} steps, {took:.0f} s", flush=True)
        self.done[key] = result.image, result.losses
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            result.image.save(self.cache / f"{name}.png")
            (self.cache / f"{name}.json").write_text(json.dumps({"key": key, "losses": result.losses}))
        return self.done[key]

    def image(self, styles: Sequence[str], **options: Any) -> Image.Image:
        return self.run(styles, **options)[0]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def fit(img: Image.Image, height: int) -> Image.Image:
    """``img`` scaled to ``height`` px high."""
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.LANCZOS)


def grid(title: str, rows: Sequence[Sequence[Panel]], height: int) -> Image.Image:
    """Rows of captioned panels, all ``height`` px high, under a title line.

    Each column is as wide as its panel or its caption, whichever is wider; panels get a gray frame.
    """
    small, big = font(12), font(15)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text: str, f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
        return max(round(probe.textlength(line, font=f)) for line in text.split("\n"))

    tiles = [[fit(img, height) for img, _ in row] for row in rows]
    widths = [
        [max(t.width, text_width(caption, small) + 2) for (_, caption), t in zip(row, ts, strict=True)]
        for row, ts in zip(rows, tiles, strict=True)
    ]
    width = max(max(sum(ws) + PAD * (len(ws) + 1) for ws in widths), text_width(title, big) + 2 * PAD)
    row_h = height + LABEL_H + PAD
    out = Image.new("RGB", (width, TITLE_H + row_h * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    draw.text((PAD, 7), title, fill="black", font=big)
    for r, (row, row_tiles, ws) in enumerate(zip(rows, tiles, widths, strict=True)):
        x, y = PAD, TITLE_H + r * row_h
        for (_, caption), tile, w in zip(row, row_tiles, ws, strict=True):
            tx = x + (w - tile.width) // 2
            out.paste(tile, (tx, y))
            draw.rectangle((tx - 1, y - 1, tx + tile.width, y + tile.height), outline=(160, 160, 160))
            for i, line in enumerate(caption.split("\n")[:2]):
                draw.text((x + 1, y + height + 3 + 15 * i), line, fill="black", font=small)
            x += w + PAD
    return out


def save(img: Image.Image, name: str) -> None:
    path = OUT / f"{name}.png"
    img.save(path, optimize=True)
    print(f"saved {path.relative_to(OUT.parent.parent)} ({img.width}x{img.height})", flush=True)


def photo(name: str, size: int) -> Image.Image:
    return resize(impasto.load_image(impasto.bundled_image(name)), size)


def color_grid(g: Gallery) -> Image.Image:
    style = "the_scream"
    c, s = photo(CONTENT, g.size), photo(style, g.size)
    row1 = [
        (c, "content"),
        (s, "style: The Scream"),
        (g.image([style]), "--color none"),
        (g.image([style], color="luminance"), "--color luminance"),
        (g.image([style], color="histogram"), "--color histogram\n(--color-match sym)"),
        (g.image([style], original_colors=True), "--original-colors"),
    ]
    ct, st = pil_to_tensor(c), pil_to_tensor(s)
    row2: list[Panel] = [
        (tensor_to_pil(color.match_luminance(st, ct)), "style luminance as\nmatched by --color luminance")
    ]
    for method in ("sym", "cholesky", "pca"):
        matched = tensor_to_pil(color.match_color(st, ct, method))  # type: ignore[arg-type]
        row2.append((matched, f"style as matched by\n--color-match {method}"))
    title = "Colour: --color none | luminance | histogram, --original-colors, --color-match"
    return grid(title, [row1, row2], g.height)


def blend_grid(g: Gallery) -> Image.Image:
    a, b = "starry_night", "the_scream"
    panels: list[Panel] = [(photo(a, g.size), "style 1: The Starry Night")]
    for w in (1.0, 0.75, 0.5, 0.25, 0.0):
        # A 1 0 blend is the style alone (tests/test_controls.py): the ends are the plain runs.
        alone = {1.0: [a], 0.0: [b]}.get(w)
        img = g.image(alone) if alone else g.image([a, b], style_blend=[w, 1 - w])
        panels.append((img, f"--style-blend {w:g} {1 - w:g}"))
    panels.append((photo(b, g.size), "style 2: The Scream"))
    return grid("Style blend: impasto stylize C S1 S2 --style-blend W1 W2", [panels], g.height)


def region_masks(size: int) -> tuple[Path, Path, Path]:
    """Left/right halves of the content; top/bottom parts of The Starry Night (sky, village)."""
    w, h = resize(impasto.load_image(impasto.bundled_image(CONTENT)), size).size
    halves = Image.new("L", (w, h), 0)
    halves.paste(255, (w // 2, 0, w, h))
    sw, sh = resize(impasto.load_image(impasto.bundled_image("starry_night")), size).size
    sky, village = Image.new("L", (sw, sh), 0), Image.new("L", (sw, sh), 0)
    sky.paste(255, (0, 0, sw, int(sh * 0.55)))
    village.paste(255, (0, int(sh * 0.7), sw, sh))
    paths = (OUT / "mask_halves.png", OUT / "mask_starry_sky.png", OUT / "mask_starry_village.png")
    for img, path in zip((halves, sky, village), paths, strict=True):
        img.save(path)
    return paths


def overlay(img: Image.Image, mask: Image.Image) -> Image.Image:
    """``img`` with the mask's black part dimmed: what a style mask selects."""
    m = np.asarray(mask.convert("L").resize(img.size), dtype=np.float32)[..., None] / 255
    arr = np.asarray(img, dtype=np.float32) * (0.25 + 0.75 * m)
    return Image.fromarray(arr.astype(np.uint8))


def region_grid(g: Gallery) -> Image.Image:
    halves, sky, village = region_masks(g.size)
    starry = photo("starry_night", g.size)
    row1 = [
        (photo(CONTENT, g.size), "content"),
        (Image.open(halves).convert("RGB"), "--content-mask:\nblack = region 1, white = 2"),
        (
            g.image(["starry_night", "the_scream"], content_mask=str(halves)),
            "region 1 Starry Night,\nregion 2 The Scream",
        ),
        (
            g.image(["starry_night", "the_scream"], content_mask=str(halves), style_blend=[1.0, 0.0]),
            "--style-blend 1 0:\nregion 2 keeps the content",
        ),
    ]
    row2 = [
        (overlay(starry, Image.open(sky)), "style mask 1: the sky\nof The Starry Night"),
        (overlay(starry, Image.open(village)), "style mask 2: its\nvillage (same painting)"),
        (
            g.image(["starry_night", "starry_night"], content_mask=str(halves), style_masks=[str(sky), str(village)]),
            "--style-masks: left sky,\nright village",
        ),
        (g.image(["starry_night"]), "no mask: the whole\npainting everywhere"),
    ]
    return grid("Regions: --content-mask MASK (darkest region first) and --style-masks", [row1, row2], g.height)


def scale_grid(g: Gallery) -> Image.Image:
    panels: list[Panel] = [(photo("starry_night", g.size), "style: The Starry Night")]
    for s in (0.5, 1.0, 2.0):
        img = g.image(["starry_night"], **({"style_scale": s} if s != 1.0 else {}))
        panels.append((img, f"--style-scale {s:g}\n(style {round(g.size * s)} px)"))
    return grid("Scale: --style-scale (style image size relative to the output: brush strokes)", [panels], g.height)


def noise_grid(g: Gallery) -> Image.Image:
    style = "starry_night"
    plain = g.image([style])
    seeds = [g.image([style], init_noise_blend=0.5, seed=seed) for seed in (0, 1)]
    diff = np.abs(np.asarray(seeds[0], dtype=np.int16) - np.asarray(seeds[1], dtype=np.int16))
    diff_img = Image.fromarray(np.clip(255 - 4 * diff.max(axis=2), 0, 255).astype(np.uint8)).convert("RGB")
    panels = [
        (plain, "--init-noise-blend 0\n(any seed: this image)"),
        (seeds[0], "--init-noise-blend 0.5\n--seed 0"),
        (seeds[1], "--init-noise-blend 0.5\n--seed 1"),
        (diff_img, "|seed 0 - seed 1| x4\n(dark = differs)"),
    ]
    return grid("Initial noise: --init-noise-blend (varied outputs from the content init)", [panels], g.height)


def balance_grid(g: Gallery) -> tuple[Image.Image, dict[str, dict[str, float]]]:
    style = "starry_night"
    (off, off_losses), (on, on_losses) = g.run([style]), g.run([style], layer_balance=True)
    panels = [
        (photo(CONTENT, g.size), "content"),
        (off, "--layer-balance off"),
        (on, "--layer-balance on"),
        (photo(style, g.size), "style: The Starry Night"),
    ]
    losses = {"off": off_losses, "on": on_losses}
    return grid("Layer balance: every style layer normalised by its target's magnitude", [panels], g.height), losses


def print_balance_table(g: Gallery, losses: dict[str, dict[str, float]]) -> None:
    """E_l of both runs, and E_l / c_l: each layer's error relative to its target's magnitude.

    c_l = sum (A^l / (2 N_l M_l))^2 is the E_l of an image with no response (Eq7.layer_weights).
    """
    opts = impasto.resolve("default", size=g.size)
    vgg = get_vgg(opts.weights, opts.weights_format, opts.pooling, "cpu", opts.network)
    eq = Eq7(vgg, {}, dict(opts.style_layers), 0.0, 1.0, layer_balance=True)
    region = eq.blend([pil_to_tensor(photo("starry_night", g.size))])
    grams, weights = region.targets, eq.layer_weights([region])
    c = {k: float((gm / (2 * gm.shape[-1])).pow(2).sum()) for k, gm in grams.items()}
    layers = list(c)
    print("\n| | " + " | ".join(layers) + " | content |")
    print("|---|" + "---|" * (len(layers) + 1))
    print("| c_l (E_l of a blank image) | " + " | ".join(f"{c[k]:.3g}" for k in layers) + " | |")
    print("| effective w_l, balanced | " + " | ".join(f"{weights[k]:.3g}" for k in layers) + " | |")
    for name, terms in losses.items():
        row = " | ".join(f"{terms[f'style:{k}']:.3g}" for k in layers)
        rel = " | ".join(f"{terms[f'style:{k}'] / c[k]:.3g}" for k in layers)
        print(f"| E_l, balance {name} | {row} | {terms['content']:.3g} |")
        print(f"| E_l / c_l, balance {name} | {rel} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="longest side of each panel, px")
    parser.add_argument("--steps", type=int, default=100, help="steps of every transfer (default preset)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--cache", type=Path, default=None, help="keep finished transfers here and reuse them")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    g = Gallery(args.size, args.steps, args.cache)
    start = time.perf_counter()
    save(color_grid(g), "color")
    save(blend_grid(g), "blend")
    save(region_grid(g), "regions")
    save(scale_grid(g), "scale")
    save(noise_grid(g), "noise")
    img, losses = balance_grid(g)
    save(img, "layer_balance")
    print_balance_table(g, losses)
    cpu = os.times()
    print(
        f"\n{len(g.done)} transfers, {g.seconds:.0f} s of them; total {time.perf_counter() - start:.0f} s "
        f"wall, {cpu.user + cpu.system:.0f} s CPU"
    )


if __name__ == "__main__":
    main()
