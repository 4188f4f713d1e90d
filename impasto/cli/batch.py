"""``impasto batch``: the command line of :func:`impasto.batch.batch`; prints, the library does not.

The style-transfer flags are those of ``impasto stylize`` (``cli_parser.add_option_flags``), with every
numeric one taking several values: several values sweep that option.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError
from .flags import add_common, add_option_flags, option_values

__all__ = ["add_parser", "run"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``batch`` to the ``impasto`` command's subparsers."""
    from ..batch.plan import DEFAULT_NAME
    from ..config.schema import option_fields

    p: argparse.ArgumentParser = subparsers.add_parser(
        "batch",
        help="stylise many photos x paintings x swept values into a folder, resumably (locally or on Ray)",
        description="Every INPUT (file, folder or glob) with every --style; several values of a numeric "
        "option sweep it. Run the same command again to go on after a stop or a failure.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="content images: files, folders (recursive) or globs")
    p.add_argument("--style", nargs="+", required=True, metavar="S", help="style images: files, folders or globs")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT_DIR", help="output folder (made if missing, not its parent)"
    )
    p.add_argument("--pairs", action="store_true", help="zip inputs with styles instead of every input x every style")
    p.add_argument("--name", default=None, help=f"output name pattern (default: {DEFAULT_NAME}; also {{n}})")
    p.add_argument("--no-sheet", action="store_true", help="do not write index.html and contact.png")
    p.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="ADDRESS",
        help="run the items on a Ray cluster: auto (this machine's), ray://host:port or a head node's host:port",
    )
    p.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per item on a cluster without GPUs (default: 1)")
    add_common(p)
    add_option_flags(p)
    options = {f.name for f in option_fields()}
    sweepable = []
    for action in p._actions:  # numeric options take one value or several to sweep
        if action.type in (int, float) and action.nargs is None and action.dest in options:
            action.nargs = "+"
            sweepable.append(action.dest)
    p.set_defaults(sweepable=sweepable)
    return p


class _Printer:
    """Batch events as lines on stderr: one per item, the steps of the current item every quarter."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.quarter: dict[str, int] = {}

    def __call__(self, ev: Any) -> None:
        from ..core.schedule import clock

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        count = f"[{ev.done + ev.failed}/{ev.total}]"
        eta = f"  ETA {clock(ev.eta)}" if ev.eta is not None else ""
        if ev.kind == "item_failed":
            say(f"{count} failed {ev.item.name}: {ev.reason}")
        if self.quiet:
            return
        if ev.kind == "start":
            todo = ev.total - ev.skipped
            if todo == 0:
                say(f"nothing to do: all {ev.total} items are done already")
            else:
                say(f"batch: {ev.total} items, {ev.skipped} done before, {todo} to do")
        elif ev.kind == "step" and ev.step is not None:
            quarter = ev.step.step * 4 // max(ev.step.total, 1)
            if quarter != self.quarter.get(ev.item.id):
                self.quarter[ev.item.id] = quarter
                say(f"  {ev.item.name}  step {ev.step.step}/{ev.step.total}  loss {ev.step.loss:.4g}{eta}")
        elif ev.kind == "item_done":
            say(f"{count} done {ev.item.name}  {ev.seconds:.1f} s{eta}")


def run(args: argparse.Namespace) -> int:
    """Run ``impasto batch``; returns the exit code (0, 1 if an item failed, 2 bad input, 130 Ctrl-C)."""
    from ..batch.driver import batch
    from ..inputs import IMAGE_ARGS

    if args.save_every or args.embed_paths:
        raise ConfigError("--save-every and --embed-paths are not supported by batch")
    options, images = option_values(args)  # --init FILE and the masks: images
    fixed: dict[str, Any] = {}
    sweep: dict[str, list[Any]] = {}
    for name in sorted(options):
        value = options[name]
        if name in args.sweepable and value is not None:
            if len(set(value)) > 1:
                sweep[name] = list(dict.fromkeys(value))
            else:
                fixed[name] = value[0]
        elif value is not None:
            fixed[name] = value
    fixed |= {k: images[k] for k in IMAGE_ARGS if k in images}
    manifest = batch(
        args.inputs,
        args.style,
        args.output,
        sweep=sweep,
        pairs=args.pairs,
        name=args.name,
        preset=args.preset,
        on_event=_Printer(args.quiet),
        max_pixels=args.max_pixels,
        ray=args.ray,
        ray_cpus=args.ray_cpus,
        sheet=not args.no_sheet,
        **fixed,
    )
    done, failed = manifest.count("done"), manifest.count("failed")
    pending = manifest.count("pending")
    if manifest.interrupted:
        print(
            f"impasto: interrupted: {done} done, {pending} left (run the same command to go on)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet or failed:
        sheet = "" if args.no_sheet else f"; sheet {manifest.out_dir / 'index.html'}"
        print(f"{done} done, {failed} failed; manifest {manifest.path}{sheet}", file=sys.stderr)
    for e in (manifest.entries[i] for i in manifest.current):
        if e.state == "failed":
            print(f"  failed: {e.name}: {e.reason}", file=sys.stderr)
    return EXIT_FAILED if failed else 0
