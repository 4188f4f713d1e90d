"""Optical flow between input frames, warping, the consistency weights c and the temporal error.

Conventions (OpenCV's): ``flow(a, b)`` is a (H, W, 2) array of (dx, dy) with a(x) ≈ b(x + flow(x)),
so the *backward* flow of frame t, ``flow(frame_t, frame_t-1)``, says where each pixel of frame t
was in frame t-1, and ``warp(image_t-1, backward)`` brings frame t-1 into frame t.

The consistency check follows Ruder, Dosovitskiy & Brox, *Artistic style transfer for videos*
(GCPR 2016), sec. 3.1, as their reference code (artistic-videos, consistencyChecker) does it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .clip import require

__all__ = ["FlowMethod", "consistency", "flow", "temporal_error", "warp"]

FlowMethod = Literal["dis", "farneback"]
Array = NDArray[np.float32]


def _gray(img: Image.Image) -> NDArray[np.uint8]:
    return np.asarray(img.convert("L"), dtype=np.uint8)  # (H, W): both methods take 8-bit grayscale


def flow(a: Image.Image, b: Image.Image, method: FlowMethod = "dis") -> Array:
    """Dense flow (H, W, 2) from ``a`` to ``b``: a(x) ≈ b(x + flow(x)). DIS (medium preset) or Farnebäck."""
    cv2 = require("cv2")
    cv2.setNumThreads(1)  # deterministic, and the transfer has the cores
    ga, gb = _gray(a), _gray(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        out = dis.calc(ga, gb, None)
    elif method == "farneback":
        out = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}")
    return np.asarray(out, dtype=np.float32)  # (H, W, 2)


def _sample(image: Array, flow_: Array) -> tuple[Array, NDArray[np.bool_]]:
    """image(x + flow(x)), bilinear, and whether x + flow(x) lies inside the frame."""
    cv2 = require("cv2")
    h, w = flow_.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow_[..., 0], gy + flow_[..., 1]  # (H, W) each
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return np.asarray(out, dtype=np.float32).reshape(image.shape), inside


def warp(image: Array, backward: Array) -> tuple[Array, NDArray[np.bool_]]:
    """Frame t-1's ``image`` (H, W, C) brought into frame t with the backward flow, bilinear.

    Returns the warped image and a mask of the pixels whose source lies in the frame.
    """
    return _sample(image, backward)


def consistency(forward: Array, backward: Array, sigma: float = 0.8) -> Array:
    """Ruder et al.'s per-pixel weights c (H, W) in 0..1 for the pixels of frame t.

    ``backward`` is frame t -> t-1, ``forward`` frame t-1 -> t. c is 0 where the flows disagree,
    |w_b + w_f(x + w_b)|^2 >= 0.01 (|w_b|^2 + |w_f(x + w_b)|^2) + 0.5 (disocclusions: the pixel
    was hidden in t-1), at motion boundaries, |grad u|^2 + |grad v|^2 > 0.01 |w_b|^2 + 0.002, and
    where x + w_b leaves the frame; 1 elsewhere; then smoothed with a Gaussian of ``sigma`` px.
    """
    cv2 = require("cv2")
    fwd_there, inside = _sample(forward, backward)  # w_f(x + w_b(x)), (H, W, 2)
    total = backward + fwd_there
    mag = (backward**2).sum(-1) + (fwd_there**2).sum(-1)
    disagree = (total**2).sum(-1) >= 0.01 * mag + 0.5
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    boundary = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2 > 0.01 * (backward**2).sum(-1) + 0.002
    c = (~disagree & ~boundary & inside).astype(np.float32)
    if sigma > 0:
        c = cv2.GaussianBlur(c, (0, 0), sigma)
    return np.asarray(c, dtype=np.float32)


def as_array(img: Image.Image) -> Array:
    """RGB image -> float32 (H, W, 3), 0..255."""
    return np.asarray(img.convert("RGB"), dtype=np.float32)


def temporal_error(outputs: list[Image.Image], inputs: list[Image.Image], method: FlowMethod = "dis") -> list[float]:
    """The c-weighted RMS difference of each output frame t and output t-1 warped into t, 0..255 units.

    Flow and c come from the *input* frames, so the measure is the same whatever made the outputs:
    sqrt(sum_x c(x) |o_t(x) - warp(o_t-1)(x)|^2 / (3 sum_x c(x))), one value per pair of frames.
    """
    errors = []
    for t in range(1, len(outputs)):
        a, b = inputs[t], inputs[t - 1]
        if outputs[t].size != a.size:
            a, b = a.resize(outputs[t].size, Image.Resampling.BILINEAR), b.resize(outputs[t].size)
        backward, forward = flow(a, b, method), flow(b, a, method)
        c = consistency(forward, backward)  # (H, W)
        warped, _ = warp(as_array(outputs[t - 1]), backward)
        sq = ((as_array(outputs[t]) - warped) ** 2).sum(-1)  # (H, W)
        errors.append(float(np.sqrt((c * sq).sum() / (3 * max(float(c.sum()), 1e-8)))))
    return errors
