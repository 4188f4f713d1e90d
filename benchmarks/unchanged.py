"""Behaviour unchanged, measured: run many option sets, record each image's bytes and its progress events.

A restructuring of the core must leave every output pixel-identical and every progress event the
same. This script runs 20 option sets (colour modes, masks, several styles, init image, Adam,
ladders, the normalised network, tiles, fp32/bf16, video frames, a batch item) on the genuine
weights at small sizes, and writes per set the SHA-256 of the image's pixels and every Step's
(step, loss, losses, best)::

    python benchmarks/unchanged.py record before.json     # on the old code
    python benchmarks/unchanged.py record after.json      # on the new code
    python benchmarks/unchanged.py compare before.json after.json   # exit 1 on any difference
    python benchmarks/unchanged.py record x.json --only tiles --save DIR   # also keep the images (PNG)

Same machine, same torch, same CPU (bf16 is chosen by the CPU's flags): the record names the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 96
STEPS = 6


def _mask(size: tuple[int, int], vertical: bool) -> Image.Image:
    """A two-region mask: left/right (or top/bottom) halves, black and white."""
    w, h = size
    a = np.zeros((h, w), np.uint8)
    if vertical:
        a[:, w // 2 :] = 255
    else:
        a[h // 2 :, :] = 255
    return Image.fromarray(a)


def option_sets() -> dict[str, dict[str, Any]]:
    """name -> {"options": stylize keyword options, "styles": bundled names, "extra": transfer keywords}."""
    one, two = ["starry_night"], ["starry_night", "the_scream"]
    base = {"size": SIZE, "steps": STEPS, "seed": 3}
    sets: dict[str, dict[str, Any]] = {
        "default": {},
        "paper": {"preset": "paper"},
        "fp32": {"precision": "fp32"},
        "pixels": {"precondition": "none"},
        "luminance": {"color": "luminance"},
        "histogram": {"color": "histogram"},
        "original_colors": {"original_colors": True},
        "two_styles": {"style_blend": (0.7, 0.3), "_styles": two},
        "init_content": {"init": "content", "init_noise_blend": 0.2},
        "adam": {"optimizer": "adam", "learning_rate": 4.0},
        "ladder": {"scale_sizes": (48, 96), "size": 96},
        "one_scale": {"scales": 1},
        "normalized": {"network": "normalized", "pooling": "avg"},
        "tiles": {"size": 160, "tile": 64, "scales": 1, "steps": 4},
        "tiles_masks": {"size": 160, "tile": 64, "scales": 1, "steps": 4, "_masks": True, "_styles": two},
        "masks": {"_masks": True, "_styles": two},
        "ratio": {"style_strength": None, "ratio": 1e-2, "tv_weight": 0.0},
        "balance": {"layer_balance": True},
        "tv": {"tv_weight": 5.0},
        "init_image": {"init": "image", "_init_image": "udnie"},
    }
    out = {}
    for name, o in sets.items():
        opts = base | {k: v for k, v in o.items() if not k.startswith("_")}
        out[name] = {"options": opts, "styles": o.get("_styles", one), "masks": o.get("_masks", False)}
        if "_init_image" in o:
            out[name]["init_image"] = o["_init_image"]
    return out


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def _events(sink: list[dict[str, Any]]) -> Any:
    def on_step(step: Any) -> None:
        sink.append({"step": step.step, "loss": step.loss, "losses": step.losses, "best": step.best})

    return on_step


SAVE: list[Path] = []  # where to keep the images (--save)


def run_still(spec: dict[str, Any], name: str = "") -> dict[str, Any]:
    import impasto
    from impasto.data import bundled_image

    photo = impasto.load_image(bundled_image("tubingen"))
    styles = [impasto.load_image(bundled_image(s)) for s in spec["styles"]]
    kw: dict[str, Any] = {}
    if spec["masks"]:
        kw["content_mask"] = _mask(photo.size, True)
        kw["style_masks"] = [_mask(s.size, False) for s in styles]
    if "init_image" in spec:
        kw["init_image"] = impasto.load_image(bundled_image(spec["init_image"]))
    opts = dict(spec["options"])
    preset = opts.pop("preset", "default")
    events: list[dict[str, Any]] = []
    result = impasto.transfer(photo, styles, impasto.resolve(preset, **opts), on_step=_events(events), **kw)
    for folder in SAVE:
        result.image.save(folder / f"{name}.png")
    return {"image": _digest(result.image), "loss": result.loss, "events": events}


def run_video() -> dict[str, Any]:
    import impasto
    from impasto.data import bundled_image

    photo = impasto.load_image(bundled_image("tubingen")).resize((96, 72))
    frames = [photo.rotate(angle, resample=Image.Resampling.BILINEAR) for angle in (0.0, 1.5, 3.0)]
    events: list[dict[str, Any]] = []

    def on_step(ev: Any) -> None:
        events.append({"frame": ev.frame, "step": ev.step.step, "loss": ev.step.loss, "losses": ev.step.losses})

    style = impasto.load_image(bundled_image("starry_night"))
    outs = list(impasto.stylize_video(frames, style, size=96, steps=STEPS, scales=1, on_step=on_step))
    return {"image": [_digest(o) for o in outs], "events": events}


def run_batch_item(folder: Path) -> dict[str, Any]:
    """One batch item through the real CLI (its worker, manifest and saved PNG)."""
    from impasto.cli.commands import main
    from impasto.data import bundled_image

    out = folder / "batch"
    out.mkdir()
    args = ["batch", str(bundled_image("tubingen")), "--style", str(bundled_image("starry_night")), "-o", str(out)]
    code = main([*args, "--size", str(SIZE), "--steps", str(STEPS), "--seed", "3", "--quiet"])
    pngs = sorted(p for p in out.rglob("*.png") if "sheet" not in p.name and "contact" not in p.name)
    return {"code": code, "image": [_digest(Image.open(p)) for p in pngs]}


def record(path: Path, only: list[str]) -> None:
    import platform

    flags = Path("/proc/cpuinfo").read_text()
    cpu = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")), "?")
    out: dict[str, Any] = {
        "cpu": cpu,
        "bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "python": platform.python_version(),
    }
    sets = option_sets()
    for name, spec in sets.items():
        if only and name not in only:
            continue
        print(name, flush=True)
        out[name] = run_still(spec, name)
    if not only or "video" in only:
        print("video", flush=True)
        out["video"] = run_video()
    if not only or "batch" in only:
        print("batch", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                out["batch"] = run_batch_item(Path(tmp))
            except Exception as exc:  # the batch CLI's flags may differ: recorded, compared as text
                out["batch"] = {"error": f"{type(exc).__name__}: {exc}"}
    path.write_text(json.dumps(out, indent=1, sort_keys=True))


def compare(a_path: Path, b_path: Path) -> int:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    bad = 0
    for name in sorted(set(a) | set(b)):
        if name in ("cpu", "bf16", "python"):
            continue
        same = a.get(name) == b.get(name)
        img = a.get(name, {}).get("image") == b.get(name, {}).get("image")
        print(f"{name:16s} image {'same' if img else 'DIFFERENT'}  events {'same' if same else 'DIFFERENT'}")
        bad += not same
    print(f"{bad} of {len(set(a) | set(b)) - 3} sets differ")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out", type=Path)
    r.add_argument("--only", nargs="*", default=[])
    r.add_argument("--save", type=Path, default=None, help="a folder to keep each still's image in")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "record":
        SAVE.extend([args.save] if args.save else [])
        record(args.out, args.only)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
