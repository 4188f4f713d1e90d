"""The files bundled in ``impasto/data``: the example images, their credits, the normalisation cache."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import InputError, did_you_mean

__all__ = ["bundled_image", "bundled_names", "data_dir"]


def data_dir() -> Path:
    """The package's data folder, ``impasto/data``."""
    return Path(str(resources.files("impasto") / "data"))


def bundled_names() -> list[str]:
    """The names of the bundled example images (their ``.jpg`` files), sorted."""
    return sorted(p.stem for p in data_dir().glob("*.jpg"))


def bundled_image(name: str) -> Path:
    """Path of a bundled example image, e.g. ``bundled_image("tubingen")`` (see data/CREDITS.md)."""
    matches = sorted(data_dir().glob(f"{name}.*"))
    if not matches:
        raise InputError(f"no bundled image '{name}'{did_you_mean(name, bundled_names())}")
    return matches[0]
