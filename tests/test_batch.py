"""impasto batch: planning, the manifest, resume, failures per item, the contact sheet, the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_painting, make_photo
from PIL import Image

from impasto.batch.driver import BatchEvent, batch
from impasto.batch.manifest import MANIFEST_NAME, Manifest, write_atomic
from impasto.batch.plan import expand_inputs, plan_items
from impasto.errors import ConfigError, InputError
from impasto.image import read_params

TINY: dict[str, Any] = {"size": 32, "steps": 4, "scales": 1}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of two photos (one in a subfolder) and a text file that is not an image."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    make_photo(48, 40, seed=1).save(folder / "a.png")
    make_photo(40, 48, seed=2).save(folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def paintings(tmp_path: Path) -> list[Path]:
    paths = []
    for n in range(2):
        path = tmp_path / f"style{n}.png"
        make_painting(40, 40, seed=n + 3).save(path)
        paths.append(path)
    return paths


def run_batch(photos: Path, paintings: list[Path], out: Path, **kw: Any) -> Any:
    return batch([photos], paintings, out, **(TINY | kw))


def test_expand_folders_recursively_image_files_only_and_globs(photos: Path, tmp_path: Path) -> None:
    assert [p.name for p in expand_inputs([str(photos)])] == ["a.png", "b.jpg"]
    assert [p.name for p in expand_inputs([str(photos / "**" / "*.jpg")])] == ["b.jpg"]
    assert [p.name for p in expand_inputs([str(photos / "a.png"), str(photos)])] == ["a.png", "b.jpg"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("empty", "folder has no image files"),
        ("nothing-*.png", "pattern matches no image files"),
        ("nope.png", "not found"),
    ],
)
def test_expand_refuses_what_gives_no_images(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        expand_inputs([str(tmp_path / spec)])


def test_plan_crosses_inputs_styles_and_sweeps_with_stable_ids(photos: Path, paintings: list[Path]) -> None:
    contents = expand_inputs([str(photos)])
    items = plan_items(contents, paintings, options=TINY, sweep={"ratio": [1e-2, 1e-3], "seed": [0, 1]})
    assert len(items) == 2 * 2 * 2 * 2
    assert items[0].name == "a_style0_ratio0.01_seed0.png"
    assert len({i.id for i in items}) == len(items)
    again = plan_items(contents, paintings, options=TINY, sweep={"ratio": [1e-2, 1e-3], "seed": [0, 1]})
    assert [i.id for i in again] == [i.id for i in items] and [i.params_hash for i in again] == [
        i.params_hash for i in items
    ]
    changed = plan_items(
        contents, paintings, options=TINY | {"steps": 5}, sweep={"ratio": [1e-2, 1e-3], "seed": [0, 1]}
    )
    assert [i.id for i in changed] == [i.id for i in items]  # same item ...
    assert all(c.params_hash != i.params_hash for c, i in zip(changed, items, strict=True))  # ... to redo


def test_plan_pairs_and_name_pattern(photos: Path, paintings: list[Path]) -> None:
    contents = expand_inputs([str(photos)])
    items = plan_items(contents, paintings, pairs=True, name="{n}-{style}-{content}", options=TINY)
    assert [i.name for i in items] == ["1-style0-a.png", "2-style1-b.png"]
    with pytest.raises(ConfigError, match="unknown field"):
        plan_items(contents, paintings, name="{colour}", options=TINY)
    with pytest.raises(ConfigError, match="as many styles"):
        plan_items(contents, paintings[:1], pairs=True, options=TINY)
    with pytest.raises(ConfigError, match="both be named"):
        plan_items(contents, paintings, name="{content}", options=TINY)
    with pytest.raises(ConfigError, match="size"):
        plan_items(contents, paintings, sweep={"size": [32, -1]}, options={"steps": 2})


def test_batch_writes_images_manifest_sheet_and_rerun_does_nothing(
    photos: Path, paintings: list[Path], tmp_path: Path, narrow_network: None
) -> None:
    out = tmp_path / "out"
    events: list[BatchEvent] = []
    manifest = run_batch(photos, paintings, out, sweep={"ratio": [1e-2, 1e-3]}, on_event=events.append)
    assert manifest.count("done") == 8 and not manifest.interrupted
    names = sorted(e.output for e in manifest.entries.values())
    for name in names:
        params = read_params(out / name)
        assert params["size"] == 32 and params["ratio"] in (1e-2, 1e-3) and "sweep" in params
    assert {"start", "item_start", "step", "item_done", "finish"} <= {e.kind for e in events}
    assert events[-1].done == 8 and events[-1].total == 8
    page = (out / "index.html").read_text()
    assert page.count('<img src="data:image/jpeg') == 6 and page.count("<img") == 14  # 2 photos, 4 paintings, 8
    with Image.open(out / "contact.png") as sheet:  # 1 + 4 columns (2 styles x 2 ratios), 1 + 2 rows
        assert sheet.size == (8 + 5 * (96 + 8), 8 + 3 * (32 + 30 + 8))  # 32-px cells in 96-px columns
    raw = json.loads((out / MANIFEST_NAME).read_text())
    assert {e["state"] for e in raw["items"]} == {"done"}
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    again: list[BatchEvent] = []
    run_batch(photos, paintings, out, sweep={"ratio": [1e-2, 1e-3]}, on_event=again.append)
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes  # nothing written at all
    assert again[0].skipped == 8 and not any(e.kind == "item_start" for e in again)


def _stop_after(n: int) -> Callable[[BatchEvent], None]:
    def on_event(ev: BatchEvent) -> None:
        if ev.kind == "item_done" and ev.done == n:
            raise KeyboardInterrupt  # as Ctrl-C would, between two items

    return on_event


def test_resume_after_interrupt_redoes_nothing_and_equals_an_uninterrupted_run(
    photos: Path, paintings: list[Path], tmp_path: Path, narrow_network: None
) -> None:
    out, ref = tmp_path / "out", tmp_path / "ref"
    first = run_batch(photos, paintings, out, on_event=_stop_after(2))
    assert first.interrupted and first.count("done") == 2 and first.count("pending") == 2
    saved = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(e["state"] for e in saved["items"]) == ["done", "done", "pending", "pending"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name != "contact.png"}
    assert len(before) == 2
    second = run_batch(photos, paintings, out)
    assert second.count("done") == 4 and not second.interrupted
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name != "contact.png"}
    assert len(after) == 4 and all(after[n] == t for n, t in before.items())  # the first two not redone
    run_batch(photos, paintings, ref)
    for name in after:
        got, want = np.asarray(Image.open(out / name)), np.asarray(Image.open(ref / name))
        assert np.array_equal(got, want), name


def test_changed_option_redoes_the_item_and_failed_items_are_retried(
    photos: Path, paintings: list[Path], tmp_path: Path, narrow_network: None
) -> None:
    out = tmp_path / "out"
    run_batch(photos, paintings[:1], out, seed=0)
    redo: list[BatchEvent] = []
    run_batch(photos, paintings[:1], out, seed=1, on_event=redo.append)
    assert sum(e.kind == "item_done" for e in redo) == 2
    assert all(read_params(p)["seed"] == 1 for p in out.glob("a_*.png"))


def test_unreadable_file_fails_its_items_only(
    photos: Path, paintings: list[Path], tmp_path: Path, narrow_network: None
) -> None:
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    manifest = run_batch(photos, paintings[:1], out)
    states = {e.name: (e.state, e.reason) for e in manifest.entries.values()}
    assert states["a_style0.png"][0] == states["b_style0.png"][0] == "done"
    state, reason = states["broken_style0.png"]
    assert state == "failed" and reason is not None and "broken.png" in reason and "\n" not in reason
    assert (out / "a_style0.png").is_file() and not (out / "broken_style0.png").exists()
    assert "broken.png" in (out / "index.html").read_text()


def test_out_dir_that_is_a_file_is_refused(photos: Path, paintings: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        run_batch(photos, paintings, out)


def test_manifest_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = Manifest(tmp_path)
    manifest.save()
    good = manifest.path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomic(manifest.path, b'{"half": ')
    assert manifest.path.read_bytes() == good  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary left behind
    monkeypatch.undo()
    manifest.path.write_text("{not json")
    with pytest.raises(InputError, match="corrupt batch manifest"):
        Manifest.load(tmp_path)


# The command line: exit codes and one-line messages.


def test_cli_batch_sweeps_and_reports(
    run_cli: Callable[..., tuple[int, str, str]],
    photos: Path,
    paintings: list[Path],
    tmp_path: Path,
    narrow_network: None,
) -> None:
    out = tmp_path / "out"
    argv = ["batch", photos, "--style", *paintings, "-o", out, "--size", 32, "--steps", 3, "--scales", 1]
    code, _, err = run_cli([*argv, "--ratio", "1e-2", "1e-3", "--name", "{n}{sweep}"])
    assert code == 0, err
    assert sorted(p.name for p in out.glob("[0-9]*.png"))[:2] == ["1_ratio0.01.png", "2_ratio0.001.png"]
    assert "8 done, 0 failed" in err
    code, _, err = run_cli([*argv, "--ratio", "1e-2", "1e-3", "--name", "{n}{sweep}"])
    assert code == 0 and "nothing to do" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: (t / "empty").mkdir() or [t / "empty"], "folder has no image files"),
        (lambda t: [t / "none-*.jpg"], "pattern matches no image files"),
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line(
    run_cli: Callable[..., tuple[int, str, str]],
    paintings: list[Path],
    tmp_path: Path,
    make: Callable[[Path], list[Path]],
    message: str,
) -> None:
    code, _, err = run_cli(["batch", *make(tmp_path), "--style", *paintings, "-o", tmp_path / "out"])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_out_dir_file_exits_2(
    run_cli: Callable[..., tuple[int, str, str]], photos: Path, paintings: list[Path], tmp_path: Path
) -> None:
    (tmp_path / "out").write_text("")
    code, _, err = run_cli(["batch", photos, "--style", *paintings, "-o", tmp_path / "out"])
    assert code == 2 and "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


def test_cli_failed_item_exits_1_and_lists_it(
    run_cli: Callable[..., tuple[int, str, str]],
    photos: Path,
    paintings: list[Path],
    tmp_path: Path,
    narrow_network: None,
) -> None:
    (photos / "broken.jpg").write_bytes(b"")
    argv = ["batch", photos, "--style", paintings[0], "-o", tmp_path / "out", "-q", "--size", 32, "--steps", 2]
    code, _, err = run_cli(argv)
    assert code == 1 and "failed: broken_style0.png: " in err and "file is empty" in err


def test_cli_ray_without_ray_says_how_to_install(
    run_cli: Callable[..., tuple[int, str, str]],
    photos: Path,
    paintings: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    code, _, err = run_cli(["batch", photos, "--style", *paintings, "-o", tmp_path / "out", "--ray"])
    assert code == 2 and "pip install 'impasto[ray]'" in err


def test_interrupt_mid_item_keeps_finished_items_and_leaves_it_pending(
    photos: Path, paintings: list[Path], tmp_path: Path, narrow_network: None
) -> None:
    out = tmp_path / "out"

    def on_event(ev: BatchEvent) -> None:
        if ev.kind == "step" and ev.done == 1 and ev.step is not None and ev.step.step == 2:
            raise KeyboardInterrupt  # Ctrl-C inside the second item's transfer

    manifest = run_batch(photos, paintings[:1], out, on_event=on_event)
    assert manifest.interrupted
    assert sorted(e.state for e in manifest.entries.values()) == ["done", "pending"]
    assert sorted(p.name for p in out.glob("*_style0.png")) == ["a_style0.png"]  # no half-made second image
    assert not list(out.glob(".*.part"))


def test_cli_no_sheet_and_unsupported_flags(
    run_cli: Callable[..., tuple[int, str, str]],
    photos: Path,
    paintings: list[Path],
    tmp_path: Path,
    narrow_network: None,
) -> None:
    out = tmp_path / "out"
    argv = ["batch", photos, "--style", paintings[0], "-o", out, "--size", 32, "--steps", 2, "-q"]
    code, _, err = run_cli([*argv, "--no-sheet"])
    assert code == 0 and err == "" and not (out / "index.html").exists() and not (out / "contact.png").exists()
    code, _, err = run_cli([*argv, "--save-every", 1])
    assert code == 2 and "not supported by batch" in err


def test_bad_inputs_create_no_out_dir(paintings: list[Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        batch([tmp_path / "missing.jpg"], paintings, tmp_path / "out", **TINY)
    assert not (tmp_path / "out").exists()


def test_ray_address_that_refuses_connections_is_a_quick_error(
    photos: Path, paintings: list[Path], tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach a Ray head node"):
        run_batch(photos, paintings, tmp_path / "out", ray=f"127.0.0.1:{port}")


def test_init_file_and_masks_reach_every_item_and_are_recorded(
    run_cli: Callable[..., tuple[int, str, str]], photos: Path, paintings: list[Path], tmp_path: Path,
    narrow_network: None,
) -> None:  # fmt: skip
    start = tmp_path / "start.png"
    Image.new("RGB", (48, 48), (200, 10, 100)).save(start)
    out = tmp_path / "out"
    argv = ["batch", photos, "--style", paintings[0], "-o", out, "--size", 32, "--steps", 0, "--scales", 1]
    code, _, err = run_cli([*argv, "--init", start, "--no-sheet"])
    assert code == 0, err
    for name in ("a_style0.png", "b_style0.png"):
        params = read_params(out / name)
        assert params["init"] == str(start) and params["content_mask"] is None
        with Image.open(out / name) as img:  # 0 steps: the init image itself
            assert np.abs(np.asarray(img.convert("RGB"), dtype=np.int16) - (200, 10, 100)).max() <= 1
    code, _, err = run_cli([*argv, "--init", start, "--no-sheet"])
    assert code == 0 and "nothing to do" in err  # the same init file: the same items
    mask = tmp_path / "white.png"
    Image.new("L", (48, 40), 255).save(mask)
    items = plan_items([photos / "a.png"], paintings[:1], options={"content_mask": str(mask), "init": "noise"})
    assert dict(items[0].images) == {"content_mask": str(mask)} and "content_mask" not in items[0].option_dict()
    manifest = batch([photos / "a.png"], paintings[:1], tmp_path / "masked", content_mask=mask, sheet=False, **TINY)
    assert manifest.count("done") == 1
    (entry,) = manifest.entries.values()
    assert entry.output is not None
    assert read_params(tmp_path / "masked" / entry.output)["content_mask"] == str(mask)
