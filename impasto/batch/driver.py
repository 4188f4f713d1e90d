"""Many transfers in one go: every photo x every painting x every swept value, resumable.

:func:`batch` plans the items (:mod:`impasto.batch_plan`), skips those the manifest in
``out_dir`` records as done with the same parameters (:mod:`impasto.manifest`), runs the rest
here (the network loaded once per process) or on a Ray cluster (:mod:`impasto.batch_ray`), and
writes each image atomically as it finishes. A failed item is recorded with its reason and the
batch goes on; Ctrl-C keeps every finished item and leaves the rest pending. Progress arrives as
:class:`BatchEvent` objects; nothing here prints.

:func:`run_item` is the one place that calls the style-transfer library.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ImpastoError, InputError
from ..image import DEFAULT_MAX_PIXELS, encode_png
from .manifest import Manifest, write_atomic
from .plan import Item, expand_inputs, plan

if TYPE_CHECKING:
    from PIL import Image

    from ..core.transfer import Step
    from ..net.vgg import VGG19

__all__ = ["BatchEvent", "batch", "encode_png", "run_item"]

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
    from ..core.record import made_with
    from ..core.transfer import transfer
    from ..image import load_image

    opts = resolve(item.preset, **item.option_dict())
    content = load_image(item.content, max_pixels=max_pixels)
    style = load_image(item.style, max_pixels=max_pixels)
    result = transfer(content, [style], opts, network=network, on_step=on_step, **dict(item.images))
    if result.interrupted:
        raise KeyboardInterrupt
    params = made_with(item.preset) | result.params
    params |= {"content": Path(item.content).name, "styles": [Path(item.style).name], "sweep": dict(item.sweep)}
    params |= {"loss": result.loss, "steps_done": result.steps}  # no times: the same item gives the same bytes
    return result.image, params


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

    def succeeded(self, item: Item, png: bytes, seconds: float) -> None:
        write_atomic(self.manifest.out_dir / item.name, png)
        e = self.manifest.track(item)
        e.state, e.output, e.reason, e.seconds = "done", item.name, None, round(seconds, 3)
        self.manifest.save()
        self.finished += 1
        self.done += 1
        self.emit("item_done", item=item, seconds=seconds)

    def failed(self, item: Item, reason: str) -> None:
        e = self.manifest.track(item)
        e.state, e.output, e.reason = "failed", None, reason.splitlines()[0] if reason else "failed"
        self.manifest.save()
        self.finished += 1
        self.failed_count += 1
        self.emit("item_failed", item=item, reason=e.reason)


def reason_of(exc: BaseException) -> str:
    """One line for the manifest: an impasto error's message, else the exception's type and message."""
    text = str(exc) if isinstance(exc, ImpastoError) else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _run_local(run: Run, todo: list[Item], network: VGG19 | None, max_pixels: int) -> None:
    for item in todo:
        run.started(item)
        t = time.perf_counter()

        def step(s: Step, item: Item = item) -> None:
            run.emit("step", item=item, step=s)

        try:
            image, params = run_item(item, network, on_step=step, max_pixels=max_pixels)
        except Exception as exc:  # one item's failure is recorded; the batch goes on
            run.failed(item, reason_of(exc))
        else:
            run.succeeded(item, encode_png(image, params), time.perf_counter() - t)


def prepare_out_dir(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing; a file there, or a folder we cannot write, is an InputError."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder (the batch's output folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".impasto-probe.part"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{out}: cannot write in this folder ({exc.strerror or exc})") from None
    return out


def batch(
    inputs: Sequence[str | Path],
    styles: Sequence[str | Path],
    out_dir: str | Path,
    *,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    pairs: bool = False,
    name: str | None = None,
    preset: str = "default",
    network: VGG19 | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    ray: str | None = None,
    ray_cpus: float = 1.0,
    sheet: bool = True,
    **options: Any,
) -> Manifest:
    """Stylise every input with every style (zipped with ``pairs``) for every combination of ``sweep``.

    ``inputs``/``styles``: files, folders (recursive, image files only) or glob patterns.
    ``options`` are fixed :class:`~impasto.Options` fields (or the images ``init_image``,
    ``content_mask``, ``style_masks``, paths), ``sweep`` maps fields to their values,
    e.g. ``batch(["photos/"], ["van_gogh.jpg"], "out", sweep={"ratio": [1e-2, 1e-3]}, size=256)``.
    ``network`` replaces the VGG19 the options name (e.g. :func:`impasto.testing.narrow_vgg`).
    ``ray``: run the items as Ray tasks on the cluster at this address (``"auto"``: this machine's),
    each asking for a GPU where the cluster has them, else ``ray_cpus`` CPUs.

    Returns the manifest (also in ``out_dir``); ``manifest.interrupted`` after Ctrl-C.
    """
    if ray is not None:
        from .ray_cluster import require_ray

        require_ray()  # before any work: the install hint
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError(f"{out_dir}: is a file, not a folder (the batch's output folder)")
    contents = expand_inputs([str(s) for s in inputs], "input")
    paintings = expand_inputs([str(s) for s in styles], "style")
    items = plan(contents, paintings, options=options, sweep=sweep, pairs=pairs, name=name, preset=preset)
    if ray is None and items:  # a device that is not there fails every item: say so once, now
        from ..config import resolve
        from ..net.network import resolve_device

        resolve_device(resolve(preset, **items[0].option_dict()).device)
    out = prepare_out_dir(out_dir)  # created only once the inputs are known to be good
    manifest = Manifest.load(out)
    run = Run(manifest, items, on_event)
    todo = [i for i in items if not manifest.is_done(i)]
    for item in todo:
        manifest.track(item)
    if todo:
        manifest.save()
    run.emit("start")
    try:
        if todo and ray is not None:
            from .ray_cluster import run_ray

            run_ray(run, todo, ray, network=network, cpus=ray_cpus, max_pixels=max_pixels)
        elif todo:
            _run_local(run, todo, network, max_pixels)
    except KeyboardInterrupt:
        manifest.interrupted = True
    if todo:
        manifest.save()
    if sheet and todo and manifest.count("done"):
        from .sheet import write_sheet

        write_sheet(manifest, items)
    run.emit("finish")
    return manifest
