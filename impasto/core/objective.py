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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..net.vgg import VGG19
from .terms.base import EVERYWHERE, Features, GlobalTerm, Report, Term, Where
from .tile_layout import Tile, layout

__all__ = ["Objective", "Weighted", "features_of"]

Weighted = tuple[float, Term]  # (weight, term)


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
        sums: dict[int, dict[str, torch.Tensor]] = {}  # term index -> its statistics' sums
        locals_: dict[int, torch.Tensor] = {}  # term index -> its value's sum
        kept: dict[int, tuple[torch.Tensor, Features]] = {}
        for n, tile in enumerate(tiles):  # pass 1; the first ``keep`` tiles keep their graphs
            keep = grad_wanted and n < self.keep
            crop, feats = self._forward(x, tile, keep)
            if keep:
                kept[n] = (crop, feats)
            self._add_up(feats, crop.detach(), Where(tile), sums, locals_)
        leaves = {i: {k: v.requires_grad_(True) for k, v in s.items()} for i, s in sums.items()}
        total, report, global_part = self._combine(x, leaves, locals_)
        if not grad_wanted:
            return total.detach(), report
        grad = self._gradient(x, tiles, global_part, leaves, kept)
        return _Precomputed.apply(image, total.detach(), grad), report  # type: ignore[no-untyped-call]

    def _forward(self, x: torch.Tensor, tile: Tile, grad: bool) -> tuple[torch.Tensor, Features]:
        """A tile's crop (a leaf, with a gradient when ``grad``) and its responses."""
        crop = crop_of(x, tile).clone().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            return crop, features_of(self.vgg, crop, self.layers)

    def _add_up(
        self,
        feats: Features,
        crop: torch.Tensor,
        where: Where,
        sums: dict[int, dict[str, torch.Tensor]],
        locals_: dict[int, torch.Tensor],
    ) -> None:
        """Pass 1: this core's part of every global term's sums and every local term's value."""
        with torch.no_grad():
            plain = {k: v.detach() for k, v in feats.items()}
            for i, (_, term) in enumerate(self.terms):
                if isinstance(term, GlobalTerm):
                    for key, v in term.statistics(plain, where).items():
                        sums.setdefault(i, {})[key] = sums[i][key] + v if key in sums.get(i, {}) else v
                else:
                    v = term.local(plain, crop, where)
                    locals_[i] = locals_[i] + v if i in locals_ else v

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
        """Pass 3: dL/dx, one tile's forward (unless kept) and backward at a time."""
        flat = [(i, k, v) for i, s in leaves.items() for k, v in s.items()]
        d = torch.autograd.grad(global_part, [v for _, _, v in flat], allow_unused=True) if flat else ()
        upstream: dict[int, dict[str, torch.Tensor]] = {}
        for (i, k, v), g in zip(flat, d, strict=True):
            upstream.setdefault(i, {})[k] = torch.zeros_like(v) if g is None else g
        grad = torch.zeros_like(x)
        for n, tile in enumerate(tiles):
            crop, feats = kept.pop(n) if n in kept else self._forward(x, tile, True)  # kept: freed after its backward
            surrogate = self._surrogate(feats, crop, Where(tile), upstream)
            if surrogate.requires_grad:
                surrogate.backward()
                assert crop.grad is not None
                cy0, cy1, cx0, cx1 = tile.crop
                grad[:, :, cy0:cy1, cx0:cx1] += crop.grad
        return grad

    def _surrogate(
        self, feats: Features, crop: torch.Tensor, where: Where, upstream: dict[int, dict[str, torch.Tensor]]
    ) -> torch.Tensor:
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
