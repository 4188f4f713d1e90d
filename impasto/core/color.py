"""Colour control (Gatys et al. 2017, Sec. 5): luminance-only transfer and colour histogram matching.

Images here are float tensors (1, 3, H, W) with RGB values 0..255.

- Luminance-only transfer: both images are reduced to their luminance Y (YIQ); the style's Y is
  shifted and scaled to the content's mean and standard deviation; the transfer runs on Y
  (fed to the network as a gray RGB image); the result's Y is recombined with the content's I, Q.
- Histogram matching: before the transfer, the style's RGB values are mapped linearly so that
  their mean and covariance equal the content's: x' = A (x - mu_s) + mu_c with A Sigma_s A^T =
  Sigma_c. Three choices of A: ``sym`` (default), A = Sigma_c^(1/2) Sigma_s^(-1/2) with symmetric
  square roots — unique, no rotation or flip of the colour axes, as in Image Analogies;
  ``cholesky``, A = L_c L_s^-1 — depends on the order of the channels; ``pca``, via the
  eigenvectors of both covariances — can swap and flip axes when eigenvalues are close.
"""

from __future__ import annotations

import torch

from ..config import ColorMatch

__all__ = [
    "colour_map",
    "luminance",
    "match_color",
    "match_luminance",
    "rgb_to_yiq",
    "with_chroma_of",
    "yiq_to_rgb",
]


_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)


def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) RGB -> YIQ (same value range for Y)."""
    m = _RGB_TO_YIQ.to(rgb)
    return torch.einsum("ij,bjhw->bihw", m, rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq`."""
    m = torch.linalg.inv(_RGB_TO_YIQ.double()).to(yiq)
    return torch.einsum("ij,bjhw->bihw", m, yiq)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """The luminance Y as a gray RGB image (1, 3, H, W): what the network sees in luminance mode."""
    y = rgb_to_yiq(rgb)[:, :1]
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style luminance (gray RGB) shifted and scaled to the content luminance's mean and std."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    y = (ys - ys.mean()) / ys.std().clamp_min(1e-6) * yc.std() + yc.mean()
    return y.expand(-1, 3, -1, -1).contiguous()


def with_chroma_of(image: torch.Tensor, chroma_source: torch.Tensor) -> torch.Tensor:
    """``image``'s luminance with ``chroma_source``'s I and Q (same size): original colours."""
    yiq = rgb_to_yiq(chroma_source)
    yiq = torch.cat([rgb_to_yiq(image)[:, :1], yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 255)


def _mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = x.reshape(3, -1).double()  # (3, HW)
    mu = pixels.mean(dim=1, keepdim=True)
    centred = pixels - mu
    cov = centred @ centred.T / pixels.shape[1] + 1e-5 * torch.eye(3, dtype=torch.float64)
    return mu, cov


def _sqrt_sym(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8)
    power = -0.5 if inverse else 0.5
    root: torch.Tensor = vecs @ torch.diag(vals**power) @ vecs.T
    return root


def match_color(style: torch.Tensor, content: torch.Tensor, method: ColorMatch) -> torch.Tensor:
    """Map ``style``'s colours so their mean and covariance equal ``content``'s."""
    mu_s, cov_s = _mean_cov(style)
    mu_c, cov_c = _mean_cov(content)
    if method == "sym":
        a = _sqrt_sym(cov_c) @ _sqrt_sym(cov_s, inverse=True)
    elif method == "cholesky":
        a = torch.linalg.cholesky(cov_c) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    elif method == "pca":
        vals_s, vecs_s = torch.linalg.eigh(cov_s)
        vals_c, vecs_c = torch.linalg.eigh(cov_c)
        a = vecs_c @ torch.diag(vals_c.clamp_min(1e-8).sqrt()) @ torch.diag(vals_s.clamp_min(1e-8).rsqrt()) @ vecs_s.T
    else:
        raise ValueError(f"unknown colour matching method {method!r}")
    pixels = style.reshape(3, -1).double()
    mapped = a @ (pixels - mu_s) + mu_c
    # Not clamped: the network takes any value, and clamping would undo the exact match.
    return mapped.reshape(style.shape).to(style.dtype)


def colour_map(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """``content`` (1, 3, H, W) in ``style``'s colours: each pixel's RGB through the Monge map between
    Gaussian fits of the two images' colours (the 2-Wasserstein optimal affine map), clamped to 0..255.

    A global colour transfer: affine in the photo's colours, so it is a photograph still (the photo
    preset's start, ``init="mapped"``).
    """
    x = content.double()[0].reshape(3, -1)  # (3, HW)
    eye = torch.eye(3, dtype=torch.float64, device=x.device)

    def fit(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = pixels.mean(dim=1, keepdim=True)  # (3, 1)
        return mu, (pixels - mu) @ (pixels - mu).T / pixels.shape[1] + 1e-5 * eye  # (3, 3)

    mu_c, cov_c = fit(x)
    mu_s, cov_s = fit(style.double()[0].reshape(3, -1))
    root = _sqrt_sym(cov_c)
    root_inv = torch.linalg.inv(root)
    a = root_inv @ _sqrt_sym(root @ cov_s @ root) @ root_inv  # symmetric: the Monge map's matrix
    mapped = a @ (x - mu_c) + mu_s
    out: torch.Tensor = mapped.reshape(content.shape).clamp(0, 255).to(content.dtype)
    return out
