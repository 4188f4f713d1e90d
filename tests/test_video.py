"""impasto video: flow, warping and consistency on synthetic frames; the temporal run, resumed; its API."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_painting
from PIL import Image

from impasto.config import resolve
from impasto.errors import ConfigError
from impasto.video.flow import consistency, flow, temporal_error, warp
from impasto.video.frames import FrameStep, VideoSettings, stylize_video
from impasto.video.run import run_video, work_folder

pytest.importorskip("cv2")


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smoothed noise (H, W, 3) with structure at a few pixels: trackable by optical flow."""
    import cv2

    rng = np.random.default_rng(seed)
    arr = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.asarray(cv2.GaussianBlur(arr, (0, 0), 1.5), dtype=np.float32)


def moving_square(n: int, size: int = 64, step: int = 3) -> list[Image.Image]:
    """A textured square moving right by ``step`` px a frame over a static textured background."""
    bg, fg = texture(size, size, 0), texture(size, size, 1)
    frames = []
    for t in range(n):
        arr = bg.copy()
        x0 = 12 + t * step
        arr[20:44, x0 : x0 + 24] = fg[20:44, 12:36]
        frames.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB"))
    return frames


def test_warp_by_a_known_flow_is_a_shift() -> None:
    img = texture(40, 32)
    shift = np.zeros((32, 40, 2), np.float32)
    shift[..., 0], shift[..., 1] = 3.0, 2.0  # each pixel x of frame t was at x + (3, 2) in frame t-1
    out, inside = warp(img, shift)
    assert out.shape == img.shape
    np.testing.assert_allclose(out[:-2, :-3], img[2:, 3:], atol=1e-3)
    assert inside[:-2, :-3].all() and not inside[-1].any() and not inside[:, -1].any()
    half = shift * 0.5  # (1.5, 1): bilinear, halfway between two pixels is their mean
    out, _ = warp(img, half)
    np.testing.assert_allclose(out[10, 10], (img[11, 11] + img[11, 12]) / 2, atol=1e-2)


def test_consistency_is_0_on_a_disocclusion_and_1_where_static() -> None:
    h, w = 48, 64
    backward = np.zeros((h, w, 2), np.float32)  # frame t -> t-1
    forward = np.zeros((h, w, 2), np.float32)  # frame t-1 -> t
    backward[10:30, 28:52, 0] = -8.0  # the square is at x 28..52 in frame t, came from 20..44
    forward[10:30, 20:44, 0] = 8.0
    c = consistency(forward, backward)
    assert c.shape == (h, w) and c.dtype == np.float32
    assert c[12:28, 21:27].max() < 0.05  # x 20..28: background revealed in t, hidden in t-1
    assert c[36:, :].min() > 0.99 and c[:, 56:].min() > 0.99  # static background
    assert c[14:26, 32:48].min() > 0.99  # the square itself moves consistently
    hard = consistency(forward, backward, sigma=0.0)
    assert set(np.unique(hard)) <= {0.0, 1.0}


def test_dis_flow_follows_a_moving_square_and_its_mask_marks_the_revealed_background() -> None:
    f0, f1 = moving_square(2, step=4)
    backward, forward = flow(f1, f0), flow(f0, f1)
    assert backward.shape == (64, 64, 2)
    np.testing.assert_allclose(np.median(backward[24:40, 22:36], axis=(0, 1)), (-4.0, 0.0), atol=0.5)
    assert np.abs(backward[50:, :]).max() < 0.5  # static background
    c = consistency(forward, backward)
    assert c[50:60, 10:54].mean() > 0.95
    assert c[24:40, 12:16].mean() < 0.5  # revealed at x 12..16
    warped, _ = warp(np.asarray(f0, np.float32), backward)
    err = np.abs(warped - np.asarray(f1, np.float32)).mean(-1)
    assert (err * c).sum() / c.sum() < 4.0  # where c trusts the flow, warping frame 0 gives frame 1


def test_temporal_error_is_zero_for_a_video_that_follows_the_flow() -> None:
    frames = moving_square(3, step=2)
    assert max(temporal_error(frames, frames)) < 3.0
    noisy = [Image.fromarray(np.clip(np.asarray(f, np.float32) + n, 0, 255).astype(np.uint8)) for f, n in
             zip(frames, np.random.default_rng(0).normal(0, 20, (3, 64, 64, 3)), strict=True)]  # fmt: skip
    assert min(temporal_error(noisy, frames)) > 15.0  # boiling noise: about sqrt(2) * 20


def _folder(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(moving_square(n)):
        f.save(folder / f"f{i:03d}.png")
    return folder


SMALL: dict[str, Any] = {"size": 64, "steps": 6, "scales": 1}


def test_api_yields_one_frame_per_input(narrow_network: None) -> None:
    frames = moving_square(2)
    style = make_painting(48, 48)
    out = list(stylize_video(iter(frames), style, settings=VideoSettings(frame_steps=3), **SMALL))
    assert [o.size for o in out] == [(64, 64), (64, 64)]
    assert all(o.mode == "RGB" for o in out)
    assert not np.array_equal(np.asarray(out[0]), np.asarray(frames[0]))


def test_a_run_resumes_after_an_interruption_and_gives_the_same_frames(
    tmp_path: Path, narrow_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _folder(tmp_path)
    style = tmp_path / "style.png"
    make_painting(48, 48).save(style)
    settings = VideoSettings(frame_steps=4)
    whole = run_video(src, [style], tmp_path / "whole", settings=settings, **SMALL)
    assert not whole.interrupted and sorted(p.name for p in whole.output.iterdir()) == [
        "frame_00001.png", "frame_00002.png", "frame_00003.png"
    ]  # fmt: skip
    assert not work_folder(whole.output).exists()

    def stop_in_frame_3(ev: FrameStep) -> None:
        if ev.frame == 3 and ev.step.step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    first = run_video(src, [style], out, settings=settings, on_step=stop_in_frame_3, **SMALL)
    assert first.interrupted and not out.exists()
    work = work_folder(out)
    assert sorted(p.name for p in work.glob("frame_*.png")) == ["frame_00001.png", "frame_00002.png"]
    kept = (work / "frame_00001.png").stat().st_mtime_ns

    video = importlib.import_module("impasto.video.frames")
    calls: list[int] = []
    real = video.transfer

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(video, "transfer", counted)
    second = run_video(src, [style], out, settings=settings, **SMALL)
    assert not second.interrupted and second.done_before == 2 and len(calls) == 1  # only frame 3 is made
    for i in (1, 2, 3):
        a = np.asarray(Image.open(out / f"frame_{i:05d}.png"))
        b = np.asarray(Image.open(whole.output / f"frame_{i:05d}.png"))
        np.testing.assert_array_equal(a, b)
    assert kept  # frame 1 was read back, not rewritten: its file was there before the second run


def test_a_changed_option_starts_over(tmp_path: Path, narrow_network: None) -> None:
    src = _folder(tmp_path, 2)
    style = tmp_path / "style.png"
    make_painting(48, 48).save(style)

    def stop(ev: FrameStep) -> None:
        if ev.frame == 2:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    assert run_video(src, [style], out, on_step=stop, **SMALL).interrupted
    again = run_video(src, [style], out, on_step=stop, **(SMALL | {"seed": 5}))
    assert again.restarted and again.done_before == 0 and again.interrupted
    same = run_video(src, [style], out, **(SMALL | {"seed": 5}))
    assert not same.restarted and same.done_before == 1 and not same.interrupted


def test_long_term_weights_are_closest_first() -> None:
    from impasto.video.frames import _long_term

    c1 = np.array([[1.0, 0.0, 0.5]], np.float32)
    c2 = np.array([[1.0, 1.0, 1.0]], np.float32)
    c4 = np.array([[1.0, 1.0, 1.0]], np.float32)
    l1, l2, l4 = _long_term([c1, c2, c4])
    np.testing.assert_allclose(l1, c1)
    np.testing.assert_allclose(l2, [[0.0, 1.0, 0.5]])
    np.testing.assert_allclose(l4, [[0.0, 0.0, 0.0]])
    # Ruder eq. 8 subtracts the closer offsets' c, not what they kept: 1 - (0.5 + 0.3) for t-4, not 1 - 0.5
    _, l2, l4 = _long_term([np.full((1, 1), 0.5, np.float32), np.full((1, 1), 0.3, np.float32), np.ones((1, 1))])
    np.testing.assert_allclose(l2, [[0.0]])
    np.testing.assert_allclose(l4, [[0.2]], rtol=1e-6)


def test_long_term_run(tmp_path: Path, narrow_network: None) -> None:
    frames = moving_square(3)
    settings = VideoSettings(frame_steps=2, temporal_offsets=(1, 2))
    out = list(stylize_video(frames, make_painting(48, 48), settings=settings, **SMALL))
    assert len(out) == 3


def test_step_defaults_are_per_device_and_given_values_win() -> None:
    import torch

    from impasto.video.frames import STEPS

    assert VideoSettings().steps_for(torch.device("cpu")) == STEPS["cpu"]
    assert VideoSettings().steps_for(torch.device("cuda")) == STEPS["cuda"]
    assert VideoSettings().steps_for(torch.device("meta")) == STEPS["cpu"]  # an unlisted device: the CPU's
    assert VideoSettings(first_frame_steps=7, frame_steps=3).steps_for(torch.device("cuda")) == (7, 3)


def test_the_init_image_starts_the_first_frame_and_the_masks_hold_for_every_frame(
    tmp_path: Path, narrow_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from impasto.core.transfer import transfer

    frames = moving_square(2)
    styles = [make_painting(48, 48), make_painting(48, 48, seed=5)]
    start = Image.new("RGB", (64, 64), (200, 10, 100))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 64))
    mask.save(tmp_path / "halves.png")
    settings = VideoSettings(first_frame_steps=2, frame_steps=2)
    first = resolve("default", **(SMALL | {"steps": 2}))

    def pixels(img: Image.Image) -> np.ndarray:
        return np.asarray(img, dtype=np.int16)

    started = list(stylize_video(frames, styles[:1], settings=settings, init_image=start, **SMALL))
    alone = transfer(frames[0], styles[:1], dataclasses.replace(first, init="image"), init_image=start)
    assert np.array_equal(pixels(started[0]), pixels(alone.image))
    plain = list(stylize_video(frames, styles, settings=settings, **SMALL))
    video = importlib.import_module("impasto.video.frames")
    given: list[Any] = []

    def spy(*args: Any, **kw: Any) -> Any:
        given.append(kw.get("content_mask"))
        return transfer(*args, **kw)

    monkeypatch.setattr(video, "transfer", spy)
    masked = list(stylize_video(frames, styles, settings=settings, content_mask=tmp_path / "halves.png", **SMALL))
    assert given == [tmp_path / "halves.png"] * 2  # every frame has the mask
    assert np.array_equal(pixels(masked[0]), pixels(transfer(frames[0], styles, first, content_mask=mask).image))
    assert not np.array_equal(pixels(masked[1]), pixels(plain[1]))
    with pytest.raises(ConfigError, match="2 region"):
        list(stylize_video(frames, styles[:1], settings=settings, content_mask=mask, **SMALL))


def test_video_settings_errors_name_the_field_and_each_front_end_words_it() -> None:
    """The library says `temporal_weight`; the command line says --temporal-weight (issue 29 item 7)."""
    from impasto.errors import ConfigError, cli_flag
    from impasto.video.frames import VideoSettings

    with pytest.raises(ConfigError) as info:
        VideoSettings(temporal_weight=-1.0).check()
    assert str(info.value) == "temporal_weight must be >= 0, got -1"
    assert info.value.worded(cli_flag) == "--temporal-weight must be >= 0, got -1"
    with pytest.raises(ConfigError) as info:
        VideoSettings(frame_steps=0).check()
    assert info.value.worded(cli_flag) == "--frame-steps and --first-frame-steps must be >= 1"


def test_the_eta_of_later_frames_comes_from_the_first_frames_own_step_time() -> None:
    from impasto.core.transfer import Step
    from impasto.video.frames import later_step_seconds

    plan = ((128, 96, 150), (256, 192, 150))
    # 10 s elapsed (the network's loading and the targets): no part of the step time.
    first = Step(2, 300, 1, 2, (128, 96), 1.0, {}, 10.0, 148 * 0.1 + 150 * 0.4, schedule=plan)
    # 0.1 s per 128x96 step here: a later frame (one scale, full size 256x192) 0.4 s per step
    assert later_step_seconds(first, (256, 192)) == pytest.approx(0.4)
    assert later_step_seconds(first, (128, 96)) == pytest.approx(0.1)
    late = Step(250, 300, 2, 2, (256, 192), 1.0, {}, 99.0, 50 * 0.4, schedule=plan)
    assert later_step_seconds(late, (256, 192)) == pytest.approx(0.4)
    assert later_step_seconds(Step(300, 300, 2, 2, (256, 192), 1.0, {}, 99.0, 0.0, schedule=plan), (1, 1)) is None
    assert later_step_seconds(Step(1, 300, 1, 2, (128, 96), 1.0, {}, 9.0, None, schedule=plan), (1, 1)) is None


def test_the_first_frames_eta_counts_the_later_frames_at_its_own_step_time(narrow_network: None) -> None:
    from impasto.video.frames import later_step_seconds

    events: list[FrameStep] = []
    frames = moving_square(3)
    settings = VideoSettings(first_frame_steps=6, frame_steps=2)
    list(
        stylize_video(frames, make_painting(48, 48), settings=settings, on_step=events.append, frames_total=3, **SMALL)
    )
    first = [ev for ev in events if ev.frame == 1 and later_step_seconds(ev.step, (64, 64)) is not None]
    assert first, events
    for ev in first:  # 2 later frames of 2 steps each
        later = later_step_seconds(ev.step, (64, 64))
        assert ev.step.eta is not None and ev.eta is not None and later is not None
        assert ev.eta == pytest.approx(ev.step.eta + 2 * 2 * later)
