"""``impasto reproduce FIGURE``: the figures of Gatys, Ecker & Bethge (arXiv 1508.06576), regenerated.

- ``fig1``: content reconstructions of the Tübingen photo from single layers (conv1_1 … conv5_1),
  style reconstructions of The Starry Night from growing layer sets (conv1_1; conv1_1+conv2_1; …).
- ``fig2``: the Tübingen photo in the styles of four paintings, with the paper's α/β (1e-3, and
  1e-4 for Composition VII, the paper's panel F).
- ``fig3``: style layers used (rows) × α/β ∈ {1e-5, 1e-4, 1e-3, 1e-2} (columns), Composition VII.

Everything follows the paper's Methods: the normalised VGG19 (:mod:`impasto.net.normalize`), average
pooling, L-BFGS from white noise, content on conv4_2, style weights w_l = 1/(number of style layers).
Each figure is one labelled grid PNG (``DIR/figN.png``); its panels are saved next to it, as
``DIR/figN-01-<panel>.png`` …. ``DIR`` is made if missing, but never its parents: the rule of
every command (a mistyped parent is an error, not a tree of new folders).

This module is the command (:func:`reproduce`); :mod:`.panels` makes one panel with the paper's
Methods, :mod:`.figures` lays out each figure's panels.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..core.schedule import clock
from ..errors import ConfigError, did_you_mean
from ..grid import make_grid
from ..image import check_output_path, output_folder, save_image
from ..net.network import resolve_device
from ..net.vgg import VGG19
from .figures import FIG2_STYLES as FIG2_STYLES  # these constants: importable from here, as before the split
from .figures import FIG3_STYLE as FIG3_STYLE
from .figures import FIGURE_PANELS, LAYOUTS, TITLES
from .figures import RATIOS as RATIOS
from .figures import STYLE_SETS as STYLE_SETS
from .panels import PAPER_METHODS as PAPER_METHODS
from .panels import PAPER_SCALE as PAPER_SCALE
from .panels import PAPER_SIDE as PAPER_SIDE
from .panels import Log, Panels, eq7_ratio

__all__ = ["FIGURES", "default_settings", "eq7_ratio", "make_grid", "reproduce"]

FIGURES = ("fig1", "fig2", "fig3")
MIN_SIZE = 32  # conv5_1 needs 16 px on the short side; the most elongated painting is 0.69:1
# (longest panel side, L-BFGS steps): on a CPU each figure takes under 20 minutes on 2 cores
# (measured figures in docs/paper.md); on a GPU the paper's size.
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
    run = Panels(name, size, steps, dev, log, out, total=FIGURE_PANELS[name], network=network)
    start, cpu0 = time.perf_counter(), time.process_time()
    log(f"{name}: {run.total} panels at {size} px, {steps} L-BFGS steps each, on {dev}")
    rows, row_labels, col_labels, note = LAYOUTS[name](run)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    footer = (
        f"{note} Normalised VGG19, average pooling, L-BFGS from white noise; {size} px, {steps} steps per panel; "
        f"made by impasto reproduce {name} on {dev} in {clock(seconds)}."
    )
    grid = make_grid(rows, TITLES[name], row_labels, col_labels, footer, cell_size=size)
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
