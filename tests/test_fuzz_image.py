"""Property tests of the image reader: damaged JPEG, PNG, WebP, GIF and TIFF files.

Truncated, bit-flipped, overwritten and random-byte variants of real files (a photo-like image in
each format, the JPEG with an EXIF block) must either load as an RGB image or raise impasto's own
one-line :class:`InputError` naming the file; never another exception, never a warning (warnings
fail the tests, pyproject.toml), and never a hang: each case must finish within a time bound.
"""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from conftest import make_photo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from impasto import InputError, load_image

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF")
CASE_SECONDS = 2.0  # one damaged file (a 64x48 image) loads or fails in milliseconds
HANG_SECONDS = 20  # a guard: a case still running then is a hang (SIGALRM raises in the test)
FUZZ = settings(
    max_examples=60,
    derandomize=True,  # the same cases on every run: no flakes, no example database needed
    database=None,
    deadline=None,  # the bound below is ours, generous for a busy 2-core machine
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _encode(fmt: str) -> bytes:
    img = make_photo(64, 48)
    buf = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotated, so the EXIF path is taken
        exif[0x010E] = "a description"
        img.save(buf, format="JPEG", quality=80, exif=exif.tobytes())
    elif fmt == "GIF":
        frames = [img, make_photo(64, 48, seed=3)]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


ORIGINALS = {fmt: _encode(fmt) for fmt in FORMATS}


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Fail (instead of hanging the suite) if a case runs past HANG_SECONDS."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"a case ran past {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(path: Path, data: bytes) -> None:
    """``data`` loads, or fails with one line naming the file, in time."""
    path.write_bytes(data)
    signal.alarm(HANG_SECONDS)
    start = time.perf_counter()
    try:
        img = load_image(path)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert message.startswith(f"{path}: "), message
    else:
        assert img.mode == "RGB" and min(img.size) >= 16
    finally:
        signal.alarm(0)
    elapsed = time.perf_counter() - start
    assert elapsed < CASE_SECONDS, f"{elapsed:.2f} s for one case"


def test_the_originals_load(tmp_path: Path) -> None:
    for fmt, data in ORIGINALS.items():
        path = tmp_path / f"original.{fmt.lower()}"
        path.write_bytes(data)
        assert load_image(path).size in ((64, 48), (48, 64)), fmt  # the JPEG is rotated by its EXIF


@FUZZ
@given(fmt=st.sampled_from(FORMATS), keep=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_files(tmp_path: Path, hang_guard: None, fmt: str, keep: float) -> None:
    data = ORIGINALS[fmt]
    _check(tmp_path / "truncated", data[: max(1, int(len(data) * keep))])


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8),
)
def test_bit_flipped_files(tmp_path: Path, hang_guard: None, fmt: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(ORIGINALS[fmt])
    for where, bit in flips:
        data[int(len(data) * where)] ^= 1 << bit
    _check(tmp_path / "flipped", bytes(data))


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    where=st.floats(0.0, 1.0, exclude_max=True),
    junk=st.binary(min_size=1, max_size=64),
)
def test_overwritten_runs_of_bytes(tmp_path: Path, hang_guard: None, fmt: str, where: float, junk: bytes) -> None:
    data = bytearray(ORIGINALS[fmt])
    at = int(len(data) * where)
    data[at : at + len(junk)] = junk  # headers and chunk lengths get garbage too
    _check(tmp_path / "overwritten", bytes(data))


@FUZZ
@given(fmt=st.sampled_from(FORMATS), body=st.binary(min_size=0, max_size=2048))
def test_a_real_header_then_random_bytes(tmp_path: Path, hang_guard: None, fmt: str, body: bytes) -> None:
    _check(tmp_path / "random", ORIGINALS[fmt][:16] + body)


@FUZZ
@given(body=st.binary(min_size=1, max_size=4096))
def test_random_bytes(tmp_path: Path, hang_guard: None, body: bytes) -> None:
    _check(tmp_path / "random", body)
