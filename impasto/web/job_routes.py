"""The API's routes of one job, by its id: its status, cancelling it, its image and inputs, its events.

Jobs are addressed only by their server-generated uuid4; anything else is a 404.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from starlette.responses import StreamingResponse

from .fields import UPLOADS
from .jobs import FINISHED, Job, JobManager
from .models import ErrorMessage, JobStatus
from .openapi import ERRORS, EVENTS, JSON_ERRORS, PNG

__all__ = ["PING_SECONDS", "STOPPING", "job_routes", "job_status"]

PING_SECONDS = 15.0  # a comment line on a stream quiet for this long (FastAPI's own interval)


class _EventStream(StreamingResponse):
    """A server-sent event stream written by the route itself. (FastAPI's ``EventSourceResponse`` makes
    its own keep-alive task, which raised an error with a traceback whenever a client left while the
    server was held back by it: fastapi discussion #15725.)"""

    media_type = "text/event-stream"


def job_status(manager: JobManager, job: Job) -> JobStatus:
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


def job_routes(router: APIRouter, manager: JobManager) -> None:
    """A job, by its id: its status, cancelling it, its image and inputs, its events."""

    def job_dep(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job '{job_id[:40]}' (finished jobs are deleted after a while)")
        return job

    JobDep = Annotated[Job, Depends(job_dep)]

    @router.get("/jobs", response_model=list[JobStatus], summary="Every job still kept, newest first")
    def list_jobs() -> list[JobStatus]:
        return [job_status(manager, j) for j in manager.jobs()]

    @router.get("/jobs/{job_id}", response_model=JobStatus, responses=ERRORS, summary="A job's state and progress")
    def get_job(job: JobDep) -> JobStatus:
        return job_status(manager, job)

    @router.delete("/jobs/{job_id}", response_model=JobStatus, summary="Cancel a job (it keeps its image)",
                   responses={**ERRORS, 409: {"model": ErrorMessage, "description": "already finished"}})  # fmt: skip
    def cancel_job(job: JobDep) -> JobStatus:
        """A queued job is cancelled at once; a running one after its current step, keeping its best image."""
        manager.cancel(job)
        return job_status(manager, job)

    _file_routes(router, manager, job_dep)
    _event_route(router, manager, job_dep)


def _file_routes(router: APIRouter, manager: JobManager, job_dep: Callable[[str], Job]) -> None:
    """A job's image and its input images."""
    JobDep = Annotated[Job, Depends(job_dep)]

    @router.get("/jobs/{job_id}/image", response_class=Response, responses={**PNG, **ERRORS})
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

    @router.get("/jobs/{job_id}/inputs/{index}", response_class=Response, responses=ERRORS)
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
                snap = job_status(manager, job)
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

    @router.get("/jobs/{job_id}/events", response_class=_EventStream, responses={**EVENTS, **JSON_ERRORS})
    async def job_events(job: JobDep) -> _EventStream:
        """Server-sent events: a ``status`` event (a JobStatus) whenever the job changes, until it ends; a
        ``gone`` event if the job is deleted, a ``stopping`` event (``{id, state, detail}``) if the studio stops."""
        return _EventStream(job_stream(job), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
