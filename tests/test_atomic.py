"""Atomic writes and the temporaries a killed run leaves: a rerun removes its own stale ones, only those.

A real process is SIGKILLed in the middle of writing (its image encoder writes half a file, says so,
and waits to be killed); the rerun's write of the same target removes that temporary, and leaves
alone a temporary another live process is writing, the temporaries of other targets and files that
merely look like temporaries.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import make_painting, make_photo

from impasto.atomic import clean_stale, is_temp, new_temp, write_atomic
from impasto.batch.driver import batch
from impasto.image import save_image
from impasto.testing import narrow_vgg

# A writer that gets stuck in the middle of save_image's write: half a PNG in its temporary, then it
# says so (READY) and waits, to be killed there or to stay alive as a live writer.
STUCK_WRITER = """
import signal, sys
from pathlib import Path
from PIL import Image
from impasto.image import save_image

def save(self, fp, *args, **kwargs):
    fp.write(b"\\x89PNG half of it")
    fp.flush()
    Path(sys.argv[2]).write_text("")
    signal.pause()

Image.Image.save = save
save_image(Image.new("RGB", (32, 32)), sys.argv[1])
"""


def stuck_writer(target: Path, ready: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(target), str(ready)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the writer never got stuck: {proc.communicate()[1].decode()}")
        time.sleep(0.02)
    return proc


def temporaries(folder: Path, target: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temp(p.name, target))


@pytest.mark.slow  # a few seconds: make test runs it, make check leaves it out
def test_a_rerun_removes_the_temporary_of_a_killed_write_and_only_that(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    killed = stuck_writer(target, tmp_path / "killed-ready")
    live = stuck_writer(target, tmp_path / "live-ready")
    try:
        left = temporaries(tmp_path, "out.png")
        assert len(left) == 2 and (tmp_path / left[0]).read_bytes() == b"\x89PNG half of it"
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        not_ours = [
            ".out.png.0123abcd.part",
            "out.png.part",
            ".out.png.impasto-xyz.part",
            ".other.png.impasto-0123abcd.part",
        ]
        for name in not_ours:  # look-alikes, and a stale temporary of another target
            (tmp_path / name).write_bytes(b"keep")
        save_image(make_photo(32, 32), target)  # the rerun
        assert target.is_file()
        still = temporaries(tmp_path, "out.png")
        assert len(still) == 1 and still[0] in left  # the live writer's, still there
        assert all((tmp_path / name).read_bytes() == b"keep" for name in not_ours)
    finally:
        for proc in (killed, live):
            proc.kill()
            proc.communicate()
    save_image(make_photo(32, 32), target)  # the live writer is gone now too: its temporary is stale
    assert temporaries(tmp_path, "out.png") == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == sorted(not_ours)


def test_temporary_names_say_whose_they_are(tmp_path: Path) -> None:
    fd, tmp = new_temp(tmp_path, "out.png")
    try:
        assert is_temp(tmp.name, "out.png") and not is_temp(tmp.name, "other.png")
        assert clean_stale(tmp_path, ["out.png"]) == []  # held by this writer: not stale
    finally:
        tmp.unlink()
        os.close(fd)
    fd, video = new_temp(tmp_path, "clip.mp4", ".mp4")  # the muxer needs the extension
    os.close(fd)
    assert video.name.endswith(".part.mp4") and is_temp(video.name, "clip.mp4")
    assert clean_stale(tmp_path, ["clip.mp4"]) == [video] and not video.exists()  # closed: stale


def test_write_atomic_removes_stale_temporaries_of_its_target(tmp_path: Path) -> None:
    stale = tmp_path / ".impasto-batch.json.impasto-0123abcd.part"
    stale.write_bytes(b"{half")
    write_atomic(tmp_path / "impasto-batch.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["impasto-batch.json"]


def test_a_batch_rerun_with_nothing_to_do_removes_the_stale_temporaries_of_its_files(tmp_path: Path) -> None:
    make_photo(48, 40).save(tmp_path / "a.png")
    make_painting(40, 40).save(tmp_path / "s.png")
    out = tmp_path / "out"
    kwargs: dict[str, Any] = {"size": 32, "steps": 2, "scales": 1, "network": narrow_vgg()}
    assert batch([tmp_path / "a.png"], [tmp_path / "s.png"], out, **kwargs).count("done") == 1
    stale = [f".{name}.impasto-0123abcd.part" for name in ("a_s.png", "impasto-batch.json", "contact.png")]
    others = [".b_s.png.impasto-0123abcd.part", ".notes.part"]  # not a file of this batch; not ours
    for name in stale + others:
        (out / name).write_bytes(b"x")
    assert batch([tmp_path / "a.png"], [tmp_path / "s.png"], out, **kwargs).count("done") == 1
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".part")) == sorted(others)


def test_a_file_system_without_flock_still_gets_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some FUSE and network file systems refuse flock (ENOLCK): writes and batches go on, unguarded."""
    import errno
    import fcntl

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    save_image(make_photo(32, 32), tmp_path / "out.png")
    (tmp_path / ".out.png.impasto-0123abcd.part").write_bytes(b"x")  # stale or not: nobody can tell here
    save_image(make_photo(32, 32), tmp_path / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.png.impasto-0123abcd.part", "out.png"]
    make_photo(48, 40).save(tmp_path / "a.png")
    make_painting(40, 40).save(tmp_path / "s.png")
    done = batch(
        [tmp_path / "a.png"], [tmp_path / "s.png"], tmp_path / "b", size=32, steps=2, scales=1, network=narrow_vgg()
    )
    assert done.count("done") == 1
