"""The paper's exact loss and gradient computed tile by tile, in memory bounded by the tile.

Eq. 7 couples every pixel through the Gram matrices (eq. 3 sums over all positions), so tiles
cannot be optimised on their own without changing the objective (the approximate tilers do). But
the Gram matrix is a sum over positions, and so is its gradient's effect, so one step needs only
two passes over the tiles:

1. **no gradient**: each tile (its *core* plus a *halo*) goes through the network; the responses
   at the core's positions add into each style layer's Gram matrix G_l (and the content loss);
2. **with gradient**: eq. 7 is evaluated on the global G_l, giving dL/dG_l; each tile is run again
   and back-propagated with the surrogate <dL/dG_l, G_l(core)> + alpha L_content(core), whose
   gradient is exactly the tile's share of dL/dx. The shares add up to the full image's gradient.

Exactness needs two things. The cores' positions must partition every layer's grid: core
origins are multiples of 2^d, d the number of poolings before the deepest layer used (16 px for
conv5_1). And a core response must see what it sees in the whole image: the halo covers how far
a crop's edge (zero padding where the image has pixels) spreads inward by that layer, rounded up
to the alignment; tiles at the image border keep the real border. Both follow from the layer
table (:func:`impasto.tile_layout.geometry`), for any network of VGG19's shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from .gram import gram_fp32
from .losses import Objective, StyleRegion, content_loss, tv_loss
from .tile_layout import Tile, geometry, layout
from .vgg import layer_depth

__all__ = ["Tile", "TiledObjective", "geometry", "layout"]

Key = tuple[int, str]  # (style region index, layer)
Guides = dict[str, torch.Tensor | None]  # layer -> the region's guide at that layer's resolution


def _crop(image: torch.Tensor, tile: Tile) -> torch.Tensor:
    cy0, cy1, cx0, cx1 = tile.crop
    return image[:, :, cy0:cy1, cx0:cx1]


def _add_tv_gradient(grad: torch.Tensor, x: torch.Tensor, weight: float) -> None:
    """``grad += weight * d tv_loss(x) / dx``, one difference image at a time (autograd holds five)."""
    for dim in (2, 3):
        n = x.shape[dim]
        diff = (x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1)).mul_(2 * weight)
        grad.narrow(dim, 1, n - 1).add_(diff)
        grad.narrow(dim, 0, n - 1).sub_(diff)


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


class TiledObjective(Objective):
    """:class:`Objective` (eq. 7) evaluated tile by tile: the same loss and gradient, bounded memory.

    ``tile`` is the core size in pixels (rounded up to the alignment); None, or an image that is
    one tile, runs the plain :class:`Objective`. Content targets and style Gram matrices of large
    images are computed tiled too. Peak memory is that of one crop's forward and backward, plus
    the image, its gradient and the content targets; ``keep`` tiles' forwards (of pass 1) are kept
    for pass 2 instead of recomputed, each costing one crop's forward more (memory.fit chooses it).
    """

    def __init__(self, *args: Any, tile: int | None, keep: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tile = tile
        self.keep = keep  # tiles whose pass-1 forward is kept for pass 2 (as the memory budget allows)

    def _untiled(self, image: torch.Tensor) -> bool:
        return self.tile is None or len(self._tiles(image, self.layers)) == 1

    def _tiles(self, image: torch.Tensor, layers: Sequence[str]) -> list[Tile]:
        core = self.tile if self.tile is not None else max(image.shape[-2:])
        return layout(image.shape[-2], image.shape[-1], core, layers)

    def _cores(self, image: torch.Tensor, layers: Sequence[str]) -> Iterator[tuple[Tile, dict[str, torch.Tensor]]]:
        """Each tile with its responses at ``layers`` restricted to its core (no gradient)."""
        with torch.no_grad():
            for tile in self._tiles(image, self.layers):
                feats = self.features(_crop(image, tile), layers)
                yield tile, {k: tile.core_of(v, k) for k, v in feats.items()}

    def set_content(self, image: torch.Tensor | None) -> None:
        if image is not None and self._untiled(image):
            super().set_content(image)
            return
        if image is None or not self.content_layers:
            self.targets.content = {}
            return
        layers = list(self.content_layers)
        out: dict[str, torch.Tensor] = {}
        for tile, feats in self._cores(image, layers):
            for k, v in feats.items():
                if k not in out:
                    s = 2 ** layer_depth(k)
                    out[k] = v.new_zeros(1, v.shape[1], image.shape[-2] // s, image.shape[-1] // s).float()
                tile.in_image(out[k], k).copy_(v)
        self.targets.content = out

    def _guides(self, shape: tuple[int, int], guide: torch.Tensor | None, layers: Sequence[str]) -> dict[str, Any]:
        """Per layer: the guide at the layer's full resolution (area-averaged) or None."""
        out: dict[str, Any] = {}
        for k in layers:
            s = 2 ** layer_depth(k)
            size = (shape[0] // s, shape[1] // s)
            out[k] = (
                None
                if guide is None
                else (F.interpolate(guide, size=size, mode="area") if guide.shape[-2:] != size else guide)
            )
        return out

    def style_grams(self, image: torch.Tensor, guide: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self._untiled(image):
            return super().style_grams(image, guide)
        if not self.style_layers:
            return {}
        layers = list(self.style_layers)
        guides = self._guides((image.shape[-2], image.shape[-1]), guide, layers)
        sums: dict[str, torch.Tensor] = {}
        for tile, feats in self._cores(image, layers):
            for k, v in feats.items():
                t = guides[k]
                g = gram_fp32(v if t is None else v * tile.in_image(t, k))
                sums[k] = sums[k] + g if k in sums else g
        return {k: g / self._norm(image, k, guides[k]) for k, g in sums.items()}

    @staticmethod
    def _norm(image: torch.Tensor, layer: str, guide: torch.Tensor | None) -> float | torch.Tensor:
        """What a Gram sum is divided by: M_l, or sum T^2 for a guided one (as in :mod:`losses`)."""
        if guide is not None:
            norm: torch.Tensor = guide.pow(2).sum().clamp_min(1e-8)
            return norm
        s = 2 ** layer_depth(layer)
        return float((image.shape[-2] // s) * (image.shape[-1] // s))

    def _region_grams(
        self,
        feats: Mapping[str, torch.Tensor],
        tile: Tile,
        guides: Mapping[int, Guides],
        norms: Mapping[Key, float | torch.Tensor],
    ) -> dict[Key, torch.Tensor]:
        """This core's share of each (region, layer) Gram matrix per position."""
        out = {}
        for layer in self.style_layers:
            f = tile.core_of(feats[layer], layer)
            for i, _ in self.style_regions(layer):
                t = guides[i][layer]
                out[i, layer] = gram_fp32(f if t is None else f * tile.in_image(t, layer)) / norms[i, layer]
        return out

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self._untiled(image):
            return super().__call__(image)
        shape = (image.shape[-2], image.shape[-1])
        regions: Sequence[StyleRegion] = self.targets.style
        guides = {i: self._guides(shape, r.guide, list(self.style_layers)) for i, r in enumerate(regions)}
        norms = {
            (i, k): self._norm(image, k, guides[i][k]) for k in self.style_layers for i, _ in self.style_regions(k)
        }
        zero = image.new_zeros(())
        x = image.detach()
        tiles = self._tiles(x, self.layers)
        # Pass 1: the global Gram matrices and the content loss; the first ``keep`` tiles keep their graphs.
        grams: dict[Key, torch.Tensor] = {}
        content = zero
        kept: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
        grad_wanted = torch.is_grad_enabled() and image.requires_grad
        for n, tile in enumerate(tiles):
            keep = grad_wanted and n < self.keep
            crop = _crop(x, tile).clone().requires_grad_(keep)
            with torch.set_grad_enabled(keep):
                feats = self.features(crop)
            if keep:
                kept[n] = (crop, feats)
            with torch.no_grad():
                plain = {k: v.detach() for k, v in feats.items()}
                content = content + self._core_content(plain, tile, zero)
                for key, g in self._region_grams(plain, tile, guides, norms).items():
                    grams[key] = grams[key] + g if key in grams else g
        leaves = {key: g.requires_grad_(True) for key, g in grams.items()}
        with torch.enable_grad():
            style, terms = self.style_term(self.differences(leaves), zero)
            total = self.content_weight * content + self.style_weight * style
            tv = tv_loss(x) if self.tv_weight else zero
            total = total + self.tv_weight * tv
        terms |= {"content": content.detach(), "style": style.detach()}
        if self.tv_weight:
            terms["tv"] = tv.detach()
        if not grad_wanted:
            return total.detach(), terms
        grad = self._gradient(x, tiles, style, leaves, guides, norms, kept)
        return _Precomputed.apply(image, total.detach(), grad), terms  # type: ignore[no-untyped-call]

    def _core_content(self, feats: Mapping[str, torch.Tensor], tile: Tile, zero: torch.Tensor) -> torch.Tensor:
        """sum_l w_l L_content over this core's positions."""
        content = zero
        for layer, w in self.content_layers.items():
            if layer in self.targets.content:
                target = tile.in_image(self.targets.content[layer], layer)
                content = content + w * content_loss(tile.core_of(feats[layer], layer), target)
        return content

    def _gradient(
        self,
        x: torch.Tensor,
        tiles: Sequence[Tile],
        style: torch.Tensor,
        leaves: Mapping[Key, torch.Tensor],
        guides: Mapping[int, Guides],
        norms: Mapping[Key, float | torch.Tensor],
        kept: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor]]],
    ) -> torch.Tensor:
        """Pass 2: dL/dx, one tile's forward (unless pass 1 kept it) and backward at a time."""
        grad = torch.zeros_like(x)
        with torch.enable_grad():
            keys = list(leaves)
            d_grams = (
                dict(zip(keys, torch.autograd.grad(self.style_weight * style, [leaves[k] for k in keys]), strict=True))
                if keys
                else {}
            )
            if self.tv_weight:
                _add_tv_gradient(grad, x, self.tv_weight)
            for n, tile in enumerate(tiles):
                if n in kept:
                    crop, feats = kept.pop(n)  # freed as soon as its backward has run
                else:
                    crop = _crop(x, tile).clone().requires_grad_(True)
                    feats = self.features(crop)
                outs, upstream = [], []
                for layer, f in feats.items():
                    g = self._upstream(f, layer, tile, d_grams, guides, norms)
                    if g is not None:
                        outs.append(f)
                        upstream.append(g)
                if outs:
                    torch.autograd.backward(outs, upstream)
                    assert crop.grad is not None
                    cy0, cy1, cx0, cx1 = tile.crop
                    grad[:, :, cy0:cy1, cx0:cx1] += crop.grad
        return grad

    def _upstream(
        self,
        f: torch.Tensor,
        layer: str,
        tile: Tile,
        d_grams: Mapping[Key, torch.Tensor],
        guides: Mapping[int, Guides],
        norms: Mapping[Key, float | torch.Tensor],
    ) -> torch.Tensor | None:
        """dL/dF of a crop's responses at ``layer``: the paper's gradient at core positions, 0 in the halo.

        Content: alpha w_l (F - P). Style: F (dL/dG + dL/dG^T) / M_l with the global dL/dG of
        pass 1 (guided: T o ((F o T) (...)) / sum T^2). Injected directly, so pass 2 neither
        recomputes the core's Gram matrices nor differentiates through the core's slicing.
        """
        core = tile.core_of(f, layer)
        wide = torch.promote_types(f.dtype, torch.float32)  # fp32 sums for bf16 responses
        d: torch.Tensor | None = None
        if layer in self.content_layers and layer in self.targets.content:
            target = tile.in_image(self.targets.content[layer], layer)
            d = (self.content_weight * self.content_layers[layer]) * (core.to(wide) - target)
        for i, _ in self.style_regions(layer):
            t = guides[i][layer]
            t_core = None if t is None else tile.in_image(t, layer).to(f.dtype)
            sym = (d_grams[i, layer] + d_grams[i, layer].transpose(1, 2)) / norms[i, layer]  # (1, C, C)
            fc = core if t_core is None else core * t_core
            gs = torch.matmul(fc.permute(0, 2, 3, 1), sym.to(f.dtype)).permute(0, 3, 1, 2)  # (1, C, h, w)
            if t_core is not None:
                gs = gs * t_core
            d = gs.to(wide) if d is None else d + gs
        if d is None:
            return None
        out = torch.zeros_like(f, memory_format=torch.channels_last)
        rows, cols, _, _ = tile.at(layer_depth(layer))
        out[:, :, rows, cols] = d.to(f.dtype)
        return out
