"""Many transfers in one go: every photo x every painting x every swept value, resumable.

:func:`batch` plans the items (:mod:`impasto.batch_plan`), skips those the manifest in
``out_dir`` records as done with the same parameters (:mod:`impasto.manifest`), runs the rest
here (the network loaded once per process) or on a Ray cluster (:mod:`impasto.batch_ray`), and
writes each image atomically as it finishes. A failed item is recorded with its reason and the
batch goes on; Ctrl-C keeps every finished item and leaves the rest pending. An output that cannot
be written (a full disk) stops the batch with one :class:`~impasto.InputError` line, every finished
item recorded. One batch at a time writes into a folder (:func:`impasto.manifest.lock_folder`).
Progress arrives as :class:`BatchEvent` objects; nothing here prints.

:func:`run_item` is the one place that calls the style-transfer library.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import clean_stale, write_atomic
from ..errors import ImpastoError, InputError
from ..image import DEFAULT_MAX_PIXELS, encode_png
from .checks import check_items, check_room, prepare_out_dir
from .manifest import MANIFEST_NAME, Manifest, lock_folder
from .plan import Item, expand_inputs, plan

if TYPE_CHECKING:
    from PIL import Image

    from ..core.transfer import Step
    from ..net.vgg import VGG19

__all__ = ["BatchEvent", "batch", "encode_png", "prepare_out_dir", "run_item"]

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
    check_items(items)  # `size` too small for the images: once, now, as stylize says it
    if ray is None and items:  # a device that is not there fails every item: say so once, now
        from ..config import resolve
        from ..net.network import resolve_device

        resolve_device(resolve(preset, **items[0].option_dict()).device)
    out = prepare_out_dir(out_dir)  # created only once the inputs are known to be good
    with lock_folder(out):
        manifest = Manifest.load(out)
        run = Run(manifest, items, on_event)
        try:
            _execute(run, sheet, ray=ray, ray_cpus=ray_cpus, network=network, max_pixels=max_pixels)
        except OutputFailed as stop:
            raise InputError(_stopped(run, stop)) from None
    return manifest


def _execute(
    run: Run, sheet: bool, *, ray: str | None, ray_cpus: float, network: VGG19 | None, max_pixels: int
) -> None:
    """The locked part of :func:`batch`: the stale temporaries, the space check, the items, the sheet."""
    from .sheet import CONTACT_NAME, INDEX_NAME, write_sheet

    manifest, items, out = run.manifest, run.items, run.manifest.out_dir
    clean_stale(out, [i.name for i in items] + [MANIFEST_NAME, CONTACT_NAME, INDEX_NAME])  # a killed run's
    todo = [i for i in items if not manifest.is_done(i)]
    check_room(out, todo)  # can files be made there, is there room: stylize's check, before any work
    for item in todo:
        manifest.track(item)
    if todo:
        run.save()
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
        run.save()
    missing = not (out / CONTACT_NAME).is_file() or not (out / INDEX_NAME).is_file()
    if sheet and (todo or missing) and manifest.count("done"):
        try:
            write_sheet(manifest, items)
        except OSError as exc:
            raise OutputFailed(out / CONTACT_NAME, exc) from None
    run.emit("finish")


def _stopped(run: Run, stop: OutputFailed) -> str:
    """The one line of a batch stopped by a file it could not write; its item recorded as failed if the disk lets us."""
    if stop.item is not None:
        e = run.manifest.track(stop.item)
        e.state, e.output, e.reason = "failed", None, str(stop).replace(str(run.manifest.out_dir) + "/", "")
        with contextlib.suppress(OSError):
            run.manifest.save()
    done = run.manifest.count("done")
    return (
        f"{stop}; the batch stopped with {done} of {len(run.items)} items done, recorded in "
        f"{run.manifest.path}: make room and run the same command to go on"
    )
