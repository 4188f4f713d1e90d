"""The plan's ETA per step (impasto plan) against steps measured in a real run, on this machine.

    python benchmarks/print_plan.py                          # 2048 px: 512-px tiles and untiled
    python benchmarks/print_plan.py --runs 4096:512 --steps 2

For each run (``SIZE:TILE``, or ``SIZE`` untiled) on the bundled pair with the genuine weights:
:func:`impasto.core.print_plan.plan_run` with one scale and ``--steps`` steps (its one-tile
calibration), then :func:`impasto.transfer` with the same options and network, timing every step
after the first (the first carries the warm-up); the plan's seconds per step against the median
measured one. Results: stdout, ``results/print_plan.json`` and ``results/print_plan.md`` (rows of
an earlier run at another size are kept).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from report import cpuinfo  # noqa: E402

TARGET = 0.30  # the plan's ETA per step within +-30 % of the measured


def one(size: int, tile: int | None, steps: int, threads: int) -> dict[str, Any]:
    """Plan, then run, one configuration: planned and measured seconds per step."""
    import torch

    from impasto import bundled_image
    from impasto.config import resolve
    from impasto.core.print_plan import plan_run
    from impasto.core.transfer import Step, transfer
    from impasto.net.network import get_vgg, resolve_precision

    torch.set_num_threads(threads)
    opts = resolve("default", size=size, scales=1, steps=steps, tile=tile, device="cpu")
    precision, _ = resolve_precision(opts.precision, torch.device("cpu"))
    net = get_vgg(None, "auto", opts.pooling, "cpu", "raw", dtype=precision)
    photo, painting = bundled_image("tubingen"), bundled_image("starry_night")
    begin = time.perf_counter()
    plan = plan_run(photo, [painting], opts, network=net)
    plan_s = time.perf_counter() - begin
    final = plan.scales[-1]
    stamps: list[float] = []

    def on_step(_: Step) -> None:
        stamps.append(time.perf_counter())

    begin = time.perf_counter()
    transfer(photo, [painting], opts, network=net, on_step=on_step)
    run_s = time.perf_counter() - begin
    measured = [b - a for a, b in itertools.pairwise(stamps)]  # after the first step
    per_step = statistics.median(measured)
    return {
        "size": list(final.size),
        "tile": final.tile,
        "tiles": final.tiles,
        "keep": final.keep,
        "precision": precision,
        "threads": threads,
        "steps_timed": len(measured),
        "planned_s_per_step": final.step_seconds,
        "measured_s_per_step": per_step,
        "measured_steps_s": measured,
        "ratio": final.step_seconds / per_step,
        "calibration": {
            "crop": list(plan.calibration.crop),
            "pass1_s": plan.calibration.statistics,
            "pass2_s": plan.calibration.gradient,
            "update_ns_per_px": plan.calibration.update * 1e9,
        },
        "plan_s": plan_s,
        "run_s": run_s,
    }


def _markdown(rows: list[dict[str, Any]], cpu: str) -> str:
    lines = [
        f"The plan's ETA per step against measured steps (benchmarks/print_plan.py), CPU {cpu}",
        "",
        "| size | tiles | precision | threads | planned s/step | measured s/step | planned / measured "
        "| within ±30 % | when |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tiles = f"{r['tiles']} x {r['tile']} px" if r["tile"] else "untiled"
        ok = "yes" if abs(r["ratio"] - 1) <= TARGET else "no"
        lines.append(
            f"| {r['size'][0]}×{r['size'][1]} | {tiles} | {r['precision']} | {r['threads']} "
            f"| {r['planned_s_per_step']:.2f} | {r['measured_s_per_step']:.2f} | {r['ratio']:.2f} | {ok} "
            f"| {r['when']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=["2048:512", "2048"], help="SIZE:TILE or SIZE (untiled)")
    p.add_argument("--steps", type=int, default=3, help="steps per run: all but the first are timed")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    info = cpuinfo()
    cpu = f"{info['cpu_model']} ({', '.join(info['cpu_bf16'] or []) or 'no bf16 units'})"
    out = HERE / "results" / "print_plan.json"
    old = json.loads(out.read_text())["runs"] if out.exists() else []
    rows: list[dict[str, Any]] = []
    for spec in args.runs:
        size, _, tile = spec.partition(":")
        row = one(int(size), int(tile) if tile else None, args.steps, args.threads) | {
            "when": time.strftime("%Y-%m-%d %H:%M")
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        keys = {(tuple(r["size"]), r["tile"]) for r in rows}
        kept = [r for r in old if (tuple(r["size"]), r["tile"]) not in keys]
        out.write_text(json.dumps({"cpu": cpu, "target": TARGET, "runs": kept + rows}, indent=2) + "\n")
        (HERE / "results" / "print_plan.md").write_text(_markdown(kept + rows, cpu))
    print((HERE / "results" / "print_plan.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
