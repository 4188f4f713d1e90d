"""docs/style-loss.md's pictures and table: Gram against W2 on every bundled pair, from `make look`'s renders.

    python benchmarks/look.py --sizes 128 --cache C ...                         # the Gram renders
    python benchmarks/look.py --sizes 128 --set style_loss=w2 --cache C ...     # the W2 renders
    python docs/make_style_loss.py --cache C --gram G/look.json --w2 W/look.json

Per pair: r and s (impasto.core.balance.look, Gram-based) of both, and each output's W2 style
reached, 1 - L_w2(out) / L_w2(photo), against the painting with the W2 term's layers and weights.
One sheet per photo (docs/style-loss/PHOTO.png): the paintings, then the Gram row, then the W2 row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from impasto import bundled_image
from impasto.config import PAPER_STYLE_LAYERS
from impasto.core.eq7 import Eq7
from impasto.grid import Cell, make_grid
from impasto.image import load_image, pil_to_tensor, resize
from impasto.net.network import get_vgg

HERE = Path(__file__).resolve().parent


def render_path(cache: Path, photo: str, painting: str, size: int, extra: dict[str, Any]) -> Path:
    """Where benchmarks/look.py keeps a render (its _render_path)."""
    key = hashlib.sha256(json.dumps(["default", extra, torch.__version__], sort_keys=True).encode()).hexdigest()
    return cache / f"{photo}-{painting}-{size}-{key[:10]}.png"


@torch.no_grad()
def w2_reached(out: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor) -> float:
    """1 - L_w2(out) / L_w2(photo) against ``painting`` (max pooling, the paper's style layers)."""
    eq = Eq7(get_vgg(None, "auto", "max", "cpu", "raw"), {}, dict(PAPER_STYLE_LAYERS), 0.0, 1.0, style_loss="w2")
    objective = eq.of(None, [painting], shape=(out.shape[-2], out.shape[-1]))
    photo = torch.nn.functional.interpolate(photo, size=out.shape[-2:], mode="bilinear", antialias=True)
    return 1.0 - float(objective(out)[1]["style"]) / float(objective(photo)[1]["style"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--gram", type=Path, required=True, help="look.json of the Gram run")
    p.add_argument("--w2", type=Path, required=True, help="look.json of the W2 run")
    p.add_argument("--size", type=int, default=128)
    args = p.parse_args()
    rows = {k: {(r["photo"], r["painting"]): r for r in json.loads(f.read_text())["rows"]} for k, f in
            (("gram", args.gram), ("w2", args.w2))}  # fmt: skip
    out_dir = HERE / "style-loss"
    out_dir.mkdir(exist_ok=True)
    table = [
        "| photo | painting | r gram | r w2 | s gram | s w2 | W2 reached gram | W2 reached w2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for photo in dict.fromkeys(k[0] for k in rows["gram"]):
        paintings = [k[1] for k in rows["gram"] if k[0] == photo]
        grid: list[list[Cell]] = [[Cell(resize(load_image(bundled_image(q)), args.size), q) for q in paintings]]
        for name, extra in (("gram", {"seed": 0}), ("w2", {"seed": 0, "style_loss": "w2"})):
            grid.append(
                [Cell(Image.open(render_path(args.cache, photo, q, args.size, extra)), name) for q in paintings]
            )
        make_grid(grid, f"{photo}: the paintings, Gram (default), W2 at {args.size} px").save(out_dir / f"{photo}.png")
        photo_t = pil_to_tensor(load_image(bundled_image(photo)))
        for q in paintings:
            painting_t = pil_to_tensor(resize(load_image(bundled_image(q)), args.size))
            reached = {}
            for name, extra in (("gram", {"seed": 0}), ("w2", {"seed": 0, "style_loss": "w2"})):
                out = pil_to_tensor(Image.open(render_path(args.cache, photo, q, args.size, extra)))
                reached[name] = w2_reached(out, photo_t, painting_t)
            g, w = rows["gram"][photo, q], rows["w2"][photo, q]
            table.append(
                f"| {photo} | {q} | {g['content_kept']:.3f} | {w['content_kept']:.3f} | {g['style_reached']:.4f} | "
                f"{w['style_reached']:.4f} | {reached['gram']:.3f} | {reached['w2']:.3f} |"
            )
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
