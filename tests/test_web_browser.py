"""The studio in a real browser: Playwright driving Debian's headless Chromium against uvicorn.

Runs in ``make test`` (which installs Chromium when /usr/bin/chromium is missing). Without
Chromium the tests are skipped on a workstation and fail under CI=true.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from impasto import bundled_image, read_params
from impasto.web.server import create_app
from impasto.web.settings import StudioSettings

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real studio (real network) served by uvicorn in a thread; yields its URL."""
    import uvicorn

    settings = StudioSettings(
        workdir=tmp_path_factory.mktemp("studio"),
        preview_seconds=0.0,
        allowed_hosts=("127.0.0.1", "localhost", "::1"),
    )
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


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


@pytest.fixture
def page(browser: Browser, studio: str, errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 950}, accept_downloads=True)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(studio)
    page.wait_for_selector("#example-grid figure")
    yield page
    context.close()


# Records every image the preview shows (the page swaps in a new, already decoded <img>).
WATCH_PREVIEW = """() => {
  window.previewSteps = [];
  new MutationObserver(() => {
    const img = document.getElementById('preview');
    if (img && img.dataset.step) window.previewSteps.push(Number(img.dataset.step));
  }).observe(document.getElementById('canvas'), {childList: true});
}"""


def test_upload_run_watch_and_download(page: Page, errors: list[str], tmp_path: Path) -> None:
    pg = page
    pg.set_input_files("#content-file", str(bundled_image("tubingen")))
    pg.set_input_files("#style-file", str(bundled_image("starry_night")))
    assert pg.locator("#content-chosen .chip span").inner_text() == "tubingen.jpg"
    assert pg.locator("#style-chosen .chip span").inner_text() == "starry_night.jpg"
    pg.fill("#f-size", "64")
    pg.fill("#f-steps", "6")
    pg.fill("#f-scales", "1")
    pg.evaluate(WATCH_PREVIEW)
    pg.click("#start")

    pg.wait_for_function(
        "() => document.querySelector('#status-line .badge')?.textContent === 'done'", timeout=JOB_TIMEOUT_MS
    )
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


def test_examples_errors_stop_reload_and_restore(page: Page, studio: str, errors: list[str]) -> None:
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
    pg.fill("#f-steps", "500")
    pg.fill("#f-scales", "1")
    pg.fill("#f-seed", "5")
    pg.click("#start")
    pg.wait_for_function("() => Number(document.getElementById('preview')?.dataset.step) >= 1", timeout=JOB_TIMEOUT_MS)

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
    assert "the image so far is kept" in again.inner_text("#status-line")
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
