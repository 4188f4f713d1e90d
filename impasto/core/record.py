"""What an output records of how it was made: one recipe for every front end.

A saved result (the CLI's, a batch item's, a studio job's, the one-call API's, a video frame's)
carries impasto's version and the preset (:func:`made_with`), the options and what the run chose
itself (:attr:`impasto.Result.params`), and what the run did (:func:`result_params`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .._version import __version__
from .transfer import Result

__all__ = ["made_with", "record", "result_params"]


def made_with(preset: str) -> dict[str, str]:
    """The first parameters of every output: impasto's version and the preset."""
    return {"impasto": __version__, "preset": preset}


def result_params(result: Result, timed: bool = True) -> dict[str, Any]:
    """What a finished run adds to its output's parameters: the loss and its terms, the steps done,
    whether it was stopped early, and (``timed``) the seconds taken and when it ended."""
    out = {
        "loss": result.loss,
        "losses": result.losses,
        "steps_done": result.steps,
        "interrupted": result.interrupted or result.stopped,
    }
    if timed:
        out |= {"seconds": round(result.elapsed, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return out


def record(
    preset: str, result: Result | None = None, *, inputs: Mapping[str, Any] | None = None, timed: bool = True
) -> dict[str, Any]:
    """An output's whole record: :func:`made_with`, what it was made from (``inputs``: file names,
    labels, settings), the run's options and choices (``result.params``) and :func:`result_params`.

    ``timed=False`` leaves out the times, so that the same work gives the same bytes (batch items).
    """
    out = made_with(preset) | dict(inputs or {})
    if result is not None:
        out |= result.params | result_params(result, timed)
    return out
