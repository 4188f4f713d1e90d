"""Options, presets and layer lists: resolution, overrides, validation with helpful errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from impasto import PRESETS, ConfigError, Options, resolve
from impasto.config import DEMO_OPTIONS, PAPER_STYLE_LAYERS, parse_layers


def test_the_paper_presets_values_written_out() -> None:
    """The expected values are literals: PRESETS is the data under test, not the reference."""
    opts = resolve("paper")
    assert isinstance(opts, Options)
    assert (opts.scales, opts.steps, opts.init, opts.pooling) == (1, 500, "noise", "avg")
    assert (opts.style_strength, opts.tv_weight, opts.precondition) == (None, 0.0, "none")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_lists_only_what_differs_from_the_defaults(preset: str) -> None:
    opts = resolve(preset)
    for key in PRESETS[preset]:
        assert getattr(opts, key) != getattr(Options(), key), key


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_overrides_apply_on_top_of_a_preset(preset: str) -> None:
    opts = resolve(
        preset, size=123, steps=7, seed=42, optimizer="adam", pooling="max", style_layers="conv1_1:0.5 relu2_1"
    )
    assert (opts.size, opts.steps, opts.seed, opts.optimizer, opts.pooling) == (123, 7, 42, "adam", "max")
    assert opts.style_layers == (("conv1_1", 0.5), ("conv2_1", 0.5))


def test_none_keeps_the_presets_value() -> None:
    base = resolve("paper")
    assert resolve("paper", steps=None, size=None, ratio=None) == base


# The default preset's effective values, written out: a change to any default shows up here (and in
# docs/presets.md, `impasto presets`, the PNG parameters of every output), so it must be meant.
DEFAULT_VALUES: dict[str, object] = {
    "size": 512,
    "print": None,
    "dpi": 300,
    "style_size": None,
    "steps": 300,
    "scales": 3,
    "scale_sizes": None,
    "max_time": None,
    "content_layers": (("conv4_2", 1.0),),
    "style_layers": PAPER_STYLE_LAYERS,
    "style_loss": "gram",
    "ratio": 1e-3,
    "style_strength": 6.0,
    "style_weight": 1.0,
    "content_weight": None,
    "init": "content",
    "optimizer": "lbfgs",
    "learning_rate": 2.0,
    "lbfgs_history": 100,
    "precondition": "spectral",
    "tile": None,
    "max_memory": None,
    "pooling": "max",
    "photorealism": 0.0,
    "photo_projection": False,
    "photo_recolor": False,
    "tv_weight": 0.01,
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "network": "raw",
    "weights": None,
    "weights_format": "auto",
    "color": "none",
    "color_match": "sym",
    "original_colors": False,
    "style_blend": None,
    "style_scale": 1.0,
    "init_noise_blend": 0.0,
    "layer_balance": False,
    "quality": 95,
}
# What the paper preset changes, and to what (Gatys et al. 2016 as published).
PAPER_CHANGES: dict[str, object] = {
    "scales": 1,
    "steps": 500,
    "init": "noise",
    "pooling": "avg",
    "style_strength": None,
    "tv_weight": 0.0,
    "precondition": "none",  # L-BFGS on the pixels
}


def test_options_is_the_default_preset_field_by_field() -> None:
    default, given = Options(), resolve("default")
    assert [f.name for f in dataclasses.fields(Options)] == list(DEFAULT_VALUES)
    for name, value in DEFAULT_VALUES.items():
        assert getattr(default, name) == value, name
        assert getattr(given, name) == value, name
    assert PRESETS["default"] == {}


def test_the_paper_presets_effective_values() -> None:
    paper = resolve("paper")
    assert PRESETS["paper"] == PAPER_CHANGES
    for name, value in (DEFAULT_VALUES | PAPER_CHANGES).items():
        assert getattr(paper, name) == value, name


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_lists_only_what_differs_from_options(preset: str) -> None:
    fields = {f.name for f in dataclasses.fields(Options)}
    for name in PRESETS[preset]:
        assert name in fields, name
        assert getattr(resolve(preset), name) != getattr(Options(), name), f"{preset}: {name} is Options' default"


def test_the_demo_options_sit_on_the_default_preset() -> None:
    demo = resolve("default", **DEMO_OPTIONS)
    assert (demo.size, demo.steps, demo.max_time) == (384, 300, 110.0)  # under 2 minutes on 2 cores
    assert dataclasses.replace(demo, size=512, max_time=None) == Options()  # nothing else differs


def test_the_lower_levels_take_the_options_defaults_and_repeat_none() -> None:
    """Options holds every default: the functions below it take the value, with no default of their own."""
    import inspect

    from impasto.core.color import match_color
    from impasto.core.optimize import optimize
    from impasto.net.network import get_vgg
    from impasto.net.vgg import VGG19, load_vgg19
    from impasto.testing import narrow_vgg

    def default(func: Callable[..., object], name: str) -> object:
        return inspect.signature(func).parameters[name].default

    empty = inspect.Parameter.empty
    assert default(load_vgg19, "pooling") is empty and default(VGG19, "pooling") is empty
    for name in ("optimizer", "learning_rate", "lbfgs_history", "precondition"):
        assert default(optimize, name) is empty, name
    assert default(match_color, "method") is empty
    assert default(get_vgg.__wrapped__, "network") is empty
    assert default(narrow_vgg, "pooling") == Options().pooling  # the test double follows the options


def test_the_paper_preset_is_the_paper() -> None:
    opts = resolve("paper")
    assert opts.content_layers == (("conv4_2", 1.0),)
    assert opts.style_layers == PAPER_STYLE_LAYERS == tuple((f"conv{b}_1", 0.2) for b in range(1, 6))
    assert (opts.optimizer, opts.pooling, opts.init, opts.scales) == ("lbfgs", "avg", "noise", 1)
    assert opts.precondition == "none"  # the paper's L-BFGS runs on the pixels


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'papr'.*did you mean 'paper'"):
        resolve("papr")


def test_unknown_option_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'stpes'.*did you mean 'steps'"):
        resolve("paper", stpes=3)


def test_alpha_and_beta() -> None:
    assert resolve("paper", ratio=1e-3, style_weight=5.0).alpha == pytest.approx(5e-3)
    opts = resolve("paper", ratio=1e-3, style_weight=5.0, content_weight=2.0)
    assert (opts.alpha, opts.beta) == (2.0, 5.0)


def test_to_dict_is_json_friendly() -> None:
    opts = resolve("paper", content_layers="conv4_2", style_layers="conv1_1:0.25,conv2_1:0.75", size=64)
    d = opts.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(Options)}
    assert d["content_layers"] == ["conv4_2:1"]
    assert d["style_layers"] == ["conv1_1:0.25", "conv2_1:0.75"]
    assert d["size"] == 64
    assert json.loads(json.dumps(d)) == d


# --- layer lists --------------------------------------------------------------------------------


def test_parse_layers_default_weight_is_one_over_count() -> None:
    assert parse_layers("conv1_1 conv2_1 conv3_1 conv4_1") == tuple((f"conv{b}_1", 0.25) for b in range(1, 5))


def test_parse_layers_forms() -> None:
    expected = (("conv1_1", 0.1), ("conv2_1", 2.0), ("pool3", 0.5))
    assert parse_layers("conv1_1:0.1,conv2_1:2 pool3") == (("conv1_1", 0.1), ("conv2_1", 2.0), ("pool3", 1 / 3))
    assert parse_layers(["relu1_1:0.1", "conv2_1:2", "pool3:0.5"]) == expected
    assert parse_layers([("conv1_1", 0.1), ["relu2_1", 2], ("pool3", "0.5")]) == expected
    assert parse_layers("conv4_2", default_weight=1.0) == (("conv4_2", 1.0),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "cannot be empty"),
        ([], "cannot be empty"),
        ("conv1_1:x", "'x' of conv1_1 is not a number"),
        ("conv1_1:-1", "must be >= 0"),
        ("conv9_1", "unknown layer 'conv9_1'"),
        ("cnv4_2", "did you mean 'conv4_2'"),
    ],
)
def test_parse_layers_refusals(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_layers(spec)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"size": 0}, "size must be a positive"),
        ({"size": -5}, "size must be a positive"),
        ({"style_size": 0}, "style_size must be a positive"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"scales": 0}, "scales must be >= 1"),
        ({"ratio": -1e-3}, "ratio must be >= 0"),
        ({"style_weight": -1.0}, "style_weight must be >= 0"),
        ({"content_weight": -1.0}, "content_weight must be >= 0"),
        ({"tv_weight": -0.1}, "tv_weight must be >= 0"),
        ({"learning_rate": -2.0}, "learning_rate must be >= 0"),
        ({"lbfgs_history": 0}, "lbfgs_history must be >= 1"),
        ({"optimizer": "lbgfs"}, "unknown optimizer 'lbgfs'.*did you mean 'lbfgs'"),
        ({"pooling": "average"}, "unknown pooling 'average'"),
        ({"precision": "fp16"}, "unknown precision 'fp16'"),
        ({"weights_format": "tv"}, "unknown weights format 'tv'"),
        ({"style_layers": "conv1_1 conv6_1"}, "unknown layer 'conv6_1'"),
    ],
)
def test_invalid_values_are_config_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve("paper", **overrides)


def test_zero_steps_is_valid() -> None:
    assert resolve("paper", steps=0).steps == 0


def test_options_are_frozen() -> None:
    opts = resolve("paper")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.size = 3  # type: ignore[misc]
