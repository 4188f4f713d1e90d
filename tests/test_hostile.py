"""Hand-written hostile requests against a real ``impasto serve``: each must get a 4xx with a
one-line JSON message, and the server must be healthy afterwards (checked after every test).

Path traversal in every name-like field, a form with 10,000 fields, an upload at one byte per
second, an image bomb (a small file declaring 10^10 pixels), a PNG whose iCCP chunk claims 2 GB,
duplicate and conflicting form fields, a job id of 10 kB.
"""

from __future__ import annotations

import io
import socket
import struct
import time
import urllib.parse
import zlib
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from studio import Studio

UPLOAD_SECONDS = 2.0
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    folder = tmp_path_factory.mktemp("hostile")
    flags = ["--max-size", "64", "--max-steps", "3", "--max-pixels", "4000000", "--max-upload-bytes", "500000"]
    server = Studio(folder / "work", *flags, "--upload-seconds", str(UPLOAD_SECONDS))
    yield server
    assert server.stop() == 0
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


@pytest.fixture(autouse=True)
def healthy_afterwards(studio: Studio) -> Iterator[None]:
    yield
    assert studio.healthy()


def png(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, format="PNG")
    return buf.getvalue()


def chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    size = len(data) if length is None else length
    return struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def refused(response: httpx.Response, *codes: int) -> str:
    """The one-line JSON message of a 4xx answer (one of ``codes`` when given)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if codes:
        assert response.status_code in codes, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, detail
    return detail


GOOD_FILES = {"content": ("photo.png", png(), "image/png"), "style": ("painting.png", png(), "image/png")}
TINY = {"size": "64", "steps": "1", "scales": "1"}
TRAVERSALS = [
    "../../etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "tubingen/../../../etc/passwd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "tubingen\x00.jpg",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_path_traversal_in_every_name_field(studio: Studio, name: str) -> None:
    for field in ("content_example", "style_example"):
        data = {**TINY, "content_example": "tubingen", "style_example": "starry_night", field: name}
        assert "root:" not in refused(httpx.post(f"{studio.url}/api/jobs", data=data), 422)  # no file's content
    files = {"content": (name, png(), "image/png"), "style": (name, png(), "image/png")}
    created = httpx.post(f"{studio.url}/api/jobs", data={**TINY, "steps": "1"}, files=files)
    assert created.status_code == 201  # a client's file name is only a label: never a path on the server
    inputs = httpx.get(f"{studio.url}{created.json()['status_url']}").json()["inputs"]
    labels = {i["label"] for i in inputs}
    assert all("/" not in label and "\\" not in label for label in labels), labels
    quoted = urllib.parse.quote(name, safe="")
    paths = [f"/api/examples/{quoted}/{tail}" for tail in ("image", "thumbnail")]
    paths += [f"/api/jobs/{quoted}{tail}" for tail in ("", "/image", "/events", "/inputs/0")]
    for path in paths:
        answer = httpx.get(studio.url + path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "root:" not in answer.text
        refused(answer, 404)


def test_a_form_with_ten_thousand_fields(studio: Studio) -> None:
    fields = "&".join(f"f{i}=x" for i in range(10_000))
    detail = refused(httpx.post(f"{studio.url}/api/jobs", content=fields,
                                headers={"content-type": "application/x-www-form-urlencoded"}), 400)  # fmt: skip
    assert "fields" in detail.lower(), detail
    parts = [("content", ("photo.png", png(), "image/png"))] + [(f"f{i}", (None, "x")) for i in range(10_000)]
    refused(httpx.post(f"{studio.url}/api/jobs", files=parts), 400)


def test_an_upload_at_one_byte_per_second_gets_408(studio: Studio) -> None:
    body = b"--b\r\nContent-Disposition: form-data; name=size\r\n\r\n64\r\n--b--\r\n"
    head = (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{studio.port}\r\nContent-Type: multipart/form-data; "
            f"boundary=b\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", studio.port), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the server has answered and closed
                break
            sock.settimeout(1.0)  # one byte a second
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if b"\r\n\r\n" in answer:
                break
        sock.settimeout(10)
        while b"}" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    elapsed = time.monotonic() - start
    status = answer.split(b"\r\n", 1)[0]
    assert b" 408 " in status, answer[:300]
    assert b"application/json" in answer and b"longer than" in answer, answer[:400]
    assert UPLOAD_SECONDS <= elapsed < UPLOAD_SECONDS + 10, elapsed


def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes declaring ``width`` x ``height`` pixels."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def test_an_image_bomb_is_refused_before_decoding(studio: Studio) -> None:
    bomb = bomb_png(100_000, 100_000)
    assert len(bomb) < 200
    for url, files in ((f"{studio.url}/api/jobs", {**GOOD_FILES, "content": ("bomb.png", bomb, "image/png")}),
                       (f"{studio.url}/api/images/check", {"content": ("bomb.png", bomb, "image/png")})):  # fmt: skip
        start = time.monotonic()
        detail = refused(httpx.post(url, data=TINY if url.endswith("jobs") else None, files=files), 400)
        assert "limit" in detail and "bomb.png" in detail, detail
        assert time.monotonic() - start < 10


def test_a_png_whose_iccp_chunk_claims_two_gigabytes(studio: Studio) -> None:
    good = png()
    iccp = chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"x" * 100), length=2**31 - 1)
    evil = good[:33] + iccp + good[33:]  # after the signature and IHDR
    detail = refused(httpx.post(f"{studio.url}/api/images/check", files={"content": ("icc.png", evil, "image/png")}))
    assert "icc.png" in detail, detail
    refused(
        httpx.post(f"{studio.url}/api/jobs", data=TINY, files={**GOOD_FILES, "content": ("icc.png", evil, "image/png")})
    )


@pytest.mark.parametrize(
    ("data", "files", "needle"),
    [
        ([("size", "64"), ("size", "128")], None, "more than once"),
        ([("steps", "1"), ("steps", "1")], None, "more than once"),
        ([("content_example", "tubingen")], "both", "exactly one content image"),
        ([("init", "noise")], "init_image", "either init"),
        ([("preset", "paper"), ("preset", "default")], None, "more than once"),
        ([("content", "not a file")], "no-content", "must be a file upload"),
    ],
)
def test_duplicate_and_conflicting_fields(
    studio: Studio, data: list[tuple[str, str]], files: str | None, needle: str
) -> None:
    parts: list[tuple[str, tuple[str | None, bytes | str, str] | tuple[None, str]]] = []
    parts += [("content", ("photo.png", png(), "image/png"))] if files != "no-content" else []
    parts += [("style", ("painting.png", png(), "image/png"))]
    parts += [("init_image", ("init.png", png(), "image/png"))] if files == "init_image" else []
    keys = {k for k, _ in data}
    parts += [(k, (None, v)) for k, v in TINY.items() if k not in keys] + [(k, (None, v)) for k, v in data]
    detail = refused(httpx.post(f"{studio.url}/api/jobs", files=parts), 422)
    assert needle in detail, detail


def test_a_job_id_of_ten_kilobytes(studio: Studio) -> None:
    job_id = "a" * 10_240
    for method in ("GET", "DELETE"):
        detail = refused(httpx.request(method, f"{studio.url}/api/jobs/{job_id}"), 404)
        assert len(detail) < 200, len(detail)
    for tail in ("image", "events", "inputs/0"):
        refused(httpx.get(f"{studio.url}/api/jobs/{job_id}/{tail}"), 404)


def test_the_server_never_answered_5xx(studio: Studio) -> None:
    log = studio.log_text()
    assert '" 5' not in log and "Traceback" not in log, log[-2000:]
