"""Evidence for the `default` preset: the presets side by side under the same time budget.

Run: .venv/bin/python docs/make_presets.py [--size 384] [--seconds 110]
Writes docs/presets.png (labelled grid) and prints each panel's settings and loss.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

import impasto

# The first panel runs its full step budget; the others get the same wall time (--max-time).
PANELS: list[tuple[str, dict[str, object]]] = [
    ("default", {"preset": "default"}),
    ("default, ratio 1e-2", {"preset": "default", "ratio": 1e-2, "steps": 1000}),
    ("paper preset", {"preset": "paper", "steps": 1000}),
    ("paper preset, max pooling", {"preset": "paper", "pooling": "max", "steps": 1000}),
]


def label(img: Image.Image, text: str) -> Image.Image:
    """The image with a caption strip underneath."""
    out = Image.new("RGB", (img.width, img.height + 22), "white")
    out.paste(img, (0, 0))
    ImageDraw.Draw(out).text((4, img.height + 5), text, fill="black")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--out", default=str(Path(__file__).with_name("presets.png")))
    args = parser.parse_args()
    content, style = impasto.bundled_image("tubingen"), impasto.bundled_image("starry_night")
    tiles = []
    budget: float | None = None
    for title, overrides in PANELS:
        opts = dict(overrides)
        preset = str(opts.pop("preset"))
        start = time.perf_counter()
        result = impasto.style_transfer(content, style, preset=preset, size=args.size, max_time=budget, seed=0, **opts)
        took = time.perf_counter() - start
        budget = budget or took
        print(f"{title}: {result.steps} steps in {took:.0f} s, loss {result.loss:.3g}", flush=True)
        tiles.append(label(result.image, f"{title}: {result.steps} steps, {took:.0f} s"))
    w, h = tiles[0].size
    grid = Image.new("RGB", (w * 2, h * 2), "white")
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % 2) * w, (i // 2) * h))
    grid.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
