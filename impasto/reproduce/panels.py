"""One panel of the paper's figures: :func:`impasto.transfer` with the paper's Methods and eq. 7's
literal α and β, saved with its parameters; and the α/β that eq. 7 needs for the paper's figures."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from ..config import Options
from ..core.transfer import transfer
from ..image import save_image
from ..net.vgg import VGG19

__all__ = ["PAPER_METHODS", "PAPER_SCALE", "PAPER_SIDE", "Log", "Panels", "eq7_ratio"]

Log = Callable[[str], None]
# The paper's α/β, put into its own eq. 1-7 with the normalised network, weigh content about 10^3
# times more than its figures show (measured; see docs/paper.md, which also cites the weights of the
# authors' and others' code). Figures 2 (bottom row) and 3 therefore give eq. 7
#     α/β = paper's α/β × PAPER_SCALE × (PAPER_SIDE / size)²,
# where the size factor keeps the balance when the panel size changes: L_content (eq. 1) sums over
# the M_l positions, while E_l (eq. 4) is normalised by M_l², so α must scale as 1 / M_l.
PAPER_SCALE = 1e-4
PAPER_SIDE = 512

# The paper's Methods: the normalised VGG19, average pooling, one scale, L-BFGS from white noise, eq. 7's
# literal alpha and beta (no style strength), fp32 (the figures were measured so).
PAPER_METHODS = Options(
    network="normalized", pooling="avg", scales=1, init="noise", style_strength=None, tv_weight=0.0, precision="fp32"
)


def eq7_ratio(paper_ratio: float, size: int) -> float:
    """The α/β given to eq. 7 for one of the paper's α/β at panels of ``size`` px (see PAPER_SCALE)."""
    return paper_ratio * PAPER_SCALE * (PAPER_SIDE / size) ** 2


@dataclass
class Panels:
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
