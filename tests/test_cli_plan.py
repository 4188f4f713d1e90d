"""``impasto plan``, ``impasto stylize --dry-run`` and ``--print``/``--dpi`` on the command line."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from impasto import read_params, resolve
from impasto.cli.plan import format_plan
from impasto.core.calibrate import Calibration
from impasto.core.memory import format_size
from impasto.core.print_plan import fits_for, make_plan
from impasto.core.schedule import plan

RunCli = Callable[[list[Any]], tuple[int, str, str]]
SMALL = ["--device", "cpu", "--precision", "fp32", "--scales", "1", "--steps", "2"]


@pytest.fixture
def cli(run_cli: RunCli, content_path: Path, style_path: Path, narrow_network: None) -> Callable[..., Any]:
    def go(command: str, *flags: Any) -> tuple[int, str, str]:
        return run_cli([command, content_path, style_path, *flags])

    return go


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_plan_prints_the_plans_numbers(cli: Callable[..., Any]) -> None:
    """Everything but the times is the same in every run: the sizes, tiles, memory and bytes of make_plan."""
    code, out, err = cli(
        "plan", *SMALL, "--tile", "64", "--print", "6x8cm", "--dpi", "50", "--workers", "3", "--bandwidth", "2"
    )
    assert code == 0, err
    opts = resolve(print="6x8cm", dpi=50, scales=1, steps=2, tile=64, device="cpu", precision="fp32")
    schedule = plan(opts, (64, 48), [(48, 48)])
    layers = list(dict.fromkeys([n for n, _ in (*opts.content_layers, *opts.style_layers)]))
    fits, over = fits_for(schedule, layers, torch.device("cpu"), False)
    expected = make_plan(schedule, layers, fits, Calibration((1, 1), 1, 1, 1), 3, 2.0, False, over)
    final = expected.scales[-1]
    assert final.size == (157, 118)  # 8 cm at 50 dpi: 157 px; a 4:3 photo
    assert "print    6x8cm (60 x 80 mm) at 50 dpi: 157x118 px, 8.0 x 6.0 cm" in out
    row = next(line for line in out.splitlines() if line.startswith("  1/1 "))
    for value in ("157x118", f"{final.tiles} x 64 px", f"{final.crop[0]}x{final.crop[1]}"):
        assert value in row
    for size in (final.memory, final.worker_memory, final.driver_memory):
        assert format_size(size) in row
    t = final.traffic
    for size in (t.inputs, t.gradients, t.statistics, t.broadcast, t.total):
        assert format_size(size) in out
    assert "at 2 Gbit/s" in out and "on 3 workers at 2 Gbit/s" in out
    assert f"network weights {format_size(expected.weights)}" in out
    assert out.splitlines()[-1].startswith("ETA      ")
    assert "`" not in out  # fields are worded as flags


def test_format_plan_shows_every_number_of_the_plan() -> None:
    opts = resolve(print="A0", device="cpu", max_memory="4GB")
    schedule = plan(opts, (4000, 3000), [(1000, 800)])
    layers = list(dict.fromkeys([n for n, _ in (*opts.content_layers, *opts.style_layers)]))
    fits, over = fits_for(schedule, layers, torch.device("cpu"), True)
    p = make_plan(schedule, layers, fits, Calibration((672, 672), 0.82, 1.66, 3.6e-8), 8, 1.0, True, over)
    text = "\n".join(format_plan(p, "cpu"))
    assert "A0 (841 x 1189 mm) at 300 dpi: 14043x10532 px" in text
    assert "warning  the whole step needs" in text  # beyond the 4 GB budget: still planned
    assert "measured one 672x672 tile here (cpu): pass 1 0.82 s, pass 2 1.66 s; the update 36.0 ns per pixel" in text
    assert f"({p.seconds:.0f} s)" in text and "on 8 workers at 1 Gbit/s" in text
    for s in p.scales:
        assert f"{s.size[0]}x{s.size[1]}" in text and f"{s.tiles} x {s.tile} px" in text


def test_dry_run_optimises_nothing_and_writes_nothing(cli: Callable[..., Any], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    begin = time.perf_counter()
    code, out, err = cli("stylize", "-o", output, *SMALL, "--size", "128", "--dry-run", "--steps", "100000")
    assert code == 0, err
    assert time.perf_counter() - begin < 10  # 100,000 steps would take minutes
    assert not output.exists() and list(tmp_path.iterdir()) == []
    assert "steps    100000 over 1 scale(s)" in out and "ETA" in out
    assert "128x96" in out


def test_stylize_with_print_makes_the_prints_pixels(cli: Callable[..., Any], tmp_path: Path) -> None:
    output = tmp_path / "print.png"
    code, _, err = cli("stylize", "-o", output, *SMALL, "--print", "8x6cm", "--dpi", "60", "-q")
    assert code == 0, err
    with Image.open(output) as img:
        assert img.size == (189, 142)  # 8 cm at 60 dpi: 189 px across the landscape photo
        assert img.info["dpi"] == pytest.approx((60, 60), abs=0.01)  # it opens at 8 x 6 cm
    params = read_params(output)
    assert (params["print"], params["dpi"], params["size"]) == ("8x6cm", 60, 189)


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--print", "B5"], ["--print", "unknown paper size 'B5'"]),
        (["--print", "A5"], ["--print", "did you mean 'A4'?"]),
        (["--print", "A4", "--dpi", "20"], ["--dpi must be between 50 and 1200, got 20"]),
        (["--print", "A4", "--size", "512"], ["--size 512 and --print A4", "disagree"]),
        (["--print", "A4", "--style-size", "512"], ["--style-size", "--style-scale"]),
    ],
)
@pytest.mark.parametrize("command", ["stylize", "plan"])
def test_print_errors_are_one_line(
    cli: Callable[..., Any], tmp_path: Path, command: str, flags: list[str], needles: list[str]
) -> None:
    output = tmp_path / "out.png"
    code, _, err = cli(command, "-o", output, *SMALL, *flags)
    one_line_error(code, err, *needles)
    assert not output.exists()


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--workers", "0"], ["--workers must be >= 1, got 0"]),
        (["--bandwidth", "0"], ["--bandwidth must be a number of Gbit/s > 0"]),
    ],
)
def test_plan_refuses_a_cluster_that_cannot_be(cli: Callable[..., Any], flags: list[str], needles: list[str]) -> None:
    one_line_error(*cli("plan", *SMALL, *flags)[::2], *needles)


def test_workers_without_dry_run_are_refused(cli: Callable[..., Any], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    code, _, err = cli("stylize", "-o", output, *SMALL, "--workers", "4")
    one_line_error(code, err, "--workers", "--dry-run")
    assert not output.exists()


def test_the_api_takes_print_and_dpi(content_path: Path, style_path: Path, narrow_network: None) -> None:
    import impasto

    image = impasto.stylize(content_path, style_path, print="3x4in", dpi=50, steps=1, scales=1, device="cpu")
    assert image.size == (200, 150)


def test_demo_with_print_takes_the_prints_size(run_cli: RunCli, tmp_path: Path, narrow_network: None) -> None:
    output = tmp_path / "d.png"
    code, _, err = run_cli(["demo", "-o", output, *SMALL, "--print", "3x4in", "--dpi", "50", "-q"])
    assert code == 0, err
    with Image.open(output) as img:
        assert max(img.size) == 200  # 4 in at 50 dpi, not the demo's 384 px


def test_plan_checks_the_init_image_as_stylize_would(cli: Callable[..., Any], tmp_path: Path) -> None:
    missing = tmp_path / "preview.png"
    code, _, err = cli("plan", *SMALL, "--size", "128", "--init", missing)
    one_line_error(code, err, "preview.png")
    Image.new("RGB", (32, 24), (128, 128, 128)).save(missing)
    code, out, err = cli("plan", *SMALL, "--size", "128", "--init", missing)
    assert code == 0, err
    assert "128x96" in out


def test_a_plan_beyond_the_budget_is_printed_with_a_warning_naming_the_flag(cli: Callable[..., Any]) -> None:
    code, out, err = cli("plan", *SMALL, "--size", "256", "--max-memory", "64MB")
    assert code == 0, err
    warning = next(line for line in out.splitlines() if line.startswith("warning  "))
    assert "--max-memory" in warning and "`" not in out


def test_plan_takes_the_ray_flags_of_stylize(cli: Callable[..., Any]) -> None:
    code, out, err = cli("plan", *SMALL, "--size", "256", "--ray", "--ray-workers", "3", "--ray-memory", "1GB")
    assert code == 0, err
    assert "on 3 workers at 1 Gbit/s" in out
    one_line_error(*cli("plan", *SMALL, "--ray-memory", "lots")[::2], "--ray-memory")
