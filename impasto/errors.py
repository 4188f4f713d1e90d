"""Typed errors. The CLI turns each into one line on stderr (exit code 2 for input/config errors).

A message names the options and parameters it is about in backquotes (``"`size` must be a
positive number of pixels"``), and puts nothing else in backquotes: every lower-case name in
backquotes is a field. ``str(error)`` shows the library's own names (``size must be ...``); each
front end words them its own way with :meth:`ImpastoError.worded`: the command line as flags
(:func:`cli_flag`, ``--size``), the web studio as its form fields. What a message says depends on
the message alone, never on which modules happen to be imported. Backquotes (not braces) so that
f-strings and file name templates (``{n}``) need no escaping.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable

__all__ = [
    "FIELDS",
    "ConfigError",
    "DeviceError",
    "ImpastoError",
    "InputError",
    "NumericalError",
    "OutOfMemory",
    "cli_flag",
    "did_you_mean",
    "edit_distance",
    "out_of_memory",
    "register_fields",
    "word",
]

FIELDS: set[str] = set()  # kept for code that registered names: wording no longer consults it
_FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


def register_fields(*names: str) -> None:
    """Kept so that code calling it still runs: every ```name``` in a message is a field, registered
    or not (the package's own messages are checked to put only fields in backquotes)."""
    FIELDS.update(names)


def word(text: str, name: Callable[[str], str] = str) -> str:
    """``text`` with each ```field``` it names replaced by ``name(field)`` (messages that are not
    errors, such as the progress header's note on tiling, name fields the same way)."""
    return _FIELD.sub(lambda m: name(m.group(1)), text)


def cli_flag(name: str) -> str:
    """The command line's word for a field: ``style_size`` -> ``--style-size``."""
    return "--" + name.replace("_", "-")


class ImpastoError(Exception):
    """Base class of every error impasto raises on purpose."""

    exit_code = 1

    def worded(self, name: Callable[[str], str] = str) -> str:
        """The message with each ```field``` it names replaced by ``name(field)``."""
        return word(super().__str__(), name)

    def __str__(self) -> str:
        return self.worded()


class InputError(ImpastoError):
    """A bad input or output file: missing, unreadable, corrupt, too large, unsupported."""

    exit_code = 2


class ConfigError(ImpastoError):
    """An invalid option value or combination of options."""

    exit_code = 2


class DeviceError(ImpastoError):
    """The requested compute device is not available."""

    exit_code = 2


class NumericalError(ImpastoError):
    """The loss or its gradient was not finite before any finite image was made (bad weights, extreme options)."""


class OutOfMemory(DeviceError):
    """The device (GPU, or the CPU's RAM) ran out of memory during a run."""

    exit_code = 1  # not a usage error: the same command fits with less


_OOM_WORDS = ("out of memory", "not enough memory", "can't allocate memory", "failed to allocate memory")


def out_of_memory(exc: BaseException) -> OutOfMemory | None:
    """``exc`` as a one-line :class:`OutOfMemory` if it is an allocator's out-of-memory error, else None.

    Matches ``torch.OutOfMemoryError`` (CUDA) by name, and the RuntimeErrors of the CPU and MPS
    allocators by their wording, so that this module needs no torch.
    """
    text = str(exc).strip()
    worded = isinstance(exc, RuntimeError) and any(w in text.lower() for w in _OOM_WORDS)
    if not (type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError) or worded):
        return None
    first = text.splitlines()[0] if text else type(exc).__name__
    first = ". ".join(first.split(". ")[:2]).rstrip(".")[:160]  # then come the allocator's statistics
    what = "" if first.lower() == "out of memory" else f" ({first})"
    return OutOfMemory(f"out of memory{what}: try a smaller `size`, or tiles (`tile`, e.g. 512)")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or a list of valid choices."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (choose from: {', '.join(choices)})"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from ``a`` to ``b``."""
    row = list(range(len(b) + 1))  # distances from a[:0] to each prefix of b
    for i, ca in enumerate(a, start=1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]
