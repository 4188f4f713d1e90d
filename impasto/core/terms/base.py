"""What a term of the objective is: local (a sum over positions) or global (a function of sums).

Every term of eq. 7 and of what came after it is one of two kinds:

- **local**: a sum over positions of something that depends on the output only near each
  position (content, eq. 1; total variation; the temporal loss of video; the matting Laplacian's
  photorealism term). Over tiles it is the sum of each tile's core (the halo supplies the
  neighbourhood): :meth:`LocalTerm.local` evaluates the part of the sum that ``where`` covers.
- **global**: a function of statistics that are sums over positions (a Gram matrix, eq. 3; a
  mean and covariance). :meth:`GlobalTerm.statistics` gives the part of the sums that ``where``
  covers, :meth:`GlobalTerm.value` the term from the whole sums.

:class:`impasto.core.objective.Objective` evaluates any mix of them on the whole image or tile by
tile with one mechanism, and autograd gives every gradient (no term differentiates by hand).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..tile_layout import Tile

__all__ = ["Features", "GlobalTerm", "LocalTerm", "Report", "Term", "Where"]

Features = Mapping[str, torch.Tensor]  # layer -> the network's responses, (1, C, h, w)
Report = dict[str, torch.Tensor]  # name -> an unweighted value (detached), for progress


@dataclass(frozen=True)
class Where:
    """Which positions of an evaluation count: all of them (``tile`` None) or a tile's core.

    Depth d means 2^d times coarser than the pixels (the responses after d poolings); depth 0 is
    the pixels themselves.
    """

    tile: Tile | None = None

    def core(self, responses: torch.Tensor, depth: int) -> torch.Tensor:
        """The counted positions of a crop's tensor (B, C, h, w) at ``depth`` (a view)."""
        if self.tile is None:
            return responses
        rows, cols, _, _ = self.tile.at(depth)
        return responses[:, :, rows, cols]

    def part(self, full: torch.Tensor, depth: int) -> torch.Tensor:
        """The counted positions of an image-wide map (B, C, H_d, W_d) at ``depth`` (a view). A map
        the core's size is returned as it is: it is one already cut to the core (:meth:`LocalTerm.at`),
        or the core is the whole image."""
        if self.tile is None:
            return full
        _, _, rows, cols = self.tile.at(depth)
        if full.shape[-2:] == (rows.stop - rows.start, cols.stop - cols.start):
            return full
        return full[:, :, rows, cols]

    def rows_cols(self, height: int, width: int, depth: int) -> tuple[slice, slice]:
        """The counted rows and columns of a crop (``height`` x ``width`` at ``depth``)."""
        if self.tile is None:
            return slice(0, height), slice(0, width)
        rows, cols, _, _ = self.tile.at(depth)
        return rows, cols


EVERYWHERE = Where()


class LocalTerm(ABC):
    """A sum over positions, each depending on the output near it (content, TV, temporal, ...)."""

    name: str  # its key in the report
    layers: tuple[str, ...] = ()  # the network layers it reads (none: a term on the pixels)

    @abstractmethod
    def local(self, feats: Features, pixels: torch.Tensor, where: Where) -> torch.Tensor:
        """The part of the sum at ``where``'s positions: ``feats`` and ``pixels`` are a crop's (or the image's)."""

    def at(self, tile: Tile) -> LocalTerm:
        """The term as ``tile``'s evaluation needs it: its image-wide maps (targets, guides) cut to
        the tile's core and copied, so that a worker given one tile is sent only that tile's part
        (:mod:`impasto.cluster.tiles`). ``at(tile).local(f, x, Where(tile))`` is ``local(f, x,
        Where(tile))``. The default: the term itself (one with no image-wide map)."""
        return self


class GlobalTerm(ABC):
    """A function of sums over positions (a Gram matrix, a mean and covariance, ...)."""

    name: str
    layers: tuple[str, ...] = ()

    @abstractmethod
    def statistics(self, feats: Features, where: Where) -> dict[str, torch.Tensor]:
        """The part of each sum at ``where``'s positions (fp32); the parts of a partition add up to the whole."""

    @abstractmethod
    def value(self, stats: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Report]:
        """The term from the whole sums, and its details for the report (e.g. each layer's part)."""

    def whole(self, feats: Features) -> tuple[torch.Tensor, Report]:
        """The term of an untiled image: ``value(statistics(feats, everywhere))`` unless a term knows a faster way."""
        return self.value(self.statistics(feats, EVERYWHERE))


Term = LocalTerm | GlobalTerm
