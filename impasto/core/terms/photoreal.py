"""The photorealism term of Luan, Paris, Shechtman & Bala (Deep Photo Style Transfer, CVPR 2017, eq. 2).

    L_m = sum_c V_c[O]^T L V_c[O]

L the matting Laplacian of the content photo (Levin et al. 2008; :mod:`impasto.core.matting`,
matrix-free), V_c[O] the output's channel c on [0, 1]. It is 0 exactly when the output is, in
every 3x3 window, an affine function of the photo's colours: it lets the light and colours change
and keeps the photo's edges and textures. A local term: a sum over windows, each counted at the
tile whose core holds its centre (a window reads 1 px around its centre, inside any halo).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..matting import MattingGuide, matting_energy, precompute
from ..tile_layout import Tile
from .base import Features, LocalTerm, Where

__all__ = ["EPS", "Photorealism"]

# The regulariser of the windows' covariances, on colours in [0, 1]. Levin et al.'s 1e-7 lets a
# nearly flat window (a dusk sky) take any affine map of its own 8-bit banding and JPEG noise, which
# the style loss amplifies into rings across the sky (benchmarks/results/photo/); 1e-6 keeps a flat
# region flat and thin structures (gantries, masts) whole; 1e-5 fades those (docs/photo.md).
EPS = 1e-6


@dataclass(frozen=True, eq=False)
class Photorealism(LocalTerm):
    """L_m of the output against ``guide``, the content photo's window statistics at the output's size."""

    guide: MattingGuide
    name: str = "photorealism"

    @classmethod
    def of(cls, photo: torch.Tensor) -> Photorealism:
        """The term for outputs of ``photo``'s size; ``photo`` (1, 3, H, W) in 0..255."""
        return cls(precompute(photo / 255.0, EPS))

    def _windows(self, tile: Tile) -> MattingGuide | None:
        """The guide of the windows whose centres lie in ``tile``'s core (views; None: there are none)."""
        (y0, y1, x0, x1), (top, left), (rows, cols) = tile.core, self.guide.offset, self.guide.windows
        if y1 <= top or x1 <= left or y0 >= top + rows or x0 >= left + cols:
            return None
        return self.guide.crop(y0, x0, y1 - y0, x1 - x0)

    def at(self, tile: Tile) -> Photorealism:
        g = self.guide
        windows = self._windows(tile) or MattingGuide(
            g.image[..., :0, :0], g.mean[..., :0, :0], g.inv[..., :0, :0], (0, 0)
        )
        image, mean, inv = (t.clone() for t in (windows.image, windows.mean, windows.inv))
        return replace(self, guide=MattingGuide(image, mean, inv, windows.offset))

    def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
        v = pixels / 255.0
        if where.tile is None:
            return matting_energy(v, self.guide).sum()
        windows = self._windows(where.tile)
        if windows is None:
            return pixels.new_zeros(())
        cy0, _, cx0, _ = where.tile.crop
        top, left = windows.offset[0] - 1 - cy0, windows.offset[1] - 1 - cx0  # the windows' pixels, in the crop
        h, w = windows.windows
        return matting_energy(v[:, :, top : top + h + 2, left : left + w + 2], windows).sum()
