"""Typed errors. The CLI turns each into one line on stderr (exit code 2 for input/config errors)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "DeviceError", "ImpastoError", "InputError", "did_you_mean", "edit_distance"]


class ImpastoError(Exception):
    """Base class of every error impasto raises on purpose."""

    exit_code = 1


class InputError(ImpastoError):
    """A bad input or output file: missing, unreadable, corrupt, too large, unsupported."""

    exit_code = 2


class ConfigError(ImpastoError):
    """An invalid option value or combination of options."""

    exit_code = 2


class DeviceError(ImpastoError):
    """The requested compute device is not available."""

    exit_code = 2


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
