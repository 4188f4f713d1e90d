"""Image I/O: every format and mode in, clear refusals, atomic output with embedded parameters."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_photo
from PIL import Image

import impasto.image.save as save_module
from impasto import InputError, load_image, read_params, save_image
from impasto.errors import ConfigError
from impasto.image import check_output_path, encode_png, fit_size, params_text, pil_to_tensor, resize, tensor_to_pil

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def rgb_at(img: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    pixel = img.getpixel(xy)
    assert isinstance(pixel, tuple) and len(pixel) >= 3
    r, g, b = pixel[:3]
    return r, g, b


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix", "tol"),
    [
        ("JPEG", ".jpg", 40),
        ("PNG", ".png", 0),
        ("WEBP", ".webp", 40),
        ("TIFF", ".tif", 0),
        ("BMP", ".bmp", 0),
        ("GIF", ".gif", 40),
    ],
)
def test_reads_common_formats(tmp_path: Path, fmt: str, suffix: str, tol: int) -> None:
    src = Image.new("RGB", (40, 24), RED)
    src.paste(BLUE, (20, 0, 40, 24))  # right half blue
    path = tmp_path / f"img{suffix}"
    src.save(path, format=fmt)
    img = load_image(path)
    assert img.mode == "RGB"
    assert img.size == (40, 24)
    assert near(rgb_at(img, (5, 12)), RED, tol)
    assert near(rgb_at(img, (35, 12)), BLUE, tol)


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), RED), Image.new("RGB", (32, 32), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    img = load_image(path)
    assert img.mode == "RGB"
    assert near(rgb_at(img, (16, 16)), RED, 2)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    src = Image.new("RGB", (64, 32), RED)
    src.paste(BLUE, (32, 0, 64, 32))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    src.save(path, exif=exif.tobytes(), quality=95)
    img = load_image(path)
    assert img.size == (32, 64)  # transposed
    assert near(rgb_at(img, (16, 8)), RED, 40)  # the left edge went to the top
    assert near(rgb_at(img, (16, 56)), BLUE, 40)


# --- modes --------------------------------------------------------------------------------------


def test_grayscale(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (32, 32), 77).save(path)
    img = load_image(path)
    assert img.mode == "RGB" and rgb_at(img, (3, 3)) == (77, 77, 77)


def test_one_bit(tmp_path: Path) -> None:
    path = tmp_path / "bw.png"
    Image.new("1", (32, 32), 1).save(path)
    img = load_image(path)
    assert img.mode == "RGB" and rgb_at(img, (3, 3)) == WHITE


def test_palette_without_transparency(tmp_path: Path) -> None:
    src = Image.new("RGB", (32, 32), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    path = tmp_path / "palette.png"
    src.save(path)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" not in check.info
    img = load_image(path)
    assert img.mode == "RGB" and rgb_at(img, (5, 5)) == (10, 200, 30)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_becomes_white(tmp_path: Path, suffix: str) -> None:
    src = Image.new("P", (32, 32), 0)
    src.putpalette([0, 0, 0, 200, 20, 20] + [0] * (256 * 3 - 6))
    src.paste(1, (16, 0, 32, 32))  # right half colour 1 (red); left half colour 0, transparent
    path = tmp_path / f"palette_alpha{suffix}"
    src.save(path, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    img = load_image(path)
    assert rgb_at(img, (4, 4)) == WHITE  # transparent -> white, not black
    assert rgb_at(img, (24, 4)) == (200, 20, 20)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    src = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    src.paste((0, 0, 255, 255), (16, 0, 32, 32))  # opaque blue right half
    src.paste((255, 0, 0, 128), (0, 16, 16, 32))  # half-transparent red bottom-left
    path = tmp_path / "alpha.png"
    src.save(path)
    img = load_image(path)
    assert img.mode == "RGB"
    assert rgb_at(img, (4, 4)) == WHITE
    assert rgb_at(img, (24, 4)) == BLUE
    assert near(rgb_at(img, (4, 24)), (255, 127, 127), 2)


def test_la_composited_on_white(tmp_path: Path) -> None:
    src = Image.new("LA", (32, 32), (0, 0))
    src.paste((40, 255), (16, 0, 32, 32))
    path = tmp_path / "la.png"
    src.save(path)
    with Image.open(path) as check:
        assert check.mode == "LA"
    img = load_image(path)
    assert rgb_at(img, (4, 4)) == WHITE
    assert rgb_at(img, (24, 4)) == (40, 40, 40)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cmyk{suffix}"
    Image.new("RGB", (32, 32), (200, 40, 40)).convert("CMYK").save(path)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    img = load_image(path)
    assert img.mode == "RGB" and near(rgb_at(img, (5, 5)), (200, 40, 40), 20)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit(tmp_path: Path, suffix: str) -> None:
    arr = np.zeros((32, 32), dtype=np.uint16)
    arr[:, 16:] = 65535
    arr[16:, :16] = 32768
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(arr).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    img = load_image(path)
    assert img.mode == "RGB"
    assert rgb_at(img, (4, 4)) == (0, 0, 0)
    assert rgb_at(img, (24, 4)) == WHITE
    assert rgb_at(img, (4, 24)) == (128, 128, 128)


def test_sixteen_bit_dark_image_is_not_stretched(tmp_path: Path) -> None:
    """A 16-bit image whose values are all small is dark, not mid-grey or white."""
    arr = np.full((32, 32), 200, dtype=np.uint16)  # 200/65535: nearly black
    path = tmp_path / "dark16.png"
    Image.fromarray(arr).save(path)
    assert rgb_at(load_image(path), (4, 4)) == (1, 1, 1)


# --- refusals -----------------------------------------------------------------------------------


def _truncated_png(path: Path) -> None:
    buf = io.BytesIO()
    make_photo(64, 64).save(buf, format="PNG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])


def _truncated_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    make_photo(64, 64).save(buf, format="JPEG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.png", lambda p: None, "not found"),
        ("folder.png", lambda p: p.mkdir(), "directory"),
        ("empty.png", lambda p: p.write_bytes(b""), "empty"),
        ("notes.png", lambda p: p.write_text("hello, not an image\n"), "not an image"),
        ("random.jpg", lambda p: p.write_bytes(os.urandom(2000)), "not an image"),
        ("cut.png", _truncated_png, "truncated or corrupt"),
        ("cut.jpg", _truncated_jpeg, "truncated or corrupt"),
        ("tiny.png", lambda p: Image.new("RGB", (15, 40)).save(p), "too small"),
        ("thin.png", lambda p: Image.new("RGB", (400, 8)).save(p), "too small"),
    ],
)
def test_bad_inputs_are_refused_naming_the_file(
    tmp_path: Path, name: str, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    text = str(info.value)
    assert text.startswith(str(path) + ":")
    assert "\n" not in text


def test_sixteen_pixels_is_enough(tmp_path: Path) -> None:
    path = tmp_path / "min.png"
    Image.new("RGB", (16, 16)).save(path)
    assert load_image(path).size == (16, 16)


def test_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 48)).save(path)
    with pytest.raises(InputError, match="over the limit of 3,000 px") as info:
        load_image(path, max_pixels=3000)
    assert str(path) in str(info.value) and "(raise it with max_pixels)" in str(info.value)
    assert load_image(path, max_pixels=64 * 48).size == (64, 48)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height 1-bit pixels, with one empty data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_header_only(path, 100_000, 100_000)  # 10 gigapixels
    with pytest.raises(InputError) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_max_pixels_above_pillows_own_limit_is_honoured(tmp_path: Path) -> None:
    """Raising the limit past Pillow's warning threshold (~89 Mpx) must not refuse the image as a bomb.

    The file declares 9500 x 9500 1-bit pixels but holds no data, so with the limit raised it gets
    as far as decoding and fails there, as a truncated file.
    """
    path = tmp_path / "large.png"
    _png_header_only(path, 9500, 9500)
    with pytest.raises(InputError, match="over the limit"):
        load_image(path)  # the default limit
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(path, max_pixels=100_000_000)


# --- sizes and tensors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "longest", "expected"),
    [((64, 48), 32, (32, 24)), ((48, 64), 32, (24, 32)), ((100, 100), 7, (7, 7)), ((1000, 10), 50, (50, 1))],
)
def test_fit_size(size: tuple[int, int], longest: int, expected: tuple[int, int]) -> None:
    assert fit_size(*size, longest) == expected


def test_fit_size_refuses_zero() -> None:
    with pytest.raises(ConfigError, match="positive"):
        fit_size(10, 10, 0)


def test_resize_keeps_aspect_and_is_a_noop_at_the_same_size() -> None:
    img = make_photo(64, 48)
    assert resize(img, 32).size == (32, 24)
    assert resize(img, 64) is img


def test_tensor_round_trip() -> None:
    img = make_photo(20, 16)
    x = pil_to_tensor(img)
    assert x.shape == (1, 3, 16, 20) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 255
    assert np.array_equal(np.asarray(tensor_to_pil(x)), np.asarray(img))
    clipped = tensor_to_pil(torch.tensor([-20.0, 127.6, 300.0]).view(1, 3, 1, 1))
    assert clipped.getpixel((0, 0)) == (0, 128, 255)


# --- output -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gif", ".bmp", ".tiff", ""])
def test_unsupported_output_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    with pytest.raises(InputError, match="unsupported output format") as info:
        check_output_path(path)
    assert str(path) in str(info.value) and ".png" in str(info.value)


def test_output_folder_missing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "out.png"
    with pytest.raises(InputError, match="does not exist") as info:
        save_image(make_photo(32, 32), path)
    assert str(path) in str(info.value)
    assert not path.parent.exists()


def test_output_is_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.mkdir()
    with pytest.raises(InputError, match="directory"):
        check_output_path(path)


def test_output_check_probes_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "out.png", need_bytes=1000) == tmp_path / "out.png"
    assert os.listdir(tmp_path) == []
    with pytest.raises(InputError, match="cannot create files in '/proc'"):
        check_output_path("/proc/out.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        check_output_path(tmp_path / "file" / "out.png")
    with pytest.raises(InputError, match="MB free"):
        check_output_path(tmp_path / "out.png", need_bytes=10**18)


@pytest.mark.parametrize(
    ("suffix", "fmt", "lossless"),
    [
        (".png", "PNG", True),
        (".jpg", "JPEG", False),
        (".jpeg", "JPEG", False),
        (".webp", "WEBP", False),
        (".PNG", "PNG", True),
    ],
)
def test_save_and_read_params(tmp_path: Path, suffix: str, fmt: str, lossless: bool) -> None:
    img = make_photo(40, 30)
    params = {"size": 40, "style_layers": ["conv1_1:0.2"], "loss": 1.25e7, "content": "Tübingen.jpg"}
    path = save_image(img, tmp_path / f"out{suffix}", params)
    assert path == tmp_path / f"out{suffix}"
    assert sorted(os.listdir(tmp_path)) == [f"out{suffix}"]  # no temp file left over
    with Image.open(path) as back:
        assert back.format == fmt
        assert back.size == (40, 30)
        pixels = np.asarray(back.convert("RGB"), dtype=np.int16)
    diff = np.abs(pixels - np.asarray(img, dtype=np.int16))
    assert diff.max() == 0 if lossless else diff.mean() < 8
    assert read_params(path) == params


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_quality_of_lossy_formats(tmp_path: Path, suffix: str) -> None:
    img = make_photo(64, 64)
    low = save_image(img, tmp_path / f"low{suffix}", {"q": 10}, quality=10)
    high = save_image(img, tmp_path / f"high{suffix}", {"q": 95}, quality=95)
    assert low.stat().st_size < high.stat().st_size * 0.6
    assert read_params(low) == {"q": 10}


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    save_image(make_photo(32, 32), path, {"run": 1})
    save_image(make_photo(32, 32, seed=5), path, {"run": 2})
    assert read_params(path) == {"run": 2}


def test_read_params_of_a_foreign_image_is_empty(tmp_path: Path) -> None:
    for name in ("plain.png", "plain.jpg", "plain.webp"):
        make_photo(32, 32).save(tmp_path / name)
        assert read_params(tmp_path / name) == {}


def test_read_params_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_params(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image") as info:
        read_params(tmp_path / "notes.txt")
    assert "notes.txt" in str(info.value)


class _DiskFull(OSError):
    pass


def _failing_save(monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = Image.Image.save

    def save(self: Image.Image, fp: Any, format: str | None = None, **kwargs: Any) -> None:
        real_save(self, fp, format=format, **kwargs)  # write a whole file's worth of bytes, then fail
        raise _DiskFull(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_failing_save_leaves_no_partial_or_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    _failing_save(monkeypatch)
    path = tmp_path / f"out{suffix}"
    with pytest.raises(InputError, match="No space left on device") as info:
        save_image(make_photo(32, 32), path, {"a": 1})
    assert str(path) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_failing_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    save_image(make_photo(32, 32), path, {"run": 1})
    before = path.read_bytes()
    _failing_save(monkeypatch)
    with pytest.raises(InputError):
        save_image(make_photo(32, 32, seed=3), path, {"run": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupted_save_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def save(self: Image.Image, fp: Any, format: str | None = None, **kwargs: Any) -> None:
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(KeyboardInterrupt):
        save_image(make_photo(32, 32), tmp_path / "out.png")
    assert os.listdir(tmp_path) == []


def test_unwritable_folder_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(save_module, "_new_file", refuse)
    path = tmp_path / "out.png"
    with pytest.raises(InputError, match="Permission denied") as info:
        save_image(make_photo(32, 32), path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_output_mode_is_what_open_would_give(tmp_path: Path, umask: int, suffix: str) -> None:
    previous = os.umask(umask)
    try:
        path = save_image(make_photo(32, 32), tmp_path / f"out{suffix}")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)


def test_replaced_output_keeps_its_mode(tmp_path: Path) -> None:
    path = save_image(make_photo(32, 32), tmp_path / "out.png")
    path.chmod(0o640)
    save_image(make_photo(32, 32, seed=2), path, {"run": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and read_params(path) == {"run": 2}


def test_encode_png_is_the_file_save_image_writes(tmp_path: Path) -> None:
    """One builder of the parameter chunk: the studio's and the batch's PNG bytes are save_image's file."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    params = {"size": 53, "styles": ["b.jpg"], "path": Path("x/y.png"), "a": None}
    saved = save_image(img, tmp_path / "out.png", params).read_bytes()
    assert encode_png(img, params) == saved
    assert encode_png(img, params, compress_level=1) != saved  # the studio's quick previews
    (tmp_path / "fast.png").write_bytes(encode_png(img, params, compress_level=1))
    assert read_params(tmp_path / "fast.png") == {"a": None, "path": "x/y.png", "size": 53, "styles": ["b.jpg"]}
    assert params_text(params) == '{"a": null, "path": "x/y.png", "size": 53, "styles": ["b.jpg"]}'
    with Image.open(tmp_path / "fast.png") as png:
        assert png.info["impasto"] == params_text(params)
