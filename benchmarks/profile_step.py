"""Where one step's time goes: the paper objective's loss and gradient under torch.profiler.

    python benchmarks/profile_step.py                     # 512x384, fp32 and bf16, the top operators
    python benchmarks/profile_step.py --compile           # and torch.compile'd, its compile time counted

One step = one evaluation of eq. 7 (content conv4_2, style conv1_1..conv5_1, max pooling) and its
gradient on the pixels, as ``transfer()`` runs it: the same Objective, network and layouts. The
report splits the self time into convolution (forward and input gradient), the Gram products,
and everything else, and gives the step's GFLOP/s (flops.py). Results: stdout and
``results/profile-<precision>-<cpu>.txt`` (the CPU's model and bf16 flags in the name, so a run on
another machine does not overwrite this one's).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from flops import step_flops  # noqa: E402
from report import cpuinfo  # noqa: E402

from impasto.config import PAPER_STYLE_LAYERS  # noqa: E402
from impasto.core.eq7 import Eq7  # noqa: E402
from impasto.core.objective import Objective  # noqa: E402
from impasto.data import bundled_image  # noqa: E402
from impasto.image import load_image, pil_to_tensor, resize  # noqa: E402
from impasto.net.heap import keep_freed_memory  # noqa: E402
from impasto.net.network import get_vgg  # noqa: E402

CONV_OPS = ("convolution_backward", "mkldnn_convolution", "_convolution_pointwise", "conv2d")
GRAM_OPS = ("aten::mm", "aten::bmm", "aten::addmm")  # addmm: the style loss's G/M - A in one product


def objective(precision: str, size: int) -> tuple[Objective, torch.Tensor]:
    keep_freed_memory()  # as a transfer on the CPU does (impasto.net.network.resolve_device)
    vgg = get_vgg(None, "auto", "max", "cpu", "raw", precision)  # type: ignore[arg-type]
    content = pil_to_tensor(resize(load_image(bundled_image("tubingen")), size), "cpu")
    painting = pil_to_tensor(resize(load_image(bundled_image("starry_night")), size), "cpu")
    obj = Eq7(vgg, {"conv4_2": 1.0}, dict(PAPER_STYLE_LAYERS), 1e-3, 1.0).of(content, [painting])
    return obj, content


def step_seconds(fn, x: torch.Tensor, warmup: int, timed: int) -> float:  # type: ignore[no-untyped-def]
    """Best of ``timed`` steps after ``warmup``: the machine's speed, not its neighbours'."""
    times = []
    for i in range(warmup + timed):
        t = time.perf_counter()
        x.grad = None
        loss, _ = fn(x)
        loss.backward()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return min(times)


def breakdown(obj: Objective, x: torch.Tensor, steps: int) -> tuple[dict[str, float], str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            x.grad = None
            loss, _ = obj(x)
            loss.backward()
    parts = {"convolution": 0.0, "gram": 0.0, "other": 0.0}
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1e3 / steps
        if any(op in ev.key for op in CONV_OPS):
            parts["convolution"] += ms
        elif ev.key in GRAM_OPS:
            parts["gram"] += ms
        else:
            parts["other"] += ms
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return parts, table


def cpu_tag() -> str:
    """A file-name tag for this CPU: its model and bf16 units, e.g. ``intel-xeon-processor-amx_bf16``."""
    info = cpuinfo()
    words = re.sub(r"\(r\)|\(tm\)|[^a-z0-9]+", " ", str(info["cpu_model"]).lower()).split()
    return "-".join([*words, *(info["cpu_bf16"] or [])])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512, help="longest side (the bundled photo is 4:3)")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the objective")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = HERE / "results"
    for precision in args.precision:
        obj, content = objective(precision, args.size)
        x = content.clone().requires_grad_(True)
        h, w = content.shape[-2:]
        gflop = step_flops(w, h)["total"] / 1e9
        eager = step_seconds(obj, x, 2, 5)
        parts, table = breakdown(obj, x, 3)
        total = sum(parts.values())
        lines = [
            f"{precision} {w}x{h}, {args.threads} threads: {eager:.3f} s/step (best of 5), {gflop / eager:.0f} GFLOP/s",
            "profiled self time per step: "
            + ", ".join(f"{k} {v:.0f} ms ({100 * v / total:.0f} %)" for k, v in parts.items()),
        ]
        if args.compile:
            compiled = torch.compile(obj.__call__)
            t = time.perf_counter()
            loss, _ = compiled(x)
            loss.backward()
            first = time.perf_counter() - t
            after = step_seconds(compiled, x, 1, 5)
            lines.append(f"torch.compile: first step (compiling) {first:.1f} s, then {after:.3f} s/step")
        text = "\n".join([*lines, "", table])
        print(text)
        out.mkdir(exist_ok=True)
        (out / f"profile-{precision}-{cpu_tag()}.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
