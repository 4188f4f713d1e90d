"""``impasto batch`` onto a real full disk: a 1 MB tmpfs mounted for each test (tests/disks.py).

What must hold: a disk already full is refused before any work (stylize's check); a disk that
fills during the run stops the batch with one line and exit 2, the finished items recorded in
the manifest (the item that did not fit as failed, with its reason), no temporary left; once
there is room, the same command goes on from there and redoes nothing that was done.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_painting, make_photo
from disks import fill, tmpfs

from impasto import cli
from impasto.batch.manifest import LOCK_NAME, MANIFEST_NAME

ROOM = 4096  # one page: the next PNG's write starts, then fails; the manifest still fits


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path / "disk", "size=1m,mode=0755")


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    """Three photos and a painting, off the small disk."""
    paths = []
    for n, name in enumerate("abc"):
        make_photo(64, 48, seed=n).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    make_painting(48, 48).save(tmp_path / "style.png")
    return [*paths, tmp_path / "style.png"]


def argv(inputs: list[Path], out: Path) -> list[str]:
    *photos, style = (str(p) for p in inputs)
    return ["batch", *photos, "--style", style, "-o", str(out), "--size", "64", "--steps", "3", "--scales", "1", "-q"]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    return lines[0]


def states(out: Path) -> dict[str, tuple[str, str | None]]:
    raw = json.loads((out / MANIFEST_NAME).read_text())
    return {e["name"]: (e["state"], e["reason"]) for e in raw["items"]}


@pytest.fixture
def fills_during_item(monkeypatch: pytest.MonkeyPatch, small_disk: Path) -> Callable[[int], None]:
    """``fills_during_item(n)``: the disk fills up (but for one page) while item n is computed."""
    module = importlib.import_module("impasto.core.scales")
    real = module.optimize
    calls = [0]
    when = [0]

    def optimize(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == when[0]:
            fill(small_disk, ROOM)
        return result

    monkeypatch.setattr(module, "optimize", optimize)
    return lambda n: when.__setitem__(0, n)


def test_a_full_disk_is_refused_before_any_work(
    narrow_network: None, inputs: list[Path], small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk / "out"
    filler = fill(small_disk)
    capsys.readouterr()
    assert cli.main(argv(inputs, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{out / 'a_style.png'}: only 0.0 MB free in '{out}', the 3 item(s) to do need about 37 kB" in line, line
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # no manifest, no image, no temporary
    filler.unlink()
    assert cli.main(argv(inputs, out)) == 0  # with room, the same command runs
    assert set(states(out).values()) == {("done", None)}


def test_a_disk_that_fills_mid_run_stops_with_one_line_and_the_rerun_goes_on(
    narrow_network: None,
    inputs: list[Path],
    small_disk: Path,
    fills_during_item: Callable[[int], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = small_disk / "out"
    fills_during_item(2)
    capsys.readouterr()
    assert cli.main(argv(inputs, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"impasto: error: {out / 'b_style.png'}: cannot write (No space left on device); the batch stopped with "
        f"1 of 3 items done, recorded in {out / MANIFEST_NAME}: make room and run the same command to go on"
    )
    assert states(out) == {
        "a_style.png": ("done", None),
        "b_style.png": ("failed", "b_style.png: cannot write (No space left on device)"),
        "c_style.png": ("pending", None),
    }
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "a_style.png", MANIFEST_NAME]  # no .part left
    first = (out / "a_style.png").stat().st_mtime_ns

    (small_disk / "filler").unlink()
    fills_during_item(0)  # no more filling
    assert cli.main(argv(inputs, out)) == 0
    assert set(states(out).values()) == {("done", None)}
    assert (out / "a_style.png").stat().st_mtime_ns == first  # not redone
    assert {"b_style.png", "c_style.png", "contact.png", "index.html"} <= {p.name for p in out.iterdir()}
