"""Posters on a Ray cluster: issue 31's acceptance, measured on a real local cluster (this machine's CPUs).

    python benchmarks/cluster.py equal                # 1024 px: loss/gradient and 10 steps, cluster vs local
    python benchmarks/cluster.py resume               # 2048 px, 30 steps, SIGKILLed after ~10, resumed
    python benchmarks/cluster.py memory --size 4096   # peak memory per worker and driver; s/step vs local tiled

The cluster is ``ray start --head`` with 2 worker processes of 1 CPU (:mod:`impasto.cluster.local`),
started and stopped here; the genuine VGG19 on the bundled Tübingen photo and The Starry Night.
Each part appends its figures, with the CPU, to ``results/cluster.json`` and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from profile_step import cpu_tag  # noqa: E402

LAYERS = {"content": {"conv4_2": 1.0}, "style": {f"conv{b}_1": 0.2 for b in range(1, 6)}}


def _objective(size: int, tile: int, precision: str) -> Any:
    import torch

    from impasto import bundled_image
    from impasto.core.eq7 import Eq7
    from impasto.image import fit_size, load_image, pil_to_tensor
    from impasto.net.network import get_vgg

    net = get_vgg(None, "auto", "max", "cpu", "raw", dtype=precision)
    photo, painting = load_image(bundled_image("tubingen")), load_image(bundled_image("starry_night"))
    w, h = fit_size(*photo.size, size)
    eq = Eq7(net, LAYERS["content"], LAYERS["style"], content_weight=1e-3, style_weight=1.0, tile=tile)
    content = pil_to_tensor(photo.resize((w, h)), torch.device("cpu"))
    style = pil_to_tensor(painting.resize(fit_size(*painting.size, min(size, 1024))), torch.device("cpu"))
    return eq.of(content, [style]), content


def _step(objective: Any, x: Any) -> tuple[float, Any, float]:
    start = time.perf_counter()
    x.grad = None
    loss, _ = objective(x)
    loss.backward()
    return float(loss.detach()), x.grad.clone(), time.perf_counter() - start


def equal(address: str, size: int, tile: int) -> dict[str, Any]:
    """fp32 loss and gradient on the cluster against the local tiled run; then 10 steps of each."""
    import numpy as np
    import torch

    from impasto import bundled_image
    from impasto.cluster import RayTiles
    from impasto.config import resolve
    from impasto.core.transfer import paint
    from impasto.inputs import Images

    torch.set_num_threads(1)  # the workers' thread count: the same sums within a tile
    runner = RayTiles(address, workers=2)
    objective, content = _objective(size, tile, "fp32")
    x = (content + 20 * torch.randn_like(content)).clamp(0, 255).requires_grad_(True)
    loss, grad, local_s = _step(objective, x)
    remote_loss, remote_grad, remote_s = _step(replace(objective, runner=runner), x)
    images = Images(bundled_image("tubingen"), [bundled_image("starry_night")])
    opts = resolve("default", size=size, steps=10, scales=1, seed=1, tile=tile, precision="fp32")
    local = np.asarray(paint(images, opts).image, dtype=np.int16)
    remote = np.asarray(paint(images, opts, runner=runner).image, dtype=np.int16)
    runner.close()
    diff = np.abs(local - remote)
    return {
        "size": size,
        "tile": tile,
        "loss_rel": abs(remote_loss - loss) / abs(loss),
        "grad_rel": float((remote_grad - grad).norm() / grad.norm()),
        "step_s_local_1_thread": local_s,
        "step_s_cluster": remote_s,
        "image_mean_diff": float(diff.mean()),
        "image_max_diff": int(diff.max()),
    }


def _stylize(out: Path, size: int, steps: int, *extra: str) -> list[str]:
    from impasto import bundled_image

    cmd = [str(Path(sys.executable).with_name("impasto")), "stylize"]
    cmd += [str(bundled_image("tubingen")), str(bundled_image("starry_night")), "-o", str(out)]
    return [*cmd, "--yes", "-q", "--size", str(size), "--steps", str(steps), "--scales", "1", "--seed", "1", *extra]


def _saved_step(path: Path) -> int:
    import torch

    if not path.exists():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=False)["saved"].optimiser["step"])


def resume(folder: Path, size: int, steps: int, kill_after: int, every: int) -> dict[str, Any]:
    """A run SIGKILLed after ``kill_after`` steps and started again, against an uninterrupted one."""
    import numpy as np
    from PIL import Image

    from impasto.core.checkpoint import path_for

    whole, out = folder / "whole.png", folder / "resumed.png"
    start = time.perf_counter()
    subprocess.run(_stylize(whole, size, steps), check=True)
    whole_s = time.perf_counter() - start
    proc = subprocess.Popen(_stylize(out, size, steps, "--checkpoint-every", str(every)))
    while _saved_step(path_for(out)) < kill_after and proc.poll() is None:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = _saved_step(path_for(out))
    start = time.perf_counter()
    again = subprocess.run(_stylize(out, size, steps, "--checkpoint-every", str(every)))
    resumed_s = time.perf_counter() - start
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (whole, out))
    return {
        "size": size,
        "steps": steps,
        "killed_after_checkpoint_of_step": saved,
        "exit_code": again.returncode,
        "checkpoint_left": path_for(out).exists(),
        "uninterrupted_s": whole_s,
        "resumed_part_s": resumed_s,
        "max_diff": int(np.abs(a - b).max()),
        "mean_diff": float(np.abs(a - b).mean()),
    }


def planned(size: int, tile: int, workers: int) -> dict[str, float]:
    """The plan's seconds per step (``impasto plan --workers``) for the measured configuration: its
    tile timed here on a worker's threads; the transfers apart (a local cluster moves them in memory)."""
    from impasto import bundled_image
    from impasto.config import resolve
    from impasto.core.print_plan import plan_run
    from impasto.inputs import Images

    opts = resolve("default", size=size, scales=1, steps=2, tile=tile, precision="bf16", seed=1)
    plan = plan_run(Images(bundled_image("tubingen"), [bundled_image("starry_night")]), opts, workers=workers)
    final = plan.scales[-1]
    update = plan.calibration.update * final.size[0] * final.size[1]  # the measured steps have no update
    return {"planned_s_per_step": final.step_seconds - final.transfer_seconds - update, "planned_tiles": final.tiles}


class Sampler(threading.Thread):
    """The peaks of processes' resident memory, read from /proc every 20 ms: all of it (VmRSS), the
    private part (RssAnon) and the shared memory mapped in (RssShmem: for a Ray worker, the pages of
    the node's object store it has read its tasks' arguments from, which every worker shares)."""

    FIELDS = ("VmRSS", "RssAnon", "RssShmem")

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.peaks = {pid: dict.fromkeys(self.FIELDS, 0) for pid in pids}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            for pid, peak in self.peaks.items():
                try:
                    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
                except OSError:
                    continue
                for line in lines:
                    key, _, value = line.partition(":")
                    if key in peak:
                        peak[key] = max(peak[key], int(value.split()[0]) * 1024)

    def stop(self) -> dict[str, list[float]]:
        self.done.set()
        self.join()
        return {f"worker_{k}_gb": [p[k] / 2**30 for p in self.peaks.values()] for k in self.FIELDS}


def _typical(seconds: list[float]) -> float:
    """The median step after the first (which starts the workers and packs the network's weights)."""
    later = sorted(seconds[1:] or seconds)
    return later[len(later) // 2]


def memory(address: str, size: int, steps: int) -> dict[str, Any]:
    """Seconds per step and peak memory on the cluster (2 workers) and locally (tiled, 2 threads),
    and the plan's seconds per step for the cluster."""
    import torch

    from impasto.cluster import RayTiles
    from impasto.core.memory import worker_core

    runner = RayTiles(address, workers=2)
    objective, content = _objective(size, 512, "bf16")
    tile = worker_core(*content.shape[-2:], list(objective.layers), runner.memory, True, runner.workers)
    objective = replace(objective, tile=tile)
    x = content.clone().requires_grad_(True)
    remote = [_step(replace(objective, runner=runner), x)[2]]  # the workers start in the first step
    sampler = Sampler(runner.pids())
    sampler.start()
    remote += [_step(replace(objective, runner=runner), x)[2] for _ in range(steps - 1)]
    sampled = sampler.stop()
    peaks = runner.peaks()
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    plan = planned(size, tile, runner.workers)  # after the driver's peak: it loads a network of its own
    runner.close()
    torch.set_num_threads(2)
    local = [_step(objective, x)[2] for _ in range(steps)]
    return {
        "size": size,
        "tile": tile,
        "tiles": len(objective.tiles(*content.shape[-2:])),
        "s_per_step_cluster": _typical(remote),
        "s_per_step_local_tiled": _typical(local),
        "steps_s_cluster": remote,
        "steps_s_local_tiled": local,
        "worker_peak_gb": [p / 2**30 for p in peaks],
        "driver_peak_gb": driver / 2**30,
        **sampled,  # after the first step
        **plan,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=["equal", "resume", "memory"])
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--folder", type=Path, default=Path("/tmp/impasto-cluster-bench"))
    p.add_argument("--object-store", type=int, default=200, metavar="MB", help="the local cluster's object store")
    args = p.parse_args(argv)
    from impasto.cluster.local import local_cluster

    args.folder.mkdir(parents=True, exist_ok=True)
    if args.part == "resume":
        row = resume(args.folder, args.size or 2048, args.steps or 30, 10, 5)
    else:
        with local_cluster(cpus=2, object_store=args.object_store * 2**20) as address:
            try:
                if args.part == "equal":
                    row = equal(address, args.size or 1024, args.tile)
                else:
                    row = memory(address, args.size or 4096, args.steps or 2)
            except BaseException:  # say what failed before the cluster goes (its loss ends this process)
                traceback.print_exc()
                sys.stderr.flush()
                raise
            finally:
                import ray

                ray.shutdown()
    row = {"part": args.part, "cpu": cpu_tag(), "date": time.strftime("%Y-%m-%d %H:%M"), **row}
    row["object_store_mb"] = args.object_store
    print(json.dumps(row), flush=True)
    results = HERE / "results" / "cluster.json"
    rows = json.loads(results.read_text()) if results.exists() else []
    results.write_text(json.dumps([*rows, row], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
