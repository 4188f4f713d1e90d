"""What an output records of how it was made: one recipe for every front end.

A saved result (the CLI's, a batch item's, a studio job's, the one-call API's, a video frame's)
carries impasto's version and the preset (:func:`made_with`), the options and what the run chose
itself (:attr:`impasto.Result.params`), and what the run did (:func:`result_params`).
"""

from __future__ import annotations

import time
from typing import Any

from .._version import __version__
from .transfer import Result

__all__ = ["made_with", "record", "result_params"]


def made_with(preset: str) -> dict[str, str]:
    """The first parameters of every output: impasto's version and the preset."""
    return {"impasto": __version__, "preset": preset}


def result_params(result: Result) -> dict[str, Any]:
    """What a finished run adds to its output's parameters: the loss and its terms, the steps done,
    the seconds taken, whether it was stopped early, and when it ended."""
    return {
        "loss": result.loss,
        "losses": result.losses,
        "steps_done": result.steps,
        "seconds": round(result.elapsed, 2),
        "interrupted": result.interrupted or result.stopped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def record(preset: str, result: Result, **more: Any) -> dict[str, Any]:
    """An output's whole record: :func:`made_with`, the run's parameters, :func:`result_params`, then ``more``."""
    return made_with(preset) | result.params | result_params(result) | more
