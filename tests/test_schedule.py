"""The schedule (sizes and steps per scale), the time budget, and the one validated plan of a run.

:func:`impasto.core.schedule.plan` is the only check of the images against the options: the library
(:func:`impasto.core.transfer`), the command line and the studio refuse with its message.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from impasto import ConfigError, resolve, transfer
from impasto.core.schedule import MIN_COARSE_SIDE, Budget, Plan, clock, plan, plan_scales, scale_plan
from impasto.errors import cli_flag
from impasto.web.fields import worded
from impasto.web.server import create_app
from impasto.web.settings import StudioSettings
from impasto.web.testing import FakeRunner

PHOTO = (64, 48)
PAINTING = (40, 40)


def refusal(opts_overrides: dict[str, Any], *args: Any) -> ConfigError:
    """The error :func:`plan` raises for the default preset with ``opts_overrides`` and these images."""
    with pytest.raises(ConfigError) as info:
        plan(resolve(**opts_overrides), *args)
    return info.value


# --- plan_scales --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scales", "steps", "plan"),
    [
        (512, 1, 300, [(512, 300)]),
        (512, 3, 700, [(128, 400), (256, 200), (512, 100)]),  # 4:2:1
        (512, 2, 300, [(256, 200), (512, 100)]),
        (2000, 4, 150, [(250, 80), (500, 40), (1000, 20), (2000, 10)]),
        (1000, 4, 150, [(250, 87), (500, 42), (1000, 21)]),  # 125 px would be below the coarsest side
        (512, 3, 0, [(128, 0), (256, 0), (512, 0)]),
        (200, 3, 10, [(200, 10)]),  # 100 px would be below the coarsest side
        (2000, 4, 8, [(250, 4), (500, 2), (1000, 1), (2000, 1)]),  # every scale gets a step
        (512, 3, 3, [(128, 1), (256, 1), (512, 1)]),
        (512, 3, 1, [(512, 1)]),  # fewer steps than scales: the finest scales only
    ],
)
def test_plan_scales(size: int, scales: int, steps: int, plan: list[tuple[int, int]]) -> None:
    assert plan_scales(size, scales, steps) == plan


@pytest.mark.parametrize(
    ("size", "scales", "steps"), [(512, 3, 300), (512, 3, 10), (1000, 4, 8), (777, 6, 13), (2048, 3, 1), (64, 3, 7)]
)
def test_plan_scales_invariants(size: int, scales: int, steps: int) -> None:
    plan = plan_scales(size, scales, steps)
    sides = [side for side, _ in plan]
    assert sum(n for _, n in plan) == steps  # the budget is spent exactly
    assert sides[-1] == size
    assert sides == sorted(sides) and len(plan) <= scales
    assert all(b == a * 2 or b == a * 2 + 1 for a, b in itertools.pairwise(sides))  # each twice the one before
    assert all(side >= min(size, MIN_COARSE_SIDE) for side in sides)
    shares = [n for _, n in plan]
    assert shares == sorted(shares, reverse=True)  # most steps where they are cheap


def test_plan_scales_never_goes_below_the_coarsest_side() -> None:
    assert [side for side, _ in plan_scales(MIN_COARSE_SIDE * 2, 5, 9)] == [MIN_COARSE_SIDE, MIN_COARSE_SIDE * 2]
    assert plan_scales(MIN_COARSE_SIDE * 2 - 1, 3, 9) == [(MIN_COARSE_SIDE * 2 - 1, 9)]


# --- the time budget ------------------------------------------------------------------------------


def test_eta_leaves_out_each_scales_first_step() -> None:
    budget = Budget([4, 4], [100, 400], None)  # two scales, 4 steps each
    budget.observe(100.0, 0, 1)  # warm-up: not a step's time
    assert budget.eta(0, 1) is None  # "estimating"
    budget.observe(1.0, 0, 2)
    assert budget.eta(0, 2) == pytest.approx(2 * 1.0 + 4 * 4.0)  # later scales by pixels: 4x the pixels
    budget.observe(50.0, 1, 1)  # the next scale's warm-up
    assert budget.eta(1, 1) == pytest.approx(3 * 4.0)
    budget.observe(2.0, 1, 2)  # its own step time replaces the estimate by pixels
    assert budget.eta(1, 2) == pytest.approx(2 * 2.0)


# --- plan() ---------------------------------------------------------------------------------------


def test_plan_is_the_schedule_for_these_images() -> None:
    opts = resolve(size=512, scales=3, steps=70, style_scale=0.5)
    made = plan(opts, (800, 600), [(300, 400)])
    assert isinstance(made, Plan) and made.opts is opts
    assert [(s.side, s.size, s.steps, s.style_side) for s in made.scales] == [
        (128, (128, 96), 40, 64),
        (256, (256, 192), 20, 128),
        (512, (512, 384), 10, 256),  # style: 512 px x style_scale 0.5, in proportion
    ]
    assert list(made.scales) == scale_plan(opts, (800, 600))
    assert made.size == (512, 384) and made.steps == 70


def test_plan_budget() -> None:
    made = plan(resolve(size=512, scales=2, steps=30), PHOTO, [PAINTING])
    budget = made.budget(100.0)
    assert budget.plan == [20, 10] and budget.pixels == [256 * 192, 512 * 384] and budget.deadline is None
    timed = plan(resolve(size=512, scales=2, steps=30, max_time=7.5), PHOTO, [PAINTING]).budget(100.0)
    assert timed.deadline == 107.5


@pytest.mark.parametrize(
    ("overrides", "args", "message"),
    [
        ({}, (PHOTO, []), "at least one style image is needed"),
        ({"style_blend": (1, 2)}, (PHOTO, [PAINTING]), "`style_blend` has 2 weights for 1 style image(s)"),
        ({}, (PHOTO, [PAINTING], 1), "`style_masks` needs `content_mask` (which region gets which style)"),
        ({}, (PHOTO, [PAINTING], 2, True), "`style_masks` has 2 mask(s) for 1 style image(s)"),
        (
            {"size": 16},
            (PHOTO, [PAINTING]),
            "the output would be 16x12 px, too small for layer conv5_1 (needs at least 16 px per side): raise `size`",
        ),
        (
            {"size": 20, "content_layers": "conv1_1", "style_layers": "conv4_1"},
            ((200, 20), [PAINTING]),
            "the output would be 20x2 px, too small for layer conv4_1 (needs at least 8 px per side): raise `size`",
        ),
        (
            {"scale_sizes": (20, 64)},
            (PHOTO, [PAINTING]),
            "scale 1 would be 20x15 px, too small for layer conv5_1 (needs at least 16 px per side): raise `size`",
        ),
        (
            {"size": 64, "style_size": 12},
            (PHOTO, [PAINTING, (10, 10)]),
            "style image 1 (40x40) would be 12x12 px, too small for layer conv5_1 (needs at least 16 px per side): "
            "raise `size` or `style_size`",
        ),
    ],
)
def test_plan_refuses(overrides: dict[str, object], args: tuple[object, ...], message: str) -> None:
    assert refusal(overrides, *args).worded(lambda name: f"`{name}`") == message


def png_bytes(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, format="PNG")
    return buf.getvalue()


def test_every_front_end_refuses_with_the_plans_message(
    tmp_path: Path, run_cli: Callable[[list[object]], tuple[int, str, str]]
) -> None:
    """The library, the command line and the studio refuse a too-small output with plan()'s one message."""
    expected = refusal({"size": 16}, PHOTO, [PAINTING])
    photo, painting = Image.new("RGB", PHOTO, "red"), Image.new("RGB", PAINTING, "blue")
    with pytest.raises(ConfigError) as library:
        transfer(photo, [painting], resolve(size=16))
    assert str(library.value) == str(expected) and "raise size" in str(expected)

    photo.save(tmp_path / "photo.png")
    painting.save(tmp_path / "painting.png")
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", tmp_path / "photo.png", tmp_path / "painting.png", "-o", out, "--size", "16"])
    assert (code, err) == (2, f"impasto: error: {expected.worded(cli_flag)}\n") and not out.exists()
    assert "raise --size" in err

    settings = StudioSettings(workdir=tmp_path / "work", max_size=256, max_steps=50)
    with TestClient(create_app(settings, FakeRunner())) as client:
        files = [
            ("content", ("p.png", png_bytes(PHOTO), "image/png")),
            ("style", ("s.png", png_bytes(PAINTING), "image/png")),
        ]
        r = client.post("/api/jobs", data={"size": "16", "steps": "3"}, files=files)
        assert (r.status_code, r.json()["detail"]) == (422, worded(expected))
        assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-3, "0:00"),
        (0.4, "0:00"),
        (59.6, "1:00"),
        (754, "12:34"),
        (3599.4, "59:59"),
        (3600, "1:00:00"),
        (45296, "12:34:56"),
    ],
)
def test_clock_shows_hours_from_an_hour_on(seconds: float, shown: str) -> None:
    assert clock(seconds) == shown


@pytest.mark.parametrize(
    "overrides",
    [{}, {"size": 100, "scales": 5}, {"size": 40, "scales": 3}, {"scale_sizes": [48, 64], "steps": 1}, {"steps": 0}],
)
def test_options_final_size_is_the_schedules_last_side(overrides: dict[str, Any]) -> None:
    opts = resolve("default", **overrides)
    assert opts.final_size == plan_scales(opts.size, opts.scales, opts.steps, opts.scale_sizes)[-1][0]
