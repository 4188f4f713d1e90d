"""impasto batch --ray on a real local Ray cluster: separate processes started by ``ray start``.

The cluster runs in the foreground (``--block``) so that terminating that one process, which we
started, takes its raylet, GCS and workers down with it; nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray")

from conftest import make_painting, make_photo

from impasto.batch.driver import batch
from impasto.batch.ray_cluster import HOLD_ENV
from impasto.cluster.local import local_cluster
from impasto.image import read_params
from impasto.testing import narrow_vgg

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Ray's own imports
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY: dict[str, Any] = {"size": 64, "steps": 4, "scales": 1}


@pytest.fixture(scope="module")
def hold_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="impasto-hold-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(hold_dir: Path) -> Iterator[str]:
    """A one-node Ray cluster with 2 CPUs on free ports (impasto.cluster.local); its GCS address."""
    with local_cluster(cpus=2, env={HOLD_ENV: f"{hold_dir}:held_paint0.png"}) as address:
        yield address


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    folder = tmp_path_factory.mktemp("ray-inputs")
    photos, paintings = [], []
    for n in range(2):
        make_photo(64, 48, seed=n).save(folder / f"photo{n}.png")
        make_painting(48, 48, seed=n + 5).save(folder / f"paint{n}.png")
        photos.append(folder / f"photo{n}.png")
        paintings.append(folder / f"paint{n}.png")
    return photos, paintings


def _valid(path: Path) -> dict[str, Any]:
    with Image.open(path) as img:
        img.load()
        assert img.size == (64, 48)
    return read_params(path)


def test_four_items_on_a_cluster_match_the_local_run(
    cluster: str, inputs: tuple[list[Path], list[Path]], tmp_path: Path
) -> None:
    photos, paintings = inputs
    net = narrow_vgg("max")
    manifest = batch(photos, paintings, tmp_path / "ray", ray=cluster, network=net, **TINY)
    assert manifest.count("done") == 4, [(e.name, e.reason) for e in manifest.entries.values()]
    events: list[Any] = []
    batch(photos, paintings, tmp_path / "ray", ray=cluster, network=net, on_event=events.append, **TINY)
    assert events[0].skipped == 4 and not any(e.kind == "item_start" for e in events)  # resumes as locally
    local = batch(photos, paintings, tmp_path / "local", network=net, **TINY)
    for e in manifest.entries.values():
        assert e.output is not None and _valid(tmp_path / "ray" / e.output)["steps_done"] == 4
        ray_px = np.asarray(Image.open(tmp_path / "ray" / e.output))
        local_output = local.entries[e.id].output
        assert local_output is not None
        local_px = np.asarray(Image.open(tmp_path / "local" / local_output))
        assert np.abs(ray_px.astype(int) - local_px.astype(int)).max() <= 1


def test_a_killed_worker_is_retried_and_nothing_is_lost(
    cluster: str, inputs: tuple[list[Path], list[Path]], hold_dir: Path, tmp_path: Path
) -> None:
    photos, paintings = inputs
    held = tmp_path / "held.png"  # the item held_paint0.png is the one whose worker holds (HOLD_ENV)
    shutil.copy(photos[0], held)
    out = tmp_path / "out"
    result: dict[str, Any] = {}

    def run() -> None:
        result["manifest"] = batch([held, photos[1]], paintings, out, ray=cluster, network=narrow_vgg("max"), **TINY)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not list(hold_dir.glob("holding-*")):  # the worker says it is inside the item
        assert thread.is_alive() and time.monotonic() < deadline, "no worker took the held item"
        time.sleep(0.05)
    pid = int(next(hold_dir.glob("holding-*")).read_text())
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.02)
    (hold_dir / "release").touch()  # the retry goes on (one already holding too)
    thread.join(timeout=120)
    assert not thread.is_alive()
    manifest = result["manifest"]
    assert manifest.count("done") == 4 and manifest.count("failed") == 0
    for e in manifest.entries.values():
        assert _valid(out / e.output)["steps_done"] == 4
    assert not list(out.glob(".*.part"))  # no half-written file left behind


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
