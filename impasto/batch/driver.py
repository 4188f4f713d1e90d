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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import clean_stale
from ..errors import InputError
from ..image import DEFAULT_MAX_PIXELS, encode_png
from .checks import check_items, check_room, prepare_out_dir
from .manifest import MANIFEST_NAME, Manifest, lock_folder
from .plan import Item, expand_inputs, plan_items
from .ray_cluster import require_ray, run_ray
from .worker import BatchEvent, OutputFailed, Run, reason_of, run_item

if TYPE_CHECKING:
    from ..core.transfer import Step
    from ..net.vgg import VGG19

__all__ = ["BatchEvent", "batch", "encode_png", "prepare_out_dir", "run_item"]


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
        require_ray()  # before any work: the install hint
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError(f"{out_dir}: is a file, not a folder (the batch's output folder)")
    contents = expand_inputs([str(s) for s in inputs], "input")
    paintings = expand_inputs([str(s) for s in styles], "style")
    items = plan_items(contents, paintings, options=options, sweep=sweep, pairs=pairs, name=name, preset=preset)
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
