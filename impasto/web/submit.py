"""Turning a multipart ``POST /api/jobs`` into a queued job, checking everything on the way.

Order of checks: the form's shape (which fields, how many), the option values
(:func:`impasto.config.resolve` and the web bounds), the device, then the images (size, decodable,
pixels, and against the options by the run's own check, :func:`impasto.schedule.plan`). Nothing
is queued unless all pass; the job's folder is deleted again on any error.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from ..core.schedule import plan
from ..errors import ConfigError, InputError
from ..image import load_image
from ..net.network import resolve_device
from .fields import UPLOADS, parse_options
from .forms import read_form
from .jobs import Job, JobManager, JobSpec
from .media import StoredImage, TooLarge, example_path, safe_label, store_image

__all__ = ["MAX_FIELD_BYTES", "check_image", "create_job", "request_schema"]

MAX_FIELD_BYTES = 64 * 1024  # one text field
_CHUNK = 1 << 20


class UnsupportedMedia(InputError):
    """The request is not a form (HTTP 415)."""


_FILE_FIELDS = ("content", "style", *UPLOADS.values())
_ROLES = {"content": "content image", "style": "style image"} | {f: f.replace("_", " ") for f in UPLOADS.values()}


def _split(form: FormData) -> tuple[dict[str, str], list[str], dict[str, list[UploadFile]]]:
    """(single text fields, style_example names, files by field) from the submitted form."""
    text: dict[str, str] = {}
    style_examples: list[str] = []
    files: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key not in _FILE_FIELDS:
                raise ConfigError(f"field '{key[:40]}' is not a file field (files go in {', '.join(_FILE_FIELDS)})")
            files.setdefault(key, []).append(value)
        elif key == "style_example":
            style_examples += [v for v in value.replace(",", " ").split() if v]
        elif key in _FILE_FIELDS:
            raise ConfigError(f"field '{key}' must be a file upload")
        elif key in text:
            raise ConfigError(f"field '{key[:40]}' was given more than once")
        else:
            text[key] = value
    for key in ("content", "init_image", "content_mask"):
        if len(files.get(key, [])) > 1:
            raise ConfigError(f"only one {key} file is allowed")
    return text, style_examples, files


@functools.lru_cache(maxsize=32)
def _example(name: str) -> StoredImage:
    try:
        path = example_path(name)
    except InputError as exc:
        raise ConfigError(exc.args[0]) from None  # a bad form value, not a bad file
    img = load_image(path)
    return StoredImage(path, name, name, img.width, img.height, "image/jpeg")


async def _read(upload: UploadFile, limit: int, role: str) -> bytes:
    """The uploaded bytes, refusing more than ``limit`` without reading them all."""
    chunks, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                f"{role} '{safe_label(upload.filename, 'upload')}' is over the upload limit of {limit:,} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _store(
    upload: UploadFile, folder: Path, name: str, role: str, max_bytes: int, max_pixels: int
) -> StoredImage:
    data = await _read(upload, max_bytes, role)
    label = safe_label(upload.filename, role)
    return await run_in_threadpool(store_image, data, folder / name, label, role, max_pixels)


def _device_key(name: str) -> str:
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def _require_form(request: Request, what: str) -> None:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise UnsupportedMedia(f"send {what} as multipart/form-data, not '{ctype[:60] or 'nothing'}'")


async def check_image(request: Request, manager: JobManager) -> tuple[str, StoredImage]:
    """(field, image) of a form holding one image file, checked as a job would check it, then deleted.

    The field names the image's role: ``content``, ``style``, ``init_image``, ``content_mask`` or
    ``style_mask``. A bad image raises the same one-line :class:`InputError` as a job would.
    """
    _require_form(request, "the image")
    form = await read_form(request, manager.root, _ROLES, max_files=1, max_fields=1, max_part_size=MAX_FIELD_BYTES)
    try:
        items = form.multi_items()
        field, upload = items[0] if len(items) == 1 else ("", None)
        if not isinstance(upload, UploadFile) or field not in _FILE_FIELDS:
            raise ConfigError(f"send one image file, in a field named {', '.join(_FILE_FIELDS)}")
        settings = manager.settings
        with tempfile.TemporaryDirectory(prefix=".check-", dir=manager.root) as folder:
            image = await _store(
                upload, Path(folder), "image", _ROLES[field], settings.max_upload_bytes, settings.max_pixels
            )
        return field, image
    finally:
        await form.close()


async def create_job(request: Request, manager: JobManager) -> Job:
    """Check the request, store its images and queue the job; raises an ImpastoError on bad input."""
    settings = manager.settings
    _require_form(request, "the job")
    max_files = 2 * settings.max_styles + 3  # content, styles, style masks, content mask, init
    form = await read_form(
        request, manager.root, _ROLES, max_files=max_files, max_fields=200, max_part_size=MAX_FIELD_BYTES
    )
    try:
        return await _create(form, manager)
    finally:
        await form.close()


async def _create(form: FormData, manager: JobManager) -> Job:
    settings = manager.settings
    text, style_examples, files = _split(form)
    # Checking options and reading examples take CPU time: in a thread, so the event loop goes on answering.
    preset, overrides, opts = await run_in_threadpool(parse_options, text, settings)
    device = await run_in_threadpool(_device_key, opts.device)
    content_example = text.get("content_example", "").strip()
    if bool(content_example) == bool(files.get("content")):
        raise ConfigError("give exactly one content image: a 'content' file or a 'content_example' name")
    n_styles = len(files.get("style", [])) + len(style_examples)
    if n_styles == 0:
        raise ConfigError("give at least one style image: 'style' files or 'style_example' names")
    if n_styles > settings.max_styles:
        raise ConfigError(f"at most {settings.max_styles} style images, got {n_styles}")
    if files.get("init_image") and "init" in overrides:
        raise ConfigError("give either init (noise or content) or an init_image, not both")
    content = await run_in_threadpool(_example, content_example) if content_example else None
    examples = [await run_in_threadpool(_example, name) for name in style_examples]
    job_id, folder = manager.reserve()
    try:
        limit, pixels = settings.max_upload_bytes, settings.max_pixels
        if content is None:
            content = await _store(files["content"][0], folder, "content", "content image", limit, pixels)
        styles = [
            await _store(f, folder, f"style-{i}", f"style image {i}", limit, pixels)
            for i, f in enumerate(files.get("style", []), start=1)
        ] + examples
        uploads: dict[str, tuple[StoredImage, ...]] = {}
        for name, field in UPLOADS.items():
            stored = tuple(
                [
                    await _store(f, folder, f"{field}-{i}", f"{field.replace('_', ' ')} {i}", limit, pixels)
                    for i, f in enumerate(files.get(field, []), start=1)
                ]
            )
            if stored:
                uploads[name] = stored
        if "init" in uploads:
            opts = dataclasses.replace(opts, init="image")  # where the run starts: the init image
        masks = len(uploads["style_masks"]) if "style_masks" in uploads else None
        sizes = [(s.width, s.height) for s in styles]
        # The run's own check (impasto.schedule.plan), now: a 422 instead of a failed job.
        plan(opts, (content.width, content.height), sizes, masks, "content_mask" in uploads)
        spec = JobSpec(preset, overrides, opts, content, tuple(styles), uploads, device)
        return manager.submit(job_id, folder, spec)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def request_schema(field_schemas: dict[str, Any], preset_names: list[str], example_names: list[str]) -> dict[str, Any]:
    """The OpenAPI requestBody of ``POST /api/jobs`` (the route reads the form itself)."""
    properties: dict[str, Any] = {
        "content": {"type": "string", "format": "binary", "description": "the content image (the photo)"},
        "content_example": {"type": "string", "enum": example_names, "description": "or a bundled image"},
        "style": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "one or more style images (the paintings)",
        },
        "style_example": {
            "type": "array",
            "items": {"type": "string", "enum": example_names},
            "description": "and/or bundled images",
        },
        "preset": {"type": "string", "enum": preset_names, "default": "default", "description": "named presets"},
    }
    properties.update(field_schemas)
    return {
        "required": True,
        "content": {"multipart/form-data": {"schema": {"type": "object", "properties": properties}}},
    }
