"""The studio in a real browser: Playwright driving Debian's headless Chromium against uvicorn.

Runs in ``make test`` (which installs Chromium when /usr/bin/chromium is missing). Without
Chromium the tests are skipped on a workstation and fail under CI=true. One studio runs the real
network, one a :class:`~impasto.web.testing.FakeRunner`; both runners are paced by the tests
(held at a step until the page has seen it), so no test depends on how fast a step is.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, FilePayload, Page, sync_playwright

from impasto import bundled_image, read_params
from impasto.config.presets import SUMMARIES
from impasto.web.server import create_app
from impasto.web.settings import StudioSettings
from impasto.web.testing import FakeRunner, PacedRunner

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
JOB_TIMEOUT_MS = 180_000  # a few real VGG steps on a busy 2-core machine
STEP_RATE = 7.7e-6  # seconds per pixel of a VGG19 pass, as measured on the 2-core AMD EPYC (impasto.core.estimate)
# Where the first-screen test saves its screenshots (docs/screens when making the docs' copies).
SCREENS = os.environ.get("IMPASTO_SCREENS")


@dataclass
class Studio:
    url: str
    runner: FakeRunner | PacedRunner


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a thread, at the URL given at once."""
    import uvicorn

    # A socket already listening: connections wait in its backlog until uvicorn has started.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)
    sock.close()


def _settings(tmp_path_factory: pytest.TempPathFactory) -> StudioSettings:
    return StudioSettings(
        workdir=tmp_path_factory.mktemp("studio"),
        preview_seconds=0.0,
        image_every=1,  # a preview at every step, on a GPU too
        allowed_hosts=("127.0.0.1", "localhost", "::1"),
    )


@pytest.fixture(scope="module")
def real_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """The real studio (real network, paced) served by uvicorn in a thread."""
    runner = PacedRunner()
    with _serving(create_app(_settings(tmp_path_factory), runner, lambda: STEP_RATE)) as url:
        yield Studio(url, runner)


@pytest.fixture(scope="module")
def fake_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """The studio with a FakeRunner: jobs that take no time."""
    runner = FakeRunner()
    with _serving(create_app(_settings(tmp_path_factory), runner, lambda: STEP_RATE)) as url:
        yield Studio(url, runner)


@pytest.fixture
def studio(real_studio: Studio) -> Iterator[str]:
    yield real_studio.url
    real_studio.runner.run_freely()  # a test that held it must not hold the next


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (make test installs it: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def errors() -> list[str]:
    """Script errors and console errors of the page."""
    return []


def _open(browser: Browser, url: str, errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1300, "height": 950}, accept_downloads=True, locale="en-US", timezone_id="UTC"
    )
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#example-grid figure")
    yield page
    context.close()


@pytest.fixture
def page(browser: Browser, studio: str, errors: list[str]) -> Iterator[Page]:
    """A page of the real studio."""
    yield from _open(browser, studio, errors)


@pytest.fixture
def fake_page(browser: Browser, fake_studio: Studio, errors: list[str]) -> Iterator[Page]:
    """A page of the FakeRunner studio."""
    yield from _open(browser, fake_studio.url, errors)
    fake_studio.runner.run_freely()


# Records every image the preview shows (the page swaps in a new, already decoded <img>).
WATCH_PREVIEW = """() => {
  window.previewSteps = [];
  new MutationObserver(() => {
    const img = document.getElementById('preview');
    if (img && img.dataset.step) window.previewSteps.push(Number(img.dataset.step));
  }).observe(document.getElementById('canvas'), {childList: true});
}"""


def test_upload_run_watch_and_download(page: Page, real_studio: Studio, errors: list[str], tmp_path: Path) -> None:
    pg = page
    pg.set_input_files("#content-file", str(bundled_image("tubingen")))
    pg.set_input_files("#style-file", str(bundled_image("starry_night")))
    assert pg.locator("#content-chosen .chip span").inner_text() == "tubingen.jpg"
    assert pg.locator("#style-chosen .chip span").inner_text() == "starry_night.jpg"
    pg.fill("#f-size", "64")
    open_advanced(pg)
    pg.fill("#f-steps", "6")
    pg.fill("#f-scales", "1")
    pg.evaluate(WATCH_PREVIEW)
    real_studio.runner.hold()  # at step 1, until the page shows it
    pg.click("#start")
    pg.wait_for_function("() => document.getElementById('preview')?.dataset.step === '1'", timeout=JOB_TIMEOUT_MS)
    real_studio.runner.run_freely()

    pg.wait_for_function(
        "() => document.querySelector('#status-line .badge')?.textContent === 'done'", timeout=JOB_TIMEOUT_MS
    )
    # The badge turns on the status event; the last image is fetched and decoded after it.
    pg.wait_for_function("() => document.getElementById('preview')?.dataset.step === '6'", timeout=JOB_TIMEOUT_MS)
    steps = pg.evaluate("() => window.previewSteps")
    assert len(set(steps)) >= 2, f"the preview changed only for steps {steps}"
    assert steps == sorted(steps) and steps[-1] == 6
    assert "Done: 6 steps" in pg.inner_text("#status-line")
    assert "loss" in pg.inner_text("#loss-line")
    assert pg.locator("#history-strip li").count() == 1

    with pg.expect_download() as info:
        pg.click("#download")
    out = tmp_path / "download.png"
    info.value.save_as(out)
    assert info.value.suggested_filename.endswith(".png")
    with Image.open(out) as img:
        img.verify()
    with Image.open(out) as img:
        assert img.format == "PNG" and max(img.size) == 64
    params = read_params(out)
    assert (params["size"], params["steps"], params["steps_done"]) == (64, 6, 6)
    assert (params["content"], params["styles"]) == ("tubingen.jpg", ["starry_night.jpg"])
    assert errors == []


def test_examples_errors_stop_reload_and_restore(
    page: Page, studio: str, real_studio: Studio, errors: list[str]
) -> None:
    pg = page
    pg.click('figure.example:has(figcaption:text-is("coffee")) button:text("photo")')
    pg.click('figure.example:has(figcaption:text-is("udnie")) button:text("+ style")')
    pg.click('figure.example:has(figcaption:text-is("the scream")) button:text("+ style")')
    assert pg.locator("#style-chosen .chip").count() == 2

    # A server-side refusal shows its one-line message.
    pg.fill("#f-size", "16")
    pg.click("#start")
    pg.wait_for_selector("#error:not([hidden])")
    assert "too small for layer" in pg.inner_text("#error")

    pg.fill("#f-size", "64")
    open_advanced(pg)
    pg.fill("#f-steps", "500")
    pg.fill("#f-scales", "1")
    pg.fill("#f-seed", "5")
    real_studio.runner.hold()  # at step 1, until it is stopped
    pg.click("#start")
    pg.wait_for_function("() => document.getElementById('preview')?.dataset.step === '1'", timeout=JOB_TIMEOUT_MS)

    # Leaving the page does not stop the job; a new page picks it up and can stop it.
    pg.close()
    again = pg.context.new_page()
    again.goto(studio)
    again.wait_for_selector("#status-line .badge.running", timeout=JOB_TIMEOUT_MS)
    again.wait_for_function("() => !document.getElementById('stop').disabled")
    again.click("#stop")
    again.wait_for_function(
        "() => document.querySelector('#status-line .badge')?.textContent === 'cancelled'", timeout=JOB_TIMEOUT_MS
    )
    assert "Stopped at step 1; the image so far is kept." in again.inner_text("#status-line")
    assert again.get_attribute("#download", "aria-disabled") == "false"

    # Restore brings back the job's images and settings into a reset form.
    again.fill("#f-size", "200")
    again.locator("#history-strip li button").first.click()
    again.click("#restore")
    again.wait_for_function("() => document.querySelectorAll('#style-chosen .chip').length === 2")
    assert again.input_value("#f-size") == "64"
    assert again.input_value("#f-seed") == "5"
    assert again.input_value("#f-steps") == "500"
    assert again.locator("#content-chosen .chip img").count() == 1
    assert [e for e in errors if "422" not in e] == []  # the refused job logs its 422


def open_advanced(pg: Page) -> None:
    """Open the "Advanced" settings (steps, scales, seed, ...) if they are closed."""
    if not pg.locator("#f-steps").is_visible():
        pg.click("#advanced summary")


def drop_file(page: Page, selector: str, name: str, data: bytes, mime: str) -> None:
    """Drop a file on ``selector`` as a user dragging it from the desktop would."""
    transfer = page.evaluate_handle(
        """([name, bytes, mime]) => {
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
          return dt;
        }""",
        [name, list(data), mime],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def start_fake_job(pg: Page) -> None:
    """Coffee × udnie, 3 steps, on the FakeRunner studio; returns once the job is on stage."""
    tiles = pg.locator("#history-strip li").count()
    pg.click('figure.example:has(figcaption:text-is("coffee")) button:text("photo")')
    pg.click('figure.example:has(figcaption:text-is("udnie")) button:text("+ style")')
    pg.fill("#f-size", "64")
    open_advanced(pg)
    pg.fill("#f-steps", "3")
    pg.fill("#f-scales", "1")
    pg.click("#start")
    pg.wait_for_function(f"() => document.querySelectorAll('#history-strip li').length === {tiles + 1}")
    pg.wait_for_selector("#history-strip li:first-child button.current")  # the new job, on stage


def run_fake_job(pg: Page) -> None:
    """:func:`start_fake_job`, until its DONE badge shows."""
    start_fake_job(pg)
    pg.wait_for_selector("#history-strip li:first-child button.current .badge.done")
    pg.wait_for_selector("#status-line .badge.done")


def test_a_dropped_text_file_is_refused_at_once_and_no_stale_status_stays(fake_page: Page, errors: list[str]) -> None:
    pg = fake_page
    run_fake_job(pg)

    drop_file(pg, "#content-drop", "notes.txt", b"shopping list: eggs, flour\n", "text/plain")
    pg.wait_for_selector("#error:not([hidden])")
    assert pg.inner_text("#error").startswith("content image 'notes.txt': not an image file")
    assert pg.locator("#status-line .badge").count() == 0  # no DONE beside the error
    assert pg.inner_text("#status-line") == "Ready."
    assert pg.locator("#canvas #preview").is_hidden()
    assert pg.locator("#history-strip button.current").count() == 0
    assert pg.locator("#history-strip li:first-child .badge.done").count() == 1  # the job stays in the history
    assert pg.inner_text("#content-chosen .chip span").startswith("Coffee cup")  # nothing replaced it

    # Text named .png, through the file picker: refused too, and nothing is added.
    fake: FilePayload = {"name": "fake.png", "mimeType": "image/png", "buffer": b"hello"}
    pg.set_input_files("#style-file", files=[fake])
    pg.wait_for_function("() => document.getElementById('error').textContent.includes('fake.png')")
    assert pg.inner_text("#error").startswith("style image 'fake.png': not an image file")
    assert pg.locator("#style-chosen .chip").count() == 1

    # A good photo replaces the example and clears the error; every thumbnail shows.
    drop_file(pg, "#content-drop", "tubingen.jpg", bundled_image("tubingen").read_bytes(), "image/jpeg")
    pg.wait_for_function("() => document.querySelector('#content-chosen .chip span')?.textContent === 'tubingen.jpg'")
    assert pg.locator("#error").is_hidden()
    shown = pg.eval_on_selector_all(".chip img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert shown == [True, True]
    assert not pg.is_disabled("#start")
    assert [e for e in errors if "status of 400" not in e] == []  # the refused checks log their 400s


def overflowing(pg: Page, selector: str) -> list[str]:
    """The texts of the elements that do not fit their box (cut or hidden by an ellipsis)."""
    texts: list[str] = pg.eval_on_selector_all(
        selector, "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
    )
    return texts


def test_history_times_example_names_and_credits_show_whole(
    fake_page: Page, fake_studio: Studio, errors: list[str]
) -> None:
    pg = fake_page
    run_fake_job(pg)
    fake_studio.runner.hold()
    start_fake_job(pg)
    fake_studio.runner.release(1)
    pg.wait_for_function("() => document.getElementById('preview')?.dataset.step === '1'")
    pg.click("#stop")
    pg.wait_for_selector("#history-strip li:first-child .badge.cancelled")
    assert "Stopped at step 1" in pg.inner_text("#status-line")

    assert overflowing(pg, "#history-strip button > span, #history-strip button > span > *") == []
    tile = pg.locator("#history-strip li:first-child button > span")
    box, time_box = tile.bounding_box(), tile.locator("time").bounding_box()
    assert box and time_box and time_box["x"] + time_box["width"] <= box["x"] + box["width"] + 0.5
    assert tile.locator("time").inner_text().endswith(("AM", "PM"))  # en-US: the widest form, "10:59 PM"

    captions = pg.locator("#example-grid figcaption")
    assert "composition vii" in captions.all_inner_texts() and "woman with hat" in captions.all_inner_texts()
    assert overflowing(pg, "#example-grid figcaption") == []

    credit = pg.get_attribute('figure.example:has(figcaption:text-is("shipwreck"))', "title")
    assert credit == (
        "The Shipwreck of the Minotaur (c. 1805–1810; also catalogued as The Wreck of a Transport Ship)"
        " — J. M. W. Turner — public domain"
    )
    titles = pg.eval_on_selector_all("figure.example", "figs => figs.map(f => f.title)")
    assert not [t for t in titles if "*" in t or "`" in t or "](" in t]
    assert errors == []


FIRST_SCREEN = [
    "#content-chosen .chip",
    "#style-chosen .chip",
    "#content-drop",
    "#f-strength",
    "#f-style_strength",
    "#f-color",
    "#f-original_colors",
    "#f-size",
    "#estimate",
    "#start",
    "#canvas",
    "#status-line",
    "#download",
]


def outside(pg: Page, selectors: list[str], width: int, height: int) -> list[str]:
    """The selectors whose element is not wholly inside the viewport (or not shown at all)."""
    out = []
    for selector in selectors:
        box = pg.locator(selector).first.bounding_box()
        inside = box is not None and box["x"] >= 0 and box["y"] >= 0
        if not (inside and box and box["x"] + box["width"] <= width + 0.5 and box["y"] + box["height"] <= height + 0.5):
            out.append(f"{selector}: {box}")
    return out


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1440, 900)])
def test_the_first_screen_shows_images_main_settings_start_result_and_errors(
    browser: Browser, fake_studio: Studio, errors: list[str], tmp_path: Path, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    pg = context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(fake_studio.url)
    pg.wait_for_selector("#example-grid figure")
    drop_file(pg, "#content-drop", "tubingen.jpg", bundled_image("tubingen").read_bytes(), "image/jpeg")
    drop_file(pg, "#style-drop", "starry_night.jpg", bundled_image("starry_night").read_bytes(), "image/jpeg")
    pg.wait_for_function("() => document.querySelectorAll('.chip img').length === 2")
    pg.wait_for_function("() => document.getElementById('estimate').textContent.includes('on this machine')")
    assert pg.evaluate("() => [window.scrollX, window.scrollY]") == [0, 0]
    assert outside(pg, FIRST_SCREEN, width, height) == []
    assert not pg.is_disabled("#start")

    # One label per control; the paper's knobs behind "Advanced"; plain words.
    assert pg.locator("#main-fields label", has_text="style strength").count() == 1
    assert pg.locator("#advanced").get_attribute("open") is None
    for knob in ("#f-steps", "#f-ratio", "#f-style_layers", "#f-preset"):
        assert pg.locator(knob).is_hidden(), knob
    open_advanced(pg)  # each preset says in one line what it is for
    assert pg.inner_text("#preset-summary") == SUMMARIES["default"]
    pg.select_option("#f-preset", "photo")
    assert pg.inner_text("#preset-summary") == SUMMARIES["photo"]
    pg.select_option("#f-preset", "default")
    pg.click("#advanced summary")
    page_text = pg.inner_text("body") + " ".join(pg.eval_on_selector_all("[title]", "els => els.map(e => e.title)"))
    assert "impasto.balance" not in page_text and "eq. 7" not in page_text
    assert "keep the photo's colours" in pg.inner_text("#main-fields")
    # 512 px, 300 steps over 3 scales at STEP_RATE: about 2 minutes (impasto.core.estimate)
    assert pg.inner_text("#estimate") == "512 px: about 2 min on this machine"
    pg.fill("#f-size", "1024")
    pg.wait_for_function("() => document.getElementById('estimate').textContent.startsWith('1024 px')")
    assert pg.inner_text("#estimate") == "1024 px: about 10 min on this machine"
    # A panorama 4:1 has a third of the pixels of a 4:3 photo at the same longest side: the estimate follows.
    panorama = io.BytesIO()
    Image.new("RGB", (400, 100), (200, 120, 40)).save(panorama, format="PNG")
    drop_file(pg, "#content-drop", "panorama.png", panorama.getvalue(), "image/png")
    pg.wait_for_function(
        "() => document.getElementById('estimate').textContent === '1024 px: about 3 min on this machine'"
    )
    drop_file(pg, "#content-drop", "tubingen.jpg", bundled_image("tubingen").read_bytes(), "image/jpeg")
    pg.fill("#f-size", "512")
    pg.wait_for_function(
        "() => document.getElementById('estimate').textContent === '512 px: about 2 min on this machine'"
    )
    pg.screenshot(path=str(Path(SCREENS or tmp_path) / f"studio-{width}x{height}.png"))

    # A refused file: its one-line error shows on the first screen, next to Start.
    drop_file(pg, "#content-drop", "notes.txt", b"shopping list\n", "text/plain")
    pg.wait_for_selector("#error:not([hidden])")
    assert pg.inner_text("#error").startswith("content image 'notes.txt': not an image file")
    assert outside(pg, ["#error", "#start"], width, height) == []
    pg.screenshot(path=str(Path(SCREENS or tmp_path) / f"studio-refused-{width}x{height}.png"))
    context.close()
    assert [e for e in errors if "status of 400" not in e] == []
