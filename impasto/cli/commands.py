"""The ``impasto`` command: the only module that prints or exits (with its parser and progress display).

The commands are here; the parser, with a flag per field of :class:`impasto.config.Options`, is
:mod:`impasto.cli_parser`, the progress display :mod:`impasto.cli_progress`, and ``batch`` and
``video`` have modules of their own (:mod:`impasto.batch_cli`, :mod:`impasto.video_cli`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ImpastoError, InputError, cli_flag, out_of_memory, word
from .flags import option_values as _options
from .flags import shown as _shown
from .long_run import long_run
from .parser import build_parser as _build_parser
from .parser import studio_settings as _studio_settings
from .progress import Progress as _Progress

if TYPE_CHECKING:
    from ..config import Options

# Only the standard library is imported above: the library (torch: a second or more) is imported
# inside main(), where a Ctrl-C gets its one line and exit code 130.

__all__ = ["main"]

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it


_PATH_PARAMS = ("content", "styles", "init", "content_mask", "style_masks", "weights")


def _shown_paths(params: dict[str, Any], embed: bool) -> dict[str, Any]:
    """``params`` with every file named by its name only, or with ``--embed-paths`` by its absolute path.

    A shared image should not tell where its maker keeps their files (the studio stores names too).
    """
    from ..config import NAMED_INITS

    def show(value: str) -> str:
        return os.path.abspath(value) if embed else Path(value).name

    out = dict(params)
    for key in _PATH_PARAMS:
        value = out.get(key)
        if value is None or (key == "init" and value in NAMED_INITS):
            continue
        out[key] = [show(str(v)) for v in value] if isinstance(value, list | tuple) else show(str(value))
    return out


def _output_bytes(opts: Options, save_every: int) -> int:
    """A rough upper bound of the disk space the output and its snapshots take: raw RGB bytes each."""
    side = opts.final_size
    files = 1 + (opts.steps // save_every if save_every > 0 else 0)
    return 3 * side * side * files


def _run_transfer(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path]) -> int:
    if args.save_every < 0:
        raise ConfigError(f"--save-every must be >= 0, got {args.save_every}")
    from ..config import resolve
    from ..core.progress import Watch
    from ..core.record import record
    from ..core.transfer import paint
    from ..image import check_output_path, save_image
    from ..inputs import Images, recorded

    options, images = _options(args)
    opts = resolve(args.preset, **options)  # every option checked once, before loading anything
    output = check_output_path(args.output, _output_bytes(opts, args.save_every))
    params: dict[str, Any] = {"content": str(content), "styles": [str(s) for s in styles]}
    params["sources"] = _sources(args, opts)  # for impasto info
    snapshot = _shown_paths(params | opts.to_dict() | recorded(opts.init, **images), args.embed_paths)
    progress = _Progress(args.quiet, output, args.save_every, snapshot, opts.quality, yes=args.yes)
    with long_run(args, output) as (runner, checkpoint), progress:
        # paint() checks the images against the options (impasto.schedule.plan) before any work.
        watch = Watch(progress, args.save_every, None, progress.phase, args.start_time)
        result = paint(
            Images(content, list(styles), **images),
            opts,
            watch=watch,
            max_pixels=args.max_pixels,
            runner=runner,
            checkpoint=checkpoint,
        )
        progress.finish(result.loss)
    meta = record(args.preset, result, inputs=params)
    save_image(result.image, output, _shown_paths(meta, args.embed_paths), quality=opts.quality)
    if result.fault is not None:
        print(
            f"impasto: error: {result.fault}: saved the best image before it to {output} (best loss {result.loss:.4g})",
            file=sys.stderr,
        )
        return 1
    if result.interrupted:
        print(
            f"interrupted after {result.steps} steps: saved the best image so far to {output} "
            f"(best loss {result.loss:.4g})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet and (f := result.params.get("preview_fidelity")) is not None:
        print(
            "preview fidelity (the print seen at the preview's size): "
            f"content kept r {f['preview_content_kept']:.3f} -> {f['print_content_kept']:.3f}, "
            f"style reached s {f['preview_style_reached']:.3f} -> {f['print_style_reached']:.3f}",
            file=sys.stderr,
        )
    if not args.quiet:
        done = f"{result.steps} steps, {result.elapsed:.1f} s, best loss {result.loss:.4g}"
        print(f"saved {output} ({done})", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..config import unused
    from ..image import read_params

    params = read_params(args.image)
    if not params:
        raise InputError(f"{args.image}: no impasto parameters found in this image")
    if args.json:
        print(json.dumps(params, indent=2, sort_keys=True))
        return 0
    with Image.open(args.image) as img:
        rows = {"file": f"{Path(args.image).name}: {img.format} {img.width}x{img.height}"}
    sources = params.pop("sources", {})  # written since issue 9: where each option's value came from
    idle = unused(params)
    for key in sorted(params):
        value = params[key]
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        if key in idle:
            text = f"not used ({word(idle[key], cli_flag)})"
        rows[key] = f"{text}  ({sources[key]})" if key in sources else text
    width = max(len(k) for k in rows)
    for key, text in rows.items():
        print(f"{key:<{width}}  {text}")
    return 0


SOURCES = ("built-in default", "preset", "command line", "demo")  # where an option's value comes from


def _sources(args: argparse.Namespace, opts: Options) -> dict[str, str]:
    """For every option, where its value in ``opts`` came from (one of :data:`SOURCES`)."""
    from ..config import PRESETS, Options, resolve

    preset = resolve(args.preset)
    demo = getattr(args, "demo_options", ())
    out = {}
    for f in dataclasses.fields(Options):
        if getattr(args, f.name) is not None:
            out[f.name] = "demo" if f.name in demo else "command line"
        elif f.name in PRESETS[args.preset] and getattr(opts, f.name) == getattr(preset, f.name):
            out[f.name] = "preset"
        else:
            out[f.name] = "built-in default"
    for name in ("content_mask", "style_masks"):  # images, not options: given or not
        out[name] = "built-in default" if getattr(args, name) is None else "command line"
    return out


def _presets(args: argparse.Namespace) -> int:
    from ..config import PRESETS, SUMMARIES, resolve, unused

    names = [args.name] if args.name else list(PRESETS)
    tables, idle = {}, {}
    for name in names:
        values = resolve(name).to_dict()  # an unknown name: "did you mean"
        tables[name] = {k: (v, "preset" if k in PRESETS[name] else "built-in default") for k, v in values.items()}
        idle[name] = unused(values)
    if args.json:
        print(json.dumps({n: {k: v for k, (v, _) in t.items()} for n, t in tables.items()}, indent=2))
        return 0
    for n, (name, table) in enumerate(tables.items()):
        if n:
            print()
        print(f"preset {name}: {SUMMARIES[name]} (impasto stylize --preset {name}; flags override any of these)")
        key_width = max(len(k) for k in table) + 2
        value_width = max(len(_shown(v)) for v, _ in table.values())
        for key, (value, source) in table.items():
            flag = "--" + key.replace("_", "-")
            if key in idle[name]:  # not a value of this preset: it does nothing here
                print(f"  {flag:<{key_width}}  {'-':<{value_width}}  not used ({word(idle[name][key], cli_flag)})")
                continue
            print(f"  {flag:<{key_width}}  {_shown(value):<{value_width}}  {source}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..web.server import serve  # the web extra is optional

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"impasto: warning: binding {args.host}: anyone who can reach this machine on the network "
            "can use the studio",
            file=sys.stderr,
        )

    def announce() -> None:  # once the work folder is ours: a second studio on it says only why not
        print(f"impasto studio on http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)

    serve(host=args.host, port=args.port, settings=_studio_settings(args), announce=announce)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input or usage, 130 Ctrl-C)."""
    start = time.perf_counter()  # --max-time counts from here
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # save the best image on SIGTERM too
    try:
        args = _build_parser().parse_args(argv)  # the first import of the library (and torch)
        args.start_time = start
        return _command(args)
    except ImpastoError as exc:
        print(f"impasto: error: {exc.worded(cli_flag)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("impasto: interrupted before any image was made", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if (oom := out_of_memory(exc)) is None:
            raise
        print(f"impasto: error: {oom.worded(cli_flag)}", file=sys.stderr)
        return oom.exit_code
    except BrokenPipeError:  # stdout closed early, as by `impasto presets | head`: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _command(args: argparse.Namespace) -> int:
    if args.command == "info":
        return _info(args)
    if args.command == "reproduce":
        from ..reproduce import reproduce

        def progress(line: str) -> None:
            if not args.quiet:
                print(line, file=sys.stderr)

        path = reproduce(args.figure, args.output, size=args.size, steps=args.steps, device=args.device, log=progress)
        print(f"saved {path}", file=sys.stderr)
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "presets":
        return _presets(args)
    if args.command == "batch":
        from .batch import run

        return run(args)
    if args.command == "video":
        from .video import run as run_video

        return run_video(args)
    if args.command == "plan" or getattr(args, "dry_run", False):
        from .plan import run as run_plan

        return run_plan(args)
    if args.command == "stylize" and (args.workers is not None or args.bandwidth is not None):
        raise ConfigError("`workers` and `bandwidth` describe a cluster to plan for: with `dry_run` or impasto plan")
    if args.command == "demo":
        from .. import bundled_image
        from ..config import DEMO_OPTIONS

        given = {"size"} if args.print is not None else set()  # a print sets the size
        args.demo_options = [key for key in DEMO_OPTIONS if getattr(args, key) is None and key not in given]
        for key in args.demo_options:  # sized to finish in under 2 minutes on 2 cores
            setattr(args, key, DEMO_OPTIONS[key])
        return _run_transfer(args, bundled_image("tubingen"), [bundled_image("starry_night")])
    return _run_transfer(args, args.content, args.styles)


if __name__ == "__main__":
    sys.exit(main())
