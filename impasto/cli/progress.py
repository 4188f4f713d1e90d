"""The progress display of ``impasto stylize`` and ``demo``: a bar on a terminal, lines elsewhere.

It also saves the snapshots of ``--save-every``. Only the standard library is imported at the top
(see :mod:`impasto.cli`).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import cli_flag, word

if TYPE_CHECKING:
    from ..core.phases import Phase
    from ..core.transfer import Step

CONFIRM_SECONDS = 3600.0  # a run estimated at an hour or more asks first (or needs --yes)
SLOW_SECONDS = 60.0  # a run estimated at a minute or more prints every phase before its steps

__all__ = ["CONFIRM_SECONDS", "SLOW_SECONDS", "Progress", "bar_width", "fitted", "progress_line"]


class Progress:
    """Progress bar on a terminal (Rich), a line every 10 % elsewhere; also saves snapshots."""

    def __init__(
        self,
        quiet: bool,
        output: Path,
        save_every: int,
        params: dict[str, Any],
        quality: int,
        console: Any = None,
        yes: bool = False,
    ) -> None:
        self.console = console  # a rich Console; default: one on stderr (tests give one of a set width)
        self.yes = yes  # --yes: a run estimated at CONFIRM_SECONDS or more goes ahead unasked
        self.slow = False  # the plan's estimate is a minute or more: every phase gets a line
        self.last: Step | None = None  # the last event
        self.printed: tuple[int, float | None] = (0, None)  # (step, best) of the last line printed
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

    def __enter__(self) -> Progress:
        if not self.quiet and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as Bar

            console = self.console or Console(stderr=True)
            self.bar = Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=bar_width(console.width)),  # steps of planned, or seconds of --max-time
                TextColumn("{task.fields[line]}"),
                console=console,
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=None, line="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def phase(self, ph: Phase) -> None:
        """What the run is doing before its steps: the bar's description on a terminal; the plan (with
        its estimate) as a line, and the other phases too when the run is slow. Asks before a run of
        hours (:data:`CONFIRM_SECONDS`) unless ``yes``."""
        text = word(ph.text, cli_flag)
        if ph.name == "plan" and ph.seconds is not None:
            self.slow = ph.seconds >= SLOW_SECONDS
            if ph.seconds >= CONFIRM_SECONDS and not self.yes:
                self._confirm(text)
        if self.quiet:
            return
        if self.bar is not None:  # the phase in the bar's description, cut to the room beside the bar
            width = self.bar.console.width
            room = width - bar_width(width) - 2
            short = text if len(text) <= room else text[: room - 1] + "…"
            self.bar.update(self.task, description=short if ph.name != "plan" else "planned", line="")
        if ph.name in ("plan", "checkpoint") or (self.slow and self.bar is None):
            self._print(text)

    def _confirm(self, plan: str) -> None:
        """Go on only if the user says so at a terminal; elsewhere refuse (ConfigError: exit code 2)."""
        from ..errors import ConfigError

        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise ConfigError(f"{plan}: that is hours; add --yes to run it anyway, or lower --size or --steps")
        if self.bar is not None:
            self.bar.stop()
        print(f"impasto: {plan}.", file=sys.stderr)
        answer = input("That is hours. Go on? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise ConfigError("not confirmed: nothing was computed (--yes runs it without asking)")
        if self.bar is not None:
            self.bar.start()

    def __call__(self, s: Step) -> None:
        if s.image is not None and self.save_every:
            from ..image import save_image

            snap = self.output.with_name(f"{self.output.stem}-{s.step:05d}{self.output.suffix}")
            save_image(s.image, snap, self.params | {"step": s.step, "loss": s.loss}, quality=self.quality)
        if self.quiet:
            return
        if s.step == 1 or s.scale != self.scale:
            self.scale = s.scale
            plan = " -> ".join(f"{w}x{h}:{n}" for w, h, n in s.schedule)
            self._print(f"scale {s.scale}/{s.scales}  schedule (size:steps) {plan}  on {word(s.compute, cli_flag)}")
        desc = f"scale {s.scale}/{s.scales} {s.size[0]}x{s.size[1]}"
        self.last = s
        if self.bar is not None:
            width = self.bar.console.width
            desc, line = fitted(s, width - bar_width(width) - 2)  # 2: the gaps between the columns
            done, total = (s.elapsed, s.budget) if s.budget else (s.step, s.total)
            self.bar.update(self.task, description=desc, total=total, completed=min(done, total), line=line)
            return
        line = progress_line(s)
        # A line every 10 % of the steps, or of the time budget (the planned steps shrink to fit it).
        tenth = int(s.elapsed * 10 // s.budget) if s.budget else s.step * 10 // max(s.total, 1)
        # The last step's line waits for finish(): the saved image's loss is known then.
        if tenth != self.last_line and s.step < s.total:
            self.last_line = tenth
            print(f"{desc}  {line}", file=sys.stderr)
            self.printed = (s.step, s.best)

    def finish(self, best: float) -> None:
        """The last line again, its ``best`` the saved image's loss: the run evaluates the last step's
        update after the step's event, and keeps it when it is lower."""
        if self.quiet or self.last is None:
            return
        s = dataclasses.replace(self.last, best=best)
        desc = f"scale {s.scale}/{s.scales} {s.size[0]}x{s.size[1]}"
        if self.bar is not None:
            width = self.bar.console.width
            desc, line = fitted(s, width - bar_width(width) - 2)
            self.bar.update(self.task, description=desc, line=line)
        elif self.printed != (s.step, best):  # not shown yet, or shown with a higher best
            print(f"{desc}  {progress_line(s)}", file=sys.stderr)


def bar_width(columns: int) -> int:
    """The bar's width on a terminal ``columns`` wide: a quarter of it, 10 to 40 characters."""
    return max(10, min(40, columns // 4))


def _fields(s: Step) -> dict[str, str]:
    """The fields of a progress line, in the order shown."""
    from ..core.schedule import clock

    out = {"step": f"step {s.step}" if s.budget else f"step {s.step}/{s.total}", "loss": f"loss {s.loss:.4g}"}
    if s.best is not None:
        out["best"] = f"best {s.best:.4g}"
    if s.budget:
        out["time"] = f"{clock(s.elapsed)} / {clock(s.budget)} budget"
    else:
        out["elapsed"] = f"{clock(s.elapsed)} elapsed,"
        out["time"] = f"ETA {'estimating' if s.eta is None else clock(s.eta)}"
    return out


# The least useful first: the current loss (best is the saved image's), the time spent, the best loss,
# the scale's size, the step. The time left (or of the budget) and the bar stay.
_DROP = ("loss", "elapsed", "best", "size", "step")


def fitted(s: Step, room: int) -> tuple[str, str]:
    """(description, line) of the bar's two text columns, together at most ``room`` characters
    wide where dropping fields (:data:`_DROP`, in order) can make them so."""
    fields = _fields(s)
    size = f" {s.size[0]}x{s.size[1]}"
    for drop in (None, *_DROP):
        if drop == "size":
            size = ""
        elif drop is not None:
            fields.pop(drop, None)
        line = "  ".join(fields.values()).replace("elapsed,  ETA", "elapsed, ETA")
        desc = f"scale {s.scale}/{s.scales}{size}"
        if len(desc) + 1 + len(line) <= room:
            break
    return desc, line


def progress_line(s: Step) -> str:
    """``step 12/30  loss 6.7e+08  best 6.5e+08  0:09 elapsed, ETA 0:21``, or with a time budget
    ``step 12  loss ...  best ...  0:09 / 0:30 budget``.

    ``loss`` is the current image's, ``best`` the lowest so far at this scale: the saved image's.
    """
    from ..core.schedule import clock

    best = "" if s.best is None else f"  best {s.best:.4g}"
    if s.budget:
        return f"step {s.step}  loss {s.loss:.4g}{best}  {clock(s.elapsed)} / {clock(s.budget)} budget"
    eta = "estimating" if s.eta is None else clock(s.eta)
    return f"step {s.step}/{s.total}  loss {s.loss:.4g}{best}  {clock(s.elapsed)} elapsed, ETA {eta}"
