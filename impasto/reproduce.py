"""``impasto reproduce FIGURE``: the figures of Gatys, Ecker & Bethge (arXiv 1508.06576), regenerated.

- ``fig1``: content reconstructions of the Tübingen photo from single layers (conv1_1 … conv5_1),
  style reconstructions of The Starry Night from growing layer sets (conv1_1; conv1_1+conv2_1; …).
- ``fig2``: the Tübingen photo in the styles of four paintings, with the paper's α/β (1e-3, and
  1e-4 for Composition VII, the paper's panel F).
- ``fig3``: style layers used (rows) × α/β ∈ {1e-5, 1e-4, 1e-3, 1e-2} (columns), Composition VII.

Everything follows the paper's Methods: the normalised VGG19 (:mod:`impasto.normalize`), average
pooling, L-BFGS from white noise, content on conv4_2, style weights w_l = 1/(number of style layers).
Each figure is one labelled grid PNG (``DIR/figN.png``); its panels are saved next to it, as
``DIR/figN-01-<panel>.png`` …. ``DIR`` is made if missing, but never its parents: the rule of
every command (a mistyped parent is an error, not a tree of new folders).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from .config import Options
from .core.schedule import clock
from .core.transfer import transfer
from .data import bundled_image
from .errors import ConfigError, did_you_mean, register_fields
from .grid import Cell, make_grid
from .image import check_output_path, load_image, output_folder, resize, save_image
from .net.network import resolve_device
from .net.vgg import VGG19

__all__ = ["FIGURES", "default_settings", "eq7_ratio", "make_grid", "reproduce"]

register_fields("size", "steps")  # the parameters its errors name (errors.py)

Log = Callable[[str], None]
FIGURES = ("fig1", "fig2", "fig3")
MIN_SIZE = 32  # conv5_1 needs 16 px on the short side; the most elongated painting is 0.69:1
STYLE_SETS = [tuple(f"conv{b}_1" for b in range(1, n + 1)) for n in range(1, 6)]
RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)
# (bundled name, caption, α/β of the paper's Fig. 2: 1e-3 for B-D, 1e-4 for E-F)
FIG2_STYLES = (
    ("shipwreck", "The Shipwreck of the Minotaur\nJ. M. W. Turner, 1805", 1e-3),
    ("starry_night", "The Starry Night\nVincent van Gogh, 1889", 1e-3),
    ("the_scream", "The Scream\nEdvard Munch, 1893", 1e-3),
    ("composition_vii", "Composition VII\nWassily Kandinsky, 1913", 1e-4),
)
# The paper's α/β, put into its own eq. 1-7 with the normalised network, weigh content about 10^3
# times more than its figures show (measured; see docs/paper.md, which also cites the weights of the
# authors' and others' code). Figures 2 (bottom row) and 3 therefore give eq. 7
#     α/β = paper's α/β × PAPER_SCALE × (PAPER_SIDE / size)²,
# where the size factor keeps the balance when the panel size changes: L_content (eq. 1) sums over
# the M_l positions, while E_l (eq. 4) is normalised by M_l², so α must scale as 1 / M_l.
PAPER_SCALE = 1e-4
PAPER_SIDE = 512
FIG3_STYLE = "composition_vii"
# (longest panel side, L-BFGS steps): on a CPU each figure takes under 20 minutes on 2 cores
# (measured figures in docs/paper.md); on a GPU the paper's size.
# The paper's Methods: the normalised VGG19, average pooling, one scale, L-BFGS from white noise, eq. 7's
# literal alpha and beta (no style strength), fp32 (the figures were measured so).
PAPER_METHODS = Options(
    network="normalized", pooling="avg", scales=1, init="noise", style_strength=None, tv_weight=0.0, precision="fp32"
)
_CPU_DEFAULTS = {"fig1": (160, 200), "fig2": (160, 200), "fig3": (128, 150)}
_GPU_DEFAULTS = {"fig1": (512, 500), "fig2": (512, 500), "fig3": (512, 500)}


def default_settings(figure: str, device: str | torch.device = "cpu") -> tuple[int, int]:
    """(size, steps) used when not given: small on a CPU, the paper's 512 px on CUDA or MPS."""
    kind = torch.device(device).type
    return (_GPU_DEFAULTS if kind in ("cuda", "mps") else _CPU_DEFAULTS)[_check_figure(figure)]


def _check_figure(figure: str) -> str:
    name = figure.strip().lower()
    if name not in FIGURES:
        raise ConfigError(f"unknown figure '{figure}'{did_you_mean(figure, FIGURES)}")
    return name


def _ratio(r: float) -> str:
    """1e-3 -> '1e-3', 1.6e-08 -> '1.6e-8'."""
    return f"{r:.1e}".replace(".0e", "e").replace("e-0", "e-").replace("e+0", "e")


def eq7_ratio(paper_ratio: float, size: int) -> float:
    """The α/β given to eq. 7 for one of the paper's α/β at panels of ``size`` px (see PAPER_SCALE)."""
    return paper_ratio * PAPER_SCALE * (PAPER_SIDE / size) ** 2


# --- panels --------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What every panel of one figure shares: sizes, steps, device, progress output."""

    figure: str
    size: int
    steps: int
    device: torch.device
    log: Log
    out_dir: Path
    total: int
    done: int = 0
    seed: int = 0
    network: VGG19 | None = None  # None: the normalised VGG19 of PAPER_METHODS

    def panel(
        self,
        name: str,
        image: Image.Image,
        style: Image.Image,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        alpha: float,
        beta: float = 1.0,
    ) -> Image.Image:
        """One panel: :func:`impasto.transfer` with the paper's Methods and eq. 7's literal α and β.

        ``image`` (the photo, or the painting for a style reconstruction) sets the panel's size;
        ``content_layers`` (weight 1 each) and ``style_layers`` (w_l = 1/their number) may be empty.
        Saves and returns the panel.
        """
        self.done += 1
        start = time.perf_counter()
        self.log(
            f"{self.figure} panel {self.done}/{self.total}: {name} ({image.width}x{image.height}, {self.steps} steps)"
        )
        opts = replace(
            PAPER_METHODS,
            size=max(image.size),
            steps=self.steps,
            seed=self.seed,
            device=str(self.device),
            content_layers=tuple((layer, 1.0) for layer in content_layers),
            style_layers=tuple((layer, 1.0 / len(style_layers)) for layer in style_layers),
            content_weight=alpha,
            style_weight=beta,
        )
        first: list[float] = []
        result = transfer(
            image, [style], opts, network=self.network, on_step=lambda s: first.append(s.loss) if not first else None
        )
        if result.interrupted:
            raise KeyboardInterrupt
        params = {"figure": self.figure, "panel": name, "steps": self.steps, "loss": result.loss}
        params["initial_loss"] = first[0] if first else result.loss
        save_image(result.image, self.out_dir / f"{self.figure}-{self.done:02d}-{_slug(name)}.png", params)
        self.log(
            f"  done in {time.perf_counter() - start:.1f} s, loss {params['initial_loss']:.4g} -> {result.loss:.4g}"
        )
        return result.image


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def _load(name: str, size: int) -> Image.Image:
    return resize(load_image(bundled_image(name)), size)


def _layers(layers: Sequence[str]) -> str:
    return layers[0] if len(layers) == 1 else f"{layers[0]} – {layers[-1]}"


def _fig1(run: _Run) -> tuple[list[list[Cell]], list[str], list[str], str]:
    photo = _load("tubingen", run.size)
    painting = _load("starry_night", run.size)
    style_row = [Cell(painting, "The Starry Night (input)")]
    for layers in STYLE_SETS:
        label = "conv1_1" if len(layers) == 1 else f"conv1_1 … conv{len(layers)}_1"
        style_row.append(Cell(run.panel(f"style {label}", painting, painting, (), layers, 0.0), label))
    content_row = [Cell(photo, "Tübingen (input)")]
    for b in range(1, 6):
        layer = f"conv{b}_1"
        content_row.append(Cell(run.panel(f"content {layer}", photo, photo, (layer,), (), 1.0, 0.0), layer))
    rows = [style_row, content_row]
    labels = ["Style\nreconstructions", "Content\nreconstructions"]
    note = (
        "Style: white noise optimised to match the Gram matrices of the listed layers (w_l = 1/number of layers). "
        "Content: white noise optimised to match one layer's responses."
    )
    return rows, labels, [], note


def _stylise(
    run: _Run, photo: Image.Image, painting: Image.Image, ratio: float, layers: Sequence[str], name: str
) -> Image.Image:
    """α L_content(conv4_2) + β Σ_l E_l / n (eq. 7) with α/β = ``ratio`` (β = 1)."""
    return run.panel(name, photo, painting, ("conv4_2",), layers, ratio)


def _fig2(run: _Run) -> tuple[list[list[Cell]], list[str], list[str], str]:
    """Row 1: the inputs. Row 2: the paper's α/β put into eq. 7 as printed. Row 3: rescaled."""
    photo = _load("tubingen", run.size)
    inputs = [Cell(photo, "Tübingen\n(photo: A. Praefcke)")]
    literal = [Cell(None, "content conv4_2\nstyle conv1_1 … conv5_1\nw_l = 1/5")]
    rescaled = [Cell(None, "eq. 7 α/β =\npaper's α/β\n× 1e-4 × (512 / size)²")]
    paintings = []
    for name, caption, ratio in FIG2_STYLES:
        painting = _load(name, run.size)
        # the paper resizes the painting to the photo's size; keep its aspect, match the longest side
        inputs.append(Cell(painting, caption))
        paintings.append(painting)
        img = _stylise(run, photo, painting, ratio, STYLE_SETS[-1], f"{name} ratio {_ratio(ratio)}")
        literal.append(Cell(img, f"α/β = {_ratio(ratio)}"))
    for (name, _caption, ratio), painting in zip(FIG2_STYLES, paintings, strict=True):
        eq7 = eq7_ratio(ratio, run.size)
        img = _stylise(run, photo, painting, eq7, STYLE_SETS[-1], f"{name} ratio {_ratio(eq7)}")
        rescaled.append(Cell(img, f"paper {_ratio(ratio)} → {_ratio(eq7)}"))
    note = (
        "Content conv4_2; style conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 with w_l = 1/5. Put into the paper's "
        "own eq. 1-7 with the normalised network, its α/β weigh content far more than its figures show "
        "(middle row); the bottom row rescales them (docs/paper.md)."
    )
    labels = ["Inputs", "Paper's α/β\nas printed", "Paper's α/β\nrescaled"]
    return [inputs, literal, rescaled], labels, [], note


def _fig3(run: _Run) -> tuple[list[list[Cell]], list[str], list[str], str]:
    photo = _load("tubingen", run.size)
    painting = _load(FIG3_STYLE, run.size)
    rows = []
    for i, layers in enumerate(STYLE_SETS):
        first = [Cell(photo, "Tübingen"), Cell(painting, "Composition VII")]
        row = [first[i] if i < 2 else Cell(None)]
        for ratio in RATIOS:
            eq7 = eq7_ratio(ratio, run.size)
            row.append(Cell(_stylise(run, photo, painting, eq7, layers, f"{_layers(layers)} ratio {_ratio(eq7)}")))
        rows.append(row)
    row_labels = [_layers(layers) for layers in STYLE_SETS]
    col_labels = ["Inputs", *(f"α/β = {_ratio(r)}\n(eq. 7: {_ratio(eq7_ratio(r, run.size))})" for r in RATIOS)]
    note = (
        "Rows: style layers matched (w_l = 1/number of layers). Columns: the paper's α/β, and the α/β given to "
        "eq. 7: the paper's × 1e-4 × (512 / size)² (docs/paper.md). Content conv4_2."
    )
    return rows, row_labels, col_labels, note


_FIGURE_FUNCS = {"fig1": _fig1, "fig2": _fig2, "fig3": _fig3}
_TITLES = {
    "fig1": "Fig. 1: content and style reconstructions (Gatys et al.)",
    "fig2": "Fig. 2: Tübingen in the style of four paintings",
    "fig3": "Fig. 3: style layers × α/β, Composition VII",
}
_PANELS = {"fig1": 10, "fig2": 8, "fig3": 20}


def reproduce(
    figure: str,
    output_dir: str | Path,
    *,
    size: int | None = None,
    steps: int | None = None,
    device: str = "auto",
    log: Log | None = None,
    network: VGG19 | None = None,
) -> Path:
    """Regenerate ``figure`` (fig1, fig2 or fig3) into ``output_dir``; return the grid's path.

    ``size`` is each panel's longest side and ``steps`` its L-BFGS steps; by default they suit the
    device (:func:`default_settings`). ``network`` replaces the normalised VGG19 (e.g. the stand-in
    of :mod:`impasto.testing`). Ctrl-C saves the panels made so far, then re-raises.
    """
    name = _check_figure(figure)
    dev = resolve_device(device)
    default_size, default_steps = default_settings(name, dev)
    size = default_size if size is None else size
    steps = default_steps if steps is None else steps
    if size < MIN_SIZE:
        raise ConfigError(f"`size` must be at least {MIN_SIZE} px (conv5_1 is 16x smaller), got {size}")
    if steps < 1:
        raise ConfigError(f"`steps` must be at least 1, got {steps}")
    out = output_folder(output_dir)  # created if missing, when its parent exists
    check_output_path(out / f"{name}.png")  # writable, before any work
    log = log or (lambda _line: None)
    run = _Run(name, size, steps, dev, log, out, total=_PANELS[name], network=network)
    start, cpu0 = time.perf_counter(), time.process_time()
    log(f"{name}: {run.total} panels at {size} px, {steps} L-BFGS steps each, on {dev}")
    rows, row_labels, col_labels, note = _FIGURE_FUNCS[name](run)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    footer = (
        f"{note} Normalised VGG19, average pooling, L-BFGS from white noise; {size} px, {steps} steps per panel; "
        f"made by impasto reproduce {name} on {dev} in {clock(seconds)}."
    )
    grid = make_grid(rows, _TITLES[name], row_labels, col_labels, footer, cell_size=size)
    params = {
        "figure": name,
        "size": size,
        "steps": steps,
        "device": str(dev),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
    }
    path = save_image(grid, out / f"{name}.png", params)
    log(f"{name}: done in {clock(seconds)} ({cpu:.0f} CPU-seconds)")
    return path
