"""The matting Laplacian of Levin, Lischinski & Weiss (closed-form matting, PAMI 2008), matrix-free.

Luan et al.'s photorealism term (Deep Photo Style Transfer, CVPR 2017, eq. 2) is
``L_m = sum_c V_c[O]^T L V_c[O]``, L the matting Laplacian of the content photo I (3x3 windows w_k,
colours in [0, 1]):

    L_ij = sum_{k: i,j in w_k} ( delta_ij - 1/|w| (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| Id)^-1 (I_j - mu_k)) )

L is never stored. Per window k its quadratic form is |w| times the residual of the ridge regression
of v on the guide's colours in that window (Levin eq. 5, minimised over the affine coefficients):

    v^T L_k v = |w| (var_k(v) - cov_k(v, I)^T (Sigma_k + eps/|w| Id)^-1 cov_k(v, I))

with the window moments taken by 3x3 box filters (the algebra of He, Sun & Tang's guided filter), so
the energy is O(pixels), differentiable and runs on any device; autograd gives its gradient 2 L v.
Only windows wholly inside the image count (as Levin's and pymatting's ``cf_laplacian``).

:func:`matting_energy` returns one value per window, indexed by the window's centre, so that a
tiled caller sums the windows whose centres lie in its tile's core (:meth:`MattingGuide.crop`):
each such window reads pixels at most 1 px outside the core, and the sum over a partition of cores
is exactly the whole energy (its gradient too).

Guide statistics (means and the inverse regularised covariance per window) depend on the photo
only: :func:`precompute` builds them once, in float64 (with eps = 1e-7 a flat window's covariance is
below float32's rounding of E[I I^T] - mu mu^T), and stores them in the dtype asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["EPS", "MattingGuide", "laplacian_apply", "matting_energy", "precompute"]

EPS = 1e-7  # Levin et al.'s regulariser, on colours in [0, 1]
WINDOW = 9  # |w|: 3x3 windows
STRIP = 256  # rows of window centres whose statistics :func:`precompute` builds at a time
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # the upper triangle of a symmetric 3x3


def _box(x: torch.Tensor) -> torch.Tensor:
    """Mean over every 3x3 window wholly inside ``x`` (N, C, H, W) -> (N, C, H-2, W-2), by window centre."""
    return F.avg_pool2d(x, kernel_size=3, stride=1)


@dataclass(frozen=True)
class MattingGuide:
    """The photo and its per-window statistics, for a block of window centres.

    ``image``: the photo's pixels under these windows, minus 1/2 (1, 3, h+2, w+2) (a constant shift
    changes no covariance and halves float32's rounding); ``mean``: mu_k - 1/2 (1, 3, h, w); ``inv``:
    the upper triangle of (Sigma_k + eps/|w| Id)^-1 in the order of ``_PAIRS`` (1, 6, h, w).
    ``offset``: (row, column) of the first window's centre in the whole photo (1, 1 when uncropped).
    """

    image: torch.Tensor
    mean: torch.Tensor
    inv: torch.Tensor
    offset: tuple[int, int] = (1, 1)

    @property
    def windows(self) -> tuple[int, int]:
        """(rows, columns) of window centres."""
        return int(self.mean.shape[-2]), int(self.mean.shape[-1])

    def crop(self, top: int, left: int, height: int, width: int) -> MattingGuide:
        """The windows whose centres lie in rows top..top+height-1 and columns left..left+width-1 of
        the photo (clipped to the centres that exist). Its energy reads the pixels of rows
        ``offset[0]-1 ..`` (:attr:`windows` + 2 of them): the core and a 1-px halo."""
        r0, c0 = max(top - self.offset[0], 0), max(left - self.offset[1], 0)
        r1 = min(top + height - self.offset[0], self.windows[0])
        c1 = min(left + width - self.offset[1], self.windows[1])
        if r1 <= r0 or c1 <= c0:
            raise ValueError(f"crop ({top}, {left}, {height}, {width}) holds no window centre")
        return MattingGuide(
            self.image[..., r0 : r1 + 2, c0 : c1 + 2],
            self.mean[..., r0:r1, c0:c1],
            self.inv[..., r0:r1, c0:c1],
            (self.offset[0] + r0, self.offset[1] + c0),
        )


@torch.no_grad()
def precompute(guide: torch.Tensor, eps: float = EPS, dtype: torch.dtype = torch.float32) -> MattingGuide:
    """The statistics of ``guide`` (1, 3, H, W), colours in [0, 1], H and W at least 3.

    Built :data:`STRIP` rows of window centres at a time: the float64 working maps (~440 bytes per
    pixel) then take a strip's memory, not the photo's (~5 GB at 4096 x 3072); each window's
    statistics do not depend on the strip (bit for bit)."""
    if guide.dim() != 4 or guide.shape[0] != 1 or guide.shape[1] != 3 or min(guide.shape[-2:]) < 3:
        raise ValueError(f"the guide must be (1, 3, H, W) with H, W >= 3, not {tuple(guide.shape)}")
    rows = guide.shape[-2] - 2
    strips = [_statistics(guide[..., r : min(r + STRIP, rows) + 2, :], eps, dtype) for r in range(0, rows, STRIP)]
    mean, tri = (torch.cat([s[n] for s in strips], dim=-2) for n in (0, 1))
    return MattingGuide((guide.to(torch.float64) - 0.5).to(dtype), mean, tri)


def _statistics(guide: torch.Tensor, eps: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """mu_k - 1/2 (1, 3, h, w) and the upper triangle of (Sigma_k + eps/|w| Id)^-1 (1, 6, h, w),
    computed in float64 and returned in ``dtype``."""
    g = guide.to(torch.float64) - 0.5
    mean = _box(g)  # (1, 3, h, w)
    products = torch.cat([g[:, i : i + 1] * g[:, j : j + 1] for i, j in _PAIRS], dim=1)  # (1, 6, H, W)
    second = _box(products)  # (1, 6, h, w)
    sigma = torch.empty(*mean.shape[-2:], 3, 3, dtype=torch.float64, device=g.device)  # (h, w, 3, 3)
    for n, (i, j) in enumerate(_PAIRS):
        cov = second[0, n] - mean[0, i] * mean[0, j]
        sigma[..., i, j] = cov
        sigma[..., j, i] = cov
    sigma = sigma + (eps / WINDOW) * torch.eye(3, dtype=torch.float64, device=g.device)
    inv = torch.linalg.inv(sigma)  # (h, w, 3, 3)
    return mean.to(dtype), torch.stack([inv[..., i, j] for i, j in _PAIRS], dim=0)[None].to(dtype)  # (1, 6, h, w)


def matting_energy(v: torch.Tensor, stats: MattingGuide) -> torch.Tensor:
    """Per-window energy  sum_c v_c^T L_k v_c  (1, 1, h, w) of ``v`` (1, C, h+2, w+2), values in [0, 1].

    ``v`` covers the windows of ``stats`` and a 1-px border around their centres (the pixels of
    ``stats.image``); the sum of the map is ``sum_c v_c^T L v_c`` over those windows. Differentiable in ``v``.
    """
    rows, cols = stats.windows
    if v.dim() != 4 or v.shape[0] != 1 or tuple(v.shape[-2:]) != (rows + 2, cols + 2):
        raise ValueError(f"v must be (1, C, {rows + 2}, {cols + 2}) for these windows, not {tuple(v.shape)}")
    image, mu = stats.image.to(v.dtype), stats.mean.to(v.dtype)
    inv = stats.inv.to(v.dtype)  # (1, 6, h, w)
    total = v.new_zeros(1, 1, rows, cols)
    for c in range(v.shape[1]):
        x = v[:, c : c + 1] - 0.5  # (1, 1, H, W): a constant shift changes no (co)variance
        mx = _box(x)  # (1, 1, h, w)
        var = _box(x * x) - mx * mx
        cov = _box(x * image) - mx * mu  # (1, 3, h, w): cov_k(v, I)
        quad = torch.zeros_like(var)  # cov^T (Sigma + eps/|w| Id)^-1 cov, the symmetric matrix's upper triangle
        for n, (i, j) in enumerate(_PAIRS):
            quad = quad + (1.0 if i == j else 2.0) * inv[:, n : n + 1] * cov[:, i : i + 1] * cov[:, j : j + 1]
        total = total + WINDOW * (var - quad)
    return total


def laplacian_apply(guide: torch.Tensor, v: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """L v per channel (1, C, H, W) for ``guide`` (1, 3, H, W): half the gradient of the energy."""
    x = v.detach().clone().requires_grad_(True)
    energy = matting_energy(x, precompute(guide, eps, v.dtype)).sum()
    (grad,) = torch.autograd.grad(energy, x)
    return 0.5 * grad
