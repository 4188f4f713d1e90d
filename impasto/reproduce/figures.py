"""The paper's three figures laid out: which panels each has, their rows, labels and notes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image

from ..data import bundled_image
from ..grid import Cell
from ..image import load_image, resize
from .panels import Panels, eq7_ratio

__all__ = ["FIG2_STYLES", "FIG3_STYLE", "FIGURE_PANELS", "LAYOUTS", "RATIOS", "STYLE_SETS", "TITLES", "Layout"]

Layout = tuple[list[list[Cell]], list[str], list[str], str]  # rows, row labels, column labels, a note
STYLE_SETS = [tuple(f"conv{b}_1" for b in range(1, n + 1)) for n in range(1, 6)]
RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)
# (bundled name, caption, α/β of the paper's Fig. 2: 1e-3 for B-D, 1e-4 for E-F)
FIG2_STYLES = (
    ("shipwreck", "The Shipwreck of the Minotaur\nJ. M. W. Turner, 1805", 1e-3),
    ("starry_night", "The Starry Night\nVincent van Gogh, 1889", 1e-3),
    ("the_scream", "The Scream\nEdvard Munch, 1893", 1e-3),
    ("composition_vii", "Composition VII\nWassily Kandinsky, 1913", 1e-4),
)
FIG3_STYLE = "composition_vii"


def _ratio(r: float) -> str:
    """1e-3 -> '1e-3', 1.6e-08 -> '1.6e-8'."""
    return f"{r:.1e}".replace(".0e", "e").replace("e-0", "e-").replace("e+0", "e")


def _load(name: str, size: int) -> Image.Image:
    return resize(load_image(bundled_image(name)), size)


def _layers(layers: Sequence[str]) -> str:
    return layers[0] if len(layers) == 1 else f"{layers[0]} – {layers[-1]}"


def _fig1(run: Panels) -> Layout:
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
    run: Panels, photo: Image.Image, painting: Image.Image, ratio: float, layers: Sequence[str], name: str
) -> Image.Image:
    """α L_content(conv4_2) + β Σ_l E_l / n (eq. 7) with α/β = ``ratio`` (β = 1)."""
    return run.panel(name, photo, painting, ("conv4_2",), layers, ratio)


def _fig2(run: Panels) -> Layout:
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


def _fig3(run: Panels) -> Layout:
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


LAYOUTS: dict[str, Callable[[Panels], Layout]] = {"fig1": _fig1, "fig2": _fig2, "fig3": _fig3}
TITLES = {
    "fig1": "Fig. 1: content and style reconstructions (Gatys et al.)",
    "fig2": "Fig. 2: Tübingen in the style of four paintings",
    "fig3": "Fig. 3: style layers × α/β, Composition VII",
}
FIGURE_PANELS = {"fig1": 10, "fig2": 8, "fig3": 20}
