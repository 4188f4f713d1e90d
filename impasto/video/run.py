"""A whole, resumable video run: input checked, frames kept in a work folder, output written at the end.

The work folder, ``.OUTNAME.impasto-work`` next to the output, holds every finished frame as a PNG
(written atomically) and ``fingerprint.json``: a hash of the options, the video settings and the
inputs (names, sizes, modification times, the slice). The same command finds its frames and goes
on from the first missing one; a changed option or input starts over. A finished run writes the
output and removes the work folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import resolve
from ..core.record import record
from ..errors import InputError
from ..image import DEFAULT_MAX_PIXELS, load_image, save_image
from ..image.save import _new_file
from ..inputs import IMAGE_ARGS, recorded, split_images
from ..net.vgg import VGG19
from .clip import Clip, is_video_path, read_clip, require, write_frames, write_video
from .frames import FrameInterrupted, FrameStep, VideoSettings, stylize_video

__all__ = ["VideoRun", "check_output", "run_video", "work_folder"]


@dataclass
class VideoRun:
    """The outcome of :func:`run_video`."""

    output: Path
    frames: int  # frames of the slice
    done_before: int  # frames found finished in the work folder
    interrupted: bool = False
    restarted: bool = False  # a work folder of other options or inputs was discarded
    work: Path | None = None
    partial: Path | None = None  # after Ctrl-C inside a frame: the best image of that frame so far


def work_folder(output: Path) -> Path:
    return output.parent / f".{output.name}.impasto-work"


def check_output(path: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, an output that cannot be written: missing or read-only folder, wrong kind."""
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: output folder '{parent}' does not exist")
    if is_video_path(out) and out.is_dir():
        raise InputError(f"{out}: is a directory, not a video file")
    if not is_video_path(out) and out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder (a video output needs an extension such as .mp4)")
    try:
        fd, probe = _new_file(parent, out.name)
        probe.unlink()  # while it is ours (locked): impasto.atomic
        os.close(fd)
    except OSError as exc:
        raise InputError(f"{out}: cannot create files in '{parent}' ({exc.strerror or exc})") from None
    return out


def _identity(path: Path) -> list[Any]:
    """What tells one input file (or folder of frames) from another, without reading it all."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _fingerprint(
    source: Path, styles: Sequence[Path], options: dict[str, Any], settings: VideoSettings, slice_: list[Any]
) -> str:
    from .._version import __version__

    data = {
        "impasto": __version__,
        "options": options,
        "video": asdict(settings),
        "input": _identity(source),
        "styles": [_identity(s) for s in styles],
        "slice": slice_,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _finished(work: Path, n: int) -> list[Image.Image]:
    """The consecutive finished frames 1, 2, ... found in the work folder (an unreadable one ends the list)."""
    done = []
    for i in range(1, n + 1):
        p = work / f"frame_{i:05d}.png"
        if not p.is_file():
            break
        try:
            with Image.open(p) as img:
                done.append(img.convert("RGB"))
        except OSError:
            break
    return done


def _open_work(work: Path, key: str, about: dict[str, Any]) -> bool:
    """Make the work folder of the run fingerprinted ``key``; True if one of another run was cleared.

    A folder with the same fingerprint is kept as it is: its finished frames are reused (resume).
    """
    stamp = work / "fingerprint.json"
    restarted = False
    if work.exists() and (not stamp.is_file() or json.loads(stamp.read_text()).get("fingerprint") != key):
        shutil.rmtree(work)
        restarted = True
    work.mkdir(exist_ok=True)
    if not stamp.is_file():
        stamp.write_text(json.dumps({"fingerprint": key} | about))
    return restarted


def _resume(
    out: Path, src: Path, style_paths: list[Path], styles: list[str], options: dict[str, Any],
    settings: VideoSettings, clip: Clip,
) -> tuple[VideoRun, list[Image.Image]]:  # fmt: skip
    """The run's work folder opened (cleared if another run's), and the frames it already holds."""
    work = work_folder(out)
    key = _fingerprint(src, style_paths, options, settings, [clip.start, len(clip.frames), float(clip.fps)])
    restarted = _open_work(work, key, {"input": str(src), "styles": styles})
    n = len(clip.frames)
    done = _finished(work, n)
    return VideoRun(out, n, len(done), restarted=restarted, work=work), done


def _save_frames(frames: Iterator[Image.Image], run: VideoRun, done: int, params: dict[str, Any],
                 on_frame: Callable[[int, int], None] | None) -> None:  # fmt: skip
    """Each new frame saved in the work folder as it comes; Ctrl-C marks ``run`` interrupted (and keeps
    the best image of the frame in progress beside the finished ones)."""
    assert run.work is not None
    work, n = run.work, run.frames
    try:
        for i, frame in enumerate(frames, start=1):
            if i > done:
                save_image(frame, work / f"frame_{i:05d}.png", params | {"frame": i, "frames": n})
                if on_frame is not None:
                    on_frame(i, n)
    except KeyboardInterrupt as exc:
        run.interrupted = True
        if isinstance(exc, FrameInterrupted):  # the best of the frame in progress, kept beside the finished ones
            run.partial = work / f"partial_{exc.frame:05d}.png"
            save_image(exc.image, run.partial, params | {"frame": exc.frame, "frames": n, "partial": True})


def _write_output(run: VideoRun, clip: Clip) -> None:
    """The finished frames written as the output (a video, or a folder of PNGs); the work folder removed."""
    assert run.work is not None
    pngs = [run.work / f"frame_{i:05d}.png" for i in range(1, run.frames + 1)]
    if is_video_path(run.output):
        write_video(pngs, run.output, clip.fps, clip)
    else:
        write_frames(pngs, run.output)
    shutil.rmtree(run.work)
    run.work = None


def run_video(
    source: str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    preset: str = "default",
    settings: VideoSettings | None = None,
    start: float = 0.0,
    duration: float | None = None,
    fps: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    network: VGG19 | None = None,
    on_step: Callable[[FrameStep], None] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    on_start: Callable[[VideoRun], None] | None = None,
    **options: Any,
) -> VideoRun:
    """Stylise the slice of ``source`` into ``output`` (video file or folder of PNGs), resumably.

    Every input is checked before the first step. ``on_frame(i, n)`` is called when frame i of n
    is finished and saved; ``on_start(run)`` once the inputs are checked and the work folder read.
    Ctrl-C returns a :class:`VideoRun` with ``interrupted`` set.
    """
    settings = settings or VideoSettings()
    settings.check()
    opts = resolve(preset, **split_images(options)[0])
    named = recorded(opts.init, *(options.get(k) for k in IMAGE_ARGS))  # the init image and masks, by name
    out = check_output(output)
    if is_video_path(out):
        require("av")
    require("cv2")
    src = Path(source)
    style_paths = [Path(s) for s in styles]
    style_imgs = [load_image(s, max_pixels) for s in style_paths]
    clip = read_clip(src, opts.size, start, duration, max_pixels, fps)
    run, done = _resume(out, src, style_paths, [str(s) for s in styles], opts.to_dict() | named, settings, clip)
    if on_start is not None:
        on_start(run)
    params = record(
        preset, inputs={"content": src.name, "styles": [s.name for s in style_paths], **opts.to_dict(), **named}
    ) | asdict(settings)
    frames = stylize_video(
        clip.frames, style_imgs, preset=preset, settings=settings, done=done, network=network, on_step=on_step,
        max_pixels=max_pixels, **options,
    )  # fmt: skip
    _save_frames(frames, run, len(done), params, on_frame)
    if not run.interrupted:
        _write_output(run, clip)
    return run
