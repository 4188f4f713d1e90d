"""The memory model, the budget and the tiling chosen to fit it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from impasto.config.checks import parse_size
from impasto.core import memory
from impasto.core.memory import available, fit, format_size, step_bytes
from impasto.data import bundled_image
from impasto.errors import ConfigError, InputError, cli_flag, word

LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
PHOTO, PAINTING = str(bundled_image("tubingen")), str(bundled_image("starry_night"))


@pytest.mark.parametrize(
    ("text", "expected"), [("512MB", 512 * 2**20), ("2GB", 2 * 2**30), ("1.5g", 3 * 2**29), ("4096", 4096)]
)
def test_sizes_are_read_in_binary_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "2 parsecs", "-1GB"])
def test_unreadable_sizes_are_refused_with_the_flag_named(text: str) -> None:
    with pytest.raises(ConfigError, match="max_memory: cannot read"):
        parse_size(text)


def test_the_estimate_grows_with_pixels_and_tiling_bounds_the_network_part() -> None:
    small, big = step_bytes(384, 512, LAYERS, 100), step_bytes(768, 1024, LAYERS, 100)
    assert 3.0 < (big - 500 * 2**20) / (small - 500 * 2**20) < 4.1  # ~linear in the pixels
    assert step_bytes(3072, 4096, LAYERS, 5, tile=512) < step_bytes(3072, 4096, LAYERS, 5) / 3
    assert step_bytes(768, 1024, LAYERS, 5, bf16=True) < step_bytes(768, 1024, LAYERS, 5)


def test_a_run_that_fits_is_not_tiled() -> None:
    f = fit(384, 512, LAYERS, 100, budget=8 * 2**30)
    assert f.tile is None and f.history == 100 and f.note() is None


def test_a_run_that_does_not_fit_is_tiled_and_says_so() -> None:
    budget = 6 * 2**30
    f = fit(3072, 4096, LAYERS, 100, budget=budget, steps=2)
    assert f.tile is not None and f.needed <= budget < f.untiled
    note = f.note()
    assert note is not None and f"{f.tile}-px cores" in note and "untiled" in note and "6.0 GB" in note
    assert word(note).endswith("max_memory to change it)")  # the library's name; the CLI's header:
    assert word(note, cli_flag).endswith("--max-memory to change it)")


def test_the_history_shrinks_before_the_run_is_refused() -> None:
    f = fit(3072, 4096, LAYERS, 100, budget=7 * 2**30, steps=300)
    assert f.tile is not None and 5 <= f.history < 100


def test_a_run_that_fits_nowhere_is_refused_naming_what_it_needs() -> None:
    with pytest.raises(InputError, match=r"a 4096x3072 run needs ~\d+\.\d GB even tiled, more than the 1\.0 GB budget"):
        fit(3072, 4096, LAYERS, 100, budget=2**30)


def test_format_size() -> None:
    assert format_size(1.5 * 2**30) == "1.5 GB" and format_size(380 * 2**20) == "380 MB"


# The child's own peak: VmHWM belongs to the process image (ru_maxrss would carry over the parent's
# peak across fork and exec, i.e. pytest's).
_MEASURE = """
import sys
from pathlib import Path
from impasto.cli.commands import main
rc = main(sys.argv[1:])
hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
print("RSS", int(hwm.split()[1]) * 1024)
sys.exit(rc)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("size", "tile"), [(256, None), (512, None), (512, 128)])
def test_the_estimate_is_within_25_percent_of_the_measured_peak(size: int, tile: int | None, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    args = [PHOTO, PAINTING, "-o", str(out), "--size", str(size)]
    args += ["--scales", "1", "--steps", "2", "--precision", "fp32", "--init", "content", "-q"]
    if tile:
        args += ["--tile", str(tile)]
    run = subprocess.run([sys.executable, "-c", _MEASURE, "stylize", *args], capture_output=True, text=True, check=True)
    rss = next(int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("RSS"))
    assert out.exists()
    w, h = (size, size * 3 // 4)
    estimate = fit(h, w, LAYERS, 100, available(torch.device("cpu")), tile=tile, steps=2).needed  # as transfer plans it
    assert 0.75 < estimate / rss < 1.25, json.dumps({"rss_mb": rss / 2**20, "estimate_mb": estimate / 2**20})


def test_the_cli_refuses_a_run_that_cannot_fit_before_any_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from impasto.cli.commands import main

    out = tmp_path / "big.png"
    args = ["stylize", PHOTO, PAINTING, "-o", str(out)]
    assert main([*args, "--size", "4096", "--max-memory", "1GB"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: a 4096x3072 run needs ~") and err.count("\n") == 0
    assert "1.0 GB budget" in err and not out.exists()
    assert main([*args, "--tile", "8"]) == 2
    assert "--tile must be >= 16 px, got 8" in capsys.readouterr().err
    assert main([*args, "--max-memory", "lots"]) == 2
    assert "--max-memory: cannot read 'lots'" in capsys.readouterr().err


def test_without_a_budget_of_its_own_a_tiled_cpu_run_is_frugal() -> None:
    """The default budget (18 GB here) would hold 2048-px cores; the frugal plan needs < 4 GB at 4096 px."""
    from impasto.core.memory import FRUGAL_CORE, fit_scales

    big = fit(3072, 4096, LAYERS, 100, budget=18 * 2**30, steps=2)
    (frugal,) = fit_scales([(4096, 3072)], [2], LAYERS, 100, torch.device("cpu"), bf16=True)
    assert big.tile is not None and big.tile > FRUGAL_CORE
    assert frugal.tile is not None and frugal.tile <= FRUGAL_CORE and frugal.keep == 0
    assert frugal.needed < 4 * 2**30 and frugal.history == 100
    note = frugal.note()
    assert note is not None and "history of 2:" in note  # what L-BFGS holds in two steps
    (given,) = fit_scales([(4096, 3072)], [2], LAYERS, 100, torch.device("cpu"), bf16=True, max_memory="18GB")
    assert given.tile == big.tile  # a budget given is spent


def test_a_given_tile_keeps_the_longest_history_the_budget_holds() -> None:
    """A tile given (``--tile``, or sized for a cluster's workers): the history is fitted beside it."""
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    roomy = memory.fit(3072, 4096, layers, 100, 64 * 2**30, tile=512, steps=100)
    assert roomy.tile == 512 and roomy.history == 100
    tight = memory.fit(3072, 4096, layers, 100, 10 * 2**30, tile=512, steps=100)
    assert tight.tile == 512 and tight.history < 100 and tight.needed <= memory.HEADROOM * 10 * 2**30
    hopeless = memory.fit(3072, 4096, layers, 100, 2**30, tile=512, steps=100)
    assert hopeless.history == memory.MIN_HISTORY  # at least the shortest: the plan says what it needs


def test_the_photorealism_term_is_counted_image_wide_and_per_crop() -> None:
    """Its window statistics for the whole image, one evaluation with its gradient per crop; a
    photo run that fits one machine untiled plain may need tiles with the term."""
    layers = ["conv1_1", "conv4_2", "conv5_1"]
    h, w = 1366, 2048
    plain, photo = (step_bytes(h, w, layers, 5, True, None, 0, p) for p in (False, True))
    assert photo - plain == pytest.approx((memory.PHOTO_GUIDE + memory.PHOTO_EVAL) * h * w)
    tiled = step_bytes(h, w, layers, 5, True, 512, 0, True) - step_bytes(h, w, layers, 5, True, 512, 0, False)
    assert memory.PHOTO_GUIDE * h * w < tiled < memory.PHOTO_GUIDE * h * w + memory.PHOTO_EVAL * 800 * 800
    budget = int((plain + photo) / 2 / memory.HEADROOM)
    assert fit(h, w, layers, 5, budget, True).tile is None
    assert fit(h, w, layers, 5, budget, True, photo=True).tile is not None
    worker = 5 * 2**30 // 2  # a cluster worker's budget where the term's maps take a larger core's room
    assert memory.worker_core(4096, 4096, layers, worker, True, 2) == 768
    assert memory.worker_core(4096, 4096, layers, worker, True, 2, photo=True) == 512
