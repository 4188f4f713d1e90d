"""The paper's losses: values by hand, analytic gradients against autograd, the Objective."""

from __future__ import annotations

import copy

import pytest
import torch

from impasto.core.eq7 import Eq7
from impasto.core.gram import gram, mean_gram
from impasto.core.objective import features_of
from impasto.core.terms import Content, GramStyle, content_loss, style_layer_loss, tv_loss
from impasto.net.vgg import VGG19


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=dtype)


# --- Gram matrix --------------------------------------------------------------------------------


def test_gram_by_hand() -> None:
    # Two channels, two positions: F = [[1, 2], [3, 4]] (rows are channels).
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[1 * 1 + 2 * 2, 1 * 3 + 2 * 4], [3 * 1 + 4 * 2, 3 * 3 + 4 * 4]]])
    assert torch.equal(gram(f), expected)  # [[5, 11], [11, 25]]
    assert torch.equal(mean_gram(f), expected / 2)


def test_gram_by_hand_three_channels_2x2() -> None:
    f = torch.tensor(
        [
            [[1.0, 0.0], [2.0, 1.0]],  # channel 0 at positions (0,0) (0,1) (1,0) (1,1)
            [[0.0, 1.0], [1.0, 3.0]],
            [[2.0, 2.0], [0.0, 0.0]],
        ]
    ).unsqueeze(0)  # (1, 3, 2, 2)
    expected = torch.tensor([[6.0, 5.0, 2.0], [5.0, 11.0, 2.0], [2.0, 2.0, 8.0]])
    assert torch.equal(gram(f)[0], expected)
    assert torch.equal(mean_gram(f)[0], expected / 4)


@pytest.mark.parametrize("shape", [(1, 5, 4, 3), (2, 7, 3, 6), (1, 64, 8, 8), (3, 1, 4, 4)])
def test_gram_same_for_channels_last_and_contiguous(shape: tuple[int, int, int, int]) -> None:
    f = rand(*shape, dtype=torch.float32) * 100
    cl = f.contiguous(memory_format=torch.channels_last)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    g, g_cl = gram(f), gram(cl)
    assert g.shape == g_cl.shape == (shape[0], shape[1], shape[1])
    torch.testing.assert_close(g_cl, g, rtol=1e-6, atol=1e-3)
    literal = torch.einsum("bchw,bdhw->bcd", f.double(), f.double())
    torch.testing.assert_close(g.double(), literal, rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(g_cl.double(), literal, rtol=1e-6, atol=1e-3)


def test_gram_gradient_same_for_channels_last_and_contiguous() -> None:
    f = rand(1, 6, 5, 4, seed=2)
    a = f.clone().requires_grad_(True)
    b = f.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (gram(a) ** 2).sum().backward()
    (gram(b) ** 2).sum().backward()
    assert a.grad is not None and b.grad is not None
    torch.testing.assert_close(a.grad, b.grad)


# --- content loss -------------------------------------------------------------------------------


def test_content_loss_by_hand() -> None:
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    p = torch.tensor([1.0, 0.0, 5.0, 1.0]).view(1, 1, 2, 2)
    assert content_loss(f, p).item() == 0.5 * (0 + 4 + 4 + 9)


def test_content_gradient_is_f_minus_p() -> None:
    """dL_content/dF = F - P (paper, eq. 2; the ReLU mask comes from the network)."""
    f = rand(1, 8, 5, 6, seed=1).requires_grad_(True)
    p = rand(1, 8, 5, 6, seed=2)
    content_loss(f, p).backward()
    assert f.grad is not None
    torch.testing.assert_close(f.grad, (f - p).detach())


# --- style loss ---------------------------------------------------------------------------------


def _target_gram(n: int, m: int, seed: int) -> torch.Tensor:
    s = rand(n, m, seed=seed)  # a style image's non-negative responses, (N, M)
    return s @ s.T  # A, (N, N)


@pytest.mark.parametrize(("n", "h", "w"), [(3, 2, 2), (8, 4, 5), (16, 6, 6)])
def test_style_layer_loss_equals_the_literal_formula(n: int, h: int, w: int) -> None:
    m = h * w
    f = rand(1, n, h, w, seed=3)
    a = _target_gram(n, m, seed=4)
    fm = f.reshape(n, m)  # (N, M)
    g = torch.zeros(n, n, dtype=f.dtype)
    for i in range(n):
        for j in range(n):
            g[i, j] = sum(fm[i, k] * fm[j, k] for k in range(m))
    literal = ((g - a) ** 2).sum() / (4 * n**2 * m**2)
    got = style_layer_loss(f, (a / m).unsqueeze(0))
    torch.testing.assert_close(got, literal, rtol=1e-12, atol=0.0)


def test_style_layer_loss_at_realistic_magnitudes_in_float32() -> None:
    """conv1_1-like responses (tens to hundreds, 64 x 1024 positions): no loss of precision."""
    n, h, w = 64, 32, 32
    m = h * w
    f = rand(1, n, h, w, seed=5) * 300
    a = _target_gram(n, m, seed=6) * 300**2
    literal = ((gram(f)[0] - a) ** 2).sum() / (4 * n**2 * m**2)
    got = style_layer_loss(f.float(), (a / m).float().unsqueeze(0))
    assert got.dtype == torch.float32
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(literal.item(), rel=1e-4)


def test_style_loss_is_zero_for_its_own_gram() -> None:
    f = rand(1, 6, 4, 4, seed=7)
    assert style_layer_loss(f, mean_gram(f)).item() == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize(("n", "h", "w"), [(4, 3, 3), (12, 5, 4)])
def test_style_gradient_matches_the_papers(n: int, h: int, w: int) -> None:
    """dE_l/dF = 1/(N^2 M^2) ((F^T (G - A))^T), i.e. (G - A) F / (N^2 M^2) (paper, eq. 6)."""
    m = h * w
    f = rand(1, n, h, w, seed=8).requires_grad_(True)  # non-negative, like rectified responses
    a = _target_gram(n, m, seed=9)
    style_layer_loss(f, (a / m).unsqueeze(0)).backward()
    assert f.grad is not None
    fm = f.detach().reshape(n, m)  # (N, M)
    g = fm @ fm.T  # (N, N)
    paper = (fm.T @ (g - a)).T / (n**2 * m**2)  # (N, M)
    torch.testing.assert_close(f.grad.reshape(n, m), paper, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(f.grad.reshape(n, m), (g - a) @ fm / (n**2 * m**2), rtol=1e-10, atol=1e-14)


def test_style_gradient_channels_last_input() -> None:
    n, h, w = 5, 4, 4
    m = h * w
    f = rand(1, n, h, w, seed=10).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    a = _target_gram(n, m, seed=11)
    style_layer_loss(f, (a / m).unsqueeze(0)).backward()
    assert f.grad is not None
    fm = f.detach().reshape(n, m)
    torch.testing.assert_close(f.grad.reshape(n, m), (fm @ fm.T - a) @ fm / (n**2 * m**2))


# --- total variation ----------------------------------------------------------------------------


def test_tv_loss_by_hand() -> None:
    img = torch.tensor([[0.0, 1.0], [3.0, 7.0]]).view(1, 1, 2, 2)
    # vertical: (3-0)^2 + (7-1)^2 = 45; horizontal: (1-0)^2 + (7-3)^2 = 17
    assert tv_loss(img).item() == 62.0


def test_tv_loss_by_hand_3x2_two_channels() -> None:
    ch0 = [[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]]  # h: 1+4 + 0+0 = 5; v: 0+1+9 = 10
    ch1 = [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]  # h: 0; v: 4+4+4 = 12
    img = torch.tensor([ch0, ch1]).unsqueeze(0)  # (1, 2, 2, 3)
    assert tv_loss(img).item() == 27.0
    assert tv_loss(torch.full((1, 3, 5, 5), 9.0)).item() == 0.0


# --- the objective ------------------------------------------------------------------------------


def _image(seed: int, h: int = 32, w: int = 32) -> torch.Tensor:
    return rand(1, 3, h, w, seed=seed, dtype=torch.float32) * 255


def test_objective_is_alpha_content_plus_beta_weighted_style_plus_tv(tiny_vgg: VGG19) -> None:
    content_layers = {"conv2_2": 2.0}
    style_layers = {"conv1_1": 0.25, "conv2_1": 0.5, "conv3_1": 3.0}
    eq = Eq7(tiny_vgg, content_layers, style_layers, content_weight=1e-2, style_weight=7.0, tv_weight=0.1)
    photo, painting, x = _image(1), _image(2, 40, 24), _image(3)
    obj = eq.of(photo, [painting])
    total, terms = obj(x)

    with torch.no_grad():
        p = tiny_vgg(photo, ["conv2_2"])["conv2_2"]
        s = tiny_vgg(painting, list(style_layers))
        f = tiny_vgg(x, ["conv2_2", *style_layers])
    content = 2.0 * 0.5 * ((f["conv2_2"] - p) ** 2).sum()
    e = {}
    for layer in style_layers:
        fl, sl = f[layer], s[layer]
        n, m, m_style = fl.shape[1], fl.shape[2] * fl.shape[3], sl.shape[2] * sl.shape[3]
        a = gram(sl)[0] * m / m_style  # the style's Gram, per position, at the output's size
        e[layer] = ((gram(fl)[0] - a) ** 2).sum() / (4 * n**2 * m**2)
    style = sum(w * e[layer] for layer, w in style_layers.items())
    tv = tv_loss(x)

    assert set(terms) == {"content", "style", "tv", "style:conv1_1", "style:conv2_1", "style:conv3_1"}
    assert terms["content"].item() == pytest.approx(content.item(), rel=1e-4)
    for layer in style_layers:
        assert terms[f"style:{layer}"].item() == pytest.approx(e[layer].item(), rel=1e-4)
    assert terms["style"].item() == pytest.approx(float(style), rel=1e-4)
    assert terms["tv"].item() == pytest.approx(tv.item(), rel=1e-5)
    expected = 1e-2 * content + 7.0 * style + 0.1 * tv
    assert total.item() == pytest.approx(float(expected), rel=1e-4)


def test_objective_without_tv_has_no_tv_term(tiny_vgg: VGG19) -> None:
    obj = Eq7(tiny_vgg, {"conv1_2": 1.0}, {"conv1_1": 1.0}, content_weight=1.0, style_weight=1.0).of(
        _image(1), [_image(2)]
    )
    total, terms = obj(_image(3))
    assert "tv" not in terms
    assert total.item() == pytest.approx((terms["content"] + terms["style"]).item(), rel=1e-6)


def test_objective_is_zero_at_its_targets(tiny_vgg: VGG19) -> None:
    img = _image(4)
    obj = Eq7(tiny_vgg, {"conv3_1": 1.0}, {"conv1_1": 0.5, "conv2_1": 0.5}, content_weight=1.0, style_weight=1.0).of(
        img, [img]
    )
    total, terms = obj(img)
    assert terms["content"].item() == 0.0
    assert terms["style"].item() == pytest.approx(0.0, abs=1e-9)
    assert total.item() == pytest.approx(0.0, abs=1e-9)


def test_objective_without_content_image(tiny_vgg: VGG19) -> None:
    obj = Eq7(tiny_vgg, {"conv2_1": 1.0}, {"conv1_1": 1.0}, content_weight=1.0, style_weight=2.0).of(
        None, [_image(2)], shape=(32, 32)
    )
    total, terms = obj(_image(3))
    assert terms["content"].item() == 0.0
    assert total.item() == pytest.approx(2.0 * terms["style"].item(), rel=1e-6)


def test_objective_content_only_reconstruction(tiny_vgg: VGG19) -> None:
    """Fig. 1's content reconstructions: a content layer and no style layers at all."""
    obj = Eq7(tiny_vgg, {"conv2_1": 1.0}, {}, content_weight=1.0, style_weight=1.0).of(_image(1), [_image(2)])
    total, terms = obj(_image(3))
    assert terms["style"].item() == 0.0
    assert total.item() == pytest.approx(terms["content"].item()) and total.item() > 0


def test_objective_blends_style_grams(tiny_vgg: VGG19) -> None:
    a, b = _image(5), _image(6, 24, 40)
    eq = Eq7(tiny_vgg, {"conv1_1": 1.0}, {"conv1_1": 1.0, "conv2_1": 1.0}, content_weight=1.0, style_weight=1.0)
    ga, gb = eq.style_targets(a), eq.style_targets(b)
    region = eq.blend([a, b], blend=[1.0, 3.0])  # one region over the whole output
    for layer in ("conv1_1", "conv2_1"):
        torch.testing.assert_close(region.targets[layer], 0.25 * ga[layer] + 0.75 * gb[layer])
    region = eq.blend([a, b], blend=[0.0, 2.0])
    for layer in ("conv1_1", "conv2_1"):
        torch.testing.assert_close(region.targets[layer], gb[layer])


def test_objective_gradient_reaches_the_pixels(tiny_vgg: VGG19) -> None:
    obj = Eq7(tiny_vgg, {"conv2_1": 1.0}, {"conv1_1": 1.0}, content_weight=1.0, style_weight=1.0, tv_weight=1.0).of(
        _image(1), [_image(2)]
    )
    x = _image(3).requires_grad_(True)
    total, _ = obj(x)
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_objective_on_a_bf16_network_agrees_with_fp32_within_two_percent(tiny_vgg: VGG19) -> None:
    """The bf16 path: activations bf16 through the network, Gram matrices and losses in fp32.

    Tolerance stated: the total loss within 2 % and the pixel gradient's direction within
    cos > 0.99 of the fp32 network's (bf16 keeps 8 bits of mantissa: ~0.4 % per value).
    """
    args = ({"conv2_1": 1.0}, {"conv1_1": 0.5, "conv2_1": 0.5})
    bf16_vgg = copy.deepcopy(tiny_vgg).to(torch.bfloat16)
    losses, grads = [], []
    for net in (tiny_vgg, bf16_vgg):
        obj = Eq7(net, *args, content_weight=1.0, style_weight=1.0).of(_image(1), [_image(2)])
        content, style = obj.term("content"), obj.term("style")
        assert isinstance(content, Content) and isinstance(style, GramStyle)
        assert all(v.dtype == torch.float32 for v in content.targets.values())
        assert all(g.dtype == torch.float32 for g in style.regions[0].targets.values())
        feats = features_of(obj.vgg, _image(3), obj.layers)
        assert {f.dtype for f in feats.values()} == {net.dtype}
        x = _image(3).requires_grad_(True)
        total, terms = obj(x)
        assert total.dtype == torch.float32 and terms["style"].dtype == torch.float32
        total.backward()
        assert x.grad is not None and x.grad.dtype == torch.float32
        losses.append(total.item())
        grads.append(x.grad.flatten())
    assert losses[1] == pytest.approx(losses[0], rel=0.02)
    assert losses[1] != losses[0]  # it did compute in bf16
    assert float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)) > 0.99


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_gram_backward_is_autograds_in_the_features_dtype(dtype: torch.dtype) -> None:
    f = rand(2, 5, 4, 3, seed=4, dtype=torch.float64).to(dtype)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = f.clone().contiguous(memory_format=layout).detach().requires_grad_(True)
        weights = rand(2, 5, 5, seed=5, dtype=torch.float64)
        g = gram(x)
        assert g.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
        (g * weights.to(g.dtype)).sum().backward()
        assert x.grad is not None and x.grad.dtype == dtype
        ref = f.double().reshape(2, 5, 12).clone().requires_grad_(True)
        ((ref @ ref.transpose(1, 2)) * weights).sum().backward()
        assert ref.grad is not None
        tol = 1e-12 if dtype == torch.float64 else 2e-2
        torch.testing.assert_close(x.grad.double().reshape(2, 5, 12), ref.grad, rtol=tol, atol=tol)
        torch.testing.assert_close(g.double(), (ref @ ref.transpose(1, 2)).detach(), rtol=tol, atol=tol)


def test_gram_passes_gradcheck() -> None:
    f = rand(1, 4, 3, 3, seed=6, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(gram, (f,))
    f_cl = rand(1, 4, 3, 3, seed=7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(gram, (f_cl.requires_grad_(True),))
