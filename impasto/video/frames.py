"""Temporally consistent style transfer of a video (Ruder, Dosovitskiy & Brox, GCPR 2016).

Frame 0 is a still transfer with the options given. Every later frame t starts from the previous
*stylised* frame warped into t with the backward flow of the input frames (pixels without a valid
source, the disocclusions and borders, from the content frame) and adds the temporal loss

    L_temporal = gamma * L_ref * (1/D) sum_k c_k (x_k - w(x_t-1)_k)^2 / 255^2        (Ruder eq. 7)

to eq. 7 of Gatys et al. (c: :func:`impasto.video_flow.consistency`, D: the number of pixel
values). Deviation from the paper: the term is scaled by L_ref, the objective's value at the warm
start, so that ``temporal_weight`` means the same for every network, size and style strength
(impasto's losses are not in the reference code's units); 255^2 puts pixels in 0..1.

Long-term consistency (Ruder sec. 3.2) is ``temporal_offsets=(1, 2, 4)``: one term per earlier
output t-j, weighted "closest first": c_long(j) = max(c(j) - sum of the closer offsets' c, 0).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import Options, resolve
from ..core.terms.temporal import Temporal
from ..core.transfer import Extra, Step, transfer
from ..errors import ConfigError
from ..image import DEFAULT_MAX_PIXELS, fit_size, load_image
from ..inputs import check_init, split_images
from ..net.vgg import VGG19
from .clip import read_clip
from .flow import FlowMethod, as_array, consistency, flow, warp

__all__ = ["STEPS", "FrameInterrupted", "FrameStep", "VideoSettings", "later_step_seconds", "stylize_video"]

# The step defaults per device type, (first frame, every later frame); None: the preset's --steps
# (and its scales). A warm-started frame starts from the previous one warped, so it needs a fraction
# of a first frame's steps. How they were chosen: docs/video.md, "Choosing the steps".
STEPS: dict[str, tuple[int | None, int]] = {
    "cpu": (None, 50),  # measured: error and style loss flatten at 50 (100 steps: -3 %, -0.3 %, 2x time)
    "cuda": (None, 100),  # not measured (no GPU here): the same curve, more steps where they are cheap
    "mps": (None, 50),
}


@dataclass(frozen=True)
class VideoSettings:
    """The options of a video beyond a still's (their defaults: docs/video.md, "Choosing the steps")."""

    temporal_weight: float = 300.0  # gamma (1e3 drifted to 1.18x the style loss over 2 s: docs/video.md); 0: off
    flow: FlowMethod = "dis"
    first_frame_steps: int | None = None  # None: the device's STEPS
    frame_steps: int | None = None  # every later frame, one scale at full size, warm-started; None: STEPS
    temporal_offsets: tuple[int, ...] = (1,)  # (1, 2, 4): long-term consistency

    def check(self) -> None:
        if self.temporal_weight < 0:
            raise ConfigError(f"`temporal_weight` must be >= 0, got {self.temporal_weight:g}")
        if any(n is not None and n < 1 for n in (self.frame_steps, self.first_frame_steps)):
            raise ConfigError("`frame_steps` and `first_frame_steps` must be >= 1")
        if self.flow not in ("dis", "farneback"):
            raise ConfigError(f"unknown `flow` method '{self.flow}' (choose from: dis, farneback)")
        if not self.temporal_offsets or sorted(set(self.temporal_offsets)) != list(self.temporal_offsets):
            raise ConfigError(f"temporal offsets must be increasing, got {self.temporal_offsets}")
        if self.temporal_offsets[0] != 1:
            raise ConfigError("temporal offsets must start at 1 (the previous frame)")

    def steps_for(self, device: torch.device) -> tuple[int | None, int]:
        """(first frame, later frames) steps on ``device``: those given, else the device type's :data:`STEPS`."""
        first, later = STEPS.get(device.type, STEPS["cpu"])
        return (
            self.first_frame_steps if self.first_frame_steps is not None else first,
            self.frame_steps if self.frame_steps is not None else later,
        )


@dataclass(frozen=True)
class FrameStep:
    """A progress event of a video: a still's :class:`Step` inside frame ``frame`` of ``frames``."""

    frame: int  # 1-based
    frames: int | None  # None: a stream of unknown length
    step: Step
    eta: float | None  # seconds left for the whole run (None until a step has been timed)
    elapsed: float  # seconds since the run started


class FrameInterrupted(KeyboardInterrupt):
    """Ctrl-C inside frame ``frame`` (1-based): ``image`` is the best of it so far."""

    def __init__(self, frame: int, image: Image.Image) -> None:
        super().__init__(f"interrupted in frame {frame}")
        self.frame = frame
        self.image = image


def later_step_seconds(s: Step, size: tuple[int, int]) -> float | None:
    """Seconds per step of a later frame of ``size`` (one scale, full size), from the current frame's
    own estimate: ``s.eta`` over the pixel-steps it has left, times the later frame's pixels.

    None when nothing is left to measure by (the frame's last event). The wall time since the frame
    began is no measure: it holds the network's loading and the targets (a 1-s 128-px clip was
    estimated at 28 minutes from it).
    """
    if s.eta is None:
        return None
    before, left = s.step, 0
    for width, height, steps in s.schedule:  # (w, h, steps) per scale
        left += (steps - min(max(before, 0), steps)) * width * height
        before -= steps
    return s.eta / left * size[0] * size[1] if left > 0 else None


def _temporal(weight: float, targets: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> Extra:
    """The temporal term of one frame (gamma relative to the objective at the warm start): targets w_j
    (H, W, 3) and weights c_j (H, W)."""
    pairs = [
        (
            torch.from_numpy(w).permute(2, 0, 1).unsqueeze(0).to(device),  # (1, 3, H, W)
            torch.from_numpy(c)[None, None].to(device),  # (1, 1, H, W)
        )
        for w, c in targets
    ]
    return Extra(weight, Temporal(pairs), relative=True)


def _long_term(cs: list[np.ndarray]) -> list[np.ndarray]:
    """Ruder eq. 8: c_long(j) = max(c(j) - sum over the closer offsets k < j of c(k), 0), "closest first"."""
    out: list[np.ndarray] = []
    closer = np.zeros_like(cs[0])  # the sum of the closer offsets' c (not of their c_long)
    for c in cs:
        out.append(np.maximum(c - closer, 0.0))
        closer = closer + c
    return out


def _frames_of(frames: Iterable[Image.Image] | str | os.PathLike[str], max_pixels: int) -> Iterable[Image.Image]:
    if isinstance(frames, str | os.PathLike):
        return read_clip(frames, max_pixels=max_pixels).frames
    return frames


def stylize_video(
    frames: Iterable[Image.Image] | str | os.PathLike[str],
    style: str | os.PathLike[str] | Image.Image | Sequence[str | os.PathLike[str] | Image.Image],
    *,
    preset: str = "default",
    settings: VideoSettings | None = None,
    done: Sequence[Image.Image] = (),
    network: VGG19 | None = None,
    on_step: Callable[[FrameStep], None] | None = None,
    frames_total: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **options: Any,
) -> Iterator[Image.Image]:
    """Stylise a video frame by frame, temporally consistent; yields each stylised frame (RGB) as it is done.

    ``frames`` is an iterable of images (consumed one at a time: a stream works) or a video file
    or folder of frames. ``options`` are those of :func:`impasto.stylize` (size, style_strength,
    seed..., and its images ``init_image``, ``content_mask``, ``style_masks``). ``done`` are outputs
    of an earlier run of the same frames and options: they are yielded as they are and continue the
    run (resuming). Ctrl-C propagates as :class:`FrameInterrupted` (a KeyboardInterrupt) with the best
    image of the frame in progress; the frames yielded before it are finished.
    """
    settings = settings or VideoSettings()
    settings.check()
    options, images = split_images(options)
    opts: Options = resolve(preset, **options)
    styles = [style] if isinstance(style, str | os.PathLike | Image.Image) else list(style)
    if not styles:
        raise ConfigError("at least one style image is needed")
    style_imgs = [s if isinstance(s, Image.Image) else load_image(s, max_pixels) for s in styles]
    check_init(opts.init, "init_image" in images)  # before the first frame
    source = _frames_of(frames, max_pixels)
    total = frames_total if frames_total is not None else (len(source) if isinstance(source, Sequence) else None)
    first_steps, later_steps = settings.steps_for(_device(opts))
    first = opts if first_steps is None else dataclasses.replace(opts, steps=first_steps)
    later = dataclasses.replace(opts, steps=later_steps, scales=1, scale_sizes=None, init="image")  # the previous frame
    inputs: list[Image.Image] = []  # the last few input frames, at the working size
    outputs: list[np.ndarray] = []  # the last few outputs, (H, W, 3) float32
    clip = _Clip(style_imgs, images, first, later, settings, network, on_step, total, time.perf_counter())
    keep = max(settings.temporal_offsets)
    for t, frame in enumerate(source):
        frame = frame.convert("RGB")
        size = fit_size(frame.width, frame.height, opts.size)
        frame = frame if frame.size == size else frame.resize(size, Image.Resampling.BILINEAR)
        inputs = [*inputs[-keep:], frame]
        out = done[t].convert("RGB") if t < len(done) else _one_frame(clip, t, frame, inputs, outputs)
        outputs = [*outputs[-keep + 1 :], as_array(out)] if keep > 1 else [as_array(out)]
        yield out


@dataclass
class _Clip:
    """What every frame of one run shares: the paintings, the options of the first and later frames,
    the caller's callbacks, and the timing the ETA is estimated from."""

    styles: list[Image.Image]
    images: dict[str, Any]  # the masks of every frame and the init image of the first (paths or PIL images)
    first: Options
    later: Options
    settings: VideoSettings
    network: VGG19 | None
    on_step: Callable[[FrameStep], None] | None
    total: int | None  # frames, None for a stream
    start: float  # time.perf_counter() when the run started
    per_step: list[float] = dataclasses.field(default_factory=list)  # seconds per step of the warm-started frames


def _warm_start(
    clip: _Clip, frame: Image.Image, inputs: list[Image.Image], outputs: list[np.ndarray]
) -> tuple[Image.Image, list[Extra]]:
    """A later frame's start (the previous output warped into it; the content where it was occluded)
    and its temporal term (Ruder eq. 7, 8) against the earlier outputs warped."""
    settings = clip.settings
    offsets = [j for j in settings.temporal_offsets if j <= len(outputs)]
    warped, cs, hard = [], [], None
    for j in offsets:
        backward = flow(frame, inputs[-1 - j], settings.flow)  # t -> t-j, (H, W, 2)
        forward = flow(inputs[-1 - j], frame, settings.flow)  # t-j -> t
        warped.append(warp(outputs[-j], backward)[0])  # (H, W, 3)
        cs.append(consistency(forward, backward))  # (H, W)
        if hard is None:  # where the previous frame has a valid source, before smoothing
            hard = consistency(forward, backward, sigma=0.0)[..., None]  # (H, W, 1)
    assert hard is not None
    start_px = hard * warped[0] + (1 - hard) * as_array(frame)  # disocclusions start from the content
    init = Image.fromarray(np.clip(start_px + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    if settings.temporal_weight <= 0:
        return init, []
    pairs = list(zip(warped, _long_term(cs), strict=True))
    return init, [_temporal(settings.temporal_weight, pairs, _device(clip.first))]


def _one_frame(
    clip: _Clip, t: int, frame: Image.Image, inputs: list[Image.Image], outputs: list[np.ndarray]
) -> Image.Image:
    """Frame ``t``: a still transfer (t = 0) or warm-started from the warped previous output with the temporal loss."""
    opts, init, extra = clip.first, clip.images.get("init_image"), list[Extra]()
    if t > 0:
        opts = clip.later
        init, extra = _warm_start(clip, frame, inputs, outputs)
    frame_start = time.perf_counter()
    rate: list[float] = []  # seconds per later step, as last estimated from this frame

    def progress(s: Step) -> None:
        if clip.on_step is None:
            return
        eta = None
        estimate = later_step_seconds(s, frame.size)
        rate[:] = [estimate] if estimate is not None else rate
        if s.eta is not None and (clip.per_step or rate):
            left = (clip.total - t - 1) if clip.total is not None else 0
            per = sum(clip.per_step) / len(clip.per_step) if clip.per_step else rate[0]
            eta = s.eta + left * clip.later.steps * per
        elapsed = time.perf_counter() - clip.start
        clip.on_step(FrameStep(t + 1, clip.total, s, eta if clip.total is not None else None, elapsed))

    masks = {k: v for k, v in clip.images.items() if k != "init_image"}
    result = transfer(
        frame, clip.styles, opts, init_image=init, network=clip.network, on_step=progress, extra=extra, **masks
    )
    if result.interrupted:
        raise FrameInterrupted(t + 1, result.image)
    if t > 0 and result.steps:
        clip.per_step.append((time.perf_counter() - frame_start) / result.steps)
    return result.image


def _device(opts: Options) -> torch.device:
    from ..net.network import resolve_device

    return resolve_device(opts.device)
