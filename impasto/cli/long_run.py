"""The flags of a long ``stylize`` run: checkpoints (``--checkpoint-every``) and a Ray cluster (``--ray``).

A run writes its checkpoint beside the output (``.NAME.impasto-checkpoint``) about every two minutes
of work, or every ``--checkpoint-every N`` steps; the same command started again resumes from it
(a changed option or image starts afresh and says so); a finished run removes it.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..core.checkpoint import Checkpoint
    from ..core.objective import Runner

__all__ = ["add_flags", "long_run"]


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="keep the run's state beside the output every N steps, to resume from "
        "(default: about every two minutes of work; 0: never)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="ADDRESS",
        help="run each step's tiles on a Ray cluster (ADDRESS of its head node; default: auto)",
    )
    p.add_argument("--ray-workers", type=int, default=None, metavar="N", help="workers to use (default: its CPUs)")
    p.add_argument(
        "--ray-memory",
        default="2GB",
        metavar="SIZE",
        help="memory each Ray worker's tile may take (default: 2GB); tiles are sized for it",
    )


@contextlib.contextmanager
def long_run(args: argparse.Namespace, output: Path) -> Iterator[tuple[Runner | None, Checkpoint | None]]:
    """The run's tile runner (with ``--ray``) and checkpoint (unless ``--checkpoint-every 0``); the
    runner's workers are stopped at the end."""
    from ..config.checks import parse_size
    from ..core.checkpoint import Checkpoint, path_for

    every = getattr(args, "checkpoint_every", None)
    if every is not None and every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {every}")
    workers = getattr(args, "ray_workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--ray-workers must be >= 1, got {workers}")
    checkpoint = None if every == 0 else Checkpoint(path_for(output), every=every or 0)
    if getattr(args, "ray", None) is None:
        yield None, checkpoint
        return
    from ..cluster import RayTiles

    runner = RayTiles(args.ray, workers=workers, memory=parse_size(args.ray_memory, "--ray-memory"))
    try:
        yield runner, checkpoint
    finally:
        runner.close()
