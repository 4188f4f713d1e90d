"""The ``impasto`` command's parser: its subcommands, and a flag per field of :class:`~impasto.config.Options`.

Each flag's type and help text come from :func:`impasto.options_schema.option_fields`; flags default
to None, meaning "the preset's value". Only the standard library is imported at the top: the
library (and torch) is imported while the parser is built, inside :func:`impasto.cli.commands`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import ImpastoError, cli_flag
from .batch import add_parser as add_batch
from .flags import add_common, add_option_flags
from .long_run import add_flags as add_long_run
from .plan import add_parser as add_plan
from .plan import add_plan_flags
from .usage import Parser
from .video import add_parser as add_video

if TYPE_CHECKING:
    pass

__all__ = ["build_parser", "studio_settings"]


def build_parser() -> argparse.ArgumentParser:
    """The ``impasto`` command and its subcommands (``batch`` and ``video`` from their own modules)."""
    from ..config import DEMO_OPTIONS  # lazy: torch out of CLI start-up (impasto.cli.flags)

    parser = Parser(prog="impasto", description="Neural style transfer (Gatys, Ecker & Bethge), faithful and fast.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    st = sub.add_parser("stylize", help="paint a photo in the manner of one or more paintings")
    st.add_argument("content", help="content image (the photo)")
    st.add_argument("styles", nargs="+", metavar="style", help="style image(s) (the painting)")
    st.add_argument("-o", "--output", required=True, help="output image: .png, .jpg or .webp")
    add_common(st)
    _add_yes(st)
    add_long_run(st)
    add_option_flags(st)
    add_plan_flags(st, dry_run=True)
    add_plan(sub)

    demo = sub.add_parser("demo", help="stylise the bundled Tübingen photo as The Starry Night")
    demo.add_argument("-o", "--output", default="impasto-demo.png", help="output image")
    add_common(demo)
    _add_yes(demo)
    add_option_flags(demo, DEMO_OPTIONS)

    serve = sub.add_parser("serve", help="start the local web studio")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    _add_studio_flags(serve)

    rep = sub.add_parser("reproduce", help="regenerate a figure of the paper (fig1, fig2, fig3)")
    rep.add_argument("figure", help="fig1, fig2 or fig3")
    rep.add_argument("-o", "--output", required=True, help="folder of FIGURE.png and its panels (made if missing)")
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
    add_batch(sub)
    add_video(sub)
    return parser


def _add_studio_flags(p: argparse.ArgumentParser) -> None:
    """A flag per studio setting (``--max-size``), each also an environment variable; the flag wins."""
    try:
        from ..web.settings import ENV_PREFIX, StudioSettings
    except ImpastoError:  # no web extra: `impasto serve` says so when it runs
        return
    group = p.add_argument_group("studio limits", f"Each also set by an environment variable {ENV_PREFIX}NAME.")
    for f in dataclasses.fields(StudioSettings):
        default = "none" if f.default is None else f"{f.default:g}" if isinstance(f.default, float) else f.default
        env = ENV_PREFIX + f.name.upper()
        text = f"{f.metadata.get('help', '')} (default: {default}; {env})".replace("%", "%%")
        kind: Any = {"workdir": Path, "allowed_hosts": str}.get(f.name, type(f.default))
        group.add_argument(cli_flag(f.name), dest=f"studio_{f.name}", type=kind, default=None, help=text)


def studio_settings(args: argparse.Namespace) -> Any:
    """The studio's settings: the environment's, with the flags given on top (None: none given)."""
    from ..web.settings import StudioSettings

    given = {k[len("studio_") :]: v for k, v in vars(args).items() if k.startswith("studio_") and v is not None}
    if not given:
        return None
    if "allowed_hosts" in given:
        given["allowed_hosts"] = tuple(h.strip() for h in given["allowed_hosts"].split(",") if h.strip())
    return StudioSettings.from_env().replace(**given)


def _add_yes(p: argparse.ArgumentParser) -> None:
    """``--yes``: a run of hours (impasto.cli.progress.CONFIRM_SECONDS) goes ahead without asking."""
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="run even when the estimated time is an hour or more (default: ask at a terminal, refuse elsewhere)",
    )
