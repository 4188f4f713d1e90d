"""What a batch checks before any work, with the checks ``impasto stylize`` makes.

- :func:`check_items`: every item's images against its options, by :func:`impasto.schedule.plan`
  (what ``transfer`` runs first): ``--size 16`` is refused once, before work, not as a failure of
  every item. Only the images' headers are read; a file that cannot be read is left to fail as its
  item (recorded in the manifest; the batch goes on).
- :func:`check_room`: :func:`impasto.image.check_output_path` on the output folder (can files be
  made there, is there room for the items to do).
- :func:`prepare_out_dir`: the output folder, created if missing when its parent exists.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .plan import Item

__all__ = ["check_items", "check_room", "item_bytes", "prepare_out_dir"]

_ORIENTATION = 0x0112  # EXIF: values 5-8 are turned a quarter, which swaps width and height


def _size(path: str, known: dict[str, tuple[int, int] | None]) -> tuple[int, int] | None:
    """(width, height) of the image at ``path`` as load_image will see it (EXIF orientation applied),
    from its header; None if it cannot be read."""
    if path not in known:
        from PIL import Image

        try:
            with Image.open(path) as img:
                w, h = img.size
                turned = img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
            known[path] = (h, w) if turned else (w, h)
        except Exception:  # any unreadable file: its item fails with load_image's own line
            known[path] = None
    return known[path]


def check_items(items: list[Item]) -> None:
    """Refuse, naming the first item and the option, a batch whose options cannot make its images."""
    from ..config import resolve
    from ..core.schedule import plan

    known: dict[str, tuple[int, int] | None] = {}
    for item in items:
        content, style = _size(item.content, known), _size(item.style, known)
        if content is None or style is None:
            continue
        images = dict(item.images)
        masks = images.get("style_masks")
        try:
            plan(
                resolve(item.preset, **item.option_dict()),
                content,
                [style],
                None if masks is None else len(masks),
                images.get("content_mask") is not None,
            )
        except ConfigError as exc:
            # args[0] keeps the `field` names, which the CLI turns into its flags
            raise ConfigError(f"{Path(item.content).name} with {Path(item.style).name}: {exc.args[0]}") from None


def item_bytes(item: Item) -> int:
    """A rough upper bound of an item's PNG, as ``stylize`` estimates its output: raw RGB bytes."""
    from ..config import resolve

    side = resolve(item.preset, **item.option_dict()).final_size
    return 3 * side * side


def check_room(out: Path, todo: list[Item]) -> None:
    """Refuse, before any work, a folder where files cannot be made or without room for ``todo``."""
    from ..image import check_output_path

    if todo:
        need = sum(item_bytes(i) for i in todo)
        check_output_path(out / todo[0].name, need, f"the {len(todo)} item(s) to do need")


def prepare_out_dir(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing when its parent folder exists (:func:`impasto.image.output_folder`)."""
    from ..image import output_folder

    return output_folder(out_dir, "batch's output folder")
