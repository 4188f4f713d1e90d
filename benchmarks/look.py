"""The look evaluation (``make look``): every bundled photo x painting at several sizes.

Renders each pair with a preset (default: ``default``), measures how much of the photo and of the
painting each output shows (:func:`impasto.core.balance.look`: content kept r, style reached s, raw
VGG19 with max pooling, at the output's size), writes one labelled contact sheet per photo to
``docs/look/`` and the table to ``benchmarks/results/look.{json,md}``.

    python benchmarks/look.py                       # everything, 128/256/512 px (~40 min, 2 cores)
    python benchmarks/look.py --sizes 128 256 --photos tubingen --set style_strength=30
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import product
from pathlib import Path
from typing import Any

import torch
from PIL.PngImagePlugin import PngInfo
from report import cpuinfo, number_or_text

from impasto import bundled_image, style_transfer
from impasto.core.balance import look
from impasto.grid import Cell, make_grid
from impasto.image import load_image, pil_to_tensor, resize
from impasto.net.network import get_vgg

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("tubingen", "astronaut", "coffee")
PAINTINGS = ("starry_night", "the_scream", "composition_vii", "shipwreck", "udnie", "woman_with_hat")
LIMITS = {"content_kept": 0.45, "style_reached": 0.95, "spread": 0.1}  # issue 10's acceptance


def _one_thread() -> None:
    torch.set_num_threads(1)


def _render_path(cache: Path, photo: str, painting: str, size: int, preset: str, extra: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps([preset, extra, torch.__version__], sort_keys=True).encode()).hexdigest()[:10]
    return cache / f"{photo}-{painting}-{size}-{key}.png"


def measure(
    photo: str, painting: str, size: int, preset: str, extra: dict[str, Any], cache: Path
) -> tuple[Any, dict[str, Any]]:
    """Render one pair at one size (or take it from ``cache``); return the image and its row of the table."""
    path = _render_path(cache, photo, painting, size, preset, extra)
    if path.exists():  # a finished item of an earlier, interrupted run: its row is in the file
        image = load_image(path)
        return image, json.loads(image.info["look"])
    start = time.perf_counter()
    result = style_transfer(bundled_image(photo), bundled_image(painting), preset=preset, size=size, **extra)
    seconds = time.perf_counter() - start
    vgg = get_vgg(None, "auto", "max", "cpu", "raw")
    out = pil_to_tensor(result.image)
    style_side = result.params.get("style_size") or size
    photo_t = pil_to_tensor(resize(load_image(bundled_image(photo)), size))
    painting_t = pil_to_tensor(resize(load_image(bundled_image(painting)), style_side))
    m = look(out, photo_t, painting_t, vgg)
    row = {
        "photo": photo,
        "painting": painting,
        "size": size,
        "content_kept": round(m.content_kept, 4),
        "style_reached": round(m.style_reached, 4),
        "steps": result.steps,
        "seconds": round(seconds, 1),
    }
    info = PngInfo()
    info.add_text("look", json.dumps(row))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    result.image.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)
    return result.image, row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst r and s, the largest spread of r across sizes per pair, and whether each limit holds."""
    spreads: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        spreads.setdefault((r["photo"], r["painting"]), []).append(r["content_kept"])
    spread = max((max(v) - min(v) for v in spreads.values()), default=0.0)
    worst_r = min(r["content_kept"] for r in rows)
    worst_s = min(r["style_reached"] for r in rows)
    return {
        "min_content_kept": worst_r,
        "min_style_reached": worst_s,
        "max_spread_content_kept": round(spread, 4),
        "passes": worst_r >= LIMITS["content_kept"]
        and worst_s >= LIMITS["style_reached"]
        and spread <= LIMITS["spread"],
    }


def markdown(rows: list[dict[str, Any]], sizes: list[int], meta: dict[str, Any]) -> str:
    head = "| photo | painting | " + " | ".join(f"r@{s} | s@{s}" for s in sizes) + " | spread r |"
    lines = [
        f"# Look: content kept r and style reached s ({meta['preset']} preset)",
        "",
        f"{meta['cpu']}, torch {meta['torch']}, {meta['date']}; options {meta['options'] or 'as the preset'}.",
        f"Acceptance (issue 10): r >= {LIMITS['content_kept']}, s >= {LIMITS['style_reached']}, "
        f"spread of r across sizes <= {LIMITS['spread']}.",
        "",
        head,
        "|" + "---|" * (3 + 2 * len(sizes)),
    ]
    by_pair: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_pair.setdefault((r["photo"], r["painting"]), {})[r["size"]] = r
    for (photo, painting), cells in by_pair.items():
        vals = [cells[s] for s in sizes if s in cells]
        rs = [c["content_kept"] for c in vals]
        body = " | ".join(
            f"{cells[s]['content_kept']:.2f} | {cells[s]['style_reached']:.3f}" if s in cells else "- | -"
            for s in sizes
        )
        lines.append(f"| {photo} | {painting} | {body} | {max(rs) - min(rs):.2f} |")
    summary = meta["summary"]
    lines += [
        "",
        f"Worst r {summary['min_content_kept']:.2f}, worst s {summary['min_style_reached']:.3f}, "
        f"largest spread of r {summary['max_spread_content_kept']:.2f}: "
        f"{'all limits hold' if summary['passes'] else 'LIMITS MISSED'}.",
        f"{len(rows)} outputs; total render time {sum(r['seconds'] for r in rows):.0f} s ({meta.get('workers', '')}).",
    ]
    return "\n".join(lines) + "\n"


def sheet(
    photo: str, results: dict[tuple[str, int], tuple[Any, dict[str, Any]]], sizes: list[int], paintings: list[str]
):
    rows = []
    for painting in paintings:
        row = [Cell(resize(load_image(bundled_image(painting)), 256), painting.replace("_", " "))]
        for size in sizes:
            image, r = results[(painting, size)]
            row.append(Cell(image, f"r {r['content_kept']:.2f}  s {r['style_reached']:.3f}  {r['seconds']:.0f} s"))
        rows.append(row)
    return make_grid(
        rows,
        f"{photo}: default preset at {', '.join(map(str, sizes))} px",
        col_labels=["painting", *(f"{s} px" for s in sizes)],
        footer="r: content kept (1 = the photo's structure); s: style reached (1 = the painting's Gram statistics).",
        cell_size=256,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--photos", nargs="+", default=list(PHOTOS))
    p.add_argument("--paintings", nargs="+", default=list(PAINTINGS))
    p.add_argument("--preset", default="default")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra options, e.g. style_strength=30")
    p.add_argument("--sheets", type=Path, default=ROOT / "docs" / "look", help="folder for the contact sheets")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "look")
    p.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "results" / "look-renders",
                   help="finished renders: a rerun reuses them (delete it to start over)")  # fmt: skip
    p.add_argument("--cached-only", action="store_true", help="tabulate the finished renders only, render nothing")
    p.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each")
    args = p.parse_args(argv)
    extra = {k: number_or_text(v) for k, v in (item.split("=", 1) for item in args.set)}
    extra.setdefault("seed", 0)
    args.sheets.mkdir(parents=True, exist_ok=True)
    tasks = [(ph, pa, size) for ph in args.photos for pa in args.paintings for size in args.sizes]
    if args.cached_only:  # the table and sheets of what an interrupted run has finished
        tasks = [t for t in tasks if _render_path(args.cache, *t, args.preset, extra).exists()]
        if not tasks:
            print(f"no finished renders in {args.cache}", file=sys.stderr)
            return 2
    done: dict[tuple[str, str, int], tuple[Any, dict[str, Any]]] = {}
    # Small images use two cores better as two one-thread processes than as one two-thread one.
    with ProcessPoolExecutor(args.jobs, initializer=_one_thread) as pool:
        biggest_first = sorted(tasks, key=lambda t: -t[2])  # the slowest items do not trail at the end
        futures = {pool.submit(measure, *t, args.preset, extra, args.cache): t for t in biggest_first}
        for future in as_completed(futures):
            image, row = future.result()
            done[futures[future]] = (image, row)
            print(
                f"{row['photo']:10} {row['painting']:15} {row['size']:4} px  r {row['content_kept']:.3f}  "
                f"s {row['style_reached']:.4f}  {row['steps']} steps  {row['seconds']:.0f} s",
                flush=True,
            )
    rows = [done[t][1] for t in tasks]
    for photo in args.photos:
        results = {(pa, size): done[(photo, pa, size)] for pa, size in product(args.paintings, args.sizes)
                   if (photo, pa, size) in done}  # fmt: skip
        if len(results) == len(args.paintings) * len(args.sizes):
            sheet(photo, results, args.sizes, args.paintings).save(args.sheets / f"{photo}.jpg", quality=90)
    meta = {
        "preset": args.preset,
        "options": extra,
        "cpu": cpuinfo()["cpu_model"],
        "torch": torch.__version__,
        "workers": f"{args.jobs} processes x 1 thread",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "summary": summarise(rows),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    args.results.with_suffix(".md").write_text(markdown(rows, args.sizes, meta))
    print(markdown(rows, args.sizes, meta))
    return 0 if meta["summary"]["passes"] else 1


if __name__ == "__main__":
    sys.exit(main())
