"""The optimisation loop on the pixels: L-BFGS (the paper's choice) or Adam, one scale at a time.

The loss is always evaluated on the image that will be saved: pixels are clamped to 0..255
*inside* the objective, so the optimiser's loss is the saved image's loss (up to rounding to
8 bits) and nothing is lost by clamping afterwards. The lowest-loss image seen is kept and
returned, so an interrupted or non-monotone run still yields its best image.

This module never prints: progress goes to a callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..config import Optimizer, Precondition
from .checkpoint import Keeper
from .lbfgs import LBFGS, MAX_LBFGS_MOVE, on_cpu
from .objective import Objective
from .precondition import Spectral

# LBFGS and MAX_LBFGS_MOVE: re-exported from impasto.core.lbfgs
__all__ = ["LBFGS", "LOSS_SCALE", "MAX_LBFGS_MOVE", "Optimizer", "ScaleResult", "ScaleStep", "optimize"]


@dataclass(frozen=True)
class ScaleStep:
    """What :func:`optimize` reports after every step. Tensors stay on the device (no host sync)."""

    step: int  # counts from 1
    loss: torch.Tensor  # () the total loss of ``image``
    terms: dict[str, torch.Tensor]  # the loss terms: content, style, tv, style:<layer>
    image: torch.Tensor  # (1, 3, H, W), 0..255: the clamped image this step evaluated


StepCallback = Callable[[ScaleStep], None]


@dataclass
class ScaleResult:
    """The outcome of optimising at one scale."""

    image: torch.Tensor  # (1, 3, H, W), 0..255, the lowest-loss image evaluated
    loss: float
    terms: dict[str, float]
    steps: int  # steps actually taken
    interrupted: bool = False  # Ctrl-C
    stopped: bool = False  # should_stop() returned True
    seconds: float = 0.0
    fault: str | None = None  # the loss or gradient stopped being finite: what happened, in one line


class _Best:
    """Lowest loss seen and its image, updated on the device without a host synchronisation."""

    def __init__(self, image: torch.Tensor) -> None:
        self.loss = torch.full((), math.inf, device=image.device)
        self.image = image.detach().clone()
        self.terms: dict[str, torch.Tensor] = {}

    def update(self, loss: torch.Tensor, image: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        loss = loss.detach()
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        torch.where(better, image.detach(), self.image, out=self.image)  # in place: no second image
        for k, v in terms.items():
            self.terms[k] = torch.where(better, v, self.terms[k]) if k in self.terms else v

    def state(self) -> dict[str, Any]:
        return {"loss": self.loss.cpu(), "image": self.image.cpu().clone(), "terms": on_cpu(self.terms)}

    def restore(self, state: dict[str, Any]) -> None:
        device = self.image.device
        self.loss = state["loss"].to(device)
        self.image.copy_(state["image"])
        self.terms = {k: v.to(device) for k, v in state["terms"].items()}


LOSS_SCALE = 1e4  # L-BFGS minimises the objective times a constant that makes it start here (see optimize)


def _numerical_fault(loss: torch.Tensor, grad: torch.Tensor | None) -> str | None:
    """What is not finite after a step, the loss or its gradient, in words; None when both are.

    One host synchronisation per step. A non-finite value is never the best image (NaN < best is
    False), but the optimiser's next steps would all be NaN: stopping at once keeps the best one.
    """
    finite = torch.isfinite(loss) if grad is None else torch.isfinite(loss) & torch.isfinite(grad).all()
    if bool(finite):
        return None
    if not bool(torch.isfinite(loss)):
        return f"the loss became {float(loss)}"
    return "the gradient became NaN or infinite"


class _Closure:
    """The optimiser's closure: eq. 7 and its gradient at the clamped pixels, times ``scale``.

    Every evaluation updates ``best``; the last one's (loss, terms, image) stay in ``last``.
    """

    def __init__(
        self, objective: Objective, x: torch.Tensor, pixels: Callable[[], torch.Tensor], best: _Best, scale: float
    ) -> None:
        self.objective, self.x, self.pixels, self.best, self.scale = objective, x, pixels, best, scale
        self._last: tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor] | None = None

    @property
    def last(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """The latest evaluation's (loss, terms, image), detached: an optimiser step makes one or more."""
        assert self._last is not None, "no evaluation yet"
        return self._last

    def __call__(self) -> torch.Tensor:
        self.x.grad = None  # the backward hands its gradient over without a copy
        image = self.pixels().clamp(0, 255)
        loss, terms = self.objective(image)
        (loss * self.scale).backward()
        self.best.update(loss, image, terms)
        self._last = (loss.detach(), terms, image.detach())
        return loss * self.scale


def optimize(
    objective: Objective,
    init: torch.Tensor,
    steps: int,
    *,
    optimizer: Optimizer,
    learning_rate: float,
    lbfgs_history: int,
    precondition: Precondition,
    loss_scale: float | None = LOSS_SCALE,
    on_step: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: dict[str, Any] | None = None,
    keep: Keeper | None = None,
) -> ScaleResult:
    """Minimise ``objective`` over the pixels of ``init`` (1, 3, H, W, values 0..255) for ``steps`` steps.

    One step is one evaluation of the loss and its gradient followed by one update, for both
    optimisers (L-BFGS without line search, as in the public implementations of the paper).
    ``on_step`` receives a :class:`ScaleStep` after every step; ``should_stop`` is polled before
    every step. Ctrl-C (KeyboardInterrupt) ends the loop early and returns the best image so far.
    ``optimizer``, ``learning_rate``, ``lbfgs_history`` and ``precondition`` (L-BFGS only: "spectral"
    optimises in the basis of :class:`impasto.precondition.Spectral`) are the fields of :class:`impasto.Options`
    of those names, which hold their defaults (none here).

    L-BFGS minimises the objective times the constant that makes its first value ``loss_scale``
    (None: 1). The minimiser is the same, but torch's L-BFGS (no line search) stalls on small
    objectives, as the normalised network's are: it drops every curvature pair with
    s·y <= 1e-10 and keeps stepping along -g, which moves no pixel. Losses reported (events and
    result) are in the objective's own units.

    ``keep`` is called after every step with the step and a function that returns the whole state
    (:mod:`impasto.core.checkpoint` writes it when due); ``resume``, such a state, continues from it
    (``init`` is then not read): the steps taken are the ones the run would have taken.
    """
    start = time.perf_counter()
    loop = _Loop(objective, init if resume is None else resume["base"], optimizer, precondition)
    loop.start(learning_rate, lbfgs_history, loss_scale, resume)
    interrupted, stopped, fault = False, False, None
    try:
        stopped, fault = loop.run(steps, on_step, should_stop, keep)
    except KeyboardInterrupt:
        interrupted = True
    best = loop.best
    return ScaleResult(
        image=best.image,
        loss=float(best.loss),
        terms={k: float(v) for k, v in best.terms.items()},
        steps=loop.done,
        interrupted=interrupted,
        stopped=stopped,
        seconds=time.perf_counter() - start,
        fault=fault,
    )


class _Loop:
    """One scale's optimisation state: the variables, the optimiser, the best image, the closure."""

    def __init__(self, objective: Objective, init: torch.Tensor, optimizer: Optimizer, precondition: Precondition):
        self.objective, self.optimizer = objective, optimizer
        self.base = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 255)
        self.best = _Best(self.base)
        self.x, self.pixels, self.to_pixels = _variables(self.base, precondition if optimizer == "lbfgs" else "none")
        self.done = 0

    def start(
        self, learning_rate: float, history: int, loss_scale: float | None, resume: dict[str, Any] | None
    ) -> None:
        """The optimiser and closure, fresh or as ``resume`` (a :meth:`state`) left them."""
        x = self.x
        self.opt = (
            LBFGS(x, history, self.to_pixels) if self.optimizer == "lbfgs" else torch.optim.Adam([x], lr=learning_rate)
        )
        if resume is None:
            scale = _scale(self.objective, self.pixels(), loss_scale) if self.optimizer == "lbfgs" else 1.0
        else:
            scale, self.done = resume["scale"], resume["step"]
            with torch.no_grad():
                x.copy_(resume["x"])
            self.best.restore(resume["best"])
            if isinstance(self.opt, LBFGS):
                self.opt.restore(resume["optimiser"])
            else:
                self.opt.load_state_dict(resume["optimiser"])
        self.closure = _Closure(self.objective, x, self.pixels, self.best, scale)

    def run(
        self,
        steps: int,
        on_step: StepCallback | None,
        should_stop: Callable[[], bool] | None,
        keep: Keeper | None,
    ) -> tuple[bool, str | None]:
        """Steps until ``steps`` are done (or a stop, or a fault); whether it was stopped, and the fault."""
        stopped = False
        for step in range(self.done + 1, steps + 1):
            if should_stop is not None and should_stop():
                stopped = True
                break
            _step(self.opt, self.x, self.closure)
            self.done = step
            loss, terms, image = self.closure.last
            if (fault := _numerical_fault(loss, self.x.grad)) is not None:
                return False, f"{fault} at step {step}"  # the image it stepped to is not evaluated: not finite either
            if on_step is not None:
                on_step(ScaleStep(step, loss, terms, image))
            if keep is not None:
                keep(step, self.state)
        self.evaluate_last()  # the last update has not been evaluated yet: it may be the best
        return stopped, None

    def state(self) -> dict[str, Any]:
        """Everything :meth:`start` needs to go on from here, as copies on the CPU."""
        opt = self.opt.state() if isinstance(self.opt, LBFGS) else on_cpu(self.opt.state_dict())
        return {
            "base": self.base.detach().cpu().clone(),
            "x": self.x.detach().cpu().clone(),
            "optimiser": opt,
            "best": self.best.state(),
            "scale": self.closure.scale,
            "step": self.done,
        }

    def evaluate_last(self) -> None:
        """The last update has not been evaluated yet: evaluate it so that it can count as the best."""
        with torch.no_grad():
            image = self.pixels().clamp(0, 255)
            loss, terms = self.objective(image)
            self.best.update(loss, image, terms)


def _scale(objective: Objective, x: torch.Tensor, loss_scale: float | None) -> float:
    """The constant that makes the objective of ``x`` equal to ``loss_scale`` (1 without one)."""
    if loss_scale is None:
        return 1.0
    with torch.no_grad():
        first = float(objective(x.clamp(0, 255))[0])
    return loss_scale / first if first > 0 and math.isfinite(first) else 1.0


def _variables(
    x: torch.Tensor, precondition: Precondition
) -> tuple[torch.Tensor, Callable[[], torch.Tensor], Callable[[torch.Tensor], torch.Tensor] | None]:
    """The optimiser's variables for the pixels ``x``, the pixels they stand for, and that map (None: identity)."""
    if precondition == "none":
        x.requires_grad_(True)
        return x, lambda: x, None
    basis = Spectral(x.shape[-2], x.shape[-1], x.device)
    # z is the change from the initial image: it starts at 0, so the init comes back bit for bit
    # until a step moves it (a round trip through the FFT would change it by rounding)
    z = torch.zeros(basis.shape(x), dtype=x.dtype, device=x.device, requires_grad=True)
    return z, lambda: x + basis.to_pixels(z), basis.to_pixels


def _step(opt: LBFGS | torch.optim.Adam, x: torch.Tensor, closure: Callable[[], torch.Tensor]) -> None:
    """One update of ``x``: capped in length (L-BFGS) or projected back into 0..255 (Adam)."""
    opt.step(closure)
    if isinstance(opt, torch.optim.Adam):
        with torch.no_grad():
            x.clamp_(0, 255)  # projected gradient: Adam keeps no curvature to disturb
