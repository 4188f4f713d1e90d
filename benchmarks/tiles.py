"""Tiled against untiled: seconds per step and peak memory of eq. 7's loss and gradient.

    python benchmarks/tiles.py                       # 1024 and 2048 px, cores of 512 and 1024 px
    python benchmarks/tiles.py --sizes 2048 --tiles 1024
    python benchmarks/tiles.py --sizes 1024 --tiles 512 --precision fp32

Each configuration runs in its own process (peak RSS is per process): the paper's layers on the
bundled pair, the step as transfer() runs it (the tiled Objective: loss, then backward), the median
of a few steps after one warm-up. Each core size runs twice: keeping as many tiles' forwards for
pass 2 as this machine's memory budget holds (what ``transfer()`` does), and keeping none (the
least memory: every crop's forward is computed twice). Results: stdout and
``results/tiles-<cpu>.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from profile_step import cpu_tag  # noqa: E402

LAYERS = {"content": {"conv4_2": 1.0}, "style": {f"conv{b}_1": 0.2 for b in range(1, 6)}}


def one(
    size: int, tile: int | None, keep: int | None, precision: str, steps: int, threads: int
) -> dict[str, float | int | None]:
    """One configuration, in this process: s/step (median) and peak RSS.

    ``keep``: tiles whose pass-1 forward is kept for pass 2; None: as many as this machine's
    memory budget holds (memory.fit, what ``transfer()`` runs), 0: every crop recomputed.
    """
    import resource

    import torch

    from impasto import bundled_image
    from impasto.core.eq7 import Eq7
    from impasto.core.memory import available, fit, step_bytes
    from impasto.core.tile_layout import layout
    from impasto.image import fit_size, load_image, pil_to_tensor
    from impasto.net.network import get_vgg

    torch.set_num_threads(threads)
    net = get_vgg(None, "auto", "max", "cpu", "raw", dtype=precision)
    photo, painting = load_image(bundled_image("tubingen")), load_image(bundled_image("starry_night"))
    w, h = fit_size(*photo.size, size)
    layers = [*LAYERS["content"], *LAYERS["style"]]
    if keep is None:
        keep = fit(h, w, layers, 0, available(torch.device("cpu")), precision == "bf16", tile).keep if tile else 0
    eq = Eq7(net, LAYERS["content"], LAYERS["style"], content_weight=1e-3, style_weight=1.0, tile=tile, keep=keep)
    content = pil_to_tensor(photo.resize((w, h)), torch.device("cpu"))
    obj = eq.of(content, [pil_to_tensor(painting.resize(fit_size(*painting.size, size)), torch.device("cpu"))])
    x = content.clone().requires_grad_(True)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss, _ = obj(x)
        loss.backward()  # type: ignore[no-untyped-call]
        x.grad = None
        if i:
            times.append(time.perf_counter() - t)
    tiles = len(layout(h, w, tile, obj.layers)) if tile else 1
    return {
        "size": size,
        "width": w,
        "height": h,
        "tile": tile,
        "tiles": tiles,
        "keep": keep,
        "s_per_step": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "estimate_mb": step_bytes(h, w, list(obj.layers), 0, precision == "bf16", tile, keep) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--tiles", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration (JSON) and print it
    args = p.parse_args(argv)
    if args.one:
        size, tile, keep = json.loads(args.one)
        print(json.dumps(one(size, tile, keep, args.precision, args.steps, args.threads)))
        return 0
    rows = []
    for size in args.sizes:
        configs = [(None, 0), *[(t, keep) for t in args.tiles if t < size for keep in (None, 0)]]
        for tile, keep in configs:
            cmd = [sys.executable, __file__, "--one", json.dumps([size, tile, keep]), "--precision", args.precision]
            cmd += ["--steps", str(args.steps), "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            rows.append(json.loads(out))
            print(rows[-1], flush=True)
    lines = [
        f"Tiled vs untiled, {args.precision}, {args.threads} threads, CPU {cpu_tag()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| size | cores | tiles | forwards kept | s/step | vs untiled | peak RSS MiB | estimate MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = next(b for b in rows if b["size"] == r["size"] and b["tile"] is None)
        ratio = float(r["s_per_step"]) / float(base["s_per_step"])
        lines.append(
            f"| {r['width']}×{r['height']} | {r['tile'] or 'untiled'} | {r['tiles']} "
            f"| {r['keep'] if r['tile'] else '–'} | {float(r['s_per_step']):.2f} "
            f"| {ratio:.2f} | {float(r['peak_rss_mb']):.0f} | {float(r['estimate_mb']):.0f} |"
        )
    text = "\n".join(lines)
    print(text)
    (HERE / "results" / f"tiles-{cpu_tag()}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
