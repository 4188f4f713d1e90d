"""The ``impasto`` command: the only module that prints or exits.

Every flag of ``stylize`` is derived from a field of :class:`impasto.config.Options` (its help
text, its type); flags default to None, meaning "the preset's value".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigError, ImpastoError, InputError, cli_flag, out_of_memory, word

if TYPE_CHECKING:
    from .config import Options
    from .transfer import Step

# Only the standard library is imported above: the library (torch: a second or more) is imported
# inside main(), where a Ctrl-C gets its one line and exit code 130.

__all__ = ["main"]

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it
_CLI_ONLY = {"content_weight", "ratio"}  # added by hand: they are mutually exclusive


def _field_type(f: dataclasses.Field[Any]) -> Any:
    from .config import Options

    hint = typing.get_type_hints(Options)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return {"type": str, "choices": list(typing.get_args(hint))}
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        hint = args[0]
    if hint is bool:
        return {"action": "store_true"}
    if hint in (int, float, str):
        return {"type": hint}
    inner = [a for a in typing.get_args(hint) if a is not Ellipsis]
    if typing.get_origin(hint) is tuple and inner and inner[0] in (int, float, str):
        return {"type": inner[0], "nargs": "+"}
    return {"type": str, "nargs": "+"}  # layer lists


def _shown(value: Any) -> str:
    """A value of :meth:`Options.to_dict` as it is typed on the command line."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value)
    return "none" if value is None else str(value)


def _add_option_flags(parser: argparse.ArgumentParser, overrides: dict[str, Any] | None = None) -> None:
    """A flag per field of Options, and the masks' (images: ``inputs.IMAGE_HELP``); the help shows
    the value of the default preset (with ``overrides``)."""
    from .config import Options, resolve
    from .inputs import IMAGE_HELP, MASKS_AFTER

    defaults = resolve("default", **(overrides or {})).to_dict()
    group = parser.add_argument_group(
        "style transfer options",
        "Defaults shown are the 'default' preset's; --preset NAME changes them ('impasto presets' lists them all).",
    )
    helps = {f.name: str(f.metadata.get("help", "")) for f in dataclasses.fields(Options)} | IMAGE_HELP

    def text(name: str) -> str:
        shown = "" if defaults.get(name) is None else f" (default: {_shown(defaults[name])})"
        return (helps[name] + shown).replace("%", "%%")

    for f in dataclasses.fields(Options):
        if f.name in _CLI_ONLY:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {"type": str} if f.name == "init" else _field_type(f)  # noise, content or an image file
        group.add_argument(flag, dest=f.name, default=None, help=text(f.name), **kind)
        if f.name == MASKS_AFTER:
            group.add_argument("--content-mask", default=None, help=text("content_mask"))
            group.add_argument("--style-masks", nargs="+", default=None, help=text("style_masks"))
    weights = group.add_mutually_exclusive_group()
    weights.add_argument("--ratio", type=float, default=None, help=text("ratio"))
    weights.add_argument("--content-weight", type=float, default=None, help=text("content_weight"))


def _build_parser() -> argparse.ArgumentParser:
    from .config import DEMO_OPTIONS

    parser = argparse.ArgumentParser(
        prog="impasto", description="Neural style transfer (Gatys, Ecker & Bethge), faithful and fast."
    )
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    st = sub.add_parser("stylize", help="paint a photo in the manner of one or more paintings")
    st.add_argument("content", help="content image (the photo)")
    st.add_argument("styles", nargs="+", metavar="style", help="style image(s) (the painting)")
    st.add_argument("-o", "--output", required=True, help="output image: .png, .jpg or .webp")
    _add_common(st)
    _add_option_flags(st)

    demo = sub.add_parser("demo", help="stylise the bundled Tübingen photo as The Starry Night")
    demo.add_argument("-o", "--output", default="impasto-demo.png", help="output image")
    _add_common(demo)
    _add_option_flags(demo, DEMO_OPTIONS)

    serve = sub.add_parser("serve", help="start the local web studio")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    _add_studio_flags(serve)

    rep = sub.add_parser("reproduce", help="regenerate a figure of the paper (fig1, fig2, fig3)")
    rep.add_argument("figure", help="fig1, fig2 or fig3")
    rep.add_argument("-o", "--output", required=True, help="an existing folder: FIGURE.png and its panels go there")
    rep.add_argument("--size", type=int, default=None, help="longest side of each panel, px")
    rep.add_argument("--steps", type=int, default=None, help="L-BFGS steps per panel")
    rep.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    rep.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    info = sub.add_parser("info", help="show the parameters stored in an impasto output, and where each came from")
    info.add_argument("image")
    info.add_argument("--json", action="store_true", help="print as JSON")

    presets = sub.add_parser("presets", help="show every option of a preset (of every preset without NAME)")
    presets.add_argument("name", nargs="?", metavar="NAME", help="a preset's name")
    presets.add_argument("--json", action="store_true", help="print as JSON")
    from .batch_cli import add_parser  # impasto batch: its own module

    add_parser(sub)
    from .video_cli import add_parser as add_video  # impasto video: its own module

    add_video(sub)
    return parser


def _add_studio_flags(p: argparse.ArgumentParser) -> None:
    """A flag per studio setting (``--max-size``), each also an environment variable; the flag wins."""
    try:
        from .web.settings import ENV_PREFIX, StudioSettings
    except ImpastoError:  # no web extra: `impasto serve` says so when it runs
        return
    group = p.add_argument_group("studio limits", f"Each also set by an environment variable {ENV_PREFIX}NAME.")
    for f in dataclasses.fields(StudioSettings):
        shown = "none" if f.default is None else f"{f.default:g}" if isinstance(f.default, float) else f.default
        env = ENV_PREFIX + f.name.upper()
        text = f"{f.metadata.get('help', '')} (default: {shown}; {env})".replace("%", "%%")
        kind: Any = {"workdir": Path, "allowed_hosts": str}.get(f.name, type(f.default))
        group.add_argument(cli_flag(f.name), dest=f"studio_{f.name}", type=kind, default=None, help=text)


def _studio_settings(args: argparse.Namespace) -> Any:
    """The studio's settings: the environment's, with the flags given on top (None: none given)."""
    from .web.settings import StudioSettings

    given = {k[len("studio_") :]: v for k, v in vars(args).items() if k.startswith("studio_") and v is not None}
    if not given:
        return None
    if "allowed_hosts" in given:
        given["allowed_hosts"] = tuple(h.strip() for h in given["allowed_hosts"].split(",") if h.strip())
    return StudioSettings.from_env().replace(**given)


def _add_common(p: argparse.ArgumentParser) -> None:
    from .config import PRESETS
    from .image import DEFAULT_MAX_PIXELS

    p.add_argument("--preset", default="default", help=f"one of: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="save an intermediate image every N steps")
    p.add_argument(
        "--embed-paths",
        action="store_true",
        help="store the input files' absolute paths in the output's parameters (default: file names only)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger input images (default: {DEFAULT_MAX_PIXELS:,})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


class _Progress:
    """Progress bar on a terminal (Rich), a line every 10 % elsewhere; also saves snapshots."""

    def __init__(self, quiet: bool, output: Path, save_every: int, params: dict[str, Any], quality: int = 95) -> None:
        self.quiet = quiet
        self.quality = quality
        self.output = output
        self.save_every = save_every
        self.params = params
        self.bar: Any = None
        self.task: Any = None
        self.last_line = -1
        self.tty = sys.stderr.isatty()
        self.scale = 0

    def _print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, file=sys.stderr)

    def __enter__(self) -> _Progress:
        if not self.quiet and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),  # steps done of planned, or with --max-time seconds used of the budget
                TextColumn("{task.fields[line]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=None, line="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, s: Step) -> None:
        if s.image is not None and self.save_every:
            from .image import save_image

            snap = self.output.with_name(f"{self.output.stem}-{s.step:05d}{self.output.suffix}")
            save_image(s.image, snap, self.params | {"step": s.step, "loss": s.loss}, quality=self.quality)
        if self.quiet:
            return
        if s.step == 1 or s.scale != self.scale:
            self.scale = s.scale
            plan = " -> ".join(f"{w}x{h}:{n}" for w, h, n in s.schedule)
            self._print(f"scale {s.scale}/{s.scales}  schedule (size:steps) {plan}  on {word(s.compute, cli_flag)}")
        desc = f"scale {s.scale}/{s.scales} {s.size[0]}x{s.size[1]}"
        line = _progress_line(s)
        if self.bar is not None:
            done, total = (s.elapsed, s.budget) if s.budget else (s.step, s.total)
            self.bar.update(self.task, description=desc, total=total, completed=min(done, total), line=line)
            return
        # A line every 10 % of the steps, or of the time budget (the planned steps shrink to fit it).
        tenth = int(s.elapsed * 10 // s.budget) if s.budget else s.step * 10 // max(s.total, 1)
        if tenth != self.last_line or s.step == s.total:
            self.last_line = tenth
            print(f"{desc}  {line}", file=sys.stderr)


def _progress_line(s: Step) -> str:
    """``step 12/30  loss 6.7e+08  best 6.5e+08  0:09 elapsed, ETA 0:21``, or with a time budget
    ``step 12  loss ...  best ...  0:09 / 0:30 budget``.

    ``loss`` is the current image's, ``best`` the lowest so far at this scale: the saved image's.
    """
    from .schedule import clock

    best = "" if s.best is None else f"  best {s.best:.4g}"
    if s.budget:
        return f"step {s.step}  loss {s.loss:.4g}{best}  {clock(s.elapsed)} / {clock(s.budget)} budget"
    eta = "estimating" if s.eta is None else clock(s.eta)
    return f"step {s.step}/{s.total}  loss {s.loss:.4g}{best}  {clock(s.elapsed)} elapsed, ETA {eta}"


def _options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options, images)`` from the flags: every field of Options (None: not given), and the image
    files (``--init FILE``: ``init="image"`` and that file as ``init_image``; the masks)."""
    from .config import Options

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(Options)}
    images = {"content_mask": args.content_mask, "style_masks": args.style_masks}
    if args.init not in (None, "noise", "content"):
        options["init"], images["init_image"] = "image", args.init
    return options, {k: v for k, v in images.items() if v is not None}


_PATH_PARAMS = ("content", "styles", "init", "content_mask", "style_masks", "weights")


def _shown_paths(params: dict[str, Any], embed: bool) -> dict[str, Any]:
    """``params`` with every file named by its name only, or with ``--embed-paths`` by its absolute path.

    A shared image should not tell where its maker keeps their files (the studio stores names too).
    """

    def show(value: str) -> str:
        return os.path.abspath(value) if embed else Path(value).name

    out = dict(params)
    for key in _PATH_PARAMS:
        value = out.get(key)
        if value is None or (key == "init" and value in ("noise", "content")):
            continue
        out[key] = [show(str(v)) for v in value] if isinstance(value, list | tuple) else show(str(value))
    return out


def _output_bytes(opts: Options, save_every: int) -> int:
    """A rough upper bound of the disk space the output and its snapshots take: raw RGB bytes each."""
    side = opts.scale_sizes[-1] if opts.scale_sizes else opts.size
    files = 1 + (opts.steps // save_every if save_every > 0 else 0)
    return 3 * side * side * files


def _run_transfer(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path]) -> int:
    if args.save_every < 0:
        raise ConfigError(f"--save-every must be >= 0, got {args.save_every}")
    from ._api import provenance
    from .config import resolve
    from .image import check_output_path, save_image
    from .inputs import recorded
    from .transfer import transfer

    options, images = _options(args)
    opts = resolve(args.preset, **options)  # every option checked once, before loading anything
    output = check_output_path(args.output, _output_bytes(opts, args.save_every))
    params: dict[str, Any] = {"content": str(content), "styles": [str(s) for s in styles]}
    params["sources"] = _sources(args, opts)  # for impasto info
    snapshot = _shown_paths(params | opts.to_dict() | recorded(opts.init, **images), args.embed_paths)
    with _Progress(args.quiet, output, args.save_every, snapshot, opts.quality) as progress:
        # transfer() checks the images against the options (impasto.schedule.plan) before any work.
        result = transfer(
            content,
            list(styles),
            opts,
            start_time=args.start_time,
            on_step=progress,
            image_every=args.save_every,
            max_pixels=args.max_pixels,
            **images,
        )
    result.params = provenance(args.preset) | result.params
    meta = (
        params
        | result.params
        | {
            "loss": result.loss,
            "losses": result.losses,
            "steps_done": result.steps,
            "seconds": round(result.elapsed, 2),
            "interrupted": result.interrupted,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
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
    if not args.quiet:
        done = f"{result.steps} steps, {result.elapsed:.1f} s, best loss {result.loss:.4g}"
        print(f"saved {output} ({done})", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from PIL import Image

    from .image import read_params

    params = read_params(args.image)
    if not params:
        raise InputError(f"{args.image}: no impasto parameters found in this image")
    if args.json:
        print(json.dumps(params, indent=2, sort_keys=True))
        return 0
    with Image.open(args.image) as img:
        rows = {"file": f"{Path(args.image).name}: {img.format} {img.width}x{img.height}"}
    sources = params.pop("sources", {})  # written since issue 9: where each option's value came from
    for key in sorted(params):
        value = params[key]
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        rows[key] = f"{text}  ({sources[key]})" if key in sources else text
    width = max(len(k) for k in rows)
    for key, text in rows.items():
        print(f"{key:<{width}}  {text}")
    return 0


SOURCES = ("built-in default", "preset", "command line", "demo")  # where an option's value comes from


def _sources(args: argparse.Namespace, opts: Options) -> dict[str, str]:
    """For every option, where its value in ``opts`` came from (one of :data:`SOURCES`)."""
    from .config import PRESETS, Options, resolve

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
    from .config import PRESETS, resolve

    names = [args.name] if args.name else list(PRESETS)
    tables = {}
    for name in names:
        values = resolve(name).to_dict()  # an unknown name: "did you mean"
        tables[name] = {k: (v, "preset" if k in PRESETS[name] else "built-in default") for k, v in values.items()}
    if args.json:
        print(json.dumps({n: {k: v for k, (v, _) in t.items()} for n, t in tables.items()}, indent=2))
        return 0
    for n, (name, table) in enumerate(tables.items()):
        if n:
            print()
        print(f"preset {name} (impasto stylize --preset {name}; flags override any of these)")
        key_width = max(len(k) for k in table) + 2
        value_width = max(len(_shown(v)) for v, _ in table.values())
        for key, (value, source) in table.items():
            print(f"  {'--' + key.replace('_', '-'):<{key_width}}  {_shown(value):<{value_width}}  {source}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .web.server import serve  # the web extra is optional

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"impasto: warning: binding {args.host}: anyone who can reach this machine on the network "
            "can use the studio",
            file=sys.stderr,
        )
    print(f"impasto studio on http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)
    serve(host=args.host, port=args.port, settings=_studio_settings(args))
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
        from .reproduce import reproduce

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
        from .batch_cli import run

        return run(args)
    if args.command == "video":
        from .video_cli import run as run_video

        return run_video(args)
    if args.command == "demo":
        from . import bundled_image
        from .config import DEMO_OPTIONS

        args.demo_options = [key for key in DEMO_OPTIONS if getattr(args, key) is None]
        for key in args.demo_options:  # sized to finish in under 2 minutes on 2 cores
            setattr(args, key, DEMO_OPTIONS[key])
        return _run_transfer(args, bundled_image("tubingen"), [bundled_image("starry_night")])
    return _run_transfer(args, args.content, args.styles)


if __name__ == "__main__":
    sys.exit(main())
