"""The studio's HTTP API: every endpoint, every bad request we could think of, the job queue.

Most tests run jobs through :class:`impasto.web.testing.FakeRunner`, a stand-in for
:func:`impasto.style_transfer` that paints a colour ramp one step per permit the test gives; tests wait
on the job manager's change notifications (:meth:`JobManager.wait`), never on the clock. The ``slow``
ones run the real network on tiny images.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import manager_of
from fastapi.testclient import TestClient
from PIL import Image

from impasto import bundled_image, load_image, read_params, resolve
from impasto.config import PRESETS, Options
from impasto.config.presets import SUMMARIES
from impasto.errors import ConfigError, InputError, word
from impasto.inputs import IMAGE_HELP, MASKS_AFTER
from impasto.web.fields import MAIN_FIELDS, UPLOADS, excluded, form_fields, label
from impasto.web.job import JobSpec
from impasto.web.jobs import RERUN_NOTE
from impasto.web.server import create_app, serve
from impasto.web.settings import StudioSettings
from impasto.web.store import WorkdirBusy, default_workdir
from impasto.web.testing import FakeRunner, PacedRunner

FINISHED = ("done", "failed", "cancelled")


# --- helpers -------------------------------------------------------------------------------------


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


HANG_SECONDS = 180.0  # only a guard against a hang (a few real VGG steps on a busy 2-core machine)


def wait_until(client: TestClient, check: Callable[[], bool], what: str = "the condition") -> None:
    """Block until ``check()`` holds; the studio's job manager re-checks it after every job change."""
    if not manager_of(client).wait(check, HANG_SECONDS):
        raise AssertionError(f"{what} never came true")


def wait_for(client: TestClient, job_id: str, states: tuple[str, ...] = FINISHED) -> dict[str, Any]:
    """The job's status once it is in one of ``states``."""
    job = manager_of(client).get(job_id)
    assert job is not None, job_id
    if not manager_of(client).wait(lambda: job.state.value in states, HANG_SECONDS):
        raise AssertionError(f"job {job_id} stuck in {job.state.value} (wanted {states})")
    status: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
    return status


TINY = {"size": "64", "steps": "3", "scales": "1"}


def submit(client: TestClient, data: dict[str, Any] | None = None, files: Any = None, **extra: str) -> Any:
    if files is None:
        files = [("content", ("photo.png", png(), "image/png")), ("style", ("painting.png", png(), "image/png"))]
    return client.post("/api/jobs", data={**TINY, **(data or {}), **extra}, files=files)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> StudioSettings:
    return StudioSettings(
        workdir=tmp_path / "work",
        max_upload_bytes=200_000,
        max_pixels=2_000_000,
        max_size=256,
        max_steps=50,
        max_styles=3,
        max_queued=3,
        keep_jobs=10,
        preview_seconds=0.0,
        image_every=1,  # a preview at every step, on a GPU machine too
    )


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def client(settings: StudioSettings, runner: FakeRunner) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runner)) as c:
        yield c


def job_folders(settings: StudioSettings) -> list[Path]:
    """The job folders (and any leftover .check- folder) of the work folder: not its database or lock."""
    assert settings.workdir is not None
    return sorted(p for p in settings.workdir.iterdir() if p.is_dir()) if settings.workdir.exists() else []


# --- the page, the docs, the form --------------------------------------------------------------


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/app.js">' in page.text
    for name in ("app.js", "form.js", "images.js", "job.js", "net.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert ("javascript" in r.headers["content-type"]) or name.endswith(".css")


@pytest.mark.parametrize(
    "path", ["/static/", "/static", "/static/../server.py", "/static/%2e%2e/server.py", "/api/", "/work/"]
)
def test_no_directory_listing_or_escape(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "detail" in r.json()


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/api/jobs"]) == {"get", "post"}
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    for path in ("/api/jobs/{job_id}/image", "/api/jobs/{job_id}/events", "/api/examples", "/api/options"):
        assert "get" in paths[path], path
    body = paths["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    web_fields = {f.name for f in dataclasses.fields(Options) if f.name not in excluded()} - {
        "content_mask",
        "style_masks",
    }
    images = {"content", "style", "content_example", "style_example", "init_image", "content_mask", "style_mask"}
    assert web_fields | images | {"preset"} == set(body)
    assert body["size"]["maximum"] == 256
    assert body["pooling"]["enum"] == ["max", "avg"]
    assert body["original_colors"]["type"] == "boolean"
    assert body["style_mask"]["type"] == "array" and body["content_mask"]["format"] == "binary"


def test_form_fields_are_derived_from_options(client: TestClient) -> None:
    info = client.get("/api/options").json()
    fields = {f["name"]: f for f in info["fields"]}
    expected = [f.name for f in dataclasses.fields(Options) if f.name not in excluded()]
    at = expected.index(MASKS_AFTER) + 1  # the masks: images, not options, listed where they were options
    in_order = [*expected[:at], "content_mask", "style_masks", *expected[at:]]
    assert list(fields) == [*MAIN_FIELDS, *(name for name in in_order if name not in MAIN_FIELDS)]
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(Options)} | IMAGE_HELP
    for name in fields:  # a field the help names is called by its label
        assert fields[name]["help"] == word(helps[name], lambda n: f"'{label(n)}'"), name
        assert "`" not in fields[name]["help"] and "eq. 7" not in fields[name]["help"], name
    assert "'keep the photo's colours' keeps the photo's" in fields["style_strength"]["help"]
    assert fields["size"]["kind"] == "int" and fields["size"]["maximum"] == 256
    assert info["preset_summaries"] == SUMMARIES and set(SUMMARIES) == set(info["presets"])
    assert fields["ratio"]["kind"] == "float" and not fields["ratio"]["main"]
    assert fields["style_strength"]["kind"] == "float" and fields["style_strength"]["main"]
    assert fields["style_size"]["optional"] and fields["content_weight"]["optional"]
    assert fields["init"]["choices"] == ["noise", "content", "mapped"]
    assert "cpu" in fields["device"]["choices"]
    assert fields["style_layers"]["kind"] == "layers"
    assert fields["scale_sizes"]["kind"] == "numbers" and fields["scale_sizes"]["item"] == "int"
    assert fields["original_colors"]["kind"] == "bool"
    assert fields["content_mask"]["kind"] == "file" and fields["content_mask"]["upload"] == "content_mask"
    assert fields["style_masks"]["upload"] == "style_mask" and fields["style_masks"]["multiple"]
    assert fields["init"]["upload"] == "init_image"
    assert set(info["presets"]) == set(PRESETS)
    for name in PRESETS:
        assert info["presets"][name]["steps"] == resolve(name).steps
    assert info["limits"]["max_upload_bytes"] == 200_000


def test_only_server_files_and_print_sizes_are_left_out() -> None:
    # A new text option is left out of the web until fields.py knows how to check it: decide then.
    assert set(excluded()) == {"weights", "weights_format", "max_memory", "print", "dpi"}
    assert "impasto stylize --print" in excluded()["print"]


def test_examples_and_thumbnails(client: TestClient) -> None:
    listed = client.get("/api/examples").json()
    names = [e["name"] for e in listed]
    assert names == sorted(p.stem for p in bundled_image("tubingen").parent.glob("*.jpg"))
    tubingen = next(e for e in listed if e["name"] == "tubingen")
    assert "Praefcke" in tubingen["author"] and "CC BY" in tubingen["licence"]
    thumb = client.get(tubingen["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert max(img.size) <= 256
    full = client.get(tubingen["image_url"])
    assert full.content == bundled_image("tubingen").read_bytes()


def test_example_credits_are_plain_text(client: TestClient) -> None:
    listed = {e["name"]: e for e in client.get("/api/examples").json()}
    assert listed["shipwreck"]["title"] == (
        "The Shipwreck of the Minotaur (c. 1805–1810; also catalogued as The Wreck of a Transport Ship)"
    )  # CREDITS.md has *The Wreck of a Transport Ship*
    for e in listed.values():
        for text in (e["title"], e["author"], e["licence"]):
            assert not any(mark in text for mark in ("*", "`", "](")), text


def test_plain_text() -> None:
    from impasto.web.media import plain_text

    assert plain_text("*a* **b** ***c*** _d_ __e__ `f` [g](https://x.org/h)") == "a b c d e f g"
    assert plain_text("2*3*4, snake_case_name, a * b") == "2*3*4, snake_case_name, a * b"  # no emphasis there
    assert plain_text("as *The Wreck of a Transport Ship*)") == "as The Wreck of a Transport Ship)"


@pytest.mark.parametrize("name", ["nope", "CREDITS", "..%2FCREDITS.md", "*", "tubingen.jpg"])
def test_unknown_example_is_404(client: TestClient, name: str) -> None:
    for suffix in ("thumbnail", "image"):
        r = client.get(f"/api/examples/{name}/{suffix}")
        assert r.status_code == 404
        assert "detail" in r.json()


# --- jobs that work ------------------------------------------------------------------------------


def test_job_lifecycle(client: TestClient, runner: FakeRunner, tmp_path: Path) -> None:
    files = [
        ("content", ("my photo.png", png(80, 60), "image/png")),
        ("style", ("a.png", png(color=(1, 2, 3)), "image/png")),
        ("style", ("b.png", png(color=(4, 5, 6)), "image/png")),
    ]
    r = submit(client, {"ratio": "0.05", "seed": "7"}, files=files)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert uuid.UUID(job_id).version == 4
    assert r.json()["events_url"] == f"/api/jobs/{job_id}/events"

    status = wait_for(client, job_id)
    assert status["state"] == "done"
    assert status["step"] == status["total"] == 3
    assert status["has_image"] and status["error"] is None
    assert status["losses"] == {"content": 0.5, "style": 0.5}
    assert status["options"] == {"size": 64, "steps": 3, "scales": 1, "ratio": 0.05, "seed": 7}
    assert [(i["role"], i["label"]) for i in status["inputs"]] == [
        ("content", "my photo.png"),
        ("style", "a.png"),
        ("style", "b.png"),
    ]
    assert status["position"] is None and status["finished"] >= status["started"] >= status["created"]

    call = runner.calls[-1]
    assert call["opts"].ratio == 0.05 and call["opts"].seed == 7 and len(call["styles"]) == 2

    image = client.get(f"/api/jobs/{job_id}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    out = tmp_path / "got.png"
    out.write_bytes(image.content)
    params = read_params(out)
    assert params["size"] == 64 and params["ratio"] == 0.05 and params["preset"] == "default"
    assert params["content"] == "my photo.png" and params["styles"] == ["a.png", "b.png"]
    assert params["steps_done"] == 3 and "weights" not in params

    download = client.get(f"/api/jobs/{job_id}/image?download=1")
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    assert download.content == image.content

    assert client.get(f"/api/jobs/{job_id}/inputs/0").content == png(80, 60)
    assert client.get(f"/api/jobs/{job_id}/inputs/2").content == png(color=(4, 5, 6))
    assert client.get(f"/api/jobs/{job_id}/inputs/3").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/inputs/-1").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/inputs/x").status_code == 422
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job_id]


def test_job_from_examples(client: TestClient, runner: FakeRunner) -> None:
    r = client.post(
        "/api/jobs",
        data={**TINY, "content_example": "tubingen", "style_example": ["starry_night", "udnie"]},
    )
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done"
    assert [(i["example"], i["role"]) for i in status["inputs"]] == [
        ("tubingen", "content"),
        ("starry_night", "style"),
        ("udnie", "style"),
    ]
    call = runner.calls[-1]
    assert call["content"] == bundled_image("tubingen")
    assert call["styles"] == [bundled_image("starry_night"), bundled_image("udnie")]


def test_upload_and_example_styles_mix(client: TestClient, runner: FakeRunner) -> None:
    files = [("content", ("c.png", png(), "image/png")), ("style", ("s.png", png(), "image/png"))]
    r = submit(client, {"style_example": "the_scream"}, files=files)
    assert r.status_code == 201, r.text
    assert wait_for(client, r.json()["id"])["state"] == "done"
    assert len(runner.calls[-1]["styles"]) == 2


def test_init_image_upload(client: TestClient, runner: FakeRunner) -> None:
    files = [
        ("content", ("c.png", png(), "image/png")),
        ("style", ("s.png", png(), "image/png")),
        ("init_image", ("start.png", png(color=(9, 9, 9)), "image/png")),
    ]
    r = submit(client, files=files)
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert status["params"]["init"] == "upload: start.png"
    assert [i["role"] for i in status["inputs"]] == ["content", "style", "init_image"]
    call = runner.calls[-1]
    init_path = Path(call["init_image"])  # an argument of the run, not an option
    assert init_path.name == "init_image-1" and load_image(init_path).getpixel((0, 0)) == (9, 9, 9)
    assert call["opts"].init == "image" and call["opts"].size == status["options"]["size"]
    assert "init" not in status["options"]


def test_mask_uploads(client: TestClient, runner: FakeRunner) -> None:
    files = [
        ("content", ("c.png", png(), "image/png")),
        ("style", ("s1.png", png(), "image/png")),
        ("style", ("s2.png", png(), "image/png")),
        ("content_mask", ("regions.png", png(color=(0, 0, 0)), "image/png")),
        ("style_mask", ("m1.png", png(color=(255, 255, 255)), "image/png")),
        ("style_mask", ("m2.png", png(color=(255, 255, 255)), "image/png")),
    ]
    r = submit(client, {"style_blend": "1 3"}, files=files)
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done", status["error"]
    assert [i["role"] for i in status["inputs"]] == [
        "content", "style", "style", "content_mask", "style_mask", "style_mask",
    ]  # fmt: skip
    assert status["params"]["content_mask"] == "upload: regions.png"
    assert status["params"]["style_masks"] == ["upload: m1.png", "upload: m2.png"]
    call = runner.calls[-1]
    assert Path(call["content_mask"]).name == "content_mask-1"
    assert [Path(p).name for p in call["style_masks"]] == ["style_mask-1", "style_mask-2"]
    assert call["opts"].style_blend == (1.0, 3.0)
    assert status["options"]["style_blend"] == [1.0, 3.0]
    assert not set(status["options"]) & {"content_mask", "style_masks", "init_image"}  # no image paths in it


def test_the_job_spec_holds_one_overrides_dict() -> None:
    names = {f.name for f in dataclasses.fields(JobSpec)}
    assert "overrides" in names and "run_overrides" not in names


# One valid, non-default value for every web form field, as typed in the form and as the runner must
# receive it (Options.to_dict's form, written out). A new Options field fails the first test below
# until it gets a value here, so every field keeps being tested.
FIELD_VALUES: dict[str, tuple[str, Any]] = {
    "size": ("96", 96),
    "tile": ("48", 48),
    "style_size": ("80", 80),
    "steps": ("4", 4),
    "scales": ("2", 2),
    "content_layers": ("conv3_2", ["conv3_2:1"]),
    "style_layers": ("conv1_1:0.5 conv2_1:0.5", ["conv1_1:0.5", "conv2_1:0.5"]),
    "ratio": ("0.5", 0.5),
    "style_strength": ("5", 5.0),
    "style_weight": ("2", 2.0),
    "content_weight": ("3.5", 3.5),
    "init": ("noise", "noise"),
    "optimizer": ("adam", "adam"),
    "learning_rate": ("4", 4.0),
    "lbfgs_history": ("7", 7),
    "precondition": ("none", "none"),
    "style_loss": ("w2", "w2"),
    "photorealism": ("3000", 3000.0),
    "photo_projection": ("on", True),
    "photo_recolor": ("on", True),
    "pooling": ("avg", "avg"),
    "tv_weight": ("0.001", 0.001),
    "seed": ("123", 123),
    "device": ("cpu", "cpu"),
    "precision": ("bf16", "bf16"),
    "scale_sizes": ("48 64", [48, 64]),
    "max_time": ("30", 30.0),
    "network": ("normalized", "normalized"),
    "color": ("luminance", "luminance"),
    "color_match": ("pca", "pca"),
    "original_colors": ("true", True),
    "style_blend": ("2", [2.0]),
    "style_scale": ("1.5", 1.5),
    "init_noise_blend": ("0.5", 0.5),
    "layer_balance": ("yes", True),
    "quality": ("80", 80),
}


def test_field_values_cover_every_web_field() -> None:
    images = {name for name in UPLOADS if name != "init"}  # tested by test_mask_uploads
    assert set(FIELD_VALUES) == {f.name for f in dataclasses.fields(Options)} - set(excluded())
    assert {f.name for f in form_fields(StudioSettings())} == set(FIELD_VALUES) | images


@pytest.mark.parametrize("name", sorted(FIELD_VALUES))
def test_every_form_field_reaches_the_runner(client: TestClient, runner: FakeRunner, name: str) -> None:
    text, expected = FIELD_VALUES[name]
    r = submit(client, {name: text}, steps="1" if name != "steps" else text)
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done", status["error"]
    assert name in status["options"]
    received = runner.calls[-1]["opts"].to_dict()[name]
    received = list(received) if isinstance(received, tuple) else received
    assert received == (pytest.approx(expected) if isinstance(expected, float) else expected)
    assert received != resolve("default").to_dict()[name]  # the value is not the default anyway


def test_empty_fields_take_the_preset_value(client: TestClient, runner: FakeRunner) -> None:
    r = submit(client, {"preset": "paper", "style_size": "", "content_weight": "", "pooling": "", "init": " "})
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert status["options"] == {"size": 64, "steps": 3, "scales": 1}
    opts = runner.calls[-1]["opts"]
    assert (opts.pooling, opts.init, opts.style_size, opts.content_weight) == ("avg", "noise", None, None)


def test_client_file_names_never_reach_the_disk(client: TestClient, settings: StudioSettings) -> None:
    files = [
        ("content", ("../../../../tmp/evil.png", png(), "image/png")),
        ("style", ("..\\..\\x.png", png(), "image/png")),
    ]
    r = submit(client, files=files)
    assert r.status_code == 201, r.text
    status = wait_for(client, r.json()["id"])
    assert [i["label"] for i in status["inputs"]] == ["evil.png", "x.png"]
    (folder,) = job_folders(settings)
    assert folder.name == r.json()["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["content", "result.png", "style-1"]


# --- bad requests --------------------------------------------------------------------------------

GOOD = [("content", ("c.png", png(), "image/png")), ("style", ("s.png", png(), "image/png"))]
STYLE = [("style", ("s.png", png(), "image/png"))]
BAD_REQUESTS: list[tuple[str, dict[str, Any], Any, int, str]] = [
    ("no content", {}, STYLE, 422, "exactly one content"),
    ("two contents", {"content_example": "tubingen"}, GOOD, 422, "exactly one content"),
    ("no style", {}, [GOOD[0]], 422, "at least one style"),
    ("too many styles", {"style_example": ["udnie"] * 4}, [GOOD[0]], 422, "at most 3 style"),
    ("size not a number", {"size": "abc"}, GOOD, 422, "size must be a whole number"),
    ("size a fraction", {"size": "12.5"}, GOOD, 422, "whole number"),
    ("size too large", {"size": "4096"}, GOOD, 422, "size must be <= 256"),
    ("size zero", {"size": "0"}, GOOD, 422, "size must be >= 16"),
    ("style size too large", {"style_size": "100000"}, GOOD, 422, "style_size must be <= 256"),
    ("steps negative", {"steps": "-1"}, GOOD, 422, "steps must be >= 1"),
    ("steps too many", {"steps": "10000"}, GOOD, 422, "steps must be <= 50"),
    ("scales too many", {"scales": "99"}, GOOD, 422, "scales must be <= 5"),
    ("preset too big for the web", {"preset": "paper", "size": ""}, GOOD, 422, "size must be <= 256"),
    ("ratio nan", {"ratio": "nan"}, GOOD, 422, "finite"),
    ("ratio inf", {"ratio": "inf"}, GOOD, 422, "finite"),
    ("ratio negative", {"ratio": "-1"}, GOOD, 422, "ratio must be >= 0"),
    ("ratio text", {"ratio": "lots"}, GOOD, 422, "ratio must be a number"),
    ("seed too big", {"seed": str(2**40)}, GOOD, 422, "seed must be <="),
    ("lbfgs history huge", {"lbfgs_history": "100000"}, GOOD, 422, "lbfgs_history must be <="),
    ("unknown preset", {"preset": "papr"}, GOOD, 422, "did you mean 'paper'"),
    ("unknown field", {"sise": "64"}, GOOD, 422, "unknown field 'sise' (did you mean 'size'?)"),
    ("weights path", {"weights": "/etc/passwd"}, GOOD, 422, "cannot be set from the web"),
    ("weights format", {"weights_format": "caffe"}, GOOD, 422, "cannot be set from the web"),
    ("init a path", {"init": "/etc/passwd"}, GOOD, 422, "unknown init"),
    ("unknown device", {"device": "tpu"}, GOOD, 422, "unknown device"),
    ("unknown pooling", {"pooling": "mean"}, GOOD, 422, "unknown pooling 'mean'"),
    ("unknown optimizer", {"optimizer": "sgd"}, GOOD, 422, "unknown optimizer"),
    ("unknown precondition", {"precondition": "fourier"}, GOOD, 422, "unknown precondition"),
    ("unknown style loss", {"style_loss": "w3"}, GOOD, 422, "unknown style loss 'w3'"),
    ("unknown layer", {"style_layers": "conv9_9"}, GOOD, 422, "unknown layer 'conv9_9'"),
    ("bad layer weight", {"style_layers": "conv1_1:x"}, GOOD, 422, "is not a number"),
    ("layer list too long", {"style_layers": "conv1_1 " * 200}, GOOD, 422, "too long"),
    ("unknown content example", {"content_example": "nope"}, STYLE, 422, "no bundled example 'nope'"),
    ("path as example", {"content_example": "../../etc/passwd"}, STYLE, 422, "no bundled example"),
    ("glob as example", {"style_example": "*"}, [GOOD[0]], 422, "no bundled example"),
    ("field twice", {"size": ["64", "96"]}, GOOD, 422, "more than once"),
    ("text in a file field", {"content": "hello"}, STYLE, 422, "must be a file upload"),
    ("file in a text field", {}, [*GOOD, ("size", ("x.png", b"1", "image/png"))], 422, "is not a file field"),
    ("init and init image", {"init": "noise"}, [*GOOD, ("init_image", ("i.png", png(), "image/png"))], 422, "either"),
    ("two init images", {}, [*GOOD, *[("init_image", ("i.png", png(), "image/png"))] * 2], 422, "only one init"),
    ("output too small for conv5_1", {"size": "16"}, GOOD, 422, "too small for layer conv5_1"),
    ("scale size too large", {"scale_sizes": "64 4096"}, GOOD, 422, "scale_sizes must be <= 256"),
    ("scale sizes not numbers", {"scale_sizes": "64 big"}, GOOD, 422, "scale_sizes must be a whole number"),
    ("scale sizes decreasing", {"scale_sizes": "128 64"}, GOOD, 422, "increasing"),
    ("style scale too large", {"style_scale": "100"}, GOOD, 422, "style images would be 6400 px"),
    ("bool not a bool", {"original_colors": "maybe"}, GOOD, 422, "original_colors must be true or false"),
    ("noise blend over 1", {"init_noise_blend": "2"}, GOOD, 422, "between 0 and 1"),
    ("max time zero", {"max_time": "0"}, GOOD, 422, "max_time must be > 0"),
    ("blend count", {"style_blend": "1 2"}, GOOD, 422, "style_blend has 2 weights for 1 style image"),
    ("mask as text", {"style_masks": "/etc/passwd"}, GOOD, 422, "upload it as a 'style_mask' file"),
    ("content mask as text", {"content_mask": "/etc/passwd"}, GOOD, 422, "must be a file upload"),
    (
        "style mask without content mask",
        {},
        [*GOOD, ("style_mask", ("m.png", png(), "image/png"))],
        422,
        "style_masks needs content_mask",
    ),
    (
        "two masks for one style",
        {},
        [*GOOD, ("content_mask", ("c.png", png(), "image/png")), *[("style_mask", ("m.png", png(), "image/png"))] * 2],
        422,
        "has 2 mask(s) for 1 style image(s)",
    ),
    ("mask not an image", {}, [*GOOD, ("content_mask", ("c.png", b"nope", "image/png"))], 400, "content mask 1"),
    ("not an image", {}, [("content", ("c.png", b"hello world", "image/png")), *STYLE], 400, "not an image file"),
    ("empty file", {}, [("content", ("c.png", b"", "image/png")), *STYLE], 400, "file is empty"),
    ("truncated image", {}, [("content", ("c.png", png()[:60], "image/png")), *STYLE], 400, "truncated or corrupt"),
    ("tiny image", {}, [("content", ("c.png", png(8, 8), "image/png")), *STYLE], 400, "too small"),
    ("too many pixels", {}, [("content", ("c.png", png(1600, 1600), "image/png")), *STYLE], 400, "over the limit"),
    (
        "huge file",
        {},
        [("content", ("c.png", b"\x89PNG" + b"0" * 300_000, "image/png")), *STYLE],
        413,
        "over the upload",
    ),
]


@pytest.mark.parametrize(
    ("data", "files", "code", "message"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_requests_are_refused(
    client: TestClient, settings: StudioSettings, data: dict[str, Any], files: Any, code: int, message: str
) -> None:
    r = client.post("/api/jobs", data={**TINY, **data}, files=files)
    assert r.status_code == code, r.text
    detail = r.json()["detail"]
    assert message in detail
    assert "\n" not in detail and str(settings.workdir) not in detail
    assert client.get("/api/jobs").json() == []
    assert job_folders(settings) == []


INT_FIELDS = [f.name for f in form_fields(StudioSettings()) if "int" in (f.kind, f.item)]


@pytest.mark.parametrize("sign", ["", "-"])
@pytest.mark.parametrize("name", INT_FIELDS)
def test_a_309_digit_integer_is_refused_with_one_line(
    client: TestClient, settings: StudioSettings, name: str, sign: str
) -> None:
    """Too big for a float: math.isfinite and "%g" raised OverflowError, a 500 (issue 30, item 5)."""
    r = client.post("/api/jobs", data={**TINY, name: sign + "9" * 309}, files=GOOD)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith(name) and "\n" not in detail and len(detail) < 200, detail
    assert client.get("/api/jobs").json() == []


# --- checking an image when it is chosen, before any job --------------------------------------------


def check_image(client: TestClient, field: str, name: str, data: bytes, ctype: str = "image/png") -> Any:
    return client.post("/api/images/check", files=[(field, (name, data, ctype))])


def jpeg(width: int = 40, height: int = 30) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_image_check_accepts_what_a_job_accepts(client: TestClient, settings: StudioSettings) -> None:
    r = check_image(client, "content", "my photo.png", png(80, 60))
    assert r.status_code == 200, r.text
    assert r.json() == {"field": "content", "label": "my photo.png", "width": 80, "height": 60,
                        "media_type": "image/png"}  # fmt: skip
    r = check_image(client, "style_mask", "../../masks/m.jpg", jpeg(), "application/octet-stream")
    assert r.json() == {"field": "style_mask", "label": "m.jpg", "width": 40, "height": 30, "media_type": "image/jpeg"}
    assert client.get("/api/jobs").json() == [] and job_folders(settings) == []  # nothing is kept
    assert "post" in client.get("/openapi.json").json()["paths"]["/api/images/check"]


IMAGE_CHECKS: list[tuple[str, str, str, bytes, int, str]] = [
    ("text as the photo", "content", "notes.txt", b"shopping list: eggs\n", 400,
     "content image 'notes.txt': not an image file"),
    ("text named .png", "style", "fake.png", b"hello world", 400, "style image 'fake.png': not an image file"),
    ("empty file", "style", "empty.png", b"", 400, "style image 'empty.png': file is empty"),
    ("truncated image", "init_image", "half.png", png()[:60], 400, "init image 'half.png': truncated or corrupt"),
    ("tiny image", "content_mask", "dot.png", png(8, 8), 400, "content mask 'dot.png': image is 8x8 px, too small"),
    ("too many pixels", "content", "big.png", png(1600, 1600), 400, "content image 'big.png': image is 1600x1600"),
    ("huge file", "style", "huge.png", b"\x89PNG" + b"0" * 300_000, 413,
     "style image 'huge.png' is over the upload limit of 200,000 bytes"),
    ("not a file field", "size", "x.png", png(), 422, "send one image file, in a field named content, style,"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "name", "data", "code", "message"), [c[1:] for c in IMAGE_CHECKS], ids=[c[0] for c in IMAGE_CHECKS]
)
def test_image_check_refuses_with_one_line_naming_the_file(
    client: TestClient, settings: StudioSettings, field: str, name: str, data: bytes, code: int, message: str
) -> None:
    r = check_image(client, field, name, data)
    assert r.status_code == code, r.text
    detail = r.json()["detail"]
    assert detail.startswith(message), detail
    assert "\n" not in detail and str(settings.workdir) not in detail and "/tmp" not in detail
    assert job_folders(settings) == []


def test_image_check_says_what_the_job_would_say(client: TestClient) -> None:
    text = ("content", ("notes.txt", b"not a picture", "text/plain"))
    checked = client.post("/api/images/check", files=[text]).json()["detail"]
    job = client.post("/api/jobs", data=TINY, files=[text, *STYLE])
    assert job.status_code == 400 and job.json()["detail"] == checked


@pytest.mark.parametrize(
    ("data", "files", "message"),
    [
        ({"content": "photo.png"}, None, "send one image file"),
        ({"size": "64"}, [("content", ("c.png", png(), "image/png"))], "send one image file"),
        ({}, [("content", ("c.png", png(), "image/png")), ("style", ("s.png", png(), "image/png"))], "Too many files"),
    ],
    ids=["a name, not a file", "a file and a field", "two files"],
)
def test_image_check_takes_exactly_one_file(client: TestClient, data: dict[str, str], files: Any, message: str) -> None:
    r = client.post("/api/images/check", data=data, files=files)
    assert 400 <= r.status_code < 500 and message in r.json()["detail"], r.text
    r = client.post("/api/images/check", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


def test_request_over_the_body_limit(client: TestClient, settings: StudioSettings) -> None:
    blob = b"0" * (settings.max_request_bytes + 1)
    r = client.post("/api/jobs", files=[("content", ("c.png", blob, "image/png")), *STYLE])
    assert r.status_code == 413
    assert "over the limit" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes as they come
        yield b"--xyz\r\nContent-Disposition: form-data; name=content; filename=c.png\r\n\r\n"
        for _ in range(settings.max_request_bytes // 2**16 + 2):
            yield b"0" * 2**16

    r = client.post("/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413
    assert "over the limit" in r.json()["detail"]
    assert job_folders(settings) == []


def test_safe_label() -> None:
    from impasto.web.media import safe_label

    assert safe_label("../../etc/passwd", "x") == "passwd"
    assert safe_label("C:\\Users\\me\\photo.jpg", "x") == "photo.jpg"
    assert safe_label("a\x00b\nc.png", "x") == "abc.png"
    assert safe_label("", "content image") == safe_label(None, "content image") == "content image"
    assert safe_label("../", "style") == "style"
    assert len(safe_label("y" * 500, "x")) == 80


@pytest.mark.parametrize(
    ("body", "ctype"), [(b'{"size": 64}', "application/json"), (b"", None), (b"abc", "text/plain")]
)
def test_not_a_form(client: TestClient, body: bytes, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/api/jobs", content=body, headers=headers)
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["detail"]


def test_broken_multipart(client: TestClient) -> None:
    r = client.post(
        "/api/jobs", content=b"--xyz\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    assert 400 <= r.status_code < 500
    assert "detail" in r.json()


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "..", "%2e%2e%2fwork", "0" * 500])
def test_unknown_job_is_404(client: TestClient, job_id: str) -> None:
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/image"), ("GET", "/events"), ("GET", "/inputs/0")]:
        r = client.request(method, f"/api/jobs/{job_id}{suffix}")
        assert r.status_code == 404, (method, suffix, r.text)
        assert "no job" in r.json()["detail"] or r.json()["detail"] == "Not Found"


def test_wrong_methods(client: TestClient) -> None:
    assert client.put("/api/jobs").status_code == 405
    assert client.post("/api/examples").status_code == 405
    assert client.delete("/api/jobs").status_code == 405


# --- the queue, cancelling, failures ---------------------------------------------------------------


def test_queue_positions_and_cancel(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()
    first, second, third = (submit(client).json()["id"] for _ in range(3))
    wait_for(client, first, ("running",))
    assert client.get(f"/api/jobs/{second}").json()["position"] == 1
    assert client.get(f"/api/jobs/{third}").json()["position"] == 2
    assert client.get(f"/api/jobs/{second}/image").status_code == 404  # no image while queued

    cancelled = client.delete(f"/api/jobs/{second}")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled" and not cancelled.json()["has_image"]
    assert client.get(f"/api/jobs/{third}").json()["position"] == 1
    again = client.delete(f"/api/jobs/{second}")
    assert again.status_code == 409 and "already finished (cancelled)" in again.json()["detail"]
    assert "no image yet" in client.get(f"/api/jobs/{second}/image").json()["detail"]

    runner.run_freely()
    assert wait_for(client, first)["state"] == "done"
    assert wait_for(client, third)["state"] == "done"
    assert client.delete(f"/api/jobs/{third}").status_code == 409


def test_stop_keeps_the_image(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()
    job_id = submit(client, steps="50").json()["id"]
    job = manager_of(client).get(job_id)
    assert job is not None
    runner.release(2)
    wait_until(client, lambda: job.step == 2, "step 2")
    r = client.delete(f"/api/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["cancel_requested"]
    status = wait_for(client, job_id)
    assert status["state"] == "cancelled" and status["has_image"]
    assert status["step"] == status["image_step"] == 2  # held before step 3: it stopped there
    image = client.get(f"/api/jobs/{job_id}/image")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert client.delete(f"/api/jobs/{job_id}").status_code == 409


def test_queue_full(client: TestClient, runner: FakeRunner, settings: StudioSettings) -> None:
    runner.hold()
    ids = [submit(client).json()["id"]]
    wait_for(client, ids[0], ("running",))
    ids += [submit(client).json()["id"] for _ in range(settings.max_queued)]
    r = submit(client)
    assert r.status_code == 429 and "already waiting" in r.json()["detail"]
    assert len(job_folders(settings)) == len(ids)


def test_failed_jobs_report_and_the_worker_survives(client: TestClient, runner: FakeRunner) -> None:
    runner.error = InputError("style image is lost")
    failed = wait_for(client, submit(client).json()["id"])
    assert failed["state"] == "failed" and failed["error"] == "style image is lost"
    runner.error = RuntimeError("out of memory")  # one line with advice (tests/test_faults.py)
    oom = wait_for(client, submit(client).json()["id"])
    assert oom["state"] == "failed" and oom["error"].startswith("out of memory: try a smaller size")
    runner.error = RuntimeError("something broke")
    crashed = wait_for(client, submit(client).json()["id"])
    assert crashed["state"] == "failed" and crashed["error"] == "internal error: RuntimeError: something broke"
    assert client.get(f"/api/jobs/{crashed['id']}/image").status_code == 404
    runner.error = None
    assert wait_for(client, submit(client).json()["id"])["state"] == "done"


def test_server_answers_during_a_job(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()  # the job stays running, in the middle of its steps, until the requests are answered
    job_id = submit(client).json()["id"]
    job = manager_of(client).get(job_id)
    assert job is not None
    runner.release(1)
    wait_until(client, lambda: job.step == 1, "step 1")
    paths = ("/api/examples", "/api/options", f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/image", "/")
    answers: list[int] = []
    asking = threading.Thread(target=lambda: answers.extend(client.get(p).status_code for p in paths), daemon=True)
    asking.start()
    asking.join(HANG_SECONDS)  # a request blocked by the job would hang here: fail instead
    assert answers == [200] * len(paths)
    status = client.get(f"/api/jobs/{job_id}").json()
    assert (status["state"], status["step"]) == ("running", 1)  # all were answered during the job


# --- server-sent events ----------------------------------------------------------------------------


def read_events(
    client: TestClient, job_id: str, limit: int | None = None, on_event: Callable[[dict[str, Any]], None] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The (name, data) events of a job's stream, until it ends or ``limit`` have come (then hang up).

    ``on_event`` sees each event's data as it comes, before the next is read.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = "message"
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
                if on_event is not None:
                    on_event(events[-1][1])
                if limit is not None and len(events) >= limit:
                    break
    return events


def in_lockstep(runner: FakeRunner | PacedRunner) -> Callable[[dict[str, Any]], None]:
    """An ``on_event`` that lets the held runner take its next step only once its last one was seen.

    So the stream shows every step however slow the reader: none is folded into a later event.
    """
    free = 1 if isinstance(runner, PacedRunner) else 0  # a held PacedRunner still takes its first step
    granted = [0]

    def on_event(status: dict[str, Any]) -> None:
        wanted = status["step"] + 1 - free  # permits that allow one step more than seen
        if wanted > granted[0]:
            runner.release(wanted - granted[0])
            granted[0] = wanted

    return on_event


def test_events_stream_progress_until_done(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()
    job_id = submit(client, steps="5").json()["id"]
    events = read_events(client, job_id, on_event=in_lockstep(runner))
    assert {name for name, _ in events} == {"status"}
    states = [e["state"] for _, e in events]
    assert states[-1] == "done" and set(states) <= {"queued", "running", "done"}
    steps = [e["step"] for _, e in events]
    assert steps == sorted(steps) and set(steps) == {0, 1, 2, 3, 4, 5}
    versions = [e["image_version"] for _, e in events]
    assert versions == sorted(versions) and {0, 1, 2, 3, 4} <= set(versions)  # a new preview every step
    assert events[-1][1]["image_version"] == 6  # the result replaces the last preview
    last = events[-1][1]
    assert last["eta"] == 0.0 and last["loss"] == 1.0
    assert read_events(client, job_id)[-1][1]["state"] == "done"  # a finished job answers at once


def test_events_of_a_queued_job_show_its_position(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()
    first = submit(client).json()["id"]
    second = submit(client).json()["id"]
    wait_for(client, first, ("running",))
    ((_, event),) = read_events(client, second, limit=1)
    assert event["state"] == "queued" and event["position"] == 1
    runner.run_freely()
    events = read_events(client, second)
    assert events[-1][1]["state"] == "done" and events[-1][1]["step"] == 3


def test_the_last_event_is_the_final_state_when_the_job_ends_meanwhile(
    client: TestClient, runner: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race behind a flaky test: the stream took a "running" snapshot, the job finished before
    # the stream checked whether to go on, and the stream ended with "running" as its last event.
    manager = manager_of(client)
    runner.hold()
    job_id = submit(client).json()["id"]
    job = manager.get(job_id)
    wait_for(client, job_id, ("running",))
    real_status = manager.status

    def status_then_finish(j: Any) -> dict[str, Any]:
        snap = real_status(j)
        if j is job and snap["state"] == "running":  # the job ends right after this snapshot
            runner.run_freely()
            assert manager.wait(lambda: job.state.value == "done", HANG_SECONDS)
        return snap

    monkeypatch.setattr(manager, "status", status_then_finish)
    events = [e["state"] for _, e in read_events(client, job_id)]
    assert events == ["running", "done"]


def test_a_browser_that_leaves_does_not_stop_anything(client: TestClient, runner: FakeRunner) -> None:
    runner.hold()
    job_id = submit(client, steps="10").json()["id"]
    job = manager_of(client).get(job_id)
    assert job is not None
    runner.release(1)
    wait_until(client, lambda: job.step == 1, "step 1")
    events = read_events(client, job_id, limit=2, on_event=lambda e: runner.release() if e["step"] == 1 else None)
    assert [e["step"] for _, e in events] == [1, 2]  # and the client has hung up
    status = client.get(f"/api/jobs/{job_id}").json()
    assert (status["state"], status["step"], status["cancel_requested"]) == ("running", 2, False)
    runner.run_freely()
    assert wait_for(client, job_id)["state"] == "done"
    assert client.get(f"/api/jobs/{job_id}").json()["step"] == 10


# --- housekeeping and guards -------------------------------------------------------------------------


def test_finished_jobs_are_deleted_beyond_keep_jobs(tmp_path: Path, runner: FakeRunner) -> None:
    settings = StudioSettings(workdir=tmp_path / "w", keep_jobs=2, max_size=128, preview_seconds=0.0)
    with TestClient(create_app(settings, runner)) as client:
        ids = []
        for _ in range(4):
            ids.append(submit(client).json()["id"])
            wait_for(client, ids[-1])
            assert client.get(f"/api/jobs/{ids[-1]}/image").status_code == 200  # fetched: it may go
            manager_of(client).prune()
        wait_until(client, lambda: len(manager_of(client).jobs()) == 2, "two jobs left")
        assert [j["id"] for j in client.get("/api/jobs").json()] == ids[:1:-1]
        assert client.get(f"/api/jobs/{ids[0]}").status_code == 404
        assert client.get(f"/api/jobs/{ids[0]}/image").status_code == 404
        assert sorted(p.name for p in (tmp_path / "w").iterdir() if p.is_dir()) == sorted(ids[2:])


def test_cancelled_jobs_never_push_out_a_young_result(tmp_path: Path, runner: FakeRunner) -> None:
    """52 submit-and-cancel pairs deleted someone's finished result within 1.6 s (issue 30, item 8)."""
    settings = StudioSettings(workdir=tmp_path / "w", keep_jobs=2, max_size=128, preview_seconds=0.0)
    with TestClient(create_app(settings, runner)) as client:
        kept = submit(client).json()["id"]
        wait_for(client, kept)  # done, not fetched by anyone yet
        runner.hold()
        cancelled = []
        for _ in range(6):
            cancelled.append(submit(client).json()["id"])
            wait_for(client, cancelled[-1], ("running",))
            assert client.delete(f"/api/jobs/{cancelled[-1]}").status_code == 200
            wait_for(client, cancelled[-1])
        manager = manager_of(client)
        manager.prune()
        assert {j.id for j in manager.jobs()} == {kept, cancelled[-1]}  # the cancelled ones went first
        assert client.get(f"/api/jobs/{kept}").json()["state"] == "done"  # (its image not fetched: still nobody's)
        assert (tmp_path / "w" / kept / "result.png").is_file()
        runner.run_freely()
        fetched = []
        for _ in range(2):
            fetched.append(submit(client).json()["id"])
            wait_for(client, fetched[-1])
            assert client.get(f"/api/jobs/{fetched[-1]}/image").status_code == 200
        manager.prune()
        assert [j.id for j in manager.jobs()] == [fetched[1], kept]  # a cancelled one, then the oldest done
        assert sorted(p.name for p in job_folders(settings)) == sorted([fetched[1], kept])


def test_a_young_result_nobody_fetched_is_never_deleted(tmp_path: Path, runner: FakeRunner) -> None:
    settings = StudioSettings(workdir=tmp_path / "w", keep_jobs=1, keep_seconds=60.0, max_size=128)
    with TestClient(create_app(settings, runner)) as client:
        ids = [submit(client).json()["id"] for _ in range(2)]
        for job_id in ids:
            wait_for(client, job_id)
        manager = manager_of(client)
        manager.prune(now=time.time() + 120)  # past keep_seconds, over keep_jobs: both young and unfetched
        assert len(manager.jobs()) == 2
        manager.prune(now=time.time() + settings.keep_unfetched_seconds + 1)
        assert manager.jobs() == []


def test_finished_jobs_expire(client: TestClient, settings: StudioSettings) -> None:
    job_id = submit(client).json()["id"]
    wait_for(client, job_id)
    manager = manager_of(client)
    manager.prune(now=time.time() + settings.keep_seconds / 2)
    assert client.get(f"/api/jobs/{job_id}").status_code == 200
    manager.prune(now=time.time() + settings.keep_seconds + 1)
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert job_folders(settings) == []


def test_the_default_workdir_is_kept_and_a_restart_serves_finished_jobs(runner: FakeRunner) -> None:
    """No --workdir: the user's data folder, not a temporary one; a restarted studio serves the job as before."""
    app = create_app(StudioSettings(max_size=128), runner)
    with TestClient(app) as client:
        job_id = submit(client).json()["id"]
        before = wait_for(client, job_id)
        image = client.get(f"/api/jobs/{job_id}/image").content
        root = app.state.manager.root
    assert root == default_workdir() and str(root).startswith(os.environ["XDG_DATA_HOME"])
    assert (root / job_id / "result.png").is_file() and (root / "studio.db").is_file()
    with TestClient(create_app(StudioSettings(max_size=128), FakeRunner())) as client:
        after = client.get(f"/api/jobs/{job_id}").json()
        assert client.get(f"/api/jobs/{job_id}/image").content == image
        assert [j["id"] for j in client.get("/api/jobs").json()] == [job_id]  # the page's history
    same = ("state", "step", "loss", "created", "finished", "options", "params", "inputs", "runs", "note")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}
    assert after["version"] > before["version"]  # a page that saw the old versions takes the new ones


def test_after_a_shutdown_queued_jobs_run_and_the_running_one_runs_again(
    settings: StudioSettings, runner: FakeRunner
) -> None:
    runner.hold()
    app = create_app(settings, runner)
    with TestClient(app) as client:
        running = submit(client).json()["id"]
        queued = submit(client).json()["id"]
        wait_for(client, running, ("running",))
    manager = app.state.manager
    assert (manager.get(running).state.value, manager.get(queued).state.value) == ("queued", "queued")
    assert not (settings.workdir / running / "result.png").exists()  # the stopped run left no result
    with TestClient(create_app(settings, FakeRunner())) as client:  # runs freely
        first, second = wait_for(client, running), wait_for(client, queued)
        assert (first["state"], first["runs"], first["note"]) == ("done", 2, RERUN_NOTE)
        assert (second["state"], second["runs"], second["note"]) == ("done", 1, None)
        history = [event for _, event in manager_of(client)._store.history(running)]
        assert history == ["queued", "started", "interrupted by the studio's shutdown",
                           "queued again after a restart", "started", "done"]  # fmt: skip


def test_a_second_studio_on_the_same_workdir_is_refused(settings: StudioSettings, runner: FakeRunner) -> None:
    with TestClient(create_app(settings, runner)), pytest.raises(WorkdirBusy) as refused:
        create_app(settings, FakeRunner())
    message = str(refused.value)
    assert message.startswith(f"{settings.workdir}: another impasto studio (pid {os.getpid()})"), message
    assert "\n" not in message
    with TestClient(create_app(settings, FakeRunner())):  # free again once the first has stopped
        pass


def test_a_job_folder_without_a_record_is_removed_at_start(settings: StudioSettings, runner: FakeRunner) -> None:
    """The studio died between making a job's folder and recording the job: nobody could reach it."""
    assert settings.workdir is not None
    stray = settings.workdir / str(uuid.uuid4())
    stray.mkdir(parents=True)
    (stray / "content.png").write_bytes(png())
    (settings.workdir / "notes").mkdir()  # not a job folder: left alone
    with TestClient(create_app(settings, runner)):
        assert not stray.exists() and (settings.workdir / "notes").is_dir()


def test_cross_site_writes_are_refused(client: TestClient, runner: FakeRunner) -> None:
    r = client.post("/api/jobs", data=TINY, files=GOOD, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    job_id = submit(client).json()["id"]
    r = client.delete(f"/api/jobs/{job_id}", headers={"origin": "null"})
    assert r.status_code == 403
    same = client.post("/api/jobs", data=TINY, files=GOOD, headers={"origin": "http://testserver"})
    assert same.status_code == 201
    assert client.get("/api/options", headers={"origin": "http://evil.example"}).status_code == 200


def test_foreign_host_headers_are_refused(settings: StudioSettings, runner: FakeRunner) -> None:
    app = create_app(dataclasses.replace(settings, allowed_hosts=("127.0.0.1", "localhost", "::1")), runner)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200
        assert client.get("/", headers={"host": "[::1]:8000"}).status_code == 200
        r = client.get("/api/jobs", headers={"host": "attacker.example:8000"})
        assert r.status_code == 400 and "Host" in r.json()["detail"]


def test_settings_from_environment() -> None:
    env = {"IMPASTO_STUDIO_MAX_SIZE": "2048", "IMPASTO_STUDIO_KEEP_SECONDS": "60", "IMPASTO_STUDIO_WORKDIR": "/x"}
    settings = StudioSettings.from_env(env)
    assert settings.max_size == 2048 and settings.keep_seconds == 60.0 and settings.workdir == Path("/x")
    assert StudioSettings.from_env({"IMPASTO_STUDIO_ALLOWED_HOSTS": "a, b"}).allowed_hosts == ("a", "b")
    with pytest.raises(ConfigError, match="not a number"):
        StudioSettings.from_env({"IMPASTO_STUDIO_MAX_STEPS": "many"})
    with pytest.raises(ConfigError, match=">= 0"):
        StudioSettings(max_steps=-1)


def test_serve_binds_loopback_and_guards_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import impasto.web.server
    import impasto.web.serving

    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        impasto.web.serving, "run", lambda app, host, port, **kw: seen.update(app=app, host=host, port=port)
    )
    monkeypatch.setattr(impasto.web.server, "warm_network", lambda: None)
    serve()
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8000)
    assert seen["app"].state.settings.allowed_hosts == ("127.0.0.1", "localhost", "::1")
    serve(host="0.0.0.0", port=9000)
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 9000)
    assert seen["app"].state.settings.allowed_hosts is None


def test_cli_serve_prints_the_url_and_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import impasto.web.server
    from impasto.cli.commands import main

    calls: list[tuple[str, int]] = []

    def serve(host: str, port: int, settings: StudioSettings, announce: Callable[[], None]) -> None:
        announce()
        calls.append((host, port))

    monkeypatch.setattr(impasto.web.server, "serve", serve)
    assert main(["serve"]) == 0
    err = capsys.readouterr().err
    assert "http://127.0.0.1:8000/" in err and "warning" not in err
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "http://0.0.0.0:8123/" in err
    assert calls == [("127.0.0.1", 8000), ("0.0.0.0", 8123)]


# --- the real network ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_job_end_to_end(tmp_path: Path) -> None:
    settings = StudioSettings(workdir=tmp_path / "w", preview_seconds=0.0, image_every=1)
    runner = PacedRunner()
    runner.hold()
    with TestClient(create_app(settings, runner)) as client:
        r = client.post(
            "/api/jobs",
            data={"content_example": "tubingen", "style_example": "starry_night", "size": "64", "steps": "3",
                  "scales": "1", "seed": "1"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        events = read_events(client, job_id, on_event=in_lockstep(runner))
        status = events[-1][1]
        assert status["state"] == "done", status["error"]
        assert status["step"] == 3 and status["loss"] > 0 and {"content", "style"} <= set(status["losses"])
        assert {1, 2} <= {e["image_step"] for _, e in events if e["has_image"]}  # a preview at every step
        out = tmp_path / "result.png"
        out.write_bytes(client.get(f"/api/jobs/{job_id}/image?download=1").content)
        with Image.open(out) as img:
            assert img.size == (64, 48)
        params = read_params(out)
        assert params["size"] == 64 and params["steps_done"] == 3 and params["content"] == "tubingen"


@pytest.mark.slow
def test_real_job_can_be_stopped(tmp_path: Path) -> None:
    settings = StudioSettings(workdir=tmp_path / "w", preview_seconds=0.0)
    runner = PacedRunner()
    runner.hold()  # after step 1, until it is stopped
    with TestClient(create_app(settings, runner)) as client:
        files = [
            ("content", ("photo.jpg", bundled_image("coffee").read_bytes(), "image/jpeg")),
            ("style", ("udnie.jpg", bundled_image("udnie").read_bytes(), "image/jpeg")),
        ]
        r = client.post("/api/jobs", data={"size": "48", "steps": "40", "scales": "1"}, files=files)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        job = manager_of(client).get(job_id)
        assert job is not None
        wait_until(client, lambda: job.step == 1, "step 1")
        assert client.delete(f"/api/jobs/{job_id}").status_code == 200
        status = wait_for(client, job_id)
        assert status["state"] == "cancelled" and status["step"] == 1
        image = client.get(f"/api/jobs/{job_id}/image")
        assert image.status_code == 200
        with Image.open(io.BytesIO(image.content)) as img:
            assert max(img.size) == 48


def test_missing_web_extra_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib
    import importlib.util
    import sys

    from impasto.cli.commands import main
    from impasto.errors import ImpastoError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    for name in [m for m in sys.modules if m == "impasto.web" or m.startswith("impasto.web.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImpastoError, match=r"needs fastapi: pip install 'impasto\[web\]'"):
        importlib.import_module("impasto.web.server")
    assert main(["serve"]) == 1
    assert "impasto: error: the web studio needs fastapi" in capsys.readouterr().err


@pytest.mark.slow
def test_real_job_with_regions(tmp_path: Path) -> None:
    settings = StudioSettings(workdir=tmp_path / "w")
    with TestClient(create_app(settings)) as client:
        mask = Image.new("RGB", (60, 40), (0, 0, 0))  # the aspect of coffee.jpg, 600x400
        mask.paste((255, 255, 255), (30, 0, 60, 40))  # left region: style 1, right region: style 2
        buf = io.BytesIO()
        mask.save(buf, format="PNG")
        r = client.post(
            "/api/jobs",
            data={"content_example": "coffee", "style_example": ["udnie", "the_scream"], "size": "64", "steps": "2",
                  "scales": "1", "style_blend": "1 1"},
            files=[("content_mask", ("regions.png", buf.getvalue(), "image/png"))],
        )  # fmt: skip
        assert r.status_code == 201, r.text
        status = wait_for(client, r.json()["id"])
        assert status["state"] == "done", status["error"]
        assert status["params"]["content_mask"] == "upload: regions.png"

        # A mask of another shape fails at run time, with a message that names no server path.
        r = client.post(
            "/api/jobs",
            data={"content_example": "coffee", "style_example": ["udnie", "the_scream"], "size": "64", "steps": "2"},
            files=[("content_mask", ("square.png", png(40, 40), "image/png"))],
        )
        status = wait_for(client, r.json()["id"])
        assert status["state"] == "failed" and "aspect" in status["error"]
        assert str(settings.workdir) not in status["error"] and "square.png" in status["error"]


def test_estimate_from_the_measured_step_time(settings: StudioSettings, runner: FakeRunner) -> None:
    rate: dict[str, float | None] = {"value": None}  # None: the server is still timing a step
    with TestClient(create_app(settings, runner, lambda: rate["value"])) as c:
        assert c.get("/api/estimate", params={"size": 128, "steps": 10}).json() == {"seconds": None, "text": ""}
        rate["value"] = 1e-5
        one = c.get("/api/estimate", params={"size": 128, "steps": 10, "scales": 1}).json()
        # 128x96 px, 10 steps of 1.3 passes plus the targets' 2: (10 * 1.3 + 2) * 12288 px * 1e-5 s
        assert one["seconds"] == pytest.approx(15 * 128 * 96 * 1e-5)
        assert one["text"] == "under a minute on this machine"
        bigger = c.get("/api/estimate", params={"size": 256, "steps": settings.max_steps, "scales": 1}).json()
        assert bigger["seconds"] == pytest.approx((settings.max_steps * 1.3 + 2) * 256 * 192 * 1e-5)
        refused = c.get("/api/estimate", params={"preset": "papr"})
        assert refused.status_code == 422 and "did you mean 'paper'" in refused.json()["detail"]
        too_big = c.get("/api/estimate", params={"size": 1000, "steps": 10})
        assert too_big.status_code == 422 and too_big.json()["detail"] == "size must be <= 256 for a web job, got 1000"
