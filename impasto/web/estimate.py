"""``GET /api/estimate``: how long a job of the form's size, steps and scales takes on this machine.

The server measures a step of the network it runs jobs with once (:func:`impasto.core.estimate.
seconds_per_pixel`, in a background thread on first request: about a second), then answers each
question from the schedule the job would get (:func:`impasto.core.schedule.plan_scales`). Until the
measurement is done, or if it fails, the answer's ``seconds`` is null and the page says nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from ..config import resolve
from ..core.estimate import estimate_seconds, rough
from ..core.schedule import plan_scales
from ..errors import ImpastoError
from ..image import fit_size
from .fields import worded
from .models import ErrorMessage
from .settings import StudioSettings

__all__ = ["Estimate", "StepRate", "estimate_router"]

log = logging.getLogger("impasto.web")


class Estimate(BaseModel):
    """The expected duration of a job, or null while the server is still timing a step."""

    seconds: float | None = Field(description="expected seconds, good to a factor of two")
    text: str = Field(description="the same in words, e.g. 'about 3 min on this machine'")


class StepRate:
    """Seconds per pixel of a network pass on the studio's device, measured once, in the background."""

    def __init__(self, measure: Callable[[], float] | None = None) -> None:
        self._measure = measure or _measure_default
        self._value: float | None = None
        self._started = False
        self._lock = threading.Lock()

    def __call__(self) -> float | None:
        """The measured rate, or None while it is being measured (the first call starts it)."""
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="impasto-step-rate", daemon=True).start()
            return self._value

    def _run(self) -> None:
        try:
            value = self._measure()
        except (ImpastoError, RuntimeError, OSError) as exc:  # no weights, no device: no estimate
            log.warning("cannot time a step for the estimate: %s", exc)
            return
        with self._lock:
            self._value = value


def _measure_default() -> float:
    from ..core.estimate import seconds_per_pixel
    from ..net.network import load_network, resolve_device, resolve_precision

    opts = resolve("default")
    device = resolve_device(opts.device)
    dtype, _ = resolve_precision(opts.precision, device)
    net = load_network(opts.weights, opts.weights_format, opts.pooling, str(device), opts.network, dtype)
    return seconds_per_pixel(net, device)


def estimate_router(settings: StudioSettings, rate: Callable[[], float | None]) -> APIRouter:
    """The estimate's route; ``rate`` gives the seconds per pixel pass (None: not known yet)."""
    router = APIRouter(prefix="/api", tags=["studio"])

    @router.get(
        "/estimate",
        response_model=Estimate,
        responses={422: {"model": ErrorMessage, "description": "invalid option"}},
        summary="How long a job of this size would take here",
    )
    def estimate(preset: str = "default", size: int | None = None, steps: int | None = None,
                 scales: int | None = None, aspect: float = 4 / 3) -> Estimate:  # fmt: skip
        try:
            opts = resolve(preset, size=size, steps=steps, scales=scales)
        except ImpastoError as exc:
            raise HTTPException(422, worded(exc)) from None
        for name, value, limit in (
            ("size", opts.final_size, settings.max_size),
            ("steps", opts.steps, settings.max_steps),
        ):
            if value > limit:
                raise HTTPException(422, f"{name} must be <= {limit} for a web job, got {value}")
        if not 0.1 <= aspect <= 10:
            raise HTTPException(422, f"aspect must be between 0.1 and 10, got {aspect:g}")
        per_pixel = rate()
        if per_pixel is None:
            return Estimate(seconds=None, text="")
        width, height = round(1000 * aspect), 1000
        schedule = plan_scales(opts.size, opts.scales, opts.steps, opts.scale_sizes)
        sized = [(*fit_size(width, height, side), n) for side, n in schedule]
        seconds = estimate_seconds(sized, per_pixel)
        if opts.max_time is not None:
            seconds = min(seconds, opts.max_time)
        return Estimate(seconds=seconds, text=f"{rough(seconds)} on this machine")

    return router
