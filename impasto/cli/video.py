"""``impasto video``: the command line of :func:`impasto.video_run.run_video`; prints, the library does not.

The style-transfer flags are those of ``impasto stylize`` (``cli_parser.add_option_flags``): they apply
to every frame (the first frame's steps and scales; later frames run one scale, warm-started).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError
from .flags import add_common, add_option_flags, option_values

__all__ = ["add_parser", "run"]

EXIT_INTERRUPTED = 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``video`` to the ``impasto`` command's subparsers."""
    from ..video.frames import STEPS, VideoSettings

    d = VideoSettings()
    p: argparse.ArgumentParser = subparsers.add_parser(
        "video",
        help="stylise a video, temporally consistent (Ruder et al.), resumably",
        description="Frame by frame with optical flow: each frame starts from the previous one warped and keeps "
        "close to it where the flow is reliable. Run the same command again to go on after a stop.",
    )
    p.add_argument("input", help="video file (mp4, mov, webm, mkv, gif...) or a folder of frames")
    p.add_argument("styles", nargs="+", metavar="style", help="style image(s) (the painting)")
    p.add_argument(
        "-o", "--output", required=True, help="output video (.mp4: H.264, the input's fps and audio) or a folder"
    )
    g = p.add_argument_group("video options")
    g.add_argument(
        "--temporal-weight",
        type=float,
        default=d.temporal_weight,
        help=f"weight of the temporal loss, relative to the frame's loss; 0: none (default: {d.temporal_weight:g})",
    )
    g.add_argument("--flow", choices=["dis", "farneback"], default=d.flow, help="optical flow (default: dis)")
    steps = ", ".join(f"{dev} {later}" for dev, (_, later) in STEPS.items())
    g.add_argument(
        "--first-frame-steps", type=int, default=None, help="steps of the first frame (default: the preset's --steps)"
    )
    g.add_argument(
        "--frame-steps", type=int, default=None, help=f"steps of every later frame (default, by device: {steps})"
    )
    g.add_argument(
        "--long-term", action="store_true", help="long-term consistency: also keep close to frames t-2 and t-4"
    )
    g.add_argument("--start", type=float, default=0.0, help="start of the slice, seconds (default: 0)")
    g.add_argument("--duration", type=float, default=None, help="length of the slice, seconds (default: to the end)")
    g.add_argument("--fps", type=float, default=None, help="frame rate of a folder of frames (default: 25)")
    add_common(p)
    add_option_flags(p)
    return p


class _Printer:
    """A line per frame, and within a frame a line every quarter of its steps (quiet: nothing)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last: tuple[int, int] = (0, -1)

    def step(self, ev: Any) -> None:
        from ..core.schedule import clock

        if self.quiet:
            return
        s = ev.step
        quarter = s.step * 4 // max(s.total, 1)
        if (ev.frame, quarter) == self.last:
            return
        self.last = (ev.frame, quarter)
        of = f"/{ev.frames}" if ev.frames else ""
        eta = "estimating" if ev.eta is None else clock(ev.eta)
        line = f"frame {ev.frame}{of}  step {s.step}/{s.total}  loss {s.loss:.4g}  {clock(ev.elapsed)} elapsed"
        print(f"{line}, ETA {eta}", file=sys.stderr, flush=True)

    def frame(self, i: int, n: int) -> None:
        if not self.quiet:
            print(f"[{i}/{n}] frame saved", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run ``impasto video``; returns the exit code (0, 2 bad input, 130 Ctrl-C)."""
    from ..video.frames import VideoSettings
    from ..video.run import run_video

    if args.save_every or args.embed_paths:
        raise ConfigError("--save-every and --embed-paths are not supported by video")
    settings = VideoSettings(
        temporal_weight=args.temporal_weight,
        flow=args.flow,
        first_frame_steps=args.first_frame_steps,
        frame_steps=args.frame_steps,
        temporal_offsets=(1, 2, 4) if args.long_term else (1,),
    )
    given, images = option_values(args)  # --init FILE and the masks: images
    options = {k: v for k, v in given.items() if v is not None}
    printer = _Printer(args.quiet)
    result = run_video(
        args.input,
        args.styles,
        args.output,
        preset=args.preset,
        settings=settings,
        start=args.start,
        duration=args.duration,
        fps=args.fps,
        max_pixels=args.max_pixels,
        on_step=printer.step,
        on_frame=printer.frame,
        on_start=None if args.quiet else _started,
        **images,
        **options,
    )
    if result.interrupted:
        done = len(list(result.work.glob("frame_*.png"))) if result.work else 0
        partial = "" if result.partial is None else f"; the best of frame {done + 1} so far: {result.partial}"
        print(
            f"impasto: interrupted: {done} of {result.frames} frames done, kept in {result.work}{partial} "
            "(run the same command to go on)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"saved {result.output} ({result.frames} frames)", file=sys.stderr)
    return 0


def _started(run: Any) -> None:
    if run.restarted:
        print("impasto: the options or inputs changed since the last run: starting over", file=sys.stderr)
    if run.done_before:
        print(f"continuing: {run.done_before} of {run.frames} frames done before", file=sys.stderr)
    else:
        print(f"video: {run.frames} frames", file=sys.stderr)
