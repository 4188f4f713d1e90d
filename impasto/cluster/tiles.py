"""One image's tiled step on a Ray cluster: the tiles' passes as tasks on workers that hold the network.

A tiled step is a map-reduce (:mod:`impasto.core.objective`): pass 1 sums each tile's share of the
global statistics, pass 2 back-propagates each tile against the global ones. :class:`RayTiles` is
the objective's :class:`~impasto.core.objective.Runner`: each tile of a pass is one task on an
actor (a worker process holding the network, sent once through the object store); the scale's
global terms (their targets) and each tile's cut of the local terms (:meth:`LocalTerm.at`: the
content target of an A0 print is ~4 GB, a tile's part a few MB) go to the object store once per
scale, d(loss)/d(sums) once per step; a task carries its tile's crop and cut and brings back its share. The
driver keeps the pixels, the optimiser and the sums, and adds the shares up in tile order, as the
local run does: the same objective and gradient, up to the workers' summation order within a tile
(they run with ``threads`` threads).

A worker that dies is restarted and its tasks retried (Ray's ``max_restarts`` and
``max_task_retries``); when none can be, the step fails with a one-line :class:`ClusterError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..batch.ray_cluster import check_reachable, require_ray
from ..core.memory import WORKER_MEMORY, WORKER_THREADS
from ..core.objective import Objective, Share, Upstream
from ..core.terms import LocalTerm, Term
from ..core.tile_layout import Tile
from ..errors import ImpastoError
from ..net.kernels import unpacked
from ..net.vgg import VGG19

__all__ = ["RETRIES", "WORKER_MEMORY", "ClusterError", "RayTiles", "require_ray"]

RETRIES = 3  # times a dead worker is restarted, and a task it was running retried

log = logging.getLogger(__name__)


class ClusterError(ImpastoError):
    """The cluster could not finish a step: no worker left, or the cluster went away."""


class TileWorker:
    """A Ray actor: the network, the current scale's objective, and one tile's pass at a time."""

    def __init__(self, network: VGG19, threads: int) -> None:
        torch.set_num_threads(threads)
        self.network = network.eval()
        self.key = -1
        self.scale: tuple[list[tuple[float, Term | None]], int | None, tuple[str, ...] | None] = ([], None, None)
        self.upstream_key = -1
        self.upstream: Upstream = {}

    def _objective(self, key: int, boxed: list[Any], cut: dict[int, LocalTerm]) -> Objective:
        """The scale's objective for one tile (``boxed``: the scale's global terms, in a list so that
        Ray does not fetch them per task; ``cut``: the local terms cut to the tile)."""
        if key != self.key:
            import ray

            self.scale, self.key = ray.get(boxed[0]), key
        terms, tile, layout_layers = self.scale
        whole = [(w, cut[i] if t is None else t) for i, (w, t) in enumerate(terms)]
        return Objective(self.network, whole, tile, 0, layout_layers)

    def share(self, key: int, boxed: list[Any], cut: dict[int, LocalTerm], crop: torch.Tensor, tile: Tile) -> Share:
        return self._objective(key, boxed, cut).share(None, crop, tile)

    def gradient(
        self,
        key: int,
        boxed: list[Any],
        cut: dict[int, LocalTerm],
        crop: torch.Tensor,
        tile: Tile,
        step: int,
        up: list[Any],
    ) -> torch.Tensor | None:
        if step != self.upstream_key:
            import ray

            self.upstream, self.upstream_key = ray.get(up[0]), step
        return self._objective(key, boxed, cut).tile_gradient(crop, tile, self.upstream)

    def pid(self) -> int:
        import os

        return os.getpid()

    def peak(self) -> int:
        """This worker process's peak resident memory, bytes."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cut(objective: Objective, tile: Tile) -> dict[int, LocalTerm]:
    """The objective's local terms as ``tile`` needs them (by their index in the objective)."""
    return {i: t.at(tile) for i, (_, t) in enumerate(objective.terms) if isinstance(t, LocalTerm)}


class RayTiles:
    """The tiles of each step on ``workers`` actors of the Ray cluster at ``address`` (``auto``: the
    one this machine belongs to; a ``ray.init`` already made is used as it is), each with ``threads``
    threads and ``memory`` bytes (tiles are sized for it). The actors start at the first tiled step,
    with that objective's network."""

    def __init__(
        self,
        address: str = "auto",
        *,
        workers: int | None = None,
        threads: int = WORKER_THREADS,
        memory: int = WORKER_MEMORY,
    ) -> None:
        self.ray = ray = require_ray()
        if not ray.is_initialized():
            check_reachable(address)
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, cpus // threads)
        self.address, self.threads, self.memory = address, threads, memory
        self.actors: list[Any] = []
        self._network: VGG19 | None = None
        self._objective: Objective | None = None
        self._key = 0
        self._boxed: list[Any] = []
        self._cuts: list[Any] = []
        self._step = 0

    def _start(self, network: VGG19) -> None:
        """The actors, each with ``network`` (put in the object store once, for every worker and restart)."""
        self.close()
        with unpacked(network):  # oneDNN's packed weights do not pickle; each worker packs its own
            net_ref = self.ray.put(network)
        actor = self.ray.remote(num_cpus=self.threads, max_restarts=RETRIES, max_task_retries=RETRIES)(TileWorker)
        self.actors = [actor.remote(net_ref, self.threads) for _ in range(self.workers)]
        self._network, self._net_ref = network, net_ref

    def describe(self) -> str:
        return f"on Ray at {self.address}: {self.workers} worker(s)"

    def _scale_of(self, objective: Objective, tiles: Sequence[Tile]) -> tuple[int, list[Any], list[Any]]:
        """The objective's key and references, put in the object store once (a new objective: a new
        scale): its global terms, and each tile's cut of the local terms (:func:`_cut`), which Ray
        hands to that tile's tasks (a worker holds one tile's part at a time; a remote node fetches a
        part once per scale and keeps it in its own object store)."""
        if objective.vgg is not self._network:
            self._start(objective.vgg)
        if objective is not self._objective:
            self._objective, self._key = objective, self._key + 1
            terms = [(w, None if isinstance(t, LocalTerm) else t) for w, t in objective.terms]
            self._boxed = [self.ray.put((terms, objective.tile, objective.layout_layers))]
            self._cuts = [self.ray.put(_cut(objective, tile)) for tile in tiles]
        return self._key, self._boxed, self._cuts

    def _gather(self, refs: list[Any]) -> Iterator[Any]:
        """The tasks' results in order, once they are all done (the tasks are already sent)."""
        try:
            yield from self.ray.get(refs)
        except self.ray.exceptions.RayError as exc:  # retries used up, or the cluster went away
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"the Ray cluster could not finish a step (no worker left?): {first}") from None

    def shares(self, objective: Objective, crops: Sequence[torch.Tensor], tiles: Sequence[Tile]) -> Iterator[Share]:
        key, boxed, cuts = self._scale_of(objective, tiles)
        refs = [
            self.actors[n % len(self.actors)].share.remote(key, boxed, cuts[n], crop.contiguous(), tile)
            for n, (crop, tile) in enumerate(zip(crops, tiles, strict=True))
        ]
        return self._gather(refs)

    def gradients(
        self, objective: Objective, crops: Sequence[torch.Tensor], tiles: Sequence[Tile], upstream: Upstream
    ) -> Iterator[torch.Tensor | None]:
        key, boxed, cuts = self._scale_of(objective, tiles)
        self._step += 1
        up = [self.ray.put({i: {k: v.detach() for k, v in s.items()} for i, s in upstream.items()})]
        refs = [
            self.actors[n % len(self.actors)].gradient.remote(
                key, boxed, cuts[n], crop.contiguous(), tile, self._step, up
            )
            for n, (crop, tile) in enumerate(zip(crops, tiles, strict=True))
        ]
        return self._gather(refs)

    def pids(self) -> list[int]:
        """The workers' process ids (for tests that kill one)."""
        return [int(p) for p in self.ray.get([a.pid.remote() for a in self.actors])]

    def peaks(self) -> list[int]:
        """Each worker's peak resident memory, bytes."""
        return [int(p) for p in self.ray.get([a.peak.remote() for a in self.actors])]

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
