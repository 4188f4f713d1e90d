"""A real full disk: a 1 MB tmpfs mounted for each test, filled up by a file, unmounted afterwards.

tests/test_faults.py makes the same faults with a stand-in file whose writes raise ENOSPC, so they
are tested on any machine; these tests need root (``mount -t tmpfs``) and skip, saying why, where
mounting is not permitted. What must hold, as there: one line that says what happened (CLI: exit
code and stderr, no traceback; studio: the job's error or the answer's ``detail``), no partial or
temporary file left, the previous output byte for byte as it was, the studio able to go on.
"""

from __future__ import annotations

import errno
import importlib
import io
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_painting, make_photo, manager_of
from disks import fill, tmpfs
from fastapi.testclient import TestClient
from PIL import Image

from impasto import cli
from impasto.web.server import create_app
from impasto.web.settings import StudioSettings

DISK_BYTES = 1 << 20
ROOM = 4096  # what a filled disk keeps free when a write should start and then fail: one page


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 1 MB tmpfs on ``tmp_path/disk``; unmounted (lazily, if something still holds it) afterwards."""
    yield from tmpfs(tmp_path / "disk", f"size={DISK_BYTES},mode=0755")


@pytest.fixture
def few_inodes(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with room for bytes but for only ``INODES`` files and folders."""
    yield from tmpfs(tmp_path / "disk", f"size={DISK_BYTES},nr_inodes={INODES},mode=0755")


INODES = 64


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- the CLI's -o --------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    make_photo(64, 48).save(tmp_path / "photo.png")
    make_painting(48, 48).save(tmp_path / "painting.png")
    return tmp_path / "photo.png", tmp_path / "painting.png"


def stylize(files: tuple[Path, Path], out: Path, *flags: str) -> list[str]:
    args = ["stylize", str(files[0]), str(files[1]), "-o", str(out), "--size", "64", "--steps", "4", "--scales", "1"]
    return [*args, "--quiet", *flags]


@pytest.fixture
def earlier(narrow_network: None, files: tuple[Path, Path], small_disk: Path) -> bytes:
    """An earlier output, ``out.png`` on the small disk, made by the CLI itself; its bytes."""
    assert cli.main(stylize(files, small_disk / "out.png", "--seed", "1")) == 0
    return (small_disk / "out.png").read_bytes()


def test_cli_on_a_disk_already_full_refuses_before_any_work(
    files: tuple[Path, Path], small_disk: Path, earlier: bytes
) -> None:
    """A real ``impasto`` process (the check comes before the network is loaded): exit 2, one line."""
    fill(small_disk)
    out = small_disk / "out.png"
    impasto = Path(sys.executable).with_name("impasto")
    done = subprocess.run([str(impasto), *stylize(files, out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert str(out) in line and "only 0.0 MB free" in line, line
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out.png"]  # no .out.png.*.part


@pytest.fixture
def fills_during_the_run(monkeypatch: pytest.MonkeyPatch, small_disk: Path) -> Callable[[], int]:
    """The disk fills up (but for one page) while the run optimises, after the CLI's up-front check."""
    module = importlib.import_module("impasto.core.scales")
    real = module.optimize
    calls = [0]

    def optimize(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls[0] += 1
        fill(small_disk, ROOM)
        return result

    monkeypatch.setattr(module, "optimize", optimize)
    return lambda: calls[0]


@pytest.mark.parametrize("previous", [True, False], ids=["over-an-earlier-output", "a-new-file"])
def test_cli_disk_that_fills_during_the_run(
    narrow_network: None,
    files: tuple[Path, Path],
    small_disk: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    previous: bool,
) -> None:
    out = small_disk / "out.png"
    before = request.getfixturevalue("earlier") if previous else None
    filled = request.getfixturevalue("fills_during_the_run")
    capsys.readouterr()
    assert cli.main(stylize(files, out)) == 2
    assert filled() == 1  # the disk did fill between the check and the save
    line = one_error_line(capsys.readouterr().err)
    assert str(out) in line and "cannot write the image (No space left on device)" in line, line
    assert (out.read_bytes() == before) if previous else not out.exists()
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", *(["out.png"] if previous else [])]
    assert shutil.disk_usage(small_disk).free == ROOM  # the partial file's pages are free again


# --- the studio's job folder ---------------------------------------------------------------------


@pytest.fixture
def studio(narrow_network: None, small_disk: Path) -> Iterator[TestClient]:
    settings = StudioSettings(workdir=small_disk / "work", max_size=64, max_steps=20, preview_seconds=0.0)
    with TestClient(create_app(settings)) as client:
        yield client


JOB = {"content_example": "tubingen", "style_example": "starry_night", "size": "64", "steps": "3", "scales": "1"}


def run_job(client: TestClient, **files: Any) -> dict[str, Any]:
    created = client.post("/api/jobs", data=JOB if not files else {**JOB, "content_example": ""}, files=files)
    assert created.status_code == 201, created.text
    manager = manager_of(client)
    job = manager.get(created.json()["id"])
    assert job is not None
    assert manager.wait(lambda: job.state.value in ("done", "failed", "cancelled"), 120)
    status: dict[str, Any] = client.get(f"/api/jobs/{job.id}").json()
    return status


def photo_png() -> bytes:
    buf = io.BytesIO()
    make_photo(64, 48).save(buf, format="PNG")
    return buf.getvalue()


def test_studio_on_a_full_disk(studio: TestClient, small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("impasto.core.scales")
    real = module.optimize

    def optimize(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        fill(small_disk, ROOM)
        return result

    with monkeypatch.context() as m:
        m.setattr(module, "optimize", optimize)
        first = run_job(studio)  # the disk fills (but for one page) as it runs: its result fits no more
    assert first["state"] == "failed", first
    assert "No space left on device" in first["error"], first
    assert "\n" not in first["error"] and str(small_disk) not in first["error"]  # no server path
    work = small_disk / "work"
    assert sorted(p.name for p in (work / first["id"]).iterdir()) == []  # no result.png, no .part
    assert studio.get(f"/api/jobs/{first['id']}").json()["state"] == "failed"  # the studio goes on from memory
    filler = small_disk / "filler"  # the disk stays full from now on

    folders = sorted(work.iterdir())
    refused = studio.post("/api/jobs", data=JOB)  # the database cannot record it: nothing lost
    assert refused.status_code == 507, (refused.status_code, refused.text)
    assert refused.json()["detail"] == "the studio cannot record the job (database or disk is full)"
    upload = studio.post("/api/jobs", data={**JOB, "content_example": ""},
                         files={"content": ("photo.png", photo_png(), "image/png")})  # fmt: skip
    assert upload.status_code == 507, (upload.status_code, upload.text)  # the upload does not fit
    detail = upload.json()["detail"]
    assert "No space left on device" in detail and "photo.png" in detail and str(small_disk) not in detail, detail
    assert sorted(work.iterdir()) == folders  # their folders are gone again

    filler.unlink()
    done = run_job(studio)
    assert done["state"] == "done"
    image = studio.get(done["image_url"]).content
    assert run_job(studio, content=("photo.png", photo_png(), "image/png"))["state"] == "done"
    assert studio.get(done["image_url"]).content == image  # the earlier result, as it was


def test_studio_out_of_inodes_refuses_a_job_whose_folder_cannot_be_made(narrow_network: None, few_inodes: Path) -> None:
    """No inode left for the job's folder: 507 with one line, before any upload is read; the studio goes on."""
    settings = StudioSettings(workdir=few_inodes / "work", max_size=64, max_steps=20, preview_seconds=0.0)
    with TestClient(create_app(settings)) as client:
        first = run_job(client)
        assert first["state"] == "done", first
        fillers: list[Path] = []
        while True:  # use up every inode left
            try:
                fillers.append(few_inodes / f"filler-{len(fillers)}")
                fillers[-1].touch()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                fillers.pop()
                break
        folders = sorted((few_inodes / "work").iterdir())
        refused = client.post("/api/jobs", data={**JOB, "content_example": ""},
                              files={"content": ("photo.png", photo_png(), "image/png")})  # fmt: skip
        assert refused.status_code == 507, (refused.status_code, refused.text)
        detail = refused.json()["detail"]
        assert detail == "the studio cannot make a folder for the job (No space left on device)", detail
        assert sorted((few_inodes / "work").iterdir()) == folders
        assert client.get(f"/api/jobs/{first['id']}").json()["state"] == "done"
        for filler in fillers:
            filler.unlink()
        assert run_job(client)["state"] == "done"


# --- uploads over 1 MB: spooled to the work folder's disk, not $TMPDIR ------------------------------


def noise_png() -> bytes:
    """A PNG of noise, ~3 MB: over the 1 MB after which an upload is spooled to a file."""
    rng = random.Random(30)
    buf = io.BytesIO()
    Image.frombytes("RGB", (1000, 1000), rng.randbytes(3_000_000)).save(buf, format="PNG", compress_level=0)
    assert len(buf.getvalue()) > 2**20
    return buf.getvalue()


def test_a_large_upload_onto_a_full_work_folder_is_a_507(studio: TestClient, small_disk: Path) -> None:
    """Its spool file goes to the work folder, which is full: one line naming it (before: a 500, two tracebacks)."""
    first = run_job(studio)
    fill(small_disk, ROOM)
    work = small_disk / "work"
    folders = sorted(work.iterdir())
    refused = studio.post("/api/jobs", data={**JOB, "content_example": ""},
                          files={"content": ("big.png", noise_png(), "image/png")})  # fmt: skip
    assert refused.status_code == 507, (refused.status_code, refused.text)
    detail = refused.json()["detail"]
    assert detail == "content image 'big.png': the studio cannot store it (No space left on device)", detail
    assert sorted(work.iterdir()) == folders  # no job folder, no spool file left
    assert studio.get(f"/api/jobs/{first['id']}").json()["state"] == "done"


def test_a_full_tmpdir_does_not_matter_to_uploads(
    narrow_network: None, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$TMPDIR full, the work folder not: a 3 MB upload makes a job (before: a 500 from the spool file)."""
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    fill(small_disk)
    settings = StudioSettings(workdir=tmp_path / "work", max_size=64, max_steps=20, preview_seconds=0.0)
    with TestClient(create_app(settings)) as client:
        status = run_job(client, content=("big.png", noise_png(), "image/png"))
    assert status["state"] == "done", status
