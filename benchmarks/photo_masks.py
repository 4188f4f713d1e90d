"""The photo preset with region masks (Luan's "augmented style loss": sky to sky), measured.

Masks as a user would paint them roughly: the sky of each photo (its sky-coloured pixels connected
to the top edge, opened and closed by a few pixels: solid shapes, no detail) and the rest. The
content photo's sky takes the style photo's sky, the rest its rest (``--content-mask`` and
``--style-masks`` with the style photo given twice). Each pair at each size: the preset without
and with the masks, the four figures of ``photo.py``; a sheet per pair and ``masks.md`` in
``benchmarks/results/photo/``.

    python benchmarks/photo_masks.py --sizes 384
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from photo import OUT, PHOTOS, figures
from PIL import Image
from report import cpuinfo

from impasto import stylize
from impasto.grid import Cell, make_grid
from impasto.image import load_image, pil_to_tensor, resize

FIGURES = ("structure", "affine_residual", "colour_closed", "style_closed")
Colours = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
SKY: dict[str, Colours] = {  # what is sky-coloured in each photo (R, G, B as ints)
    "tubingen": lambda r, g, b: (b > r + 25) & (b > 120),  # a bright blue day sky
    "rocket": lambda r, g, b: (b > r + 10) & (b > 40),  # a dark blue dusk sky
}


def sky_mask(name: str) -> Image.Image:
    """White where the photo's sky is, black elsewhere, at the photo's size."""
    a = np.asarray(load_image(PHOTOS[name])).astype(int)
    m = SKY[name](a[..., 0], a[..., 1], a[..., 2]).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, labels = cv2.connectedComponents(m)
    sky = np.isin(labels, [v for v in np.unique(labels[0]) if v > 0]).astype(np.uint8)
    sky = cv2.morphologyEx(sky, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    return Image.fromarray(sky * 255).convert("RGB")


def run(pair: str, size: int, masked: bool) -> tuple[Image.Image, dict[str, float]]:
    cname, sname = pair.split(":")
    content, style = load_image(PHOTOS[cname]), load_image(PHOTOS[sname])
    start = time.process_time()
    if masked:
        sky = sky_mask(sname)
        rest = Image.eval(sky, lambda v: 255 - v)
        image = stylize(content, [style, style], preset="photo", size=size, seed=0,
                        content_mask=sky_mask(cname), style_masks=[rest, sky])  # fmt: skip
    else:
        image = stylize(content, style, preset="photo", size=size, seed=0)
    cpu = time.process_time() - start
    c, s = (pil_to_tensor(resize(im, size)) for im in (content, style))
    return image, figures(pil_to_tensor(image), c, s) | {"cpu": round(cpu, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[384])
    p.add_argument("--pairs", nargs="+", default=["rocket:tubingen", "tubingen:rocket"])
    args = p.parse_args(argv)
    rows = []
    for pair in args.pairs:
        cname, sname = pair.split(":")
        for size in args.sizes:
            cells = [Cell(resize(sky_mask(cname), 320), "sky white"), Cell(resize(sky_mask(sname), 320), "sky white")]
            for masked in (False, True):
                image, figs = run(pair, size, masked)
                row = {"pair": pair, "size": size, "masks": masked, **figs}
                rows.append(row)
                print(json.dumps(row), flush=True)
                text = " / ".join(
                    f"{figs[k]:.2f}" for k in ("structure", "affine_residual", "colour_closed", "style_closed")
                )
                cells.append(Cell(image, text))
            labels = ["C's mask", "S's mask", "photo", "with the masks"]
            title = f"{cname} in the light of {sname}, {size} px"
            footer = "under each: structure / affine residual / colour closed / style closed"
            make_grid([cells], title, col_labels=labels, footer=footer, cell_size=320).save(
                OUT / f"masks-{cname}-{sname}-{size}.jpg", quality=85
            )
    lines = [
        "# The photo preset with sky/rest masks (benchmarks/photo_masks.py)",
        "",
        f"{cpuinfo()['cpu_model']}, {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| pair (C:S) | px | masks | structure | affine residual | colour closed | style closed | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        figs = " | ".join(f"{r[k]:.3f}" for k in FIGURES)
        lines.append(f"| {r['pair']} | {r['size']} | {'yes' if r['masks'] else 'no'} | {figs} | {r['cpu']:.0f} |")
    (OUT / "masks.md").write_text("\n".join(lines) + "\n")
    (OUT / "masks.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
