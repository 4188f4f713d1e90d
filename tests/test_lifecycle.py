"""A real ``impasto serve`` killed, stopped and flooded: what an operator sees (issue 30).

- SIGKILL with a job done, one running and one queued: a second studio on the same work folder is
  refused with one line; after a restart the done job answers as before (the same bytes), the queued
  one runs, the running one runs again and says so; nothing is left in ``$TMPDIR``.
- SIGTERM with event streams open: each stream's last event says the studio is stopping and what the
  job's state is; the process exits without uvicorn's "timeout graceful shutdown exceeded" and
  without a traceback; the job runs again after the restart.
- A flood of silent connections with ``ulimit -n 256``: each is answered 503 at once (beyond the cap)
  or closed after ``--header-seconds``, and so is a header sent a byte at a time; a job running meanwhile ends
  ``done``, the flood is logged once, and the studio answers again afterwards.

Every wait has a deadline; sockets have timeouts.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from studio import Studio, free_port, launch

from impasto.web.jobs import RERUN_NOTE
from impasto.web.serving import BACKLOG, FD_RESERVE

pytestmark = pytest.mark.slow

JOB = {"content_example": "tubingen", "style_example": "starry_night", "size": "32", "scales": "1"}
FLAGS = ("--max-size", "64", "--max-steps", "1000", "--preview-seconds", "0.05")
WAIT_SECONDS = 120.0
SOCKET_SECONDS = 30.0
FINISHED = ("done", "failed", "cancelled")


def submit(studio: Studio, steps: int) -> str:
    created = httpx.post(f"{studio.url}/api/jobs", data={**JOB, "steps": str(steps)}, timeout=30)
    assert created.status_code == 201, created.text
    job_id: str = created.json()["id"]
    return job_id


def status(studio: Studio, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{studio.url}/api/jobs/{job_id}", timeout=30)
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def wait_state(studio: Studio, job_id: str, states: tuple[str, ...], least_step: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (now := status(studio, job_id))["state"] not in states or now["step"] < least_step:
        assert time.monotonic() < deadline, f"job {job_id} not in {states} after {WAIT_SECONDS:g} s: {now}"
        time.sleep(0.05)  # polling, with the deadline above
    return now


def clean_log(studio: Studio) -> str:
    text = studio.log_text()
    for bad in ("Traceback", "Exception in ASGI application", "timeout graceful shutdown exceeded"):
        assert bad not in text, text[-3000:]
    return text


@pytest.fixture
def tmpdir_of_server(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


# --- item 1: a restart loses nothing -------------------------------------------------------------


def test_sigkill_then_restart_loses_no_job(tmp_path: Path, tmpdir_of_server: Path) -> None:
    work = tmp_path / "work"
    first = Studio(work, *FLAGS, env={"TMPDIR": str(tmpdir_of_server)})
    try:
        done = submit(first, 3)
        wait_state(first, done, FINISHED)
        image = httpx.get(f"{first.url}/api/jobs/{done}/image", timeout=30).content
        running = submit(first, 1000)
        queued = submit(first, 3)
        wait_state(first, running, ("running",), least_step=1)
        assert status(first, queued)["state"] == "queued"

        second_log = tmp_path / "second.log"
        second = launch(free_port(), work, second_log, *FLAGS)
        try:
            assert second.wait(WAIT_SECONDS) == 2
        finally:
            if second.poll() is None:  # it started: a second studio on the same folder
                second.kill()
                second.wait()
        lines = second_log.read_text().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"impasto: error: {work}: another impasto studio"), lines
        assert f"(pid {first.pid})" in lines[0]
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(WAIT_SECONDS)
    assert list(tmpdir_of_server.iterdir()) == []  # no impasto-studio-* folder, no spool file

    again = Studio(work, *FLAGS, env={"TMPDIR": str(tmpdir_of_server)})
    try:
        assert status(again, done)["state"] == "done"
        assert httpx.get(f"{again.url}/api/jobs/{done}/image", timeout=30).content == image
        rerun = wait_state(again, running, ("running",), least_step=1)
        assert (rerun["note"], rerun["runs"]) == (RERUN_NOTE, 2), rerun
        assert httpx.delete(f"{again.url}/api/jobs/{running}", timeout=30).status_code == 200
        finished = wait_state(again, queued, FINISHED)
        assert (finished["state"], finished["runs"], finished["note"]) == ("done", 1, None), finished
        listed = [j["id"] for j in httpx.get(f"{again.url}/api/jobs", timeout=30).json()]
        assert listed == [queued, running, done]  # the page's history, newest first
    finally:
        assert again.stop() == 0
    clean_log(again)


# --- item 6: a shutdown in order -------------------------------------------------------------------


def read_stream(url: str, path: str, out: list[bytes], ready: threading.Event) -> None:
    """Follow an event stream on a raw socket until the server closes it; its bytes go to ``out``."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        while chunk := sock.recv(65536):
            out.append(chunk)
            if b"event: status" in b"".join(out):
                ready.set()
    ready.set()


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each event in a stream's bytes (chunked: the chunk sizes are lines of their own)."""
    found, event, data = [], None, None
    for line in raw.split(b"\r\n\r\n", 1)[1].decode().splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif not line and event is not None and data is not None:
            found.append((event, data))
            event, data = None, None
    return found


def test_sigterm_tells_every_stream_and_exits_in_order(tmp_path: Path) -> None:
    work = tmp_path / "work"
    studio = Studio(work, *FLAGS)
    streams: list[list[bytes]] = []
    try:
        running = submit(studio, 1000)
        queued = submit(studio, 3)
        wait_state(studio, running, ("running",), least_step=1)
        readers = []
        for job in (running, running, queued):
            out: list[bytes] = []
            ready = threading.Event()
            reader = threading.Thread(target=read_stream, args=(studio.url, f"/api/jobs/{job}/events", out, ready))
            reader.start()
            assert ready.wait(SOCKET_SECONDS)
            streams.append(out)
            readers.append(reader)
        started = time.monotonic()
        assert studio.stop(signal.SIGTERM) == 0
        took = time.monotonic() - started
        for reader in readers:
            reader.join(SOCKET_SECONDS)
            assert not reader.is_alive()
    finally:
        studio.stop(signal.SIGKILL)
    clean_log(studio)
    for out, state in zip(streams, ("running", "running", "queued"), strict=True):
        last_event, last = events(b"".join(out))[-1]
        assert last_event == "stopping" and last["state"] == state, (last_event, last)
        assert "runs when the studio starts again" in last["detail"]
    assert took < 30.0, took  # the worker stops after its current step; uvicorn waits for no stream

    again = Studio(work, *FLAGS)
    try:
        rerun = wait_state(again, running, ("running",), least_step=1)
        assert rerun["note"] == RERUN_NOTE and rerun["runs"] == 2, rerun
        assert httpx.delete(f"{again.url}/api/jobs/{running}", timeout=30).status_code == 200
        assert wait_state(again, queued, FINISHED)["state"] == "done"
    finally:
        assert again.stop() == 0
    clean_log(again)


# --- item 2: a flood of idle connections ---------------------------------------------------------

OPEN_FILES = 256
CAP = OPEN_FILES - FD_RESERVE - BACKLOG  # 64: room for the jobs' files and a burst of accepts
FLOOD = CAP + 100
HEADER_SECONDS = 3.0


@pytest.fixture
def flooded_studio(tmp_path: Path) -> Iterator[Studio]:
    flags = (*FLAGS, "--header-seconds", str(HEADER_SECONDS))
    studio = Studio(tmp_path / "work", *flags, open_files=OPEN_FILES)
    try:
        yield studio
    finally:
        assert studio.stop() == 0


def test_a_flood_of_silent_connections_is_capped_and_closed(flooded_studio: Studio) -> None:
    studio = flooded_studio
    job = submit(studio, 400)
    wait_state(studio, job, ("running",), least_step=1)
    host, port = "127.0.0.1", studio.port
    socks = [socket.create_connection((host, port), timeout=SOCKET_SECONDS) for _ in range(FLOOD)]
    slow = socket.create_connection((host, port), timeout=SOCKET_SECONDS)
    try:
        peak = studio.open_files()
        # Each one: a 503 at once (over the cap), or closed at its header deadline. How many of each
        # depends on how fast the server accepts: a slow one closes the first before it sees the last.
        answers = [sock.recv(4096) for sock in socks]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503") and b"too many open connections" in a]
        assert len(busy) + answers.count(b"") == FLOOD, {a[:40] for a in answers}
        assert busy and peak < OPEN_FILES, (len(busy), peak)
        slow.sendall(b"GET /api/options HTTP/1.1\r\n")
        started = time.monotonic()
        while not _closed(slow):  # a header sent a byte at a time buys no time
            assert time.monotonic() - started < WAIT_SECONDS, "the slow header was never cut off"
            time.sleep(0.2)  # the slow client's pace
        assert time.monotonic() - started < HEADER_SECONDS + 15
    finally:
        for sock in [*socks, slow]:
            sock.close()
    finished = wait_state(studio, job, FINISHED)
    assert finished["state"] == "done" and finished["has_image"], finished
    assert httpx.get(f"{studio.url}/api/jobs/{job}/image", timeout=30).status_code == 200
    assert studio.healthy()
    text = clean_log(studio)
    assert text.count("connections open, the most allowed") == 1, text[-3000:]
    assert "cannot accept connections" not in text, text[-3000:]  # it never ran out of files
    assert len(text) < 100_000


def _closed(sock: socket.socket) -> bool:
    """Send one more byte of a header; True once the server has closed the connection."""
    try:
        sock.sendall(b"x")
        if select.select([sock], [], [], 0)[0]:
            return sock.recv(4096) == b""
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False
