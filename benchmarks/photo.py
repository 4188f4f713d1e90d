"""Photo-to-photo transfer, measured (issue 32): four figures per output, reference rows, sheets.

For each pair (content photo C, style photo S) and size: C itself, the global colour map (the
Gaussian W2 map of C's colours onto S's), the ``default`` preset, ``--original-colors`` (the
default's result with C's chroma: the same run, post-processed as ``delivered`` does) and each
photo recipe (:mod:`photo_recipe`), with the figures of :mod:`photo_metrics`. Writes one sheet per
pair and size (C | S | default | global colour map | photo), ``results.{json,md}`` to
``benchmarks/results/photo/``.

    python benchmarks/photo.py --recipe name=photo lam=3000 init_map=1 style_strength=20 "project=(4,0.001)"
    python benchmarks/photo.py --sizes 256 --pairs tubingen:rocket --recipe lam=100 term_scales=1 --recipe lam=1000

Renders are cached in ``--cache`` (a rerun only measures); CPU seconds (this process's) are what the
time limit compares, the wall seconds being those of a machine shared with other work.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from photo_metrics import affine_residual, colour_closed, global_colour_map, structure, style_closed
from photo_recipe import Recipe, project, render
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from report import cpuinfo, number_or_text

from impasto import bundled_image
from impasto.core.color import colour_map, with_chroma_of
from impasto.core.targets import palette_of
from impasto.grid import Cell, make_grid
from impasto.image import load_image, pil_to_tensor, resize, tensor_to_pil
from impasto.net.network import get_vgg

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = {"tubingen": bundled_image("tubingen"), "rocket": Path("/work/shared/images/photos/rocket.jpg")}
PAIRS = ("rocket:tubingen", "tubingen:rocket", "tubingen-left:tubingen-right-dusk")
# A pair with a known answer (a best case): two overlapping crops of the Tübingen photo, the second
# turned to dusk by a known global change. The right answer for the left crop is that change applied
# to it (the "truth" of its rows: the mean absolute difference from it, in levels).
MADE = {"tubingen-left": (0.0, 0.6, False), "tubingen-right-dusk": (0.4, 1.0, True)}


def dusk(image: Image.Image) -> Image.Image:
    """The known change: a stop and a half darker, a cool white balance, the blacks lifted a little."""
    a = np.asarray(image, dtype=np.float64) / 255
    a = 0.03 + 0.35 * a**1.1 * np.array([0.8, 0.95, 1.3])
    return Image.fromarray((a.clip(0, 1) * 255).round().astype(np.uint8))


def photo_path(name: str, cache: Path) -> Path:
    """A test photo: a bundled or shared one, or one of :data:`MADE` (written to ``cache`` once)."""
    if name in PHOTOS:
        return PHOTOS[name]
    left, right, darken = MADE[name]
    path = cache / f"{name}.png"
    if not path.exists():
        base = load_image(PHOTOS["tubingen"])
        crop = base.crop((round(left * base.width), 0, round(right * base.width), base.height))
        cache.mkdir(parents=True, exist_ok=True)
        (dusk(crop) if darken else crop).save(path)
    return path


LIMITS = {"structure": 0.90, "affine_residual": 5.0, "colour_closed": 0.3, "style_over_map": 0.1, "time_ratio": 1.5}
OUT = ROOT / "benchmarks" / "results" / "photo"


def _value(text: str) -> Any:
    """A recipe item's value: a number, a tuple of them written ``(4,0.001)``, else the text."""
    if text.startswith("("):
        return tuple(_value(t) for t in text.strip("()").split(",") if t)
    return number_or_text(text)


def _name(items: list[str], index: int, count: int) -> str:
    """A recipe's row name: its ``name=`` item, else photo (one recipe) or photoN."""
    named = [x.split("=", 1)[1] for x in items if x.startswith("name=")]
    return named[0] if named else ("photo" if count == 1 else f"photo{index + 1}")


def parse_recipe(items: list[str]) -> Recipe:
    """``lam=100 term_scales=1 project=(4,1e-4) steps=300 ...``: Recipe fields, the rest options."""
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for k, v in (item.split("=", 1) for item in items):
        (fields if k in ("lam", "term_scales", "project", "preset", "init_map", "recolor") else options)[k] = _value(v)
    return Recipe(options=options, **fields)


def figures(out: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> dict[str, float]:
    vgg = get_vgg(None, "auto", "max", "cpu", "raw")
    return {
        "structure": round(structure(out, c), 4),
        "affine_residual": round(affine_residual(out, c), 3),
        "colour_closed": round(colour_closed(out, c, s), 4),
        "style_closed": round(style_closed(out, c, s, vgg), 4),
    }


def _cached(cache: Path, name: str, key: Any, make: Any) -> tuple[Image.Image, dict[str, Any]]:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    path = cache / f"{name}-{digest}.png"
    if path.exists():
        image = load_image(path)
        return image, json.loads(image.info["row"])
    image, row = make()
    info = PngInfo()
    info.add_text("row", json.dumps(row))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)
    return image, row


def measure_pair(
    pair: str, size: int, recipes: dict[str, Recipe], cache: Path
) -> list[tuple[Image.Image, dict[str, Any]]]:
    """The reference rows and one row per recipe for ``pair`` ("content:style") at ``size``."""
    cname, sname = pair.split(":")
    cpath, spath = photo_path(cname, cache), photo_path(sname, cache)
    c_img = resize(load_image(cpath), size)
    c = pil_to_tensor(c_img)
    s = pil_to_tensor(resize(load_image(spath), size))
    base = {"pair": pair, "size": size}
    truth = np.asarray(dusk(c_img), dtype=np.float64) if cname in MADE else None

    def row(name: str, image: Image.Image, seconds: float | None, **more: Any) -> tuple[Image.Image, dict[str, Any]]:
        if truth is not None:
            more["truth"] = round(float(np.abs(np.asarray(image, dtype=np.float64) - truth).mean()), 2)
        return image, base | {"row": name, "seconds": seconds} | more | figures(pil_to_tensor(image), c, s)

    rows = [row("C", c_img, None), row("global map", tensor_to_pil(global_colour_map(c, s)), None)]

    def run(name: str, recipe: Recipe) -> tuple[Image.Image, dict[str, Any]]:
        bare = dataclasses.replace(recipe, project=None, recolor=False)  # the render is cached; the finish is cheap

        def make() -> tuple[Image.Image, dict[str, Any]]:
            image, seconds, cpu, steps = render(cpath, spath, size, bare)
            return row(name, image, round(seconds, 1), cpu=round(cpu, 1), steps=steps, recipe=_describe(bare))

        image, r = _cached(cache, f"{cname}-{sname}-{size}", render_key(bare, size), make)
        if recipe.project is None and not recipe.recolor:
            return image, r | {"row": name}
        start, cpu = time.perf_counter(), time.process_time()
        if recipe.project is not None:
            image = project(load_image(cpath), image, recipe.project)
        if recipe.recolor:  # as impasto's photo_recolor does it
            palette = palette_of([load_image(spath)])
            image = tensor_to_pil(colour_map(pil_to_tensor(image), palette))
        seconds, cpu = r["seconds"] + time.perf_counter() - start, r["cpu"] + time.process_time() - cpu
        return row(name, image, round(seconds, 1), cpu=round(cpu, 1), steps=r["steps"], recipe=_describe(recipe))

    default = run("default", Recipe())
    rows.append(default)
    colours = tensor_to_pil(with_chroma_of(pil_to_tensor(default[0]), c))
    rows.append(row("original colors", colours, default[1]["seconds"], cpu=default[1]["cpu"]))
    rows += [run(name, recipe) for name, recipe in recipes.items()]
    return rows


def render_key(recipe: Recipe, size: int) -> list[Any]:
    """What a cached render depends on (not the projection)."""
    key = [recipe.options, recipe.lam, recipe.term_scales, recipe.preset, size, torch.__version__]
    key = [*key, "init_map"] if recipe.init_map else key
    return [*key, "options"] if recipe.lam else key  # since the term is impasto's own (photorealism)


def _describe(recipe: Recipe) -> str:
    parts = [f"{k}={v}" for k, v in recipe.options.items()]
    if recipe.lam:
        parts.append(f"lambda={recipe.lam:g} on the last {recipe.term_scales} scale(s)" if recipe.term_scales < 99
                     else f"lambda={recipe.lam:g}")  # fmt: skip
    if recipe.init_map:
        parts.append("from the global colour map")
    if recipe.project:
        parts.append(f"guided filter r={recipe.project[0]} eps={recipe.project[1]:g}")
    if recipe.recolor:
        parts.append("recoloured onto S")
    return ", ".join(parts) or "default preset"


def verdict(r: dict[str, Any], ref: dict[str, dict[str, Any]]) -> bool:
    return (
        r["structure"] >= LIMITS["structure"]
        and r["affine_residual"] <= LIMITS["affine_residual"]
        and r["colour_closed"] >= LIMITS["colour_closed"]
        and r["style_closed"] >= ref["global map"]["style_closed"] + LIMITS["style_over_map"]
        and r["cpu"] <= LIMITS["time_ratio"] * ref["default"]["cpu"]
    )


def sheet(rows: list[tuple[Image.Image, dict[str, Any]]], style: Image.Image, photo_row: str) -> Image.Image:
    """One pair at one size: C | S | default | global colour map | the photo recipe, each with its figures."""
    by = {r["row"]: (im, r) for im, r in rows}
    cells = []
    for name in ("C", "S", "default", "global map", photo_row):
        if name == "S":
            cells.append(Cell(style, ""))
            continue
        im, r = by[name]
        figs = f"{r['structure']:.2f} / {r['affine_residual']:.1f} / {r['colour_closed']:.2f} / {r['style_closed']:.2f}"
        cells.append(Cell(im, figs))
    first = rows[0][1]
    cname, sname = first["pair"].split(":")
    return make_grid(
        [cells],
        f"{cname} in the light of {sname}, {first['size']} px",
        col_labels=["C (content photo)", "S (style photo)", "default preset", "global colour map", photo_row],
        footer="under each: structure / affine residual / colour closed / style closed (benchmarks/photo.py)",
        cell_size=320,
    )


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Photo-to-photo transfer: the four figures (issue 32)",
        "",
        f"{meta['cpu']}, torch {meta['torch']}, {meta['date']}. Acceptance: structure >= 0.90, affine residual <= 5, "
        "colour closed >= 0.3, style closed >= the global map's + 0.1, seconds <= 1.5x the default's.",
        "",
        "| pair (C:S) | px | row | structure | affine residual | colour closed | style closed | seconds | CPU s "
        "| passes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    refs: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        refs.setdefault((r["pair"], r["size"]), {})[r["row"]] = r
    for r in rows:
        ok = "" if r["row"] in ("C", "global map", "default", "original colors") else (
            "yes" if verdict(r, refs[(r["pair"], r["size"])]) else "NO")  # fmt: skip
        sec = "" if r["seconds"] is None else f"{r['seconds']:.0f} | {r['cpu']:.0f}"
        lines.append(
            f"| {r['pair']} | {r['size']} | {r['row']} | {r['structure']:.3f} | {r['affine_residual']:.2f} | "
            f"{r['colour_closed']:.2f} | {r['style_closed']:.2f} | {sec or ' | '} | {ok} |"
        )
    known = [r for r in rows if "truth" in r]
    if known:
        lines += ["", "The pair with a known answer (tubingen-left, turned to dusk by `dusk()`): the mean absolute "
                  "difference from that answer, in levels:", ""]  # fmt: skip
        lines += [f"- {r['size']} px, {r['row']}: {r['truth']:.1f}" for r in known]
    lines += ["", "Recipes:", *(f"- {k}: {v}" for k, v in meta["recipes"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[384, 512])
    p.add_argument("--pairs", nargs="+", default=list(PAIRS))
    p.add_argument("--recipe", nargs="*", action="append", default=[], metavar="KEY=VALUE",
                   help="a photo recipe (repeatable; the last gets the sheets): name, lam, term_scales, "
                   "project=(r,eps), init_map, preset, options")  # fmt: skip
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "results" / "photo-renders")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipes = {_name(r, i, len(args.recipe)): parse_recipe([x for x in r if not x.startswith("name=")])
               for i, r in enumerate(args.recipe)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    all_rows: list[dict[str, Any]] = []
    for pair in args.pairs:
        for size in args.sizes:
            rows = measure_pair(pair, size, recipes, args.cache)
            all_rows += [r for _, r in rows]
            for _, r in rows:
                print(json.dumps(r), flush=True)
            style = resize(load_image(photo_path(pair.split(":")[1], args.cache)), size)
            for name in list(recipes)[-1:]:  # the sheet of the last recipe: the one proposed
                stem = f"{pair.replace(':', '-')}-{size}"
                sheet(rows, style, name).save(args.out / f"{stem}.jpg", quality=85)  # small in the repo
    meta = {"cpu": cpuinfo()["cpu_model"], "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "recipes": {k: _describe(v) for k, v in recipes.items()}}  # fmt: skip
    done = {(r["pair"], r["size"]) for r in all_rows}  # rows of pairs and sizes not measured now are kept
    earlier = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").exists() else {}
    all_rows = [r for r in earlier.get("rows", []) if (r["pair"], r["size"]) not in done] + all_rows
    order = {pair: n for n, pair in enumerate(PAIRS)}
    all_rows.sort(key=lambda r: (order.get(r["pair"], len(order)), r["pair"], r["size"]))  # stable: rows in order
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": all_rows}, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(all_rows, meta))
    print(markdown(all_rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
