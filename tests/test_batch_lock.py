"""Two batches on one output folder: the second is refused while the first runs (two real processes),
and manifest saves merge with what is on disk instead of overwriting it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_painting, make_photo

from impasto.batch.driver import batch
from impasto.batch.manifest import MANIFEST_NAME, Manifest, lock_folder
from impasto.batch.plan import plan_items
from impasto.errors import InputError
from impasto.testing import narrow_vgg

BATCH_PROC = Path(__file__).with_name("batch_proc.py")
TINY = ["--size", "32", "--steps", "2", "--scales", "1"]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    photos, styles = [tmp_path / "a.png", tmp_path / "b.png"], [tmp_path / "s1.png", tmp_path / "s2.png"]
    for n, p in enumerate(photos):
        make_photo(48, 40, seed=n).save(p)
    for n, p in enumerate(styles):
        make_painting(40, 40, seed=n + 3).save(p)
    return photos, styles


def refusal(out: Path) -> str:
    what = "another impasto batch is writing into this folder"
    return f"{out}: {what}; wait for it to finish, or give another output folder"


def names(out: Path) -> dict[str, str]:
    return {e["name"]: e["state"] for e in json.loads((out / MANIFEST_NAME).read_text())["items"]}


def batch_proc(*args: object, hold: str | None = None) -> list[str]:
    return [sys.executable, str(BATCH_PROC), *(["--hold", hold] if hold else []), *map(str, args), *TINY]


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 180) -> None:
    """Until ``path`` exists; the process ending first (or the deadline) fails the test, with its stderr."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} never appeared; the batch said: {proc.communicate()[1]}")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_second_batch_process_is_refused_while_the_first_runs(
    tmp_path: Path, inputs: tuple[list[Path], list[Path]]
) -> None:
    (a, b), (s1, s2) = inputs
    out, hold = tmp_path / "out", tmp_path / "hold"
    hold.mkdir()
    cmd = batch_proc(a, b, "--style", s1, "-o", out, hold=f"{hold}:b_s1.png")
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as first:  # closes its pipe, kills it on a failure
        try:
            wait_for(hold / "holding", first)  # the first batch holds the folder, mid-batch: a done, b started
            second = subprocess.run(
                batch_proc(a, b, "--style", s2, "-o", out), capture_output=True, text=True, timeout=300
            )
            assert second.returncode == 2, second.stderr
            assert second.stderr.splitlines() == [f"impasto: error: {refusal(out)}"]
            assert names(out) == {"a_s1.png": "done", "b_s1.png": "pending"}  # the second wrote nothing
            (hold / "release").touch()
            err = first.communicate(timeout=300)[1]
            assert first.returncode == 0, err
        finally:
            if first.poll() is None:
                first.kill()
    again = subprocess.run(batch_proc(a, b, "--style", s2, "-o", out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert names(out) == {f"{p}_{s}.png": "done" for p in "ab" for s in ("s1", "s2")}  # both batches' items
    rerun = subprocess.run(batch_proc(a, b, "--style", s1, "-o", out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "nothing to do: all 2 items are done already" in rerun.stderr, rerun.stderr


def test_a_batch_on_a_locked_folder_is_refused_before_any_work(
    tmp_path: Path, inputs: tuple[list[Path], list[Path]]
) -> None:
    (a, _), (s1, _) = inputs
    out = tmp_path / "out"
    out.mkdir()
    with lock_folder(out), pytest.raises(InputError) as info:
        batch([a], [s1], out, size=32, steps=2, scales=1, network=narrow_vgg())
    assert str(info.value) == refusal(out)
    assert sorted(p.name for p in out.iterdir()) == [".impasto-batch.lock"]
    assert batch([a], [s1], out, size=32, steps=2, scales=1, network=narrow_vgg()).count("done") == 1  # released


def test_manifest_saves_merge_with_the_file_instead_of_replacing_it(
    tmp_path: Path, inputs: tuple[list[Path], list[Path]]
) -> None:
    (a, b), (s1, s2) = inputs
    one, two = plan_items([a], [s1], options={"size": 32}), plan_items([b], [s2], options={"size": 32})
    first, second = Manifest.load(tmp_path), Manifest.load(tmp_path)  # both read the folder before either saved
    first.track(one[0]).state = "failed"
    first.save()
    second.track(two[0])
    second.save()  # keeps the first's entry (it did not track it)
    assert names(tmp_path) == {"a_s1.png": "failed", "b_s2.png": "pending"}
    first.track(one[0]).state = "pending"
    first.save()  # its own entry wins; the second's stays
    assert names(tmp_path) == {"a_s1.png": "pending", "b_s2.png": "pending"}
    assert Manifest.load(tmp_path).entries.keys() == {one[0].id, two[0].id}
