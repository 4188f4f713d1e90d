"""The ``impasto`` command's parser class: a usage error is one line, with a "did you mean".

argparse prints the whole usage (28 lines for ``stylize``) before the error, and suggests nothing
for a misspelt option. :class:`Parser` prints ``impasto: error: ...`` and where to read the help,
and suggests the closest option (``--stlye-strength``) or choice (``--color lum``). Every
subcommand's parser is one of these (``add_subparsers`` makes its parsers of the parent's class).
Only the standard library is imported (see :mod:`impasto.cli`).
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["Parser"]

_CHOICE = re.compile(r"argument (?P<flag>\S+): invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)$")


def _closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` is most likely a slip for: the closest spelling, else the one it begins."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    starts = [c for c in candidates if word and c.startswith(word)]
    return close[0] if close else starts[0] if len(starts) == 1 else None


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line; the usage is shown by ``-h`` only."""

    def error(self, message: str) -> NoReturn:
        match = _CHOICE.match(message)
        if match:  # argparse quotes each choice: 'none', 'luminance', 'histogram'
            choices = [c.strip().strip("'") for c in match["choices"].split(",")]
            close = _closest(match["value"], choices)
            hint = f"did you mean '{close}'?" if close else f"choose from: {', '.join(choices)}"
            message = f"{match['flag']}: invalid choice: '{match['value']}' ({hint})"
        self.exit(2, f"impasto: error: {message}; see '{self.prog} -h'\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, with a suggestion for each unknown option from the subcommand's own."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(parsed)
            options = [s for a in command._actions for s in a.option_strings if s.startswith("--")]
            flags = [e for e in extras if e.startswith("-")]  # the values after a misspelt flag are its own
            words = []
            for extra in flags or extras:
                close = _closest(extra.split("=")[0], options) if extra.startswith("-") else None
                words.append(f"{extra} (did you mean {close}?)" if close else extra)
            kind = ("option" if flags else "argument") + ("s" if len(words) > 1 else "")
            command.error(f"unrecognized {kind}: {', '.join(words)}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The parser of the subcommand that was given (this one if none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest or "", None) or "")
                if isinstance(chosen, argparse.ArgumentParser):
                    return chosen
        return self
