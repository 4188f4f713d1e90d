"""``impasto plan`` and ``impasto stylize --dry-run``: what a run will take, printed, then exit.

The numbers are :class:`impasto.core.print_plan.PrintPlan`'s; this module only formats them. Only
the standard library is imported at the top (see :mod:`impasto.cli`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import cli_flag, register_fields, word
from .flags import add_common, add_option_flags, option_values
from .long_run import add_flags as add_long_run

if TYPE_CHECKING:
    from ..core.print_plan import PrintPlan

__all__ = ["add_parser", "add_plan_flags", "format_plan", "run"]

register_fields("workers", "bandwidth", "dry_run")  # the flags its errors name (errors.py)


def add_plan_flags(p: argparse.ArgumentParser, dry_run: bool) -> None:
    """``--workers`` and ``--bandwidth`` (and on ``stylize``, ``--dry-run``)."""
    group = p.add_argument_group("planning", "What a run will take, printed before any work (impasto plan).")
    if dry_run:
        group.add_argument("--dry-run", action="store_true", help="print the plan (as impasto plan) and exit")
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="plan for a cluster of N workers, one per CPU of a machine like this one, as --ray makes them "
        "(default: --ray-workers, else 1: this machine alone); their tiles are sized for --ray-memory",
    )
    group.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        metavar="GBIT",
        help="the link between the driver and the workers, Gbit/s (default: 1)",
    )


def add_parser(sub: Any) -> None:
    """The ``plan`` subcommand: the arguments of ``stylize``; ``--output`` is optional and only checked."""
    p = sub.add_parser(
        "plan", help="print what a stylize run will take (sizes, tiles, memory, transfers, ETA), then exit"
    )
    p.add_argument("content", help="content image (the photo)")
    p.add_argument("styles", nargs="+", metavar="style", help="style image(s) (the painting)")
    p.add_argument("-o", "--output", default=None, help="the output stylize would write (not written)")
    add_common(p)
    p.add_argument("-y", "--yes", action="store_true", help="accepted for the same command line as stylize")
    add_long_run(p)
    add_option_flags(p)
    add_plan_flags(p, dry_run=False)


def _time(seconds: float) -> str:
    """A duration with its unit: ``42 s``, ``12.5 min``, ``7.4 h``, ``2.1 days``."""
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} days"


def _table(plan: PrintPlan) -> list[str]:
    """A row per scale: size, steps, tiles, crop, memory (one machine, a worker, the driver), times."""
    from ..core.memory import format_size

    head = ("scale", "size", "steps", "tiles", "crop", "one machine", "worker", "driver", "per step", "scale total")
    rows = [head]
    for i, s in enumerate(plan.scales, start=1):
        tiles = f"{s.tiles} x {s.tile} px" if s.tile is not None and s.tiles > 1 else "untiled"
        rows.append((
            f"{i}/{len(plan.scales)}", f"{s.size[0]}x{s.size[1]}", str(s.steps), tiles, f"{s.crop[0]}x{s.crop[1]}",
            format_size(s.memory), format_size(s.worker_memory), format_size(s.driver_memory),
            _time(s.step_seconds), _time(s.seconds),
        ))  # fmt: skip
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    return ["  " + "  ".join(c.ljust(widths[k]) for k, c in enumerate(r)).rstrip() for r in rows]


def format_plan(plan: PrintPlan, device: str = "") -> list[str]:
    """The plan as lines, every number from ``plan``."""
    from ..core.estimate import rough
    from ..core.memory import format_size

    opts = plan.opts
    w, h = plan.size
    lines = []
    if plan.paper is not None:
        paper = plan.paper
        lines.append(
            f"print    {paper.name} ({paper.short_mm:g} x {paper.long_mm:g} mm) at {opts.dpi} dpi: "
            f"{w}x{h} px, {plan.placement}"
        )
    else:
        lines.append(
            f"output   {w}x{h} px ({w / opts.dpi * 2.54:.1f} x {h / opts.dpi * 2.54:.1f} cm at {opts.dpi} dpi)"
        )
    final = plan.scales[-1]
    lines.append(
        f"style    style images at {final.style_side} px (style_scale {opts.style_scale:g} x the output's side): "
        "the strokes are the same share of the image at any size"
    )
    lines.append(f"steps    {plan.steps} over {len(plan.scales)} scale(s); L-BFGS history {final.history}")
    lines += _table(plan)
    lines.append(
        "memory   one machine: the whole step; a worker: the network and one crop; the driver: the whole "
        f"image's vectors (budget here {format_size(plan.budget)})"
    )
    if plan.over_budget is not None:
        lines.append(
            f"warning  the whole step needs ~{format_size(final.memory)}, more than this machine's budget "
            f"({format_size(plan.budget)}, `max_memory`): the driver needs a machine that holds "
            f"~{format_size(final.driver_memory)}"
        )
    t = final.traffic
    if plan.workers > 1 and t.total:
        lines.append(
            f"moved    per step at the final scale: crops {format_size(t.inputs)} out, gradients "
            f"{format_size(t.gradients)} back, statistics {format_size(t.statistics)} back, "
            f"d(loss)/d(statistics) {format_size(t.broadcast)} out = {format_size(t.total)}, "
            f"{_time(final.transfer_seconds)} at {plan.bandwidth:g} Gbit/s"
        )
        lines.append(
            f"once     network weights {format_size(plan.weights)} to each worker; targets "
            f"{format_size(plan.targets)} at the final scale (once per scale)"
        )
    c = plan.calibration
    here = f"here ({device})" if device else "here"
    lines.append(
        f"measured one {c.crop[0]}x{c.crop[1]} tile {here}: pass 1 {c.statistics:.2f} s, pass 2 {c.gradient:.2f} s; "
        f"the update {c.update * 1e9:.1f} ns per pixel"
    )
    where = "this machine" if plan.workers == 1 else f"{plan.workers} workers at {plan.bandwidth:g} Gbit/s"
    eta, note = plan.seconds, ""
    if opts.max_time is not None and opts.max_time < eta:
        eta, note = opts.max_time, f"; `max_time` cuts it short of the {rough(plan.seconds)} of every step"
    lines.append(f"ETA      {rough(eta)} on {where} ({eta:.0f} s{note})")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the plan of ``args`` (``impasto plan`` or ``stylize --dry-run``) on stdout; nothing is written."""
    from ..config import resolve
    from ..config.checks import parse_size
    from ..core.print_plan import DEFAULT_BANDWIDTH, plan_run
    from ..inputs import Images
    from ..net.network import resolve_device

    options, images = option_values(args)
    opts = resolve(args.preset, **options)
    if args.output is not None:
        from ..image import check_output_path

        check_output_path(args.output, 0)  # refused now as stylize would, never written
    workers = args.workers if args.workers is not None else args.ray_workers or 1
    bandwidth = DEFAULT_BANDWIDTH if args.bandwidth is None else args.bandwidth
    worker_memory = parse_size(args.ray_memory, "--ray-memory")
    plan = plan_run(
        Images(args.content, args.styles, **images), opts, workers=workers, bandwidth=bandwidth,
        worker_memory=worker_memory, max_pixels=args.max_pixels,
    )  # fmt: skip
    names = ", ".join(Path(s).name for s in args.styles)
    print(f"plan     {Path(args.content).name} in the manner of {names}, preset {args.preset}")
    device = resolve_device(opts.device).type
    for line in format_plan(plan, device):
        print(word(line, cli_flag))  # `max_memory` -> --max-memory
    return 0
