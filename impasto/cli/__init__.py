"""The command line: ``impasto`` and its subcommands (the only part of impasto that prints or exits)."""

from .commands import main

__all__ = ["main"]
