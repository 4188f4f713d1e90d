"""The plan of a run (impasto.core.print_plan): its numbers as values, from a fixed calibration."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto import ConfigError, resolve
from impasto.config import Options
from impasto.core import memory
from impasto.core.calibrate import Calibration, tile_seconds, update_seconds
from impasto.core.eq7 import Eq7
from impasto.core.print_plan import KEPT_FORWARD, PrintPlan, fits_for, make_plan, plan_run
from impasto.core.schedule import Plan, plan
from impasto.core.tile_layout import layout
from impasto.core.traffic import weights_bytes
from impasto.inputs import Images
from impasto.testing import narrow_vgg

CPU = torch.device("cpu")
CAL = Calibration(crop=(672, 672), statistics=0.5, gradient=1.5, update=4e-8)
# Each default style layer's statistics: a C x C matrix and C means, fp32.
STATS = 4 * sum(c * c + c for c in (64, 128, 256, 512, 512))


def layers_of(opts: Options) -> list[str]:
    return list(dict.fromkeys([name for name, _ in (*opts.content_layers, *opts.style_layers)]))


def schedule_of(**options: Any) -> Plan:
    return plan(resolve(**({"device": "cpu"} | options)), (4000, 3000), [(1000, 800)])


def planned(workers: int = 1, bandwidth: float = 1.0, **options: Any) -> PrintPlan:
    schedule = schedule_of(**options)
    layers = layers_of(schedule.opts)
    fits, over = fits_for(schedule, layers, CPU, False, max(workers, 1))
    return make_plan(schedule, layers, fits, CAL, workers, bandwidth, False, over)


def test_sizes_tiles_and_memory_are_memorys_own() -> None:
    """The tiling and memory of each scale are memory.fit_scales' and tile_layout's, as a run makes them."""
    p = planned(size=2048, scales=2, steps=10, max_memory="3GB")
    layers = layers_of(p.opts)
    fits = memory.fit_scales([(1024, 768), (2048, 1536)], [7, 3], layers, 100, CPU, False, None, "3GB")
    assert [s.size for s in p.scales] == [(1024, 768), (2048, 1536)]
    assert [s.steps for s in p.scales] == [7, 3] and p.steps == 10
    for s, fit in zip(p.scales, fits, strict=True):
        assert (s.tile, s.keep, s.memory) == (fit.tile, fit.keep, fit.needed)
        w, h = s.size
        tiles = layout(h, w, fit.tile, layers) if fit.tile else [None]
        assert s.tiles == len(tiles)
        assert s.history == min(fit.history, s.steps)
    final = p.scales[-1]
    assert final.tile is not None and final.tiles > 1
    crop_w, crop_h = final.crop
    assert final.worker_memory == memory.FIXED + memory.crop_bytes(crop_h, crop_w, layers) + memory.image_bytes(
        crop_h, crop_w, 0
    )
    assert final.driver_memory == memory.FIXED + memory.image_bytes(1536, 2048, final.history)
    # one machine = the driver's vectors + one crop's responses (+ the tiles' forwards it keeps)
    assert final.memory >= final.driver_memory + memory.crop_bytes(crop_h, crop_w, layers) - 1
    assert p.budget == 3 * 2**30


def test_the_bytes_moved_per_step() -> None:
    p = planned(workers=4, size=2048, scales=1, steps=3, tile=512)
    final = p.scales[-1]
    tiles = layout(1536, 2048, 512, layers_of(p.opts))
    crop_pixels = sum((t.crop[1] - t.crop[0]) * (t.crop[3] - t.crop[2]) for t in tiles)
    t = final.traffic
    assert t.gradients == 3 * 4 * crop_pixels  # fp32 3 x h x w, each tile's crop with its halo
    assert t.inputs == 2 * t.gradients  # the crops go to the workers in both passes (cluster.tiles)
    assert t.statistics == len(tiles) * STATS
    assert t.broadcast == 4 * STATS  # d(loss)/d(statistics) to each of the 4 workers
    assert t.total == t.inputs + t.gradients + t.statistics + t.broadcast
    assert final.transfer_seconds == pytest.approx(t.total * 8 / 1e9)
    # once per run, not per step: VGG19's weights up to conv5_1, the final scale's targets
    assert p.weights == weights_bytes(layers_of(p.opts))
    assert p.targets == 4 * (512 * (1536 // 8) * (2048 // 8) + STATS // 4)


def test_weights_bytes_counts_vggs_convolutions() -> None:
    assert weights_bytes(["conv1_1"]) == 4 * (3 * 64 * 9 + 64)
    assert weights_bytes(["conv2_1"]) == 4 * ((3 * 64 * 9 + 64) + (64 * 64 * 9 + 64) + (64 * 128 * 9 + 128))
    assert weights_bytes(["conv5_4"]) == 4 * 20_024_384  # VGG19's 16 convolutions: 20.0 M parameters


def test_the_eta_divides_each_pass_over_the_workers_rounded_up() -> None:
    one = planned(workers=1, size=2048, scales=1, steps=3, tile=512, max_memory="2GB")
    eight = planned(workers=8, bandwidth=1e6, size=2048, scales=1, steps=3, tile=512, max_memory="2GB")
    a, b = one.scales[-1], eight.scales[-1]
    assert a.tiles == b.tiles == 12 and a.keep == 0  # 2 GB keeps no forward
    first, second = CAL.per_pixel()
    tiles = layout(1536, 2048, 512, layers_of(one.opts))
    crop_pixels = sum((t.crop[1] - t.crop[0]) * (t.crop[3] - t.crop[2]) for t in tiles)
    work = crop_pixels * (first + second)
    update = CAL.update * 2048 * 1536
    assert a.transfer_seconds == 0 and a.traffic.total == 0  # one machine moves nothing
    assert a.step_seconds == pytest.approx(work + update)
    assert b.step_seconds == pytest.approx(work * math.ceil(12 / 8) / 12 + update + b.transfer_seconds)
    assert a.seconds == pytest.approx(3 * a.step_seconds + a.targets_seconds)
    assert one.seconds == pytest.approx(sum(s.seconds for s in one.scales))


def test_a_kept_forward_costs_half_a_pass_1() -> None:
    kept = planned(size=2048, scales=1, steps=3, tile=512, max_memory="16GB").scales[-1]
    assert kept.keep == kept.tiles == 12
    first, second = CAL.per_pixel()
    tiles = layout(1536, 2048, 512, layers_of(resolve()))
    crop_pixels = sum((t.crop[1] - t.crop[0]) * (t.crop[3] - t.crop[2]) for t in tiles)
    expected = crop_pixels * (second + KEPT_FORWARD * first) + CAL.update * 2048 * 1536
    assert KEPT_FORWARD == 0.5 and kept.step_seconds == pytest.approx(expected)


def test_an_untiled_scale_is_one_pass_on_one_machine() -> None:
    s = planned(workers=1, size=256, scales=1, steps=5).scales[-1]
    assert (s.tile, s.tiles, s.crop, s.traffic.total) == (None, 1, (256, 192), 0)
    assert s.step_seconds == pytest.approx(CAL.per_pixel()[1] * 256 * 192 + CAL.update * 256 * 192)


def test_on_workers_the_tiles_are_sized_as_a_cluster_run_sizes_them() -> None:
    """As impasto.core.transfer with a Ray runner: memory.worker_core for the workers' memory, no forward kept."""
    schedule = schedule_of(size=2048, scales=2, steps=10, max_memory="16GB")
    layers = layers_of(schedule.opts)
    for budget in (2 * 2**30, 1 * 2**30):
        fits, _ = fits_for(schedule, layers, CPU, False, workers=8, worker_memory=budget)
        core = memory.worker_core(1536, 2048, layers, budget, False, 8)
        assert [f.tile for f in fits] == [core, core] and {f.keep for f in fits} == {0}
    local, _ = fits_for(schedule, layers, CPU, False)
    assert local[-1].tile is None  # 16 GB holds it untiled on one machine


@pytest.mark.slow  # a few seconds: make test runs it, make check leaves it out
def test_a_cluster_runs_driver_beyond_the_budget_is_said() -> None:
    """A tile sized for the workers: the driver's L-BFGS history is the longest its budget holds beside
    it, at least the shortest; beyond that the plan says what the driver needs."""
    p = planned(workers=8, print="A0", max_memory="16GB")
    final = p.scales[-1]
    assert final.history == memory.MIN_HISTORY and final.memory > 16 * 2**30
    assert (
        p.over_budget is not None and f"history of {memory.MIN_HISTORY}, more than the 16.0 GB budget" in p.over_budget
    )
    roomy = planned(workers=8, print="A0", max_memory="64GB").scales[-1]
    assert roomy.history == memory.MIN_HISTORY and roomy.memory < 0.75 * 64 * 2**30


def test_a_run_beyond_this_machine_is_still_planned() -> None:
    p = planned(print="A0", max_memory="4GB")
    assert p.size == (14043, 10532)
    assert p.over_budget is not None and "even tiled" in p.over_budget
    final = p.scales[-1]
    assert final.tile == memory.FRUGAL_CORE and final.history == memory.MIN_HISTORY
    assert final.memory > 4 * 2**30
    assert final.worker_memory < 2 * 2**30  # a worker holds the network and one crop
    assert p.paper is not None and p.paper.name == "A0" and p.placement is not None


@pytest.mark.parametrize(("workers", "bandwidth", "field"), [(0, 1.0, "`workers`"), (2, 0.0, "`bandwidth`")])
def test_a_cluster_that_cannot_be_is_refused(workers: int, bandwidth: float, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        planned(workers=workers, bandwidth=bandwidth, size=256, scales=1)
    assert info.value.args[0].startswith(field)


def test_plan_run_calibrates_one_tile(content_path: Path, style_path: Path) -> None:
    opts = resolve(size=128, scales=1, steps=3, tile=64, device="cpu", precision="fp32")
    p = plan_run(Images(content_path, [style_path]), opts, workers=2, network=narrow_vgg())
    final = p.scales[-1]
    assert final.size == (128, 96) and final.tiles == 4
    assert p.calibration.crop == final.crop  # the tile every step runs was the one timed
    assert p.calibration.statistics > 0 and p.calibration.gradient > 0 and p.calibration.update > 0
    assert final.step_seconds > 0 and math.isfinite(p.seconds)


def test_the_calibration_shrinks_a_large_crop() -> None:
    eq = Eq7(narrow_vgg(), {"conv4_2": 1.0}, {"conv1_1": 1.0}, 1.0, 1.0)
    crop, first, second = tile_seconds(eq, (2000, 1000), CPU, repeats=1)
    assert crop == (768, 384)
    assert first > 0 and second > 0
    assert update_seconds(3, "spectral", CPU, repeats=1) > 0


def test_the_calibration_reads_the_clock_given(content_path: Path, style_path: Path) -> None:
    """A clock that moves one second a reading: every timed part takes exactly 1 s."""
    ticks = iter(range(10**6))
    opts = resolve(size=128, scales=1, steps=3, tile=64, device="cpu", precision="fp32")
    p = plan_run(Images(content_path, [style_path]), opts, network=narrow_vgg(), clock=lambda: float(next(ticks)))
    assert (p.calibration.statistics, p.calibration.gradient) == (1.0, 1.0)
    assert p.calibration.update == 1.0 / 256**2  # 1 s a step, whatever the history, on a 256-px image


@pytest.mark.parametrize(("workers", "expected"), [(1, None), (3, memory.WORKER_THREADS)])
def test_a_clusters_tile_is_timed_on_a_workers_threads(
    workers: int, expected: int | None, content_path: Path, style_path: Path
) -> None:
    """--ray makes one worker per CPU, each of WORKER_THREADS threads: the plan times its tile so; on
    one machine, on all of this process's threads. The threads are this process's again afterwards."""
    before = torch.get_num_threads()
    seen: list[int] = []

    def clock() -> float:
        seen.append(torch.get_num_threads())
        return float(len(seen))

    opts = resolve(size=128, scales=1, steps=3, tile=64, device="cpu", precision="fp32")
    torch.set_num_threads(2)
    try:
        plan_run(Images(content_path, [style_path]), opts, workers=workers, network=narrow_vgg(), clock=clock)
        tile_readings = seen[:8]  # readings of the tile timing (the update is timed after it)
        assert set(tile_readings) == {expected or 2}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
