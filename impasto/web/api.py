"""The HTTP API: jobs (create, read, image, events, cancel), bundled examples, the form's fields.

Jobs are addressed only by their server-generated uuid4; anything else is a 404.
"""

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from starlette.responses import StreamingResponse

from .._version import __version__
from ..errors import InputError
from .fields import UPLOADS, form_fields, preset_values
from .jobs import FINISHED, Job, JobManager
from .media import example_path, examples, thumbnail
from .models import ErrorMessage, ExampleInfo, FieldInfo, ImageChecked, JobCreated, JobStatus, StudioInfo
from .settings import StudioSettings
from .submit import check_image, create_job, request_schema

__all__ = ["build_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text}
    for code, text in ((400, "bad input"), (404, "unknown job"), (422, "invalid option"))
}
_FULL: dict[int | str, dict[str, Any]] = {507: {"model": ErrorMessage, "description": "no room to store an upload"}}
# The same for a route whose own answers are not JSON (FastAPI would file its errors under the route's type).
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": e["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
    for code, e in _ERRORS.items()
}
PING_SECONDS = 15.0  # a comment line on a stream quiet for this long (FastAPI's own interval)


class _EventStream(StreamingResponse):
    """A server-sent event stream written by the route itself. (FastAPI's ``EventSourceResponse`` makes
    its own keep-alive task, which raised an error with a traceback whenever a client left while the
    server was held back by it: fastapi discussion #15725.)"""

    media_type = "text/event-stream"


_EVENTS: dict[int | str, dict[str, Any]] = {  # OpenAPI 3.2's form for an event stream, as FastAPI writes it
    200: {
        "description": "Successful Response",
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string"},
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}
_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG"}}


def _field_schemas(fields: list[FieldInfo]) -> dict[str, Any]:
    """OpenAPI properties of the option fields (image options become file fields)."""
    out: dict[str, Any] = {}
    for f in fields:
        schema: dict[str, Any] = {"description": f.help}
        if f.kind in ("int", "float"):
            schema["type"] = "integer" if f.kind == "int" else "number"
            schema |= {k: v for k, v in (("minimum", f.minimum), ("maximum", f.maximum)) if v is not None}
        elif f.kind == "bool":
            schema["type"] = "boolean"
        elif f.kind == "numbers":
            schema |= {"type": "string", "description": f"{f.help} (numbers separated by spaces)"}
        elif f.kind != "file":
            schema["type"] = "string"
            if f.choices:
                schema["enum"] = list(f.choices)
        if f.kind != "file":
            out[f.name] = schema
        if f.upload:
            binary = {"type": "string", "format": "binary"}
            out[f.upload] = {"description": f"{f.name}: {f.help}", **binary}
            if f.multiple:
                out[f.upload] = {"description": f"{f.name}: {f.help}", "type": "array", "items": binary}
    return out


def build_router(manager: JobManager) -> APIRouter:
    """The API routes, bound to one job manager and its settings."""
    router = APIRouter(prefix="/api", tags=["studio"])
    fields = form_fields(manager.settings)
    presets = preset_values()
    _form_routes(router, manager.settings, fields, presets)
    _submit_routes(router, manager, fields, presets)
    _job_routes(router, manager)
    return router


def _status(manager: JobManager, job: Job) -> JobStatus:
    """A job's status: its snapshot, its inputs and the addresses of its image and events."""
    snap = manager.status(job)
    base = f"/api/jobs/{job.id}"
    spec = job.spec
    inputs = [("content", spec.content)] + [("style", s) for s in spec.styles]
    inputs += [(UPLOADS[name], s) for name, images in spec.uploads.items() for s in images]
    snap["inputs"] = [
        {"role": role, "label": s.label, "example": s.example, "width": s.width, "height": s.height,
         "url": f"{base}/inputs/{i}"}
        for i, (role, s) in enumerate(inputs)
    ]  # fmt: skip
    snap |= {
        "image_url": f"{base}/image",
        "download_url": f"{base}/image?download=1",
        "events_url": f"{base}/events",
    }
    return JobStatus(**snap)


def _form_routes(
    router: APIRouter, settings: StudioSettings, fields: list[FieldInfo], presets: dict[str, dict[str, Any]]
) -> None:
    """What the page builds its form from: the option fields, presets and limits; the bundled examples."""

    @router.get("/options", response_model=StudioInfo, summary="The form: option fields, presets, limits")
    def options() -> StudioInfo:
        limits = {k: v for k, v in dataclasses.asdict(settings).items() if k.startswith("max_")}
        return StudioInfo(version=__version__, presets=presets, default_preset="default", fields=fields, limits=limits)

    @router.get("/examples", response_model=list[ExampleInfo], summary="The bundled example images")
    def list_examples() -> list[ExampleInfo]:
        return [
            ExampleInfo(
                **dataclasses.asdict(e),
                thumbnail_url=f"/api/examples/{e.name}/thumbnail",
                image_url=f"/api/examples/{e.name}/image",
            )
            for e in examples()
        ]

    def example_file(name: str) -> str:
        try:
            return str(example_path(name))
        except InputError as exc:
            raise HTTPException(404, str(exc)) from None

    @router.get("/examples/{name}/thumbnail", responses={200: {"content": {"image/jpeg": {}}}, 404: _ERRORS[404]})
    def example_thumbnail(name: str) -> Response:
        """A small JPEG of a bundled example."""
        example_file(name)
        return Response(thumbnail(name), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @router.get("/examples/{name}/image", responses={200: {"content": {"image/jpeg": {}}}, 404: _ERRORS[404]})
    def example_image(name: str) -> Response:
        """A bundled example at full size."""
        with open(example_file(name), "rb") as fh:
            return Response(fh.read(), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


def _submit_routes(
    router: APIRouter, manager: JobManager, fields: list[FieldInfo], presets: dict[str, dict[str, Any]]
) -> None:
    """Starting a job, and checking an image before a job uses it."""
    settings = manager.settings
    names = [e.name for e in examples()]

    @router.post(
        "/jobs",
        status_code=201,
        response_model=JobCreated,
        max_body_size=settings.max_request_bytes,
        summary="Start a style transfer",
        responses={
            **_ERRORS,
            **_FULL,
            413: {"model": ErrorMessage},
            415: {"model": ErrorMessage},
            429: {"model": ErrorMessage},
        },
        openapi_extra={"requestBody": request_schema(_field_schemas(fields), list(presets), names)},
    )
    async def post_job(request: Request) -> JobCreated:
        """Multipart form: a ``content`` file (or ``content_example``), one or more ``style`` files (and/or
        ``style_example`` names), an optional ``init_image``, a ``preset`` and any option fields, named as
        the CLI's options (``size``, ``steps``, ``ratio``, ...). Empty fields take the preset's value."""
        job = await create_job(request, manager)
        base = f"/api/jobs/{job.id}"
        return JobCreated(id=job.id, status_url=base, events_url=f"{base}/events", image_url=f"{base}/image")

    @router.post(
        "/images/check",
        response_model=ImageChecked,
        max_body_size=settings.max_request_bytes,
        summary="Check an image before a job uses it",
        responses={**_ERRORS, **_FULL, 413: {"model": ErrorMessage}, 415: {"model": ErrorMessage}},
    )
    async def post_image_check(request: Request) -> ImageChecked:
        """Multipart form with one file, in the field a job would take it in (``content``, ``style``,
        ``init_image``, ``content_mask``, ``style_mask``): the answer is its size, or the one-line error
        a job would give. Nothing is kept."""
        field, image = await check_image(request, manager)
        return ImageChecked(
            field=field, label=image.label, width=image.width, height=image.height, media_type=image.media_type
        )


def _job_routes(router: APIRouter, manager: JobManager) -> None:
    """A job, by its id: its status, cancelling it, its image and inputs, its events."""

    def job_dep(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job '{job_id[:40]}' (finished jobs are deleted after a while)")
        return job

    JobDep = Annotated[Job, Depends(job_dep)]

    @router.get("/jobs", response_model=list[JobStatus], summary="Every job still kept, newest first")
    def list_jobs() -> list[JobStatus]:
        return [_status(manager, j) for j in manager.jobs()]

    @router.get("/jobs/{job_id}", response_model=JobStatus, responses=_ERRORS, summary="A job's state and progress")
    def get_job(job: JobDep) -> JobStatus:
        return _status(manager, job)

    @router.delete("/jobs/{job_id}", response_model=JobStatus, summary="Cancel a job (it keeps its image)",
                   responses={**_ERRORS, 409: {"model": ErrorMessage, "description": "already finished"}})  # fmt: skip
    def cancel_job(job: JobDep) -> JobStatus:
        """A queued job is cancelled at once; a running one after its current step, keeping its best image."""
        manager.cancel(job)
        return _status(manager, job)

    _file_routes(router, manager, job_dep)
    _event_route(router, manager, job_dep)


def _file_routes(router: APIRouter, manager: JobManager, job_dep: Callable[[str], Job]) -> None:
    """A job's image and its input images."""
    JobDep = Annotated[Job, Depends(job_dep)]

    @router.get("/jobs/{job_id}/image", response_class=Response, responses={**_PNG, **_ERRORS})
    def job_image(job: JobDep, download: bool = False) -> Response:
        """The latest image as PNG (the result once finished), its parameters embedded in a text chunk."""
        image = manager.image(job)
        try:
            data = image if isinstance(image, bytes) or image is None else image.read_bytes()
        except FileNotFoundError:
            data = None  # deleted meanwhile
        if data is None:
            raise HTTPException(404, f"job {job.id} has no image yet ({job.state.value})")
        if isinstance(image, Path):
            manager.fetched(job)  # the result is out: pruning may delete it now
        name = f"impasto-{job.id[:8]}-step{job.image_step}.png"
        disposition = f'{"attachment" if download else "inline"}; filename="{name}"'
        headers = {"Cache-Control": "no-store", "Content-Disposition": disposition}
        return Response(data, media_type="image/png", headers=headers)

    @router.get("/jobs/{job_id}/inputs/{index}", response_class=Response, responses=_ERRORS)
    def job_input(job: JobDep, index: int) -> Response:
        """An input image as uploaded: 0 is the content, then the styles, then init and mask images."""
        spec = job.spec
        images = [spec.content, *spec.styles, *(s for images in spec.uploads.values() for s in images)]
        if not 0 <= index < len(images):
            raise HTTPException(404, f"job {job.id} has no input {index}")
        try:
            data = images[index].path.read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, f"job {job.id} has been deleted") from None
        return Response(data, media_type=images[index].media_type, headers={"Cache-Control": "no-store"})


STOPPING = "the studio is stopping: this job is kept and runs when the studio starts again"


def _stopping(snap: JobStatus) -> dict[str, Any]:
    """The last event of a stream when the studio stops: the job's state then, and what becomes of it."""
    return {"id": snap.id, "state": snap.state, "detail": STOPPING}


def _event_route(router: APIRouter, manager: JobManager, job_dep: Callable[[str], Job]) -> None:
    """A job's server-sent events."""
    JobDep = Annotated[Job, Depends(job_dep)]

    async def job_stream(job: Job) -> AsyncIterator[bytes]:
        with manager.listen(job) as changed:
            last = -1
            while True:
                changed.clear()
                if manager.get(job.id) is None:
                    yield format_sse_event(data_str=json.dumps({"id": job.id}), event="gone")
                    return
                snap = _status(manager, job)
                if snap.version != last:
                    last = snap.version
                    data = snap.model_dump_json()
                    yield format_sse_event(data_str=data, event="status", id=str(snap.version), retry=2000)
                if snap.state in FINISHED:  # the state just sent, not job.state: the job may have
                    return  # finished since, and its last event must still go out
                if manager.closing:  # the studio stops: say so, and end (server.py waits for no stream)
                    yield format_sse_event(data_str=json.dumps(_stopping(snap)), event="stopping")
                    return
                try:
                    await asyncio.wait_for(changed.wait(), PING_SECONDS)
                except asyncio.TimeoutError:
                    yield KEEPALIVE_COMMENT  # a proxy must not take the quiet stream of a queued job for dead

    @router.get("/jobs/{job_id}/events", response_class=_EventStream, responses={**_EVENTS, **_JSON_ERRORS})
    async def job_events(job: JobDep) -> _EventStream:
        """Server-sent events: a ``status`` event (a JobStatus) whenever the job changes, until it ends; a
        ``gone`` event if the job is deleted, a ``stopping`` event (``{id, state, detail}``) if the studio stops."""
        return _EventStream(job_stream(job), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
