"""benchmarks/bench.py: the FLOP count, the worker plumbing, and a quick run's JSON and Markdown."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """benchmarks/bench.py as a module (it imports its siblings as top-level modules)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("bench")
    finally:
        sys.path.remove(str(BENCH_DIR))


def test_flops_match_a_hand_count(bench: ModuleType) -> None:
    flops = bench.step_flops(256, 192)
    # (C_in, C_out, downscale) of the 13 convolutions up to conv5_1
    convs = [(3, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 2), (128, 256, 4)] + [(256, 256, 4)] * 3
    convs += [(256, 512, 8)] + [(512, 512, 8)] * 3 + [(512, 512, 16)]
    conv = sum(2 * ci * co * 9 * (256 // s) * (192 // s) for ci, co, s in convs)
    gram = sum(2 * c * c * (256 // s) * (192 // s) for c, s in [(64, 1), (128, 2), (256, 4), (512, 8), (512, 16)])
    assert flops["conv_forward"] == flops["conv_backward"] == conv
    assert flops["gram_forward"] == gram and flops["gram_backward"] == 2 * gram
    assert flops["total"] == 2 * conv + 3 * gram
    assert bench.step_flops(512, 384)["total"] == 4 * flops["total"]


def test_a_failing_worker_is_reported_not_raised(bench: ModuleType, tmp_path: Path) -> None:
    args = bench.build_parser().parse_args(["--out", str(tmp_path)])
    run = bench.Runner(args, "cpu", tmp_path)
    result = run("no such task", task="no-such-task")  # a real subprocess, which fails at once
    assert "KeyError" in result["error"]
    assert run.errors and run.errors[0].startswith("no such task")


def _positive(entry: dict[str, object], *keys: str) -> None:
    for key in keys:
        value = entry[key]
        assert isinstance(value, int | float) and value > 0, (key, value)


@pytest.mark.slow
def test_quick_run_writes_results(bench: ModuleType, tmp_path: Path) -> None:
    """--quick --skip-pastiche in one process, with a target every image meets (search + timed run)."""
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"time_to_quality": [{"size": 64, "target": 1e30}]}))
    out = tmp_path / "results"
    argv = ["--quick", "--skip-pastiche", "--in-process", "--device", "cpu", "--threads", "1"]
    code = bench.main([*argv, "--out", str(out), "--targets", str(targets)])
    assert code == 0

    data = json.loads((out / "latest-quick.json").read_text())
    assert data["schema"] == 1 and data["quick"] and data["errors"] == []
    assert len(list(out.glob("*-quick.json"))) == 2  # the timestamped file and latest
    machine = data["machine"]
    assert machine["cpu_model"] and machine["torch"] and machine["torch_threads"] == 1

    (row,) = data["step_time"]
    assert (row["size"], row["width"], row["height"]) == (64, 64, 48)
    assert row["pastiche"] is None and row["ratio"] is None
    for key in ("impasto", "impasto_bf16"):
        _positive(row[key], "seconds_per_step", "peak_rss_mib")
        assert all(s > 0 for s in row[key]["step_seconds"])
        assert row["gflops"][key] > 0
    _positive(row["flops"], "total")

    (ttq,) = data["time_to_quality"]
    assert ttq["target"] == 1e30 and ttq["target_source"] == "file" and ttq["reached"]
    (search,) = ttq["search"]
    assert search["mode"] == "search" and search["found"]["step"] == 1
    timed = ttq["impasto"]
    assert timed["mode"] == "timed" and timed["steps"] == 1 and timed["target_met"]
    _positive(timed, "wall_s", "objective", "peak_rss_mib")

    table = (out / "latest-quick.md").read_text()
    assert "| 64×48 |" in table and "| 64 px | 1e+30 |" in table

    # The machine and its own conv peak, measured in the same run, before and after the steps.
    assert isinstance(machine["cpu_flags"], list) and isinstance(machine["native_bf16"], bool)
    assert machine["cpu_model"] in table and "Conv peak of this machine" in table
    assert len(data["conv_peak"]) == 2
    for peak in data["conv_peak"]:
        for dtype in ("fp32", "bf16"):
            _positive(peak[dtype], "probe", "peak")
            assert peak[dtype]["peak"] >= peak[dtype]["probe"]
    best = max(p["fp32"]["peak"] for p in data["conv_peak"])
    assert row["of_peak"]["impasto"] == pytest.approx(row["gflops"]["impasto"] / best)


@pytest.mark.slow  # 10 s: runs the time-to-quality search in-process (make test runs it; make check does not)
def test_ttq_scales_sets_impastos_schedule(bench: ModuleType, tmp_path: Path) -> None:
    """--ttq-scales reaches the worker: the time-to-quality run uses that many scales."""
    import worker

    base = {"task": "impasto-ttq", "device": "cpu", "size": 256, "steps": 4, "stop_at": 4, "threads": 1}
    default = worker.run_task({**base, "png": str(tmp_path / "a.png")})
    single = worker.run_task({**base, "scales": 1, "png": str(tmp_path / "b.png")})
    assert "error" not in default and "error" not in single, (default, single)
    assert [side for side, _ in default["schedule"]] == [128, 256]  # the default preset's scales, floored at 128 px
    assert single["schedule"] == [[256, 4]] and single["steps"] == 4
    args = bench.build_parser().parse_args(["--ttq-scales", "1"])
    assert args.ttq_scales == 1
