"""A spectral basis for the pixels, in which L-BFGS reaches the same objective in fewer steps.

L-BFGS starts every step's curvature model from a multiple of the identity, so the basis the
variables are written in changes its path. In plain pixels every frequency of the image counts
alike, while the style loss moves the coarse structure slowly and the fine texture fast. Writing
the image as ``x = x0 + irfft2(w * z)`` (x0 the initial image, z starting at 0) with ``w ~ 1/f^0.5``
(f the spatial frequency; the weights have mean 1) lets L-BFGS take larger steps along the low
frequencies from its first step. The objective and its minimiser are unchanged: only the
optimiser's coordinates differ.

Measured on the paper objective (bundled Tübingen x The Starry Night, from the photo, bf16, AMD
EPYC Zen 5, 2026-12-04, with z the photo's own spectrum, the same map up to rounding): the steps
to pastiche's 300-step objective fall from 283 to 225 at 256 px and from 190 to 158 at 512 px;
decays 0.25 / 0.4 / 0.5 / 0.6 / 0.75 / 1 gave 238 / 219 / 225 / 241 / 256 / >300 steps at 256 px
(benchmarks/README.md, "Spectral preconditioning").
"""

from __future__ import annotations

import torch

from ..config import Precondition

__all__ = ["DECAY", "Precondition", "Spectral"]


DECAY = 0.5  # w ~ f^-DECAY


class Spectral:
    """``x = irfft2(w * z)`` for images (B, C, H, W): :meth:`to_pixels` and its inverse :meth:`from_pixels`.

    ``z`` is the orthonormal half spectrum as real pairs (B, C, H, W//2 + 1, 2), divided by ``w``.
    """

    def __init__(self, height: int, width: int, device: torch.device, decay: float = DECAY) -> None:
        self.size = (height, width)
        fy = torch.fft.fftfreq(height, device=device)[:, None]
        fx = torch.fft.rfftfreq(width, device=device)[None, :]
        f = (fx * fx + fy * fy).sqrt().clamp_min(1.0 / max(height, width))  # the mean gets the lowest frequency's
        w = f.pow(-decay)
        self.weight = w / w.mean()  # (H, W//2 + 1)

    def shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """The shape of ``z`` for images shaped like ``x``."""
        return (*x.shape[:-2], self.size[0], self.size[1] // 2 + 1, 2)

    def to_pixels(self, z: torch.Tensor) -> torch.Tensor:
        x: torch.Tensor = torch.fft.irfft2(torch.view_as_complex(z) * self.weight, s=self.size, norm="ortho")
        return x

    def from_pixels(self, x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(torch.fft.rfft2(x, norm="ortho") / self.weight).contiguous()
