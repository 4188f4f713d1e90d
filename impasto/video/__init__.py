"""Video: the frame loop with the temporal term (:mod:`.frames`), optical flow (:mod:`.flow`), clips in
and out (:mod:`.clip`) and the resumable work folder (:mod:`.run`)."""

import typing as _typing

from .._lazy import install as _install

if _typing.TYPE_CHECKING:
    from .frames import STEPS, FrameStep, VideoSettings, stylize_video

__all__ = ["STEPS", "FrameStep", "VideoSettings", "stylize_video"]
# Loaded on first use: the frame loop imports torch, and the command line imports this package.
__getattr__, __dir__ = _install(__name__, dict.fromkeys(__all__, "frames"), __all__)
