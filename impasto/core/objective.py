"""The objective: a weighted sum of terms (eq. 7 and whatever is added to it), whole or tile by tile.

``Objective(vgg, ((alpha, Content(...)), (beta, GramStyle(...)), (w, TotalVariation())))`` is
eq. 7 (plus TV); a new loss is one more (weight, term) pair (:mod:`impasto.core.terms`).
Calling it on an RGB image (1, 3, H, W) in 0..255 returns the total and a report of each term's
unweighted value (0-d tensors, detached) with the terms' own details (``style:<layer>``).

**Tiled**, one mechanism for every term (``tile``: the core size in px). A global term's loss is
a function of sums over positions, and a local term is a sum over positions, so one step needs
two passes over the tiles (their cores partition the image, their halos supply what each core
position sees: :mod:`impasto.tile_layout`):

1. **no gradient**: each crop goes through the network; the global terms' statistics and the
   local terms' values at the core's positions are summed;
2. the global terms' values come from the sums, and autograd gives dL/d(sums) once;
3. **with gradient**: each crop again, back-propagating the surrogate
   <dL/d(sums), sums(core)> + the local terms (core), whose gradient is exactly the tile's share of
   dL/dx; the shares, added into place, are the whole image's gradient.

So tiled == untiled for every term by construction, in memory bounded by one crop's forward and
backward. ``keep`` tiles' forwards of pass 1 are kept for pass 3 instead of recomputed (each
costs one crop's forward more; :mod:`impasto.memory` chooses it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..net.vgg import VGG19
from .terms.base import EVERYWHERE, Features, GlobalTerm, Report, Term, Where
from .tile_layout import Tile, layout

__all__ = ["Objective", "Runner", "Share", "Upstream", "Weighted", "features_of"]

Weighted = tuple[float, Term]  # (weight, term)
# One tile's pass-1 share: term index -> the part of its statistics' sums (global terms), and
# term index -> the part of its value (local terms).
Share = tuple[dict[int, dict[str, torch.Tensor]], dict[int, torch.Tensor]]
Upstream = dict[int, dict[str, torch.Tensor]]  # term index -> dL/d(each of its sums)


class Runner(Protocol):
    """Where a tiled step's passes run when not here, e.g. on a cluster's workers (:mod:`impasto.cluster`):
    ``workers`` of ``memory`` bytes each.

    Each gets the objective, the tiles' crops and the tiles, and returns one result per tile, in
    tile order: :meth:`Objective.share` (pass 1) and :meth:`Objective.tile_gradient` (pass 2), as
    the objective computes them here; the objective adds them up in tile order, as it does here.
    """

    workers: int
    memory: int

    def describe(self) -> str: ...

    def shares(self, objective: Objective, crops: Sequence[torch.Tensor], tiles: Sequence[Tile]) -> Iterator[Share]: ...

    def gradients(
        self, objective: Objective, crops: Sequence[torch.Tensor], tiles: Sequence[Tile], upstream: Upstream
    ) -> Iterator[torch.Tensor | None]: ...


def _add_up(shares: Iterable[Share]) -> Share:
    """The tiles' shares summed in tile order: every global term's sums and every local term's value."""
    sums: dict[int, dict[str, torch.Tensor]] = {}
    locals_: dict[int, torch.Tensor] = {}
    for tile_sums, tile_locals in shares:
        for i, stats in tile_sums.items():
            for key, v in stats.items():
                sums.setdefault(i, {})[key] = sums[i][key] + v if key in sums.get(i, {}) else v
        for i, v in tile_locals.items():
            locals_[i] = locals_[i] + v if i in locals_ else v
    return sums, locals_


def features_of(vgg: VGG19, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """VGG responses of ``image`` (fp32, 0..255) in the network's dtype (bf16 for a bf16 network).

    The terms take them as they are and compute in fp32 (Gram products, type promotion against
    fp32 targets), so a bf16 network needs no per-step casts of weights or activations.
    """
    if not layers:
        return {}
    out: dict[str, torch.Tensor] = vgg(image.contiguous(memory_format=torch.channels_last), list(layers))
    return out


def crop_of(image: torch.Tensor, tile: Tile) -> torch.Tensor:
    cy0, cy1, cx0, cx1 = tile.crop
    return image[:, :, cy0:cy1, cx0:cx1]


class _Precomputed(torch.autograd.Function):
    """A loss whose gradient was computed with it (tile by tile): backward just scales it."""

    @staticmethod
    def forward(ctx: Any, image: torch.Tensor, total: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad)
        return total.clone()

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return grad.mul_(upstream), None, None  # in place: the graph is not kept, nothing else reads it


@dataclass(frozen=True, eq=False)
class Objective:
    """sum_i weight_i * term_i(image), evaluated whole, or tiled with ``tile``-px cores (see the module)."""

    vgg: VGG19
    terms: Sequence[Weighted]
    tile: int | None = None
    keep: int = 0  # tiles whose pass-1 forward is kept for the gradient pass
    layout_layers: tuple[str, ...] | None = None  # the layers the tiles are laid out for (default: the terms')
    runner: Runner | None = None  # where the tiles' passes run (None: here, one after another)
    layers: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(dict.fromkeys(k for _, t in self.terms for k in t.layers)))

    def term(self, name: str) -> Term:
        """The term reported as ``name``."""
        return next(t for _, t in self.terms if t.name == name)

    def weight(self, name: str) -> float:
        return next(w for w, t in self.terms if t.name == name)

    def tiles(self, height: int, width: int) -> list[Tile]:
        core = self.tile if self.tile is not None else max(height, width)
        return layout(height, width, core, self.layout_layers or self.layers or ("conv1_1",))

    def cores(self, image: torch.Tensor, layers: Sequence[str]) -> Iterator[tuple[Tile, Features]]:
        """Each tile of ``image`` with its crop's responses at ``layers`` (no gradient)."""
        with torch.no_grad():
            for tile in self.tiles(*image.shape[-2:]):
                yield tile, features_of(self.vgg, crop_of(image, tile), layers)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, Report]:
        if self.tile is None or len(self.tiles(*image.shape[-2:])) == 1:
            return self._whole(image)
        return self._tiled(image)

    def _whole(self, image: torch.Tensor) -> tuple[torch.Tensor, Report]:
        feats = features_of(self.vgg, image, self.layers)
        total: torch.Tensor | None = None
        report: Report = {}
        for weight, term in self.terms:
            if isinstance(term, GlobalTerm):
                value, details = term.whole(feats)
                report |= details
            else:
                value = term.local(feats, image, EVERYWHERE)
            report[term.name] = value.detach()
            total = weight * value if total is None else total + weight * value
        return (total if total is not None else image.new_zeros(())), report

    def _tiled(self, image: torch.Tensor) -> tuple[torch.Tensor, Report]:
        x = image.detach()
        tiles = self.tiles(*x.shape[-2:])
        grad_wanted = torch.is_grad_enabled() and image.requires_grad
        kept: dict[int, tuple[torch.Tensor, Features]] = {}
        shares = self._shares(x, tiles, kept if grad_wanted else None)
        sums, locals_ = _add_up(shares)
        leaves = {i: {k: v.requires_grad_(True) for k, v in s.items()} for i, s in sums.items()}
        total, report, global_part = self._combine(x, leaves, locals_)
        if not grad_wanted:
            return total.detach(), report
        grad = self._gradient(x, tiles, global_part, leaves, kept)
        return _Precomputed.apply(image, total.detach(), grad), report  # type: ignore[no-untyped-call]

    def _shares(
        self, x: torch.Tensor, tiles: Sequence[Tile], kept: dict[int, tuple[torch.Tensor, Features]] | None
    ) -> Iterator[Share]:
        """Pass 1, tile by tile, here or on the ``runner``'s workers; the first ``keep`` tiles' graphs
        go into ``kept`` (here only, and only when a gradient follows: ``kept`` not None)."""
        if self.runner is not None:
            yield from self.runner.shares(self, [crop_of(x, t) for t in tiles], tiles)
            return
        for n, tile in enumerate(tiles):
            keep = kept is not None and n < self.keep
            crop, feats = self._forward(crop_of(x, tile), keep)
            if keep:
                assert kept is not None
                kept[n] = (crop, feats)
            yield self.share(feats, crop.detach(), tile)

    def _forward(self, crop: torch.Tensor, grad: bool) -> tuple[torch.Tensor, Features]:
        """A tile's crop as a leaf (with a gradient when ``grad``) and its responses."""
        crop = crop.clone().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            return crop, features_of(self.vgg, crop, self.layers)

    def share(self, feats: Features | None, crop: torch.Tensor, tile: Tile) -> Share:
        """Pass 1 for one tile: its core's part of every global term's sums and every local term's value.

        ``feats``: the crop's responses, or None to compute them (a worker given only the crop)."""
        where = Where(tile)
        with torch.no_grad():
            plain = {k: v.detach() for k, v in (feats or features_of(self.vgg, crop, self.layers)).items()}
            sums: dict[int, dict[str, torch.Tensor]] = {}
            locals_: dict[int, torch.Tensor] = {}
            for i, (_, term) in enumerate(self.terms):
                if isinstance(term, GlobalTerm):
                    sums[i] = term.statistics(plain, where)
                else:
                    locals_[i] = term.local(plain, crop, where)
        return sums, locals_

    def _combine(
        self, x: torch.Tensor, leaves: dict[int, dict[str, torch.Tensor]], locals_: dict[int, torch.Tensor]
    ) -> tuple[torch.Tensor, Report, torch.Tensor]:
        """The total from the sums (with a graph to the global terms' statistics), the report, and the global part."""
        total: torch.Tensor | None = None
        global_part = x.new_zeros(())
        report: Report = {}
        with torch.enable_grad():
            for i, (weight, term) in enumerate(self.terms):
                if isinstance(term, GlobalTerm):
                    value, details = term.value(leaves.get(i, {}))
                    report |= details
                    global_part = global_part + weight * value
                else:
                    value = locals_.get(i, x.new_zeros(()))
                report[term.name] = value.detach()
                total = weight * value if total is None else total + weight * value
        return (total if total is not None else x.new_zeros(())), report, global_part

    def _gradient(
        self,
        x: torch.Tensor,
        tiles: Sequence[Tile],
        global_part: torch.Tensor,
        leaves: dict[int, dict[str, torch.Tensor]],
        kept: dict[int, tuple[torch.Tensor, Features]],
    ) -> torch.Tensor:
        """Pass 2: dL/dx, the tiles' shares added into place in tile order (here or on the runner's workers)."""
        flat = [(i, k, v) for i, s in leaves.items() for k, v in s.items()]
        d = torch.autograd.grad(global_part, [v for _, _, v in flat], allow_unused=True) if flat else ()
        upstream: Upstream = {}
        for (i, k, v), g in zip(flat, d, strict=True):
            upstream.setdefault(i, {})[k] = torch.zeros_like(v) if g is None else g
        if self.runner is not None:
            shares = self.runner.gradients(self, [crop_of(x, t) for t in tiles], tiles, upstream)
        else:
            shares = (
                self.tile_gradient(crop_of(x, tile), tile, upstream, kept.pop(n, None)) for n, tile in enumerate(tiles)
            )
        grad = torch.zeros_like(x)
        for tile, share in zip(tiles, shares, strict=True):
            if share is not None:
                cy0, cy1, cx0, cx1 = tile.crop
                grad[:, :, cy0:cy1, cx0:cx1] += share
        return grad

    def tile_gradient(
        self, crop: torch.Tensor, tile: Tile, upstream: Upstream, kept: tuple[torch.Tensor, Features] | None = None
    ) -> torch.Tensor | None:
        """One tile's share of dL/dx, the size of its ``crop`` (None: nothing depends on it);
        ``kept``: its pass-1 forward, if kept (then ``crop`` is not read again)."""
        if kept is None:
            kept = self._forward(crop, True)
        leaf, feats = kept
        surrogate = self._surrogate(feats, leaf, Where(tile), upstream)
        if not surrogate.requires_grad:
            return None
        surrogate.backward()
        return leaf.grad

    def _surrogate(self, feats: Features, crop: torch.Tensor, where: Where, upstream: Upstream) -> torch.Tensor:
        """<dL/d(sums), sums(core)> + the weighted local terms at the core: its gradient is the tile's share."""
        with torch.enable_grad():
            out = crop.new_zeros(())
            for i, (weight, term) in enumerate(self.terms):
                if isinstance(term, GlobalTerm):
                    for key, v in term.statistics(feats, where).items():
                        if key in upstream.get(i, {}):
                            out = out + (upstream[i][key] * v).sum()
                elif weight != 0:
                    out = out + weight * term.local(feats, crop, where)
        return out
