"""The JSON shapes of the API (they document themselves at /docs and /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorMessage",
    "ExampleInfo",
    "FieldInfo",
    "FieldKind",
    "ImageChecked",
    "InputInfo",
    "JobCreated",
    "JobStatus",
    "StudioInfo",
]


# What a form field holds: one number, a yes/no, one of its choices, layer:weight pairs, a list of
# numbers, or an uploaded image.
FieldKind = Literal["int", "float", "bool", "choice", "layers", "numbers", "file"]


class ErrorMessage(BaseModel):
    """Every 4xx/5xx answer: one line saying what is wrong."""

    detail: str = Field(examples=["size must be <= 1024 for a web job, got 4096"])


class InputInfo(BaseModel):
    """An input image of a job."""

    role: str = Field(description="content, style, or the upload field: init_image, content_mask, style_mask")
    label: str = Field(description="the client's file name or the example's name (display only)")
    example: str | None = Field(description="the bundled example's name, if it is one")
    width: int
    height: int
    url: str = Field(description="the image as it was uploaded")


class JobStatus(BaseModel):
    """A job's state and latest progress."""

    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    position: int | None = Field(description="place in its device's queue, 1 = next; null unless queued")
    step: int = Field(description="steps done, over all scales")
    total: int = Field(description="steps planned, over all scales (a max_time budget may lower it)")
    schedule: list[list[int]] = Field(description="(width, height, steps) of each scale, as now planned")
    scale: int = Field(description="current scale, 1-based (0 before the first step)")
    scales: int
    size: list[int] | None = Field(description="(width, height) at the current scale")
    loss: float | None
    losses: dict[str, float] = Field(description="loss terms: content, style, tv, style:<layer>")
    elapsed: float = Field(description="seconds since the job started running")
    eta: float | None = Field(description="estimated seconds left")
    error: str | None = Field(description="why a failed job failed")
    cancel_requested: bool
    created: float = Field(description="Unix time")
    started: float | None
    finished: float | None
    image_version: int = Field(description="changes whenever a new image is available")
    image_step: int = Field(description="the step the current image shows")
    has_image: bool
    preset: str
    options: dict[str, Any] = Field(description="the option fields as submitted (restore them with the preset)")
    params: dict[str, Any] = Field(description="every parameter, as embedded in the PNG")
    device: str
    version: int = Field(description="changes whenever anything in this status changes (and grows across restarts)")
    note: str | None = Field(description="e.g. that the job was run again because the studio stopped during its run")
    runs: int = Field(description="how often a run of this job started (over 1: it was run again)")
    inputs: list[InputInfo]
    image_url: str
    download_url: str
    events_url: str


class JobCreated(BaseModel):
    """The answer to a new job."""

    id: str = Field(description="server-generated uuid4")
    status_url: str
    events_url: str
    image_url: str


class ImageChecked(BaseModel):
    """An image a job would accept in that field (the studio keeps nothing of it)."""

    field: str = Field(description="the form field it came in: content, style, init_image, content_mask or style_mask")
    label: str = Field(description="the client's file name (display only)")
    width: int
    height: int
    media_type: str


class ExampleInfo(BaseModel):
    """A bundled example image and its credit."""

    name: str
    title: str
    author: str
    licence: str
    thumbnail_url: str
    image_url: str


class FieldInfo(BaseModel):
    """A job option as a form field, derived from impasto.Options."""

    # Built once per studio (impasto.web.fields.form_fields), then only read: by the page, the
    # OpenAPI schema of a job's form and the parsing of a submitted form.
    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    help: str
    kind: FieldKind
    optional: bool = Field(description="empty means the preset's value")
    choices: list[str] | None
    minimum: float | None = Field(description="least value (of each item, for numbers)")
    maximum: float | None
    item: Literal["int", "float"] | None = Field(description="the item type of a list of numbers")
    upload: str | None = Field(description="the multipart file field of an image option")
    multiple: bool = Field(description="the upload takes one file per style image")
    main: bool = Field(description="shown among the main controls")


class StudioInfo(BaseModel):
    """Everything the page needs to build its form."""

    version: str
    presets: dict[str, dict[str, Any]] = Field(description="every field's value under each preset")
    default_preset: str
    preset_summaries: dict[str, str] = Field(default_factory=dict, description="each preset in one line")
    fields: list[FieldInfo]
    limits: dict[str, float]
