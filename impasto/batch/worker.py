"""One item of a batch (:func:`run_item`) and the state of a running batch (:class:`Run`): what the
local loop (:mod:`.driver`) and the Ray driver (:mod:`.ray_cluster`) share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import write_atomic
from ..errors import ImpastoError
from ..image import DEFAULT_MAX_PIXELS
from .manifest import Manifest
from .plan import Item

if TYPE_CHECKING:
    from PIL import Image

    from ..core.transfer import Step
    from ..net.vgg import VGG19

__all__ = ["BatchEvent", "OutputFailed", "Run", "reason_of", "run_item"]

EventKind = Literal["start", "item_start", "step", "item_done", "item_failed", "finish"]


@dataclass(frozen=True)
class BatchEvent:
    """A progress event of a batch."""

    kind: EventKind
    done: int  # items done, those skipped as already done included
    failed: int
    total: int  # items in the batch
    skipped: int = 0  # items found done by an earlier run
    item: Item | None = None  # the item this event is about (item_*, step)
    step: Step | None = None  # for "step": the transfer's own progress event
    reason: str | None = None  # for "item_failed"
    seconds: float | None = None  # for "item_done": the item's wall time
    elapsed: float = 0.0  # seconds since the batch started
    eta: float | None = None  # seconds left for the batch, from the items finished in this run


def run_item(
    item: Item,
    network: VGG19 | None = None,
    *,
    on_step: Callable[[Step], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Image.Image, dict[str, Any]]:
    """Make one item's image with ``network`` (None: the one its options name, cached per process);
    returns the image and the parameters to embed. Ctrl-C during the transfer raises KeyboardInterrupt."""
    from ..config import resolve
    from ..core.record import record
    from ..core.transfer import transfer
    from ..image import load_image

    opts = resolve(item.preset, **item.option_dict())
    content = load_image(item.content, max_pixels=max_pixels)
    style = load_image(item.style, max_pixels=max_pixels)
    result = transfer(content, [style], opts, network=network, on_step=on_step, **dict(item.images))
    if result.interrupted:
        raise KeyboardInterrupt
    names = {"content": Path(item.content).name, "styles": [Path(item.style).name], "sweep": dict(item.sweep)}
    return result.image, record(item.preset, result, inputs=names, timed=False)  # no times: the same bytes


class Run:
    """The state of a running batch, shared by the local loop and the Ray driver."""

    def __init__(self, manifest: Manifest, items: list[Item], on_event: Callable[[BatchEvent], None] | None) -> None:
        self.manifest = manifest
        self.items = items
        self.on_event = on_event
        self.start = time.perf_counter()
        self.skipped = sum(manifest.is_done(i) for i in items)
        self.finished = 0  # in this run, done or failed
        self.done = self.skipped
        self.failed_count = 0
        self.todo = len(items) - self.skipped
        manifest.current = [i.id for i in items]

    def emit(self, kind: EventKind, **fields: Any) -> None:
        if self.on_event is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.finished * (self.todo - self.finished) if self.finished else None
        event = BatchEvent(
            kind, self.done, self.failed_count, len(self.items), self.skipped, elapsed=elapsed, eta=eta, **fields
        )
        self.on_event(event)

    def started(self, item: Item) -> None:
        self.manifest.track(item).attempts += 1
        self.emit("item_start", item=item)

    def save(self) -> None:
        try:
            self.manifest.save()
        except OSError as exc:
            raise OutputFailed(self.manifest.path, exc) from None

    def succeeded(self, item: Item, png: bytes, seconds: float) -> None:
        path = self.manifest.out_dir / item.name
        try:
            write_atomic(path, png)
        except OSError as exc:
            raise OutputFailed(path, exc, item) from None
        e = self.manifest.track(item)
        e.state, e.output, e.reason, e.seconds = "done", item.name, None, round(seconds, 3)
        self.save()
        self.finished += 1
        self.done += 1
        self.emit("item_done", item=item, seconds=seconds)

    def failed(self, item: Item, reason: str) -> None:
        e = self.manifest.track(item)
        e.state, e.output, e.reason = "failed", None, reason.splitlines()[0] if reason else "failed"
        self.save()
        self.finished += 1
        self.failed_count += 1
        self.emit("item_failed", item=item, reason=e.reason)


class OutputFailed(Exception):
    """A file of the batch could not be written (a full disk): the batch stops."""

    def __init__(self, path: Path, error: OSError, item: Item | None = None) -> None:
        super().__init__(f"{path}: cannot write ({error.strerror or error})")
        self.path, self.error, self.item = path, error, item


def reason_of(exc: BaseException) -> str:
    """One line for the manifest: an impasto error's message, else the exception's type and message."""
    text = str(exc) if isinstance(exc, ImpastoError) else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
