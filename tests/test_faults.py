"""Faults during a run: NaN and inf in the loss or gradient, out of memory, a full disk while saving.

Each fault is made by a stand-in (a forward hook that turns the network's features into NaN after
a few steps, an optimiser that raises CUDA's out-of-memory error, a file whose writes raise ENOSPC),
so the tests run on any machine. What must hold: one line that says what happened (CLI: exit code
and stderr; web: the job's error), the best finite image kept where there is one, no NaN image
and no partial file saved, a previous output left intact, the studio able to run the next job.
"""

from __future__ import annotations

import errno
import importlib
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_painting, make_photo, manager_of
from fastapi.testclient import TestClient
from PIL import Image

from impasto import cli, resolve, save_image, transfer
from impasto.core.terms import Features, LocalTerm, Where
from impasto.core.transfer import Extra
from impasto.errors import InputError, NumericalError
from impasto.net.network import Loader, network_loader
from impasto.net.vgg import VGG19
from impasto.testing import narrow_vgg
from impasto.web.server import create_app
from impasto.web.settings import StudioSettings

TINY: dict[str, Any] = {"size": 64, "steps": 8, "scales": 1, "seed": 0}


def _calls_before_the_first_step() -> int:
    """How many forward passes a tiny run makes before its first step (targets, balance, loss scale)."""
    net, calls, marks = narrow_vgg(), [0], []
    net.register_forward_hook(lambda module, args, out: calls.__setitem__(0, calls[0] + 1))
    transfer(make_photo(64, 48), [make_painting(48, 48)], resolve(**TINY), network=net,
             on_step=lambda s: marks.append(calls[0]))  # fmt: skip
    return marks[0] - 1


BEFORE_STEPS = _calls_before_the_first_step()


def poisoned(step: int, value: float = math.nan) -> VGG19:
    """The narrow stand-in whose features become ``value`` from the evaluation of ``step`` on
    (``step=0``: from its first forward pass, as with bad weights)."""
    net = narrow_vgg()
    calls = [0]

    def hook(module: torch.nn.Module, args: Any, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        calls[0] += 1
        return {k: v * value for k, v in out.items()} if step == 0 or calls[0] >= BEFORE_STEPS + step else None

    net.register_forward_hook(hook)
    return net


def finite_rgb(img: Image.Image) -> bool:
    return img.mode == "RGB" and bool(np.isfinite(np.asarray(img, dtype=np.float64)).all())


# --- NaN and inf in the library -------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_loss_that_turns_nan_mid_run_stops_and_keeps_the_best_image(value: float) -> None:
    opts = resolve(**TINY)
    seen: list[float] = []
    result = transfer(make_photo(64, 48), [make_painting(48, 48)], opts, network=poisoned(3, value),
                      on_step=lambda s: seen.append(s.loss))  # fmt: skip
    assert result.fault is not None and "\n" not in result.fault
    assert "the loss became" in result.fault and "at step 3" in result.fault, result.fault
    assert len(seen) == 2 and all(math.isfinite(x) for x in seen)  # no event carries the NaN step
    assert math.isfinite(result.loss) and result.loss == pytest.approx(min(seen), rel=1e-6)
    assert finite_rgb(result.image)


def test_a_gradient_that_turns_nan_is_caught_too() -> None:
    opts = resolve(**TINY)
    calls = [0]

    class Turning(LocalTerm):
        name = "turning"

        def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
            calls[0] += 1  # finite value; from the fourth call on an infinite gradient (d sqrt(x) at 0)
            return torch.sqrt((pixels - pixels.detach()).abs()).sum() if calls[0] >= 4 else pixels.sum() * 0

    extra = [Extra(1.0, Turning())]
    result = transfer(make_photo(64, 48), [make_painting(48, 48)], opts, network=narrow_vgg(), extra=extra)
    assert result.fault is not None and "gradient" in result.fault, result.fault
    assert math.isfinite(result.loss) and finite_rgb(result.image)


def test_a_loss_that_is_never_finite_is_one_error_and_no_image() -> None:
    with pytest.raises(NumericalError, match="before any finite image") as info:
        transfer(make_photo(64, 48), [make_painting(48, 48)], resolve(**TINY), network=poisoned(0))
    assert "\n" not in str(info.value) and "style_weight" in str(info.value)


def test_a_normal_run_has_no_fault() -> None:
    result = transfer(make_photo(64, 48), [make_painting(48, 48)], resolve(**TINY), network=narrow_vgg())
    assert result.fault is None and result.steps == TINY["steps"]


# --- NaN, inf and out of memory at the command line ------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    make_photo(64, 48).save(tmp_path / "photo.png")
    make_painting(48, 48).save(tmp_path / "painting.png")
    return tmp_path / "photo.png", tmp_path / "painting.png"


def stylize(files: tuple[Path, Path], out: Path, *flags: str) -> list[str]:
    args = ["stylize", str(files[0]), str(files[1]), "-o", str(out), "--size", "64", "--steps", "8", "--scales", "1"]
    return [*args, "--quiet", *flags]


def network_is(use_network: Callable[[Loader], None], net: VGG19) -> None:
    use_network(lambda *a, **k: net)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_nan_mid_run_saves_the_best_image_and_says_so(
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_network: Callable[[Loader], None],
) -> None:
    network_is(use_network, poisoned(3))
    out = tmp_path / "out.png"
    assert cli.main(stylize(files, out)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "the loss became nan at step 3" in line and "saved the best image" in line, line
    with Image.open(out) as img:
        assert finite_rgb(img.convert("RGB"))
    assert not list(tmp_path.glob(".out.png*"))


def test_cli_an_extreme_weight_is_one_line_and_no_file(
    narrow_network: None, files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    assert cli.main(stylize(files, out, "--style-weight", "1e308", "--ratio", "1e-3")) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "the loss became" in line and "at step 1" in line and "--style-weight" in line, line
    assert not out.exists()


def test_cli_bad_weights_are_one_line_and_no_file(
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_network: Callable[[Loader], None],
) -> None:
    network_is(use_network, poisoned(0))
    out = tmp_path / "out.png"
    assert cli.main(stylize(files, out)) == 1
    assert "before any finite image" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def cuda_oom(*args: Any, **kwargs: Any) -> Any:
    raise torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which "
        "1.06 GiB is free.\nIncluding non-PyTorch memory, this process has 78.08 GiB memory in use."
    )


def test_cli_cuda_out_of_memory_is_one_line_suggesting_a_smaller_size_or_tiles(
    narrow_network: None,
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(importlib.import_module("impasto.core.scales"), "optimize", cuda_oom)
    out = tmp_path / "out.png"
    assert cli.main(stylize(files, out)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "out of memory" in line and "Tried to allocate 2.00 GiB" in line and "79.15" not in line, line
    assert "--size" in line and "--tile" in line, line
    assert not out.exists()


# --- a full disk while saving ----------------------------------------------------------------------


class _FullDisk(io.RawIOBase):
    """A file whose writes fail as on a full disk, after the first ``room`` bytes."""

    def __init__(self, fd: int, room: int) -> None:
        self.fh = open(fd, "wb", closefd=True)  # noqa: SIM115 - closed by close()
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if len(data) > self.room:
            self.fh.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every image impasto writes fails with ENOSPC after 100 bytes (a partial file is on disk then)."""
    monkeypatch.setattr("impasto.image.save.os.fdopen", lambda fd, mode: _FullDisk(fd, 100))


def test_save_on_a_full_disk_is_one_error_no_partial_file_previous_intact(tmp_path: Path, full_disk: None) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous output")
    with pytest.raises(InputError, match="No space left on device") as info:
        save_image(make_photo(64, 48), out, {"a": 1})
    assert "\n" not in str(info.value) and str(out) in str(info.value)
    assert out.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.parametrize("previous", [True, False])
def test_cli_output_on_a_full_disk(
    narrow_network: None,
    files: tuple[Path, Path],
    tmp_path: Path,
    full_disk: None,
    capsys: pytest.CaptureFixture[str],
    previous: bool,
) -> None:
    out = tmp_path / "out.png"
    if previous:
        out.write_bytes(b"the previous output")
    assert cli.main(stylize(files, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and str(out) in line, line
    assert (out.read_bytes() == b"the previous output") if previous else not out.exists()
    assert not list(tmp_path.glob(".out.png*"))


# --- the studio: a full disk, out of memory, NaN ---------------------------------------------------


@pytest.fixture
def studio(tmp_path: Path, narrow_network: None) -> Iterator[TestClient]:
    settings = StudioSettings(workdir=tmp_path / "work", max_size=128, max_steps=20, preview_seconds=0.0)
    with TestClient(create_app(settings)) as client:
        yield client


def run_job(client: TestClient) -> dict[str, Any]:
    data = {"content_example": "tubingen", "style_example": "starry_night", "size": "64", "steps": "3", "scales": "1"}
    created = client.post("/api/jobs", data=data)
    assert created.status_code == 201, created.text
    manager = manager_of(client)
    job = manager.get(created.json()["id"])
    assert job is not None
    assert manager.wait(lambda: job.state.value in ("done", "failed", "cancelled"), 120)
    status: dict[str, Any] = client.get(f"/api/jobs/{job.id}").json()
    return status


def test_studio_job_on_a_full_disk_fails_in_one_line_and_the_next_job_runs(
    studio: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr("impasto.image.save.os.fdopen", lambda fd, mode: _FullDisk(fd, 100))
        failed = run_job(studio)
    assert failed["state"] == "failed" and "No space left on device" in failed["error"], failed
    assert "\n" not in failed["error"] and "/work/" not in failed["error"]  # no server path either
    folder = manager_of(studio).root / failed["id"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name == "result.png"]
    assert run_job(studio)["state"] == "done"


def test_studio_cuda_out_of_memory_fails_the_job_in_one_line_and_the_next_job_runs(
    studio: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(importlib.import_module("impasto.core.scales"), "optimize", cuda_oom)
        failed = run_job(studio)
    assert failed["state"] == "failed", failed
    assert failed["error"].startswith("out of memory (CUDA out of memory") and "\n" not in failed["error"]
    assert "smaller size" in failed["error"] and "tile" in failed["error"]
    assert run_job(studio)["state"] == "done"


def test_studio_nan_mid_run_fails_the_job_and_keeps_the_best_image(
    studio: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with network_loader(lambda *a, **k: poisoned(3)):
        failed = run_job(studio)
    assert failed["state"] == "failed" and "the loss became nan" in failed["error"], failed
    assert failed["has_image"]
    image = studio.get(failed["image_url"])
    assert image.status_code == 200
    assert finite_rgb(Image.open(io.BytesIO(image.content)).convert("RGB"))


# --- the studio's limits as serve flags ------------------------------------------------------------


def test_every_studio_setting_is_a_serve_flag_over_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    import impasto.web.server

    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(StudioSettings):
        assert "--" + f.name.replace("_", "-") in text and "IMPASTO_STUDIO_" + f.name.upper() in text, f.name
    seen: list[StudioSettings | None] = []
    monkeypatch.setattr(impasto.web.server, "serve", lambda host, port, settings, announce: seen.append(settings))
    monkeypatch.setenv("IMPASTO_STUDIO_MAX_SIZE", "300")
    monkeypatch.setenv("IMPASTO_STUDIO_MAX_STEPS", "40")
    assert cli.main(["serve", "--max-size", "200", "--upload-seconds", "5", "--allowed-hosts", "a, b"]) == 0
    settings = seen[-1]
    assert settings is not None and settings.max_size == 200 and settings.max_steps == 40  # the flag wins
    assert settings.upload_seconds == 5.0 and settings.allowed_hosts == ("a", "b")
    assert cli.main(["serve", "--max-queued", "-1"]) == 2
    assert "max_queued must be >= 0" in capsys.readouterr().err


def test_weights_that_cannot_be_read_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of file descriptors (a flood of connections) the first job said 'not a PyTorch weights file'."""
    from impasto.net.vgg import load_vgg19

    weights = tmp_path / "vgg19.pth"
    weights.write_bytes(b"any")

    def out_of_files(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(torch, "load", out_of_files)
    with pytest.raises(InputError) as caught:
        load_vgg19(weights, pooling="max")
    assert str(caught.value) == f"{weights}: cannot read the weights (Too many open files)"
