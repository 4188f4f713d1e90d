"""The plan's ETA per step (impasto plan) against steps measured in a real run, on this machine.

    python benchmarks/print_plan.py                          # 2048 px: 512-px tiles and untiled
    python benchmarks/print_plan.py --runs 2048:512:2GB 4096 --steps 2 --threads 1

For each run (``SIZE:TILE``, or ``SIZE`` untiled) on the bundled pair with the genuine weights:
:func:`impasto.core.print_plan.plan_run` with one scale and ``--steps`` steps (its one-tile
calibration), then :func:`impasto.transfer` with the same options and network, timing every step
after the first (the first carries the warm-up). The plan's seconds per step are compared with the
fastest measured step (the calibration too takes the fastest of its repeats), in wall time and in
CPU time: on cores that others share, wall times swing with their load (recorded), CPU times much
less, so the CPU column checks the model and the wall column what a user would have seen.
Results: stdout, ``results/print_plan.json`` and ``results/print_plan.md`` (rows of an earlier
run at another size are kept).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from report import cpuinfo  # noqa: E402

TARGET = 0.30  # the plan's ETA per step within +-30 % of the measured
# Wall time is what a plan says; CPU time (every thread's) is what the work costs, whoever else runs.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def one(size: int, tile: int | None, max_memory: str | None, steps: int, threads: int) -> dict[str, Any]:
    """Plan, then run, one configuration: planned and measured seconds per step, in wall and CPU time."""
    import torch

    from impasto import bundled_image
    from impasto.config import resolve
    from impasto.core.print_plan import plan_run
    from impasto.core.transfer import Step, transfer
    from impasto.inputs import Images
    from impasto.net.network import get_vgg, resolve_precision

    torch.set_num_threads(threads)
    opts = resolve("default", size=size, scales=1, steps=steps, tile=tile, max_memory=max_memory, device="cpu")
    precision, _ = resolve_precision(opts.precision, torch.device("cpu"))
    net = get_vgg(None, "auto", opts.pooling, "cpu", "raw", dtype=precision)
    photo, painting = bundled_image("tubingen"), bundled_image("starry_night")
    begin = time.perf_counter()
    images = Images(photo, [painting])
    plans = {name: plan_run(images, opts, network=net, clock=clock) for name, clock in CLOCKS.items()}
    plan_s = time.perf_counter() - begin
    stamps: dict[str, list[float]] = {name: [] for name in CLOCKS}

    def on_step(_: Step) -> None:
        for name, clock in CLOCKS.items():
            stamps[name].append(clock())

    begin = time.perf_counter()
    transfer(photo, [painting], opts, network=net, on_step=on_step)
    run_s = time.perf_counter() - begin
    final = plans["wall"].scales[-1]
    row: dict[str, Any] = {
        "size": list(final.size),
        "tile": final.tile,
        "tiles": final.tiles,
        "keep": final.keep,
        "max_memory": max_memory,
        "precision": precision,
        "threads": threads,
        "steps_timed": steps - 1,
        "plan_s": plan_s,
        "run_s": run_s,
        "load_average": os.getloadavg(),
    }
    for name, p in plans.items():
        measured = [b - a for a, b in itertools.pairwise(stamps[name])]  # after the first step
        planned = p.scales[-1].step_seconds
        row[name] = {
            "planned_s_per_step": planned,
            "measured_steps_s": measured,
            "fastest_s": min(measured),  # the least disturbed step, as the calibration takes its fastest repeat
            "median_s": statistics.median(measured),
            "ratio": planned / min(measured),
            "ratio_to_median": planned / statistics.median(measured),
            "calibration": {
                "crop": list(p.calibration.crop),
                "pass1_s": p.calibration.statistics,
                "pass2_s": p.calibration.gradient,
                "update_ns_per_px": p.calibration.update * 1e9,
            },
        }
    return row


def _markdown(rows: list[dict[str, Any]], cpu: str) -> str:
    lines = [
        f"The plan's seconds per step against measured steps (benchmarks/print_plan.py), CPU {cpu}",
        "",
        "Wall: the plan as `impasto plan` makes it (calibrated in wall time) against the steps' wall time.",
        "CPU: the same, every time read as the process's CPU time (all threads), which the other users of",
        "shared cores disturb far less. Measured: the fastest step after the first (median in brackets).",
        "",
        "| size | tiles | precision | threads | clock | planned s/step | measured s/step | planned / measured "
        "| within ±30 % | load average | when |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tiles = f"{r['tiles']} x {r['tile']} px, {r['keep']} kept" if r["tile"] else "untiled"
        for name in CLOCKS:
            c = r[name]
            ok = "yes" if abs(c["ratio"] - 1) <= TARGET else "no"
            lines.append(
                f"| {r['size'][0]}×{r['size'][1]} | {tiles} | {r['precision']} | {r['threads']} | {name} "
                f"| {c['planned_s_per_step']:.2f} | {c['fastest_s']:.2f} ({c['median_s']:.2f}) | {c['ratio']:.2f} "
                f"| {ok} | {r['load_average'][0]:.1f} | {r['when']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--runs",
        nargs="+",
        default=["2048:512", "2048"],
        help="SIZE (untiled where it fits), SIZE:TILE, or SIZE:TILE:MAX_MEMORY (e.g. 2048:512:2GB: no forward kept)",
    )
    p.add_argument("--steps", type=int, default=4, help="steps per run: all but the first are timed")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    info = cpuinfo()
    cpu = f"{info['cpu_model']} ({', '.join(info['cpu_bf16'] or []) or 'no bf16 units'})"
    out = HERE / "results" / "print_plan.json"
    old = json.loads(out.read_text())["runs"] if out.exists() else []
    rows: list[dict[str, Any]] = []
    for spec in args.runs:
        size, tile, budget = (*spec.split(":"), "", "")[:3]
        row = one(int(size), int(tile) if tile else None, budget or None, args.steps, args.threads) | {
            "when": time.strftime("%Y-%m-%d %H:%M")
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        keys = {(tuple(r["size"]), r["tile"], r["keep"]) for r in rows}
        kept = [r for r in old if (tuple(r["size"]), r["tile"], r["keep"]) not in keys]
        out.write_text(json.dumps({"cpu": cpu, "target": TARGET, "runs": kept + rows}, indent=2) + "\n")
        (HERE / "results" / "print_plan.md").write_text(_markdown(kept + rows, cpu))
    print((HERE / "results" / "print_plan.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
