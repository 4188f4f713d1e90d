"""impasto's L-BFGS: torch's algorithm (no line search) step for step, in less memory, with its state
kept and restored for checkpoints (:mod:`impasto.core.checkpoint`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LBFGS", "MAX_LBFGS_MOVE", "on_cpu"]

MAX_LBFGS_MOVE = 128.0  # pixel levels: no L-BFGS step moves a pixel further


class LBFGS:
    """L-BFGS without line search, as ``torch.optim.LBFGS(max_iter=1)`` computes it, in less memory.

    The same two-loop recursion on the same numbers, but it holds only what the method needs:
    the gradient is read in place (not gathered into a copy), the last step becomes the newest
    curvature pair's ``s`` in place, and the direction is built in place. At print sizes each
    image-sized vector is 150 MB (4096 x 3072), and torch's keeps about four more than this.

    A step that would move some pixel by more than :data:`MAX_LBFGS_MOVE` levels is shortened
    to that: without a line search, one bad curvature estimate (the first step is ~1/|g|_1, so
    tiny that its gradient difference is mostly rounding) can throw every pixel far outside
    0..255, where the clamp's gradient is 0 and L-BFGS stays stuck for good. Healthy steps move
    pixels by a few tens of levels and are left alone; the next pair's ``s`` is the step taken.
    """

    def __init__(
        self, x: torch.Tensor, history: int, to_pixels: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self.x, self.history = x, history
        self.to_pixels = to_pixels  # x -> pixels, when x is not the pixels (the move is capped in pixels)
        self.ys: list[torch.Tensor] = []  # gradient differences, oldest first
        self.ss: list[torch.Tensor] = []  # the steps taken
        self.rho: list[torch.Tensor] = []  # 1 / (y . s)
        self.h_diag: torch.Tensor | float = 1.0
        self.d: torch.Tensor | None = None  # the last direction; ``t * d`` was the last step
        self.t: torch.Tensor | float = 1.0
        self.prev: torch.Tensor | None = None  # the last gradient

    def step(self, closure: Callable[[], torch.Tensor]) -> None:
        """Evaluate ``closure`` (it sets ``x.grad``), then move ``x`` along the L-BFGS direction."""
        with torch.enable_grad():
            closure()
        assert self.x.grad is not None
        g = self.x.grad.view(-1)
        if self.d is None:
            d = g.neg()
            inv = 1.0 / g.abs().sum()
            t: torch.Tensor | float = inv if inv < 1.0 else 1.0  # a first step of 1/|g|_1 (at most 1), as torch's
        else:
            assert self.prev is not None
            self._remember(g.sub(self.prev), self.d.mul_(self.t))
            d = self._direction(g)
            t = 1.0
        if self.prev is None:
            self.prev = g.clone()
        else:
            self.prev.copy_(g)
        self.d, self.t = d, t
        if g.dot(d) > 1.0:  # not a descent direction (torch's test with tolerance_change=-1): no move
            return
        lo, hi = torch.aminmax(d if self.to_pixels is None else self.to_pixels(d.view_as(self.x)))
        move = float(torch.maximum(hi, -lo) * t)
        if move > MAX_LBFGS_MOVE:
            self.t = t = t * (MAX_LBFGS_MOVE / move)
        with torch.no_grad():
            self.x.add_(d.view_as(self.x), alpha=float(t))

    def state(self) -> dict[str, Any]:
        """The curvature pairs, the last direction and step length, the last gradient: copies on the CPU."""
        names = ("ys", "ss", "rho", "h_diag", "d", "t", "prev")
        return {k: on_cpu(getattr(self, k)) for k in names}

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state` (on this optimiser's device)."""
        device = self.x.device

        def on(v: Any) -> Any:
            return v.to(device) if isinstance(v, torch.Tensor) else v

        self.ys, self.ss, self.rho = ([on(v) for v in state[k]] for k in ("ys", "ss", "rho"))
        self.h_diag, self.d, self.t, self.prev = (on(state[k]) for k in ("h_diag", "d", "t", "prev"))

    def _remember(self, y: torch.Tensor, s: torch.Tensor) -> None:
        """Keep the curvature pair (y, s) if it is one (y . s > 1e-10), dropping the oldest."""
        ys = y.dot(s)
        if ys > 1e-10:
            if len(self.ys) == self.history:
                del self.ys[0], self.ss[0], self.rho[0]
            self.ys.append(y)
            self.ss.append(s)
            self.rho.append(1.0 / ys)
            self.h_diag = ys / y.dot(y)

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H g by the two-loop recursion, built in one new vector."""
        q = g.neg()
        al = [torch.zeros(())] * len(self.ys)
        for i in range(len(self.ys) - 1, -1, -1):
            al[i] = self.ss[i].dot(q) * self.rho[i]
            q.add_(self.ys[i], alpha=float(-al[i]))
        d = q.mul_(self.h_diag)
        for i in range(len(self.ys)):
            be = self.ys[i].dot(d) * self.rho[i]
            d.add_(self.ss[i], alpha=float(al[i] - be))
        return d


def on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it copied to the CPU (dicts and lists followed)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(on_cpu(v) for v in value)
    return value
