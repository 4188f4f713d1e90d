"""Runners the caller paces, for tests and UI work: a job's steps can be held back and let go.

``create_app(settings, FakeRunner())`` gives a studio whose jobs take no network and no time;
``PacedRunner()`` wraps the real network. Either way a test knows which step a job is at, and
waits on events, never on the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Options
from ..core.transfer import Result, Step, transfer
from ..image import load_image

__all__ = ["FakeRunner", "PacedRunner"]

STOP_POLL_SECONDS = 0.01  # should_stop is a plain callable: a held runner can only poll it


class _Paced:
    """Steps that wait for permits: free until :meth:`hold`, then one step per :meth:`release`."""

    def __init__(self) -> None:
        self._permits: int | None = None  # steps still allowed; None: any number
        self._cond = threading.Condition()

    def hold(self) -> None:
        """Let no further step start until :meth:`release` (a job waiting so still honours a stop)."""
        with self._cond:
            self._permits = 0

    def release(self, steps: int = 1) -> None:
        """Allow ``steps`` more steps (of whichever job is running)."""
        with self._cond:
            self._permits = (self._permits or 0) + steps
            self._cond.notify_all()

    def run_freely(self) -> None:
        """Allow every step from now on."""
        with self._cond:
            self._permits = None
            self._cond.notify_all()

    def _may_step(self, should_stop: Callable[[], bool]) -> bool:
        """Wait for a permit and take it; False (taking none) once ``should_stop()``."""
        with self._cond:
            while self._permits == 0 and not should_stop():
                self._cond.wait(STOP_POLL_SECONDS)
            if should_stop():
                return False
            if self._permits is not None:
                self._permits -= 1
            return True


class PacedRunner(_Paced):
    """A real runner (``impasto.transfer.transfer`` by default) whose steps after the first wait for permits.

    The wait happens in ``on_step``, after the job's progress is recorded: a held job stays at a step
    the caller can see, and stops there when asked to.
    """

    def __init__(self, runner: Callable[..., Result] | None = None) -> None:
        super().__init__()
        self.runner = runner or transfer

    def __call__(
        self, *args: Any, on_step: Callable[[Step], None], should_stop: Callable[[], bool], **kw: Any
    ) -> Result:
        def step(s: Step) -> None:
            on_step(s)
            if s.step < s.total:
                self._may_step(should_stop)  # a stop: the runner sees should_stop itself next

        return self.runner(*args, on_step=step, should_stop=should_stop, **kw)


class FakeRunner(_Paced):
    """Same signature as ``impasto.transfer.transfer``; paints a colour ramp, each step after a permit.

    Before its first step it reads the input images as the real runner does, so unreadable inputs
    fail the same way.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []  # content, styles, opts, images of every run
        self.error: BaseException | None = None  # raised instead of running, when set

    def __call__(
        self,
        content: Path,
        styles: list[Path],
        opts: Options,
        *,
        on_step: Callable[[Step], None],
        image_every: int,
        should_stop: Callable[[], bool],
        max_pixels: int,
        init_image: Path | None = None,
        content_mask: Path | None = None,
        style_masks: list[Path] | None = None,
    ) -> Result:
        images = {"init_image": init_image, "content_mask": content_mask, "style_masks": style_masks}
        self.calls.append({"content": content, "styles": styles, "opts": opts} | images)
        if self.error is not None:
            raise self.error
        for path in (content, *styles, *(p for p in (init_image, content_mask) if p), *(style_masks or ())):
            load_image(path, max_pixels=max_pixels)
        image = Image.new("RGB", (opts.size, opts.size * 3 // 4), (0, 0, 0))
        done, stopped, start = 0, False, time.perf_counter()
        for step in range(1, opts.steps + 1):
            if not self._may_step(should_stop):
                stopped = True
                break
            image = Image.new("RGB", image.size, (step * 40 % 256, 100, 200))
            done, loss = step, 100.0 / step
            on_step(
                Step(
                    step=step,
                    total=opts.steps,
                    scale=1,
                    scales=1,
                    size=image.size,
                    loss=loss,
                    losses={"content": loss / 2, "style": loss / 2},
                    elapsed=time.perf_counter() - start,
                    eta=0.01 * (opts.steps - step),
                    image=image if image_every and step % image_every == 0 else None,
                )
            )
        return Result(
            image=image,
            loss=1.0,
            losses={"content": 0.5, "style": 0.5},
            steps=done,
            elapsed=time.perf_counter() - start,
            stopped=stopped,
            params=opts.to_dict(),
        )
