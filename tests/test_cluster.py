"""One image's tiled steps on a real local Ray cluster (2 worker processes of 1 CPU) equal the local run's."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from conftest import make_painting, make_photo

pytest.importorskip("ray")

from impasto.cluster import ClusterError, RayTiles
from impasto.cluster.local import local_cluster
from impasto.config import resolve
from impasto.core.checkpoint import Checkpoint, path_for
from impasto.core.eq7 import Eq7
from impasto.core.objective import Objective, Upstream
from impasto.core.terms.photoreal import Photorealism
from impasto.core.tile_layout import Tile
from impasto.core.transfer import paint
from impasto.inputs import Images
from impasto.testing import narrow_vgg

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Ray's own imports
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

STYLE = {k: 1.0 for k in ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")}


@pytest.fixture(scope="module")
def runner() -> Iterator[RayTiles]:
    import ray

    with local_cluster(cpus=2) as address:
        tiles = RayTiles(address, workers=2, threads=1)
        yield tiles
        tiles.close()
        ray.shutdown()


def test_loss_and_gradient_on_the_cluster_equal_the_local_tiled_ones(runner: RayTiles) -> None:
    torch.manual_seed(0)
    eq = Eq7(narrow_vgg("avg"), {"conv4_2": 1.0}, STYLE, 1.0, 1e3, tv_weight=1e-3, tile=48)
    photo = torch.rand(1, 3, 112, 136) * 255
    local = eq.of(photo, [torch.rand(1, 3, 64, 64) * 255])
    local = replace(local, terms=[*local.terms, (1e2, Photorealism.of(photo))])  # workers get each tile's cut
    x = (torch.rand(1, 3, 112, 136) * 255).requires_grad_(True)
    assert len(local.tiles(112, 136)) >= 6
    loss, report = local(x)
    loss.backward()
    assert x.grad is not None
    expected = x.grad.clone()
    x.grad = None
    remote_loss, remote_report = replace(local, runner=runner)(x)
    remote_loss.backward()
    assert x.grad is not None
    assert float(remote_loss.detach()) == pytest.approx(float(loss.detach()), rel=1e-5)
    assert set(remote_report) == set(report) and "photorealism" in report
    assert float((x.grad - expected).norm() / expected.norm()) < 1e-5


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Images:
    folder = tmp_path_factory.mktemp("cluster")
    make_photo(128, 96, seed=2).save(folder / "photo.png")
    make_painting(64, 64, seed=3).save(folder / "paint.png")
    return Images(folder / "photo.png", [folder / "paint.png"])


OPTS = resolve("default", size=128, steps=8, scales=1, seed=2, tile=48, precision="fp32")


def _pixels(result: Any) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


@pytest.fixture(scope="module")
def local_image(pair: Images) -> np.ndarray:
    return _pixels(paint(pair, OPTS, network=narrow_vgg()))


def test_steps_on_the_cluster_give_the_local_image(runner: RayTiles, pair: Images, local_image: np.ndarray) -> None:
    result = paint(pair, OPTS, network=narrow_vgg(), runner=runner)
    assert result.steps == 8 and result.params["tile"] == 48
    diff = np.abs(_pixels(result) - local_image)
    assert diff.mean() <= 0.5 and diff.max() <= 4


def test_the_photo_preset_on_the_cluster_gives_the_local_image(runner: RayTiles, pair: Images) -> None:
    """The photorealism term reaches the workers cut to their tiles; the start, projection and
    recolour stay on the driver: the same photograph."""
    opts = resolve("photo", size=128, steps=8, scales=1, seed=2, tile=48, precision="fp32")
    local = paint(pair, opts, network=narrow_vgg())
    remote = paint(pair, opts, network=narrow_vgg(), runner=runner)
    assert remote.params["photorealism"] > 0 and remote.params["tile"] == 48
    diff = np.abs(_pixels(remote) - _pixels(local))
    assert diff.mean() <= 0.5 and diff.max() <= 4


class _KillingOne(RayTiles):
    """Kills one worker (SIGKILL) right after the tasks of the ``at``-th gradient pass were sent."""

    at = 3
    passes = 0
    killed: ClassVar[list[int]] = []

    def gradients(
        self, objective: Objective, crops: Sequence[torch.Tensor], tiles: Sequence[Tile], upstream: Upstream
    ) -> Iterator[torch.Tensor | None]:
        results = super().gradients(objective, crops, tiles, upstream)  # the tasks are sent
        self.passes += 1
        if self.passes == self.at and not self.killed:
            pid = self.pids()[0]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)
        return results


def test_a_worker_killed_mid_step_changes_nothing(pair: Images, local_image: np.ndarray, runner: RayTiles) -> None:
    killing = _KillingOne.__new__(_KillingOne)
    killing.__dict__.update(runner.__dict__)  # the same cluster and actors
    result = paint(pair, OPTS, network=narrow_vgg(), runner=killing)
    assert killing.killed, "no worker was killed"
    assert killing.pids()[0] != killing.killed[0]  # it was restarted
    diff = np.abs(_pixels(result) - local_image)
    assert result.steps == 8 and diff.mean() <= 0.5 and diff.max() <= 4


def test_no_worker_left_is_one_line_and_the_checkpoint_is_kept(pair: Images, runner: RayTiles, tmp_path: Path) -> None:
    gone = RayTiles(runner.address, workers=1)
    gone._start(narrow_vgg())  # the network the run uses is another object: start with this one, then kill it
    for actor in gone.actors:
        gone.ray.kill(actor, no_restart=True)
    gone._start = lambda network: setattr(gone, "_network", network)  # type: ignore[method-assign]
    ckpt = Checkpoint(path_for(tmp_path / "out.png"), every=1)
    ckpt.path.write_bytes(b"kept")  # what the run had written before (another run's: it starts afresh)
    with pytest.raises(ClusterError, match="the Ray cluster could not finish a step") as err:
        paint(pair, OPTS, network=narrow_vgg(), runner=gone, checkpoint=ckpt)
    assert "\n" not in str(err.value)
    assert ckpt.path.exists()
