"""The four figures of issue 32 for a photo-to-photo output, and the global colour map it must beat.

All images are float tensors (1, 3, H, W) with RGB values 0..255, the output's size; C and S are
the content and style photos (S at the style size of the run).

- structure: SSIM's structure term (sigma_xy + c) / (sigma_x sigma_y + c), c = (0.03^2) / 2 on
  luminance in [0, 1], 7x7 Gaussian windows (sigma 1.5, valid positions), output vs C: 1 for any
  relighting of C.
- affine residual: per 7x7 window (valid positions), the ridge (1e-4, colours in [0, 1]) least-squares
  affine fit of each output channel from C's colours; the mean squared residual (the penalty not
  counted), over windows and channels, x 1e4.
- colour closed: 1 - W2(out, S) / W2(C, S), W2 between Gaussian fits of the pixels' CIELAB colours.
- style closed: 1 - L_s(out) / L_s(C), the ``look`` measure s against S (:func:`impasto.core.balance.look`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from impasto.core.balance import look
from impasto.net.vgg import VGG19

__all__ = ["affine_residual", "colour_closed", "global_colour_map", "lab", "structure", "style_closed", "w2_gauss"]

_Y = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)


def _gauss7() -> torch.Tensor:
    x = torch.arange(7, dtype=torch.float64) - 3
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    k = torch.outer(g, g)
    return (k / k.sum())[None, None]  # (1, 1, 7, 7)


def structure(out: torch.Tensor, content: torch.Tensor) -> float:
    """Mean SSIM structure term of the luminances (7x7 Gaussian windows)."""
    y = [(t.double()[0] / 255 * _Y[:, None, None]).sum(0)[None, None] for t in (out, content)]  # (1, 1, H, W)
    k = _gauss7()

    def m(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, k)

    mx, my = m(y[0]), m(y[1])
    vx = (m(y[0] * y[0]) - mx * mx).clamp_min(0)
    vy = (m(y[1] * y[1]) - my * my).clamp_min(0)
    cxy = m(y[0] * y[1]) - mx * my
    c = (0.03**2) / 2
    return float(((cxy + c) / (vx.sqrt() * vy.sqrt() + c)).mean())


def affine_residual(out: torch.Tensor, content: torch.Tensor, ridge: float = 1e-4) -> float:
    """Mean squared residual of the per-7x7-window ridge affine fit of ``out`` from ``content``, x 1e4."""
    g, p = content.double() / 255, out.double() / 255

    def m(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 7, stride=1)

    mu = m(g)  # (1, 3, h, w)
    sig = torch.stack(
        [m(g[:, i : i + 1] * g[:, j : j + 1])[0, 0] - mu[0, i] * mu[0, j] for i in range(3) for j in range(3)], -1
    ).reshape(*mu.shape[-2:], 3, 3)  # (h, w, 3, 3)
    reg = sig + ridge * torch.eye(3, dtype=torch.float64)
    total = 0.0
    for c in range(3):
        pc = p[:, c : c + 1]
        mp = m(pc)
        var = (m(pc * pc) - mp * mp)[0, 0]  # (h, w)
        cov = (m(g * pc) - mu * mp)[0].permute(1, 2, 0)  # (h, w, 3)
        a = torch.linalg.solve(reg, cov.unsqueeze(-1)).squeeze(-1)  # (h, w, 3)
        fit_var = (a.unsqueeze(-2) @ sig @ a.unsqueeze(-1))[..., 0, 0]
        resid = var - 2 * (a * cov).sum(-1) + fit_var  # E[(p - a^T I - b)^2] with b at its optimum
        total += float(resid.clamp_min(0).mean())
    return total / 3 * 1e4


def lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB 0..255 (1, 3, H, W) -> CIELAB (D65) pixels (H*W, 3), float64."""
    c = rgb.double()[0].reshape(3, -1).T / 255  # (HW, 3)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
        dtype=torch.float64,
    )
    xyz = lin @ m.T / torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
    f = torch.where(xyz > (6 / 29) ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1)


def _sqrtm(a: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((a + a.T) / 2)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def _fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(0)
    d = x - mu
    return mu, d.T @ d / x.shape[0]


def w2_gauss(x: torch.Tensor, y: torch.Tensor) -> float:
    """2-Wasserstein distance between Gaussian fits of the point sets ``x`` and ``y`` (N, 3)."""
    (m1, s1), (m2, s2) = _fit(x), _fit(y)
    r = _sqrtm(s1)
    d2 = (m1 - m2).pow(2).sum() + torch.trace(s1 + s2 - 2 * _sqrtm(r @ s2 @ r))
    return float(d2.clamp_min(0).sqrt())


def colour_closed(out: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    s = lab(style)
    return 1.0 - w2_gauss(lab(out), s) / max(w2_gauss(lab(content), s), 1e-12)


def style_closed(out: torch.Tensor, content: torch.Tensor, style: torch.Tensor, vgg: VGG19) -> float:
    return look(out, content, style, vgg).style_reached


def global_colour_map(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """C's RGB colours through the Monge map between Gaussian fits of C's and S's colours, clamped."""
    x = content.double()[0].reshape(3, -1).T  # (HW, 3)
    (mc, sc), (ms, ss) = _fit(x), _fit(style.double()[0].reshape(3, -1).T)
    sc = sc + 1e-6 * torch.eye(3, dtype=torch.float64)
    r = _sqrtm(sc)
    r_inv = torch.linalg.inv(r)
    t = r_inv @ _sqrtm(r @ ss @ r) @ r_inv  # the symmetric Monge map's matrix
    mapped = (x - mc) @ t.T + ms
    return mapped.T.reshape(content.shape).clamp(0, 255).to(content.dtype)
