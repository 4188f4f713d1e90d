"""The HTTP API: jobs (create, read, image, events, cancel), bundled examples, the form's fields.

Jobs are addressed only by their server-generated uuid4; anything else is a 404. This module builds
the router and owns the form's and the submitting routes; a job's own routes are
:mod:`.job_routes`, the schema's descriptions :mod:`.openapi`.
"""

import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from .._version import __version__
from ..config.presets import SUMMARIES
from ..errors import InputError
from .fields import form_fields, preset_values
from .job_routes import PING_SECONDS, STOPPING, job_routes
from .jobs import JobManager
from .media import example_path, examples, thumbnail
from .models import ErrorMessage, ExampleInfo, FieldInfo, ImageChecked, JobCreated, StudioInfo
from .openapi import ERRORS, FULL, field_schemas
from .settings import StudioSettings
from .submit import check_image, create_job, request_schema

__all__ = ["PING_SECONDS", "STOPPING", "build_router"]


def build_router(manager: JobManager) -> APIRouter:
    """The API routes, bound to one job manager and its settings."""
    router = APIRouter(prefix="/api", tags=["studio"])
    fields = form_fields(manager.settings)
    presets = preset_values()
    _form_routes(router, manager.settings, fields, presets)
    _submit_routes(router, manager, fields, presets)
    job_routes(router, manager)
    return router


def _form_routes(
    router: APIRouter, settings: StudioSettings, fields: list[FieldInfo], presets: dict[str, dict[str, Any]]
) -> None:
    """What the page builds its form from: the option fields, presets and limits; the bundled examples."""

    @router.get("/options", response_model=StudioInfo, summary="The form: option fields, presets, limits")
    def options() -> StudioInfo:
        limits = {k: v for k, v in dataclasses.asdict(settings).items() if k.startswith("max_")}
        return StudioInfo(
            version=__version__,
            presets=presets,
            default_preset="default",
            preset_summaries=SUMMARIES,
            fields=fields,
            limits=limits,
        )

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

    @router.get("/examples/{name}/thumbnail", responses={200: {"content": {"image/jpeg": {}}}, 404: ERRORS[404]})
    def example_thumbnail(name: str) -> Response:
        """A small JPEG of a bundled example."""
        example_file(name)
        return Response(thumbnail(name), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @router.get("/examples/{name}/image", responses={200: {"content": {"image/jpeg": {}}}, 404: ERRORS[404]})
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
            **ERRORS,
            **FULL,
            413: {"model": ErrorMessage},
            415: {"model": ErrorMessage},
            429: {"model": ErrorMessage},
        },
        openapi_extra={"requestBody": request_schema(field_schemas(fields), list(presets), names)},
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
        responses={**ERRORS, **FULL, 413: {"model": ErrorMessage}, 415: {"model": ErrorMessage}},
    )
    async def post_image_check(request: Request) -> ImageChecked:
        """Multipart form with one file, in the field a job would take it in (``content``, ``style``,
        ``init_image``, ``content_mask``, ``style_mask``): the answer is its size, or the one-line error
        a job would give. Nothing is kept."""
        field, image = await check_image(request, manager)
        return ImageChecked(
            field=field, label=image.label, width=image.width, height=image.height, media_type=image.media_type
        )
