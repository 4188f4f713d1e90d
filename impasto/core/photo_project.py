"""The final projection of photo-to-photo transfer: the output made locally affine in the photo's colours.

Luan et al. (Deep Photo Style Transfer, CVPR 2017, sec. 3.3) end with a "best local affine" pass;
impasto's is the colour guided filter of He, Sun & Tang (Guided Image Filtering, ECCV 2010 / PAMI
2013, eqs. 19-21) with the content photo I as the guide, applied to each channel p of the output:

    a_k = (Sigma_k + eps Id)^-1 cov_k(I, p),   b_k = mean_k(p) - a_k^T mu_k,   q_i = mean_k(a)^T I_i + mean_k(b)

over square windows of side 2 * radius + 1, clipped at the borders (each window's moments are the
mean of the pixels it holds, as He's normalised box filter). q is an affine function of I in every
window up to the averaging of the coefficients, so it keeps the photo's edges and textures and the
output's colours and light at the scale of the windows. Colours in [0, 1]; eps on that scale.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["guided_filter"]

STRIP = 256  # output rows filtered at a time (their float64 working maps, ~400 bytes per pixel)


def _mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``x`` (N, C, H, W) over the (2r+1)^2 window at each pixel, clipped at the borders."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


@torch.no_grad()
def guided_filter(guide: torch.Tensor, image: torch.Tensor, radius: int = 8, eps: float = 1e-3) -> torch.Tensor:
    """``image`` (1, C, H, W) filtered with the colour ``guide`` (1, 3, H, W), both in [0, 1]; same shape.

    Computed in float64 and returned in ``image``'s dtype. ``radius`` < min(H, W) / 2 is not required:
    a window is clipped to the image.
    """
    if guide.shape[0] != 1 or guide.shape[1] != 3 or guide.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"guide {tuple(guide.shape)} and image {tuple(image.shape)}: need (1, 3, H, W) and (1, C, H, W)"
        )
    if radius < 1 or eps <= 0:
        raise ValueError(f"radius must be >= 1 and eps > 0, not {radius} and {eps}")
    height, reach = image.shape[-2], 2 * radius  # a row of q reads the coefficients of rows +-r, each the pixels of +-r
    out = []
    for r0 in range(0, height, STRIP):
        r1 = min(r0 + STRIP, height)
        top, bottom = max(r0 - reach, 0), min(r1 + reach, height)
        q = _filter(guide[..., top:bottom, :], image[..., top:bottom, :], radius, eps)
        out.append(q[..., r0 - top : r1 - top, :].to(image.dtype))
    return torch.cat(out, dim=-2)


def _filter(guide: torch.Tensor, image: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """The guided filter of a block of rows, in float64 (exact for the rows ``radius`` * 2 from a cut edge)."""
    g, p = guide.to(torch.float64), image.to(torch.float64)
    mu = _mean(g, radius)  # (1, 3, H, W)
    sigma = torch.stack(
        [
            _mean(g[:, i : i + 1] * g[:, j : j + 1], radius)[0, 0] - mu[0, i] * mu[0, j]
            for i in range(3)
            for j in range(3)
        ],
        dim=-1,
    ).reshape(*g.shape[-2:], 3, 3)  # (H, W, 3, 3)
    sigma = sigma + eps * torch.eye(3, dtype=torch.float64, device=g.device)
    out = []
    for c in range(p.shape[1]):
        pc = p[:, c : c + 1]  # (1, 1, H, W)
        mp = _mean(pc, radius)
        cov = _mean(g * pc, radius) - mu * mp  # (1, 3, H, W)
        a = torch.linalg.solve(sigma, cov[0].permute(1, 2, 0).unsqueeze(-1)).squeeze(-1)  # (H, W, 3)
        a = a.permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
        b = mp - (a * mu).sum(1, keepdim=True)  # (1, 1, H, W)
        out.append((_mean(a, radius) * g).sum(1, keepdim=True) + _mean(b, radius))
    return torch.cat(out, dim=1)
