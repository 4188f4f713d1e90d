"""Connection faults against a real ``impasto serve``: clients that leave mid-stream, never read
their event stream, or give up half-way through an upload.

What must hold (the documented behaviour): a job goes on when the clients watching it leave (only
``DELETE`` stops it); a stalled reader holds back nobody but itself; an abandoned upload creates no
job and leaves no file; and nothing leaks: the server's open files (``/proc/PID/fd``) and threads
(``/proc/PID/task``) come back to where they were before the test, within a small slack, while each
fault is thrown several times (a leak per connection would show as at least that many).

``IMPASTO_CONNECTIONS_SUMMARY=FILE`` appends each test's figures to FILE (a JSON object a line).

Nothing here waits on the clock alone: every socket has a timeout, every wait polls for a condition
with a deadline, and a deadline passed fails the test with what was seen instead of hanging.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from studio import Studio

pytestmark = pytest.mark.slow

LONG_STEPS = 400  # ~3 s on a quiet 2-core machine, ~10 s on a contended one
# A stalled reader holds back the server only once the kernel's buffers are full: on loopback
# the server's side takes ~2.8 MB, ~1,250 events of ~2.2 kB (measured with `ss -tm`).
STALL_STEPS = 1800  # ~13 s on a quiet machine
JOB = {"content_example": "tubingen", "style_example": "starry_night", "size": "32", "scales": "1"}
SOCKET_SECONDS = 30.0  # any single recv or send on a raw socket
WAIT_SECONDS = 120.0  # a job to finish, the server to see a client go
SETTLE_SECONDS = 40.0  # idle thread-pool threads end after 10 s (see settle)
EXACT_SECONDS = 15.0  # how long to wait for exactly the baseline before the slack is allowed
FD_SLACK = 1  # a probe connection the event loop has not torn down yet
THREAD_SLACK = 2  # thread-pool threads of the status probes, not yet idle for 10 s (the pool holds up to 40)
TIMES = 5  # each fault is thrown this often: a leak per connection would exceed the slack
STATUS_BOUND_S = 5.0  # as in tests/test_load.py
FINISHED = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's TMPDIR: Starlette spooled an upload over 1 MB there; the studio spools to its work folder."""
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, spool: Path) -> Iterator[Studio]:
    folder = tmp_path_factory.mktemp("connections")
    flags = ["--max-size", "64", "--max-steps", str(STALL_STEPS), "--keep-jobs", "10", "--upload-seconds", "60"]
    server = Studio(folder / "work", *flags, "--preview-seconds", "0.05", env={"TMPDIR": str(spool)})
    try:
        wait_finished(server, submit(server, 3))  # the device's worker thread exists from now on
        yield server
    finally:
        code = server.stop()
    assert code == 0, server.log_text()[-3000:]
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


# --- helpers -----------------------------------------------------------------------------------


def submit(studio: Studio, steps: int) -> dict[str, str]:
    created = httpx.post(f"{studio.url}/api/jobs", data={**JOB, "steps": str(steps)}, timeout=30)
    assert created.status_code == 201, created.text
    job: dict[str, str] = created.json()
    return job


def status(studio: Studio, job: dict[str, str]) -> dict[str, Any]:
    answer = httpx.get(studio.url + job["status_url"], timeout=30)
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def wait_finished(studio: Studio, job: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (now := status(studio, job))["state"] not in FINISHED:
        assert time.monotonic() < deadline, f"job not finished after {WAIT_SECONDS:g} s: {now}"
        time.sleep(0.05)  # polling, with the deadline above
    return now


def resources(studio: Studio) -> tuple[int, int]:
    """(open files, threads) of the server process."""
    return studio.open_files(), studio.threads()


def idle(studio: Studio) -> tuple[int, int]:
    """The server's resources once no job is running (the baseline of a test)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        jobs = httpx.get(f"{studio.url}/api/jobs", timeout=30).json()
        if all(j["state"] in FINISHED for j in jobs):
            return resources(studio)
        assert time.monotonic() < deadline, "the studio never became idle"
        time.sleep(0.05)  # polling, with the deadline above


def settle(studio: Studio, before: tuple[int, int]) -> tuple[int, int]:
    """Wait until open files and threads are back where they were (up to EXACT_SECONDS), or else
    within the slack (up to SETTLE_SECONDS); the last reading.

    The thread pool (anyio's) ends a worker idle for 10 s only when it is next used: each poll asks
    for ``/api/options`` (a thread-pool route), so the workers a burst of requests started end.
    """
    start = time.monotonic()
    while True:
        assert httpx.get(f"{studio.url}/api/options", timeout=30).status_code == 200
        time.sleep(0.2)  # polling, with the deadlines below; the probe's connection closes meanwhile
        now = resources(studio)
        waited = time.monotonic() - start
        if now[0] <= before[0] and now[1] <= before[1]:
            return now
        if waited > EXACT_SECONDS and now[0] <= before[0] + FD_SLACK and now[1] <= before[1] + THREAD_SLACK:
            return now
        if waited > SETTLE_SECONDS:
            return now


def report(test: str, **figures: Any) -> None:
    if target := os.environ.get("IMPASTO_CONNECTIONS_SUMMARY"):
        with open(target, "a") as fh:
            fh.write(json.dumps({"test": test, **figures}) + "\n")


def assert_no_leak(studio: Studio, before: tuple[int, int], test: str, **figures: Any) -> None:
    after = settle(studio, before)
    report(test, files=[before[0], after[0]], threads=[before[1], after[1]], **figures)
    assert after[0] <= before[0] + FD_SLACK, f"open files {before[0]} -> {after[0]}"
    assert after[1] <= before[1] + THREAD_SLACK, f"threads {before[1]} -> {after[1]}"


def open_stream(studio: Studio, path: str, rcvbuf: int | None = None) -> socket.socket:
    """A raw ``GET path`` (an event stream) on a socket of its own; ``rcvbuf``: its receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window it offers
    sock.settimeout(SOCKET_SECONDS)
    sock.connect(("127.0.0.1", studio.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, done: Any, limit: float = WAIT_SECONDS) -> bytes:
    """Bytes from ``sock`` until ``done(received)`` holds, the peer closes, or ``limit`` seconds pass."""
    received, deadline = b"", time.monotonic() + limit
    while not done(received):
        assert time.monotonic() < deadline, f"stream not complete after {limit:g} s: {received[-300:]!r}"
        more = sock.recv(65536)  # at most SOCKET_SECONDS, then socket.timeout fails the test
        if not more:
            break
        received += more
    return received


def events(raw: bytes) -> list[dict[str, Any]]:
    """The ``data`` of each complete event in a raw chunked HTTP answer (each event is one chunk)."""
    body = raw.partition(b"\r\n\r\n")[2]
    text, i = b"", 0
    while (j := body.find(b"\r\n", i)) >= 0:
        size = int(body[i:j], 16)
        if size == 0 or j + 2 + size > len(body):
            break
        text += body[j + 2 : j + 2 + size]
        i = j + 2 + size + 2
    return [json.loads(line[5:]) for line in text.split(b"\n") if line.startswith(b"data:")]


def stream_ended(raw: bytes) -> bool:
    return raw.endswith(b"\r\n0\r\n\r\n")


def close(sock: socket.socket, how: str) -> None:
    """Close as a browser might: ``graceful`` (FIN), ``unread`` (data left unread: the kernel sends
    RST) or ``reset`` (SO_LINGER 0: RST at once)."""
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif how == "graceful":
        sock.shutdown(socket.SHUT_WR)
    sock.close()


# --- a browser that disconnects mid-stream -----------------------------------------------------


def test_clients_that_disconnect_mid_stream_leave_the_job_running(studio: Studio) -> None:
    before = idle(studio)
    job = submit(studio, LONG_STEPS)
    ways = ["graceful", "unread", "reset", "mid-event", "before-any-event"]
    for how in ways:
        sock = open_stream(studio, job["events_url"])
        try:
            if how == "before-any-event":
                read_until(sock, lambda r: b"\r\n\r\n" in r)  # the headers only
            elif how == "mid-event":
                read_until(sock, lambda r: b"data: {" in r)  # part of the first event
            else:
                seen = events(read_until(sock, lambda r: len(events(r)) >= 2))
                assert seen[-1]["state"] in ("queued", "running"), seen[-1]
        finally:
            close(sock, "reset" if how in ("mid-event", "before-any-event") else how)
    assert status(studio, job)["state"] == "running"  # every client left before the job finished
    final = wait_finished(studio, job)
    assert final["state"] == "done" and final["step"] == LONG_STEPS, final
    assert studio.healthy()
    assert_no_leak(studio, before, "mid-stream", clients=len(ways))


# --- a client that never reads its event stream ------------------------------------------------


def test_clients_that_never_read_their_stream_hold_back_nobody(studio: Studio) -> None:
    before = idle(studio)
    job = submit(studio, STALL_STEPS)
    stalled = [open_stream(studio, job["events_url"], rcvbuf=4096) for _ in range(TIMES)]
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def monitor() -> None:
        with httpx.Client(base_url=studio.url, timeout=30) as client:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    code = client.get(job["status_url"]).status_code
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                latencies.append(time.perf_counter() - start)
                if code != 200:
                    errors.append(f"status {code}")
                stop.wait(0.05)

    watcher = threading.Thread(target=monitor, daemon=True)
    followed: list[dict[str, Any]] = []
    try:
        watcher.start()
        with httpx.stream("GET", studio.url + job["events_url"], timeout=SOCKET_SECONDS) as stream:
            for line in stream.iter_lines():  # an ordinary client, on the same job, to the end
                if line.startswith("data:"):
                    followed.append(json.loads(line[5:]))
        stop.set()
        watcher.join(SOCKET_SECONDS)
        assert not watcher.is_alive(), "the status monitor hung"
        assert not errors, errors[:3]
        assert followed[-1]["state"] == "done" and followed[-1]["step"] == STALL_STEPS, followed[-1]
        assert latencies and max(latencies) < STATUS_BOUND_S, max(latencies, default=None)
        # A stalled client that starts reading at last gets the rest of its stream, down to the end;
        # fewer events than the follower: the server was held back and sent the latest state only.
        late = events(read_until(stalled[0], stream_ended))
        assert late[-1]["state"] == "done", late[-1]
        assert len(late) < len(followed), (len(late), len(followed))
    finally:
        stop.set()
        for sock in stalled:
            close(sock, "unread")
    assert studio.healthy()
    figures = {"late_events": len(late), "followed_events": len(followed), "status_max_s": round(max(latencies), 3)}
    assert_no_leak(studio, before, "never-read", clients=TIMES, **figures)


# --- an upload abandoned half-way --------------------------------------------------------------


def big_png(side: int = 1024) -> bytes:
    """A PNG of noise, ~3 MB: over the 1 MB after which an upload is spooled to a file."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(0).randbytes(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


def multipart(png: bytes) -> tuple[bytes, bytes]:
    """(request head, body) of a job submission with a content file and a style example."""
    body = (
        b"--b\r\nContent-Disposition: form-data; name=size\r\n\r\n64\r\n"
        b"--b\r\nContent-Disposition: form-data; name=style_example\r\n\r\nstarry_night\r\n"
        b'--b\r\nContent-Disposition: form-data; name=content; filename="photo.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--b--\r\n"
    )
    return body, b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n" % len(body)


def gone(studio: Studio) -> int:
    """How many requests the server has logged as abandoned by their client."""
    return studio.log_text().count("the client went away before its request arrived")


def test_uploads_abandoned_half_way_leave_no_job_and_no_file(studio: Studio, spool: Path) -> None:
    before = idle(studio)
    jobs = {j["id"] for j in httpx.get(f"{studio.url}/api/jobs", timeout=30).json()}
    folders = set(studio.workdir.iterdir())
    body, head = multipart(big_png())
    cut_points = {
        "after the headers": 0,
        "in a text field": 30,
        "in the file, under 1 MB": body.index(b"\x89PNG") + 200_000,
        "in the file, over 1 MB (spooled to the work folder)": body.index(b"\x89PNG") + 1_400_000,
        "before the closing boundary": len(body) - 8,
    }
    assert len(body) > 1_500_000, len(body)
    seen = gone(studio)
    for n, (where, cut) in enumerate(cut_points.items(), start=1):
        with socket.create_connection(("127.0.0.1", studio.port), timeout=SOCKET_SECONDS) as sock:
            start = f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\n".encode()
            sock.sendall(start + head + b"\r\n" + body[:cut])
            if "spooled" in where:  # the spool file exists while the client still waits
                deadline = time.monotonic() + WAIT_SECONDS
                while not spooled(studio):
                    assert time.monotonic() < deadline, "the upload was never spooled"
                    time.sleep(0.05)  # polling, with the deadline above
            close(sock, "reset" if n % 2 else "graceful")
        deadline = time.monotonic() + WAIT_SECONDS
        while gone(studio) < seen + n:  # the server has seen this client go
            assert time.monotonic() < deadline, f"{where}: the server never noticed the client left"
            time.sleep(0.05)  # polling, with the deadline above
    assert studio.healthy()
    assert {j["id"] for j in httpx.get(f"{studio.url}/api/jobs", timeout=30).json()} == jobs  # no job
    assert set(studio.workdir.iterdir()) == folders  # no job folder, no .check- folder
    assert not list(spool.iterdir())  # nothing in TMPDIR
    assert not spooled(studio)  # no spool file held open
    assert_no_leak(studio, before, "upload", clients=len(cut_points), body_bytes=len(body))


def spooled(studio: Studio) -> bool:
    """Whether the server holds a spool file open: an unnamed file in its work folder (issue 30: not in TMPDIR)."""
    return fd_in(studio, studio.workdir, deleted=True)


def fd_in(studio: Studio, folder: Path, deleted: bool = False) -> bool:
    """Whether the server holds a file under ``folder`` open (a deleted one too)."""
    for fd in Path(f"/proc/{studio.pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except FileNotFoundError:  # closed meanwhile
            continue
        if str(target).startswith(str(folder)) and (not deleted or str(target).endswith(" (deleted)")):
            return True
    return False
