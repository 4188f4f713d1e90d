"""Video in and out: a video file (PyAV, which bundles FFmpeg) or a folder of frames, a slice of it.

Everything that can be wrong with an input is found here, before any style transfer starts: not a
video, empty or corrupt, no frames, a slice outside the video, frames over the pixel limit. Each
becomes one :class:`InputError` naming the file. Output is H.264 in MP4 (or what the extension
names) with the input's frame rate and its audio stream copied, or a folder of PNG frames.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

from ..atomic import new_temp
from ..errors import ConfigError, InputError
from ..image import DEFAULT_MAX_PIXELS, MIN_SIDE, fit_size, load_image

__all__ = [
    "FOLDER_FPS",
    "VIDEO_EXTENSIONS",
    "Clip",
    "is_video_path",
    "read_clip",
    "require",
    "write_frames",
    "write_video",
]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
FOLDER_FPS = Fraction(25)  # the frame rate of a folder of frames, unless given
_FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_INSTALL_HINT = "impasto video needs the video extra: pip install 'impasto[video]'"


def require(module: str) -> ModuleType:
    """Import ``module`` (``av`` or ``cv2``), or fail with the one-line install hint."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{_INSTALL_HINT} (missing: {module})") from None


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether an output path names a video file (else it is a folder of PNG frames)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class Clip:
    """The frames of a slice of the input, resized for the transfer, and what the output needs of the source."""

    path: Path
    frames: list[Image.Image]  # RGB, at the working size
    fps: Fraction
    start: float  # seconds into the source where frames[0] is
    source_size: tuple[int, int]  # (width, height) of the source frames
    has_audio: bool


def _slice(n: int, fps: Fraction, start: float, duration: float | None, path: Path) -> range:
    """The frame indices of ``start`` .. ``start + duration`` seconds in a clip of ``n`` frames."""
    if start < 0 or (duration is not None and duration <= 0):
        raise ConfigError(f"--start must be >= 0 and --duration > 0, got {start:g} and {duration}")
    length = n / fps
    first = round(start * fps)
    if first >= n:
        raise InputError(f"{path}: --start {start:g} s is outside the video ({float(length):.2f} s, {n} frames)")
    last = n if duration is None else min(n, round((start + duration) * fps))
    if duration is not None and start + duration > float(length) + 0.5 / float(fps):
        raise InputError(
            f"{path}: the slice {start:g}..{start + duration:g} s ends after the video ({float(length):.2f} s)"
        )
    return range(first, max(last, first + 1))


def _working(img: Image.Image, size: int | None) -> Image.Image:
    img = img.convert("RGB") if img.mode != "RGB" else img
    if size is None:
        return img
    target = fit_size(img.width, img.height, size)
    return img if target == img.size else img.resize(target, Image.Resampling.BILINEAR)


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{path}: frames are {width}x{height} = {width * height:,} px, over the limit of {max_pixels:,} px "
            "(raise it with --max-pixels)"
        )
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{path}: frames are {width}x{height} px, too small: the network needs {MIN_SIDE} px a side")


def _folder_clip(
    path: Path, size: int | None, start: float, duration: float | None, max_pixels: int, fps: Fraction | None
) -> Clip:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in _FRAME_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise InputError(f"{path}: folder has no image frames ({', '.join(_FRAME_EXTENSIONS)})")
    rate = fps or FOLDER_FPS
    frames = [load_image(files[i], max_pixels) for i in _slice(len(files), rate, start, duration, path)]
    if len({f.size for f in frames}) > 1:
        raise InputError(
            f"{path}: frames differ in size ({', '.join(sorted({f'{w}x{h}' for w, h in (f.size for f in frames)}))})"
        )
    return Clip(path, [_working(f, size) for f in frames], rate, start, frames[0].size, False)


def _why(exc: Exception) -> str:
    """FFmpeg's reason in words, without its error number and the path: "invalid data found when processing input"."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:]


def _decode(path: Path, max_pixels: int) -> tuple[Any, Any, Fraction, Iterator[Image.Image]]:
    av = require("av")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a video file, or a corrupt one ({_why(exc)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    _check_size(path, ctx.width, ctx.height, max_pixels)
    fps = Fraction(stream.average_rate or stream.guessed_rate or FOLDER_FPS)

    def frames() -> Iterator[Image.Image]:
        try:
            for frame in container.decode(stream):
                yield frame.to_image()
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: corrupt video data ({_why(exc)})") from None

    return av, container, fps, frames()


def read_clip(
    path: str | os.PathLike[str],
    size: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fps: float | None = None,
) -> Clip:
    """Decode the slice ``start`` .. ``start + duration`` seconds of a video file or a folder of frames.

    Frames are resized so that the longest side is ``size`` (kept when None). ``fps`` is the rate
    of a folder of frames (default 25). Raises :class:`InputError` for every bad input.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    rate = Fraction(fps).limit_denominator(1001) if fps else None
    if p.is_dir():
        return _folder_clip(p, size, start, duration, max_pixels, rate)
    _av, container, src_fps, decoded = _decode(p, max_pixels)
    with container:
        rate = rate or src_fps
        has_audio = bool(container.streams.audio)
        all_frames = list(decoded)  # the slice needs the frame count: decode once, keep what it covers
        if not all_frames:
            raise InputError(f"{p}: the video has no frames (empty or corrupt)")
        _check_size(p, *all_frames[0].size, max_pixels)
        keep = _slice(len(all_frames), rate, start, duration, p)
        frames = [_working(all_frames[i], size) for i in keep]
    return Clip(p, frames, rate, float(keep.start / rate), all_frames[0].size, has_audio)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_frames(frames: Sequence[str | os.PathLike[str]], out: Path) -> Path:
    """Copy the finished PNG frames into the folder ``out`` as frame_00001.png ... (replacing its frames)."""
    out.mkdir(exist_ok=True)  # its parent exists (run_video checked): impasto never makes a missing parent
    for old in out.glob("frame_*.png"):
        old.unlink()
    for i, f in enumerate(frames, start=1):
        shutil.copyfile(f, out / f"frame_{i:05d}.png")
    return out


def write_video(
    frames: Sequence[str | os.PathLike[str]], out: Path, fps: Fraction, audio_from: Clip | None = None, crf: int = 18
) -> Path:
    """Encode PNG frames as H.264 (yuv420p, even sides) at ``fps``, atomically; copy the source's audio.

    The audio of the slice ``audio_from.start`` .. + the video's length is copied packet by packet
    (no re-encoding), its timestamps moved to start at 0.
    """
    av = require("av")
    # .OUT.mp4.impasto-XXXXXXXX.part.mp4: the muxer is chosen by the extension; fd holds the lock
    # that tells a live temporary from one a killed run left (impasto.atomic) until the rename
    fd, tmp_video = new_temp(out.parent, out.name, out.suffix)
    try:
        _encode(av, frames, tmp_video, fps, audio_from, crf)
        os.replace(tmp_video, out)
    except BaseException as exc:
        tmp_video.unlink(missing_ok=True)
        if isinstance(exc, OSError | av.error.FFmpegError):
            raise InputError(f"{out}: cannot write the video ({exc})") from None
        raise
    finally:
        os.close(fd)
    return out


def _encode(
    av: Any, frames: Sequence[str | os.PathLike[str]], path: Path, fps: Fraction, clip: Clip | None, crf: int
) -> None:
    with av.open(str(path), "w") as out:
        with Image.open(frames[0]) as first:
            width, height = first.width // 2 * 2, first.height // 2 * 2  # yuv420p needs even sides
        gif = path.suffix.lower() == ".gif"
        stream = out.add_stream("gif" if gif else "libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb8" if gif else "yuv420p"
        if not gif:
            stream.options = {"crf": str(crf)}
        audio_in = audio_out = src = None
        if clip is not None and clip.has_audio and not gif and clip.path.is_file():
            src = av.open(str(clip.path))
            audio_in = src.streams.audio[0]
            audio_out = out.add_stream_from_template(audio_in)
        for f in frames:
            with Image.open(f) as img:
                rgb = img.convert("RGB").crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(rgb)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if src is not None and audio_in is not None and clip is not None:
            with src:
                _copy_audio(src, audio_in, audio_out, out, clip.start, len(frames) / fps)


def _copy_audio(src: Any, audio_in: Any, audio_out: Any, out: Any, start: float, length: Fraction) -> None:
    tb = audio_in.time_base
    begin, end = round(start / tb), round((start + float(length)) / tb)
    for packet in src.demux(audio_in):
        if packet.pts is None or packet.pts < begin:
            continue
        if packet.pts >= end:
            break
        packet.pts -= begin
        if packet.dts is not None:
            packet.dts -= begin
        packet.stream = audio_out
        with contextlib.suppress(ValueError):  # a packet the muxer refuses (out of order): drop it
            out.mux(packet)
