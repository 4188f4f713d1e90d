"""A job's spec as the studio's database keeps it (JSON), and back.

The options are kept as submitted (preset and the fields given) and resolved again when a studio
loads them, as at submit; images are kept by their file name in the job's folder, bundled examples
by their name.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ..config import resolve
from .job import Job, JobSpec, State
from .media import StoredImage, example_path

__all__ = ["job_from_row", "remove_strays", "spec_from_json", "spec_to_json"]

log = logging.getLogger("impasto.web")
_JOB_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def _image_to_json(image: StoredImage) -> dict[str, Any]:
    return {
        "file": None if image.example else image.path.name,
        "label": image.label,
        "example": image.example,
        "width": image.width,
        "height": image.height,
        "media_type": image.media_type,
    }


def _image_from_json(data: dict[str, Any], folder: Path) -> StoredImage:
    path = example_path(data["example"]) if data["example"] else folder / data["file"]
    return StoredImage(path, data["label"], data["example"], data["width"], data["height"], data["media_type"])


def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    """What :func:`spec_from_json` needs to make ``spec`` again."""
    return {
        "preset": spec.preset,
        "overrides": spec.overrides,  # tuples become lists
        "content": _image_to_json(spec.content),
        "styles": [_image_to_json(s) for s in spec.styles],
        "uploads": {name: [_image_to_json(s) for s in images] for name, images in spec.uploads.items()},
        "device": spec.device,
    }


def spec_from_json(data: dict[str, Any], folder: Path) -> JobSpec:
    """The spec of a job kept in ``folder``; raises an ImpastoError if its options no longer resolve."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in data["overrides"].items()}
    opts = resolve(data["preset"], **overrides)
    uploads = {name: tuple(_image_from_json(s, folder) for s in images) for name, images in data["uploads"].items()}
    if "init" in uploads:
        opts = dataclasses.replace(opts, init="image")  # as at submit: the run starts from the init image
    return JobSpec(
        data["preset"],
        overrides,
        opts,
        _image_from_json(data["content"], folder),
        tuple(_image_from_json(s, folder) for s in data["styles"]),
        uploads,
        data["device"],
    )


def job_from_row(row: dict[str, Any], root: Path) -> Job:
    """A job as the database row of :meth:`.store.JobStore.load` records it (its folder ``root/<id>``)."""
    folder = root / row["id"]
    job = Job(row["id"], spec_from_json(row["spec"], folder), folder, created=row["created"], state=State(row["state"]))
    job.progress = row["progress"] or job.progress
    job.started, job.finished, job.error, job.note = row["started"], row["finished"], row["error"], row["note"]
    job.runs, job.fetched, job.image_step = row["runs"], row["fetched"], row["image_step"]
    job.result_path = folder / row["result"] if row["result"] else None
    job.image_version = 1 if job.result_path is not None else 0
    # Versions go on above any a page saw from the studio before (pages ignore a status older than theirs).
    job.version = max(row["version"], int(time.time() * 1000))
    return job


def remove_strays(root: Path, known: set[str]) -> None:
    """Delete job folders in ``root`` that no job of the database owns (the studio stopped between making
    one and recording its job, or the job's record could not be restored) and image-check folders."""
    for path in root.iterdir():
        stray = _JOB_FOLDER.fullmatch(path.name) is not None and path.name not in known
        if path.is_dir() and (stray or path.name.startswith(".check-")):
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed %s: no job of this studio's", path.name)
