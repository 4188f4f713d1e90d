"""benchmarks/look.py: the acceptance summary and the table it writes."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def look_script() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("look")
    finally:
        sys.path.remove(str(BENCH_DIR))


def _row(photo: str, painting: str, size: int, r: float, s: float) -> dict[str, Any]:
    return {"photo": photo, "painting": painting, "size": size, "content_kept": r, "style_reached": s,
            "steps": 300, "seconds": 1.0}  # fmt: skip


def test_summary_holds_when_every_limit_holds(look_script: ModuleType) -> None:
    rows = [_row("a", "x", 128, 0.50, 0.96), _row("a", "x", 256, 0.58, 0.97), _row("b", "x", 128, 0.7, 0.99)]
    summary = look_script.summarise(rows)
    assert summary == {
        "min_content_kept": 0.50,
        "min_style_reached": 0.96,
        "max_spread_content_kept": pytest.approx(0.08),
        "passes": True,
    }


@pytest.mark.parametrize(
    ("rows", "broken"),
    [
        ([_row("a", "x", 128, 0.44, 0.96)], "r"),
        ([_row("a", "x", 128, 0.50, 0.949)], "s"),
        ([_row("a", "x", 128, 0.50, 0.96), _row("a", "x", 512, 0.61, 0.96)], "spread"),
    ],
)
def test_summary_fails_on_each_limit(look_script: ModuleType, rows: list[dict[str, Any]], broken: str) -> None:
    assert look_script.summarise(rows)["passes"] is False, broken


def test_markdown_table_has_a_row_per_pair_and_the_verdict(look_script: ModuleType) -> None:
    rows = [_row("a", "x", 128, 0.5, 0.96), _row("a", "x", 256, 0.55, 0.97), _row("a", "y", 128, 0.3, 0.99)]
    meta = {"preset": "default", "cpu": "cpu", "torch": "t", "date": "d", "options": {}}
    meta["summary"] = look_script.summarise(rows)
    text = look_script.markdown(rows, [128, 256], meta)
    assert "| a | x | 0.50 | 0.960 | 0.55 | 0.970 | 0.05 |" in text
    assert "| a | y | 0.30 | 0.990 | - | - | 0.00 |" in text
    assert "LIMITS MISSED" in text
