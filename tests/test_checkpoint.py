"""Checkpoints: a run stopped and started again takes exactly the steps an uninterrupted run takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_painting, make_photo

from impasto import Options
from impasto.config import Optimizer, Precondition, resolve
from impasto.core.checkpoint import Checkpoint, Saved, path_for
from impasto.core.eq7 import Eq7
from impasto.core.optimize import ScaleStep, optimize
from impasto.core.progress import Step, Watch
from impasto.core.transfer import paint
from impasto.inputs import Images
from impasto.testing import narrow_vgg

STYLE = {k: 1.0 for k in ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")}


def _objective() -> tuple[Any, torch.Tensor]:
    torch.manual_seed(0)
    eq = Eq7(narrow_vgg(), {"conv4_2": 1.0}, STYLE, 1.0, 1e3, tv_weight=1e-3)
    photo = torch.rand(1, 3, 40, 48) * 255
    return eq.of(photo, [torch.rand(1, 3, 32, 32) * 255]), torch.rand(1, 3, 40, 48) * 255


@pytest.mark.parametrize(("optimizer", "precondition"), [("lbfgs", "spectral"), ("lbfgs", "none"), ("adam", "none")])
def test_optimize_resumed_from_a_state_takes_the_same_steps(optimizer: Optimizer, precondition: Precondition) -> None:
    objective, init = _objective()
    settings: dict[str, Any] = {
        "optimizer": optimizer,
        "learning_rate": 2.0,
        "lbfgs_history": 3,
        "precondition": precondition,
    }
    straight: list[float] = []
    whole = optimize(objective, init, 9, on_step=lambda s: straight.append(float(s.loss)), **settings)
    states: dict[int, dict[str, Any]] = {}

    def keep(step: int, state: Callable[[], dict[str, Any]]) -> None:
        states[step] = state()

    first = optimize(objective, init, 5, keep=keep, **settings)
    assert first.steps == 5 and sorted(states) == [1, 2, 3, 4, 5]
    after: list[ScaleStep] = []
    resumed = optimize(objective, torch.zeros_like(init), 9, resume=states[5], on_step=after.append, **settings)
    assert [s.step for s in after] == [6, 7, 8, 9]  # no step redone
    assert [float(s.loss) for s in after] == straight[5:]
    assert resumed.steps == 9 and resumed.loss == whole.loss
    assert torch.equal(resumed.image, whole.image)


@pytest.fixture
def pair(tmp_path: Path) -> Images:
    make_photo(64, 48).save(tmp_path / "photo.png")
    make_painting(40, 40).save(tmp_path / "paint.png")
    return Images(tmp_path / "photo.png", [tmp_path / "paint.png"])


OPTS = resolve("default", size=64, steps=12, scales=2, seed=3)


def _run(
    images: Images, checkpoint: Checkpoint | None, stop_after: int = 0, opts: Options = OPTS
) -> tuple[Any, list[Step]]:
    steps: list[Step] = []
    watch = Watch(on_step=steps.append, should_stop=lambda: 0 < stop_after <= len(steps))
    return paint(images, opts, network=narrow_vgg(), watch=watch, checkpoint=checkpoint), steps


@pytest.mark.parametrize("stop_after", [3, 8])  # in the first scale, in the second
def test_a_stopped_run_resumes_and_ends_with_the_same_image(pair: Images, tmp_path: Path, stop_after: int) -> None:
    whole, whole_steps = _run(pair, None)
    ckpt = Checkpoint(path_for(tmp_path / "out.png"), every=2)
    stopped, _ = _run(pair, ckpt, stop_after=stop_after)
    assert stopped.stopped and ckpt.path.exists()  # a stop keeps it
    again = Checkpoint(ckpt.path, every=2)
    resumed, steps = _run(pair, again)
    assert steps[0].step == stop_after - stop_after % 2 + 1  # from the last checkpoint: at most one interval redone
    assert [s.loss for s in steps] == [s.loss for s in whole_steps[steps[0].step - 1 :]]
    assert resumed.steps == whole.steps == 12
    assert np.array_equal(np.asarray(resumed.image), np.asarray(whole.image))
    assert not ckpt.path.exists()  # a finished run removes it


def test_a_checkpoint_of_other_options_is_not_resumed(pair: Images, tmp_path: Path) -> None:
    ckpt = Checkpoint(path_for(tmp_path / "out.png"), every=2)
    _run(pair, ckpt, stop_after=4)
    other = Checkpoint(ckpt.path, every=2)
    phases: list[str] = []
    opts = resolve("default", size=64, steps=12, scales=2, seed=4)
    watch = Watch(on_phase=lambda ph: phases.append(ph.text))
    result = paint(pair, opts, network=narrow_vgg(), watch=watch, checkpoint=other)
    assert result.steps == 12
    assert other.note is not None and "other options or images" in other.note
    assert any("starting afresh" in p for p in phases)


def test_a_damaged_checkpoint_starts_afresh(pair: Images, tmp_path: Path) -> None:
    path = path_for(tmp_path / "out.png")
    path.write_bytes(b"not a checkpoint")
    ckpt = Checkpoint(path, every=2)
    result, steps = _run(pair, ckpt)
    assert steps[0].step == 1 and result.steps == 12
    assert ckpt.note is not None and "could not be read" in ckpt.note
    assert not path.exists()


def test_without_every_it_writes_by_time_and_at_a_scales_end(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path / "c", seconds=3600.0, fingerprint="x")
    assert not ckpt.due(1) and not ckpt.due(None)
    ckpt.seconds = 0.0
    assert ckpt.due(7) and ckpt.due(None)
    ckpt.write(Saved(1, 4, None, None, image=torch.zeros(1, 3, 2, 2)))
    loaded = ckpt.load()
    assert loaded is not None and loaded.scale == 1 and loaded.done == 4
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temporary left beside it
    assert Checkpoint(tmp_path / "c", fingerprint="y").load() is None


def test_path_is_hidden_beside_the_output(tmp_path: Path) -> None:
    assert path_for(tmp_path / "poster.png") == tmp_path / ".poster.png.impasto-checkpoint"
