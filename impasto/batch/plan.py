"""What a batch will make: the input files expanded, crossed with the styles and the swept values.

Each :class:`Item` is one transfer: a photo, a painting and the options that vary between items.
Its ``id`` depends only on those (stable across runs, so a manifest can find it again); its
``params_hash`` on every option that shapes the image, so an item whose options changed is redone.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError

__all__ = ["DEFAULT_NAME", "IMAGE_SUFFIXES", "Item", "expand_inputs", "plan_items"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
DEFAULT_NAME = "{content}_{style}{sweep}"  # e.g. tubingen_starry_night_ratio0.01.png
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Item:
    """One transfer of the batch."""

    id: str  # 12 hex digits from the content, the style and the swept values
    name: str  # output file name, e.g. "tubingen_starry_night_ratio0.01.png"
    content: str  # path of the photo
    style: str  # path of the painting
    sweep: tuple[tuple[str, Any], ...]  # the swept options' values for this item, in sweep order
    options: tuple[tuple[str, Any], ...]  # every option given (swept ones included), for resolve()
    preset: str = "default"
    images: tuple[tuple[str, Any], ...] = ()  # init_image, content_mask, style_masks given: for transfer()
    params_hash: str = ""  # of the resolved options and inputs: a change means "redo"

    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def label(self) -> str:
        """``tubingen / starry_night  ratio=0.01``: for progress lines and the contact sheet."""
        swept = "  ".join(f"{k}={_short(v)}" for k, v in self.sweep)
        return f"{Path(self.content).stem} / {Path(self.style).stem}" + (f"  {swept}" if swept else "")


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def expand_inputs(specs: Iterable[str], what: str = "input") -> list[Path]:
    """Files as given, folders recursively (image files only, sorted), glob patterns (sorted).

    A missing file, an empty folder or a pattern that matches no image is an :class:`InputError`:
    a batch that silently does less than asked is worse than one that does not start.
    """
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"{spec}: {what} folder has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        elif p.is_file():
            out.append(p)
        elif _GLOB_CHARS & set(spec):
            found = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            found = [f for f in found if f.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise InputError(f"{spec}: {what} pattern matches no image files")
            out += found
        else:
            raise InputError(f"{spec}: {what} file not found")
    return list(dict.fromkeys(out))  # a file named twice is one item


def _names(pattern: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(pattern) if field}


def _check_plan(
    pattern: str, sweep: Mapping[str, Any], pairs: bool, contents: Sequence[Path], styles: Sequence[Path]
) -> None:
    """Refuse a name pattern with a field it cannot fill, and ``pairs`` of unequal lists."""
    unknown = _names(pattern) - {"content", "style", "sweep", "n", *sweep}
    if unknown:
        allowed = ", ".join("{" + k + "}" for k in ("content", "style", "sweep", "n", *sweep))
        raise ConfigError(f"`name`: unknown field {{{sorted(unknown)[0]}}} (use {allowed})")
    if pairs and len(contents) != len(styles):
        raise ConfigError(f"`pairs` needs as many styles as inputs: {len(contents)} inputs, {len(styles)} styles")


def _item(
    content: Path,
    style: Path,
    combo: dict[str, Any],
    n: int,
    *,
    options: dict[str, Any],
    images: dict[str, Any],
    pattern: str,
    preset: str,
) -> Item:
    """Item ``n`` of the plan: ``content`` in ``style`` with the swept values ``combo``."""
    # lazy: both bring torch, which importing this module does not need (the CLI's help reads DEFAULT_NAME)
    from ..config import resolve
    from ..inputs import IMAGE_ARGS, recorded

    opts = resolve(preset, **(options | combo))  # a bad value fails here, before any work
    swept = "".join(f"_{k}{_short(v)}" for k, v in combo.items())
    fields = {"content": content.stem, "style": style.stem, "sweep": swept, "n": n} | combo
    filename = pattern.format(**fields) + ".png"
    if "/" in filename or filename.startswith("."):
        raise ConfigError(f"`name`: '{filename}' is not a plain file name")
    key = [str(content.resolve()), str(style.resolve()), sorted(combo.items())]
    named = recorded(opts.init, *(images.get(k) for k in IMAGE_ARGS))  # as when they were options
    full = {"content": key[0], "style": key[1], "preset": preset, "options": opts.to_dict() | named}
    return Item(
        id=_digest(key),
        name=filename,
        content=str(content),
        style=str(style),
        sweep=tuple(combo.items()),
        options=tuple((options | combo).items()),
        preset=preset,
        params_hash=_digest(full),
        images=tuple(images.items()),
    )


def plan_items(
    contents: Sequence[Path],
    styles: Sequence[Path],
    *,
    options: Mapping[str, Any] | None = None,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    pairs: bool = False,
    name: str | None = None,
    preset: str = "default",
) -> list[Item]:
    """Every (content, style) pair (zipped with ``pairs``) times every combination of ``sweep``.

    ``options`` are the fixed options (and the images ``init_image``, ``content_mask``,
    ``style_masks`` of every item); ``sweep`` maps option names to their values. ``name`` is a
    :meth:`str.format` pattern over ``content``, ``style`` (file stems), ``sweep`` (``_ratio0.01``),
    ``n`` (1-based item number) and each swept option's name; ``.png`` is appended.
    """
    from ..inputs import split_images  # lazy, as in _item

    options, images = split_images(dict(options or {}))
    sweep = {k: list(v) for k, v in (sweep or {}).items()}
    pattern = name or DEFAULT_NAME
    _check_plan(pattern, sweep, pairs, contents, styles)
    couples = list(zip(contents, styles, strict=True)) if pairs else list(itertools.product(contents, styles))
    combos = [dict(zip(sweep, values, strict=True)) for values in itertools.product(*sweep.values())]
    items: list[Item] = []
    seen: set[str] = set()
    for content, style in couples:
        for combo in combos:
            item = _item(
                content, style, combo, len(items) + 1, options=options, images=images, pattern=pattern, preset=preset
            )
            if item.name in seen:
                raise ConfigError(f"two items would both be named '{item.name}': add {{n}} or more fields to `name`")
            seen.add(item.name)
            items.append(item)
    return items
