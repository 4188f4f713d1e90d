"""Tiled eq. 7 equals the untiled one, for every term: loss and gradient.

In float64, so that what is compared is the method and not the summation order: in fp32 the
style terms of two noise images (G close to A) differ by ~1e-4 relative between any two orders.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import manager_of
from PIL import Image, PngImagePlugin

from impasto.config import Options, StyleLoss
from impasto.core.eq7 import Eq7
from impasto.core.objective import Objective, crop_of, features_of
from impasto.core.terms import LocalTerm, StyleRegion, Temporal, Where
from impasto.core.terms.photoreal import Photorealism
from impasto.core.tile_layout import geometry, layout
from impasto.net.vgg import Pooling
from impasto.testing import narrow_vgg

CONTENT = {"conv4_2": 1.0}
STYLE = {f"conv{b}_1": 0.2 for b in range(1, 6)}


def _pair(
    pooling: Pooling, tile: int, tv: float = 0.0, keep: int = 0, style_loss: StyleLoss = "gram"
) -> tuple[Eq7, Eq7]:
    net = narrow_vgg(pooling).double()
    full = Eq7(net, CONTENT, STYLE, 1e-3, 1.0, tv_weight=tv, style_loss=style_loss)
    return full, replace(full, tile=tile, keep=keep)


def _image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 255


def _loss_and_grad(obj: Objective, image: torch.Tensor) -> tuple[float, torch.Tensor, dict[str, float]]:
    x = image.clone().requires_grad_(True)
    loss, terms = obj(x)
    loss.backward()
    assert x.grad is not None
    return float(loss.detach()), x.grad, {k: float(v) for k, v in terms.items()}


def _assert_same(full: Objective, tiled: Objective, image: torch.Tensor) -> None:
    assert len(tiled.tiles(*image.shape[-2:])) > 1 or tiled.tile is None or tiled.tile >= max(image.shape[-2:])
    loss, grad, terms = _loss_and_grad(full, image)
    t_loss, t_grad, t_terms = _loss_and_grad(tiled, image)
    assert t_loss == pytest.approx(loss, rel=1e-9)
    assert t_terms.keys() == terms.keys()
    for k, v in terms.items():
        assert t_terms[k] == pytest.approx(v, rel=1e-8, abs=1e-12), k
    scale = grad.abs().max()
    assert float((t_grad - grad).abs().max() / scale) < 1e-9
    assert float(grad.abs().mean()) > 0


@pytest.mark.parametrize("style_loss", ["gram", "w2"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_tiled_loss_and_gradient_equal_the_untiled_ones(pooling: Pooling, style_loss: StyleLoss) -> None:
    full, tiled = _pair(pooling, tile=128, tv=1e-2, style_loss=style_loss)
    content, style = _image(384, 512, 1), _image(300, 420, 2)
    objectives = [eq.of(content, [style, _image(256, 256, 3)], [0.7, 0.3]) for eq in (full, tiled)]  # several styles
    assert len(layout(384, 512, 128, full.layers)) == 12
    ours, theirs = (eq.blend([style]).targets for eq in (full, tiled))  # style targets computed tiled match too
    assert ours.keys() == theirs.keys() and ours
    for k, g in ours.items():
        assert torch.allclose(theirs[k], g, rtol=1e-9, atol=1e-12 * float(g.abs().max())), k
    _assert_same(objectives[0], objectives[1], _image(384, 512, 4))


@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_sides_not_multiples_of_the_tile_and_style_masks(style_loss: StyleLoss) -> None:
    full, tiled = _pair("max", tile=100, style_loss=style_loss)  # rounded up to 112 (the alignment is 16 px)
    h, w = 371, 501
    content = _image(h, w, 5)
    left = torch.zeros(1, 1, h, w, dtype=torch.float64)
    left[..., : w // 3] = 1.0
    objectives = []
    for eq in (full, tiled):
        regions = []
        for guide, seed in ((left, 6), (1 - left, 7)):
            sg = torch.ones(1, 1, 200, 240, dtype=torch.float64)
            sg[..., :50] = 0.25
            regions.append(StyleRegion(eq.style_targets(_image(200, 240, seed), sg), guide, 1.0, float(guide.mean())))
        objectives.append(eq.objective(eq.content_targets(content), regions, (h, w)))
    _assert_same(objectives[0], objectives[1], _image(h, w, 8))


def _temporal(h: int, w: int) -> Temporal:
    warped = _image(h, w, 30)
    trust = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(31), dtype=torch.float64)
    return Temporal([(warped, trust), (_image(h, w, 32), 1 - trust)])


@pytest.mark.parametrize("term", ["content", "style", "tv", "temporal", "photorealism"])
def test_each_term_alone_tiled_equals_untiled(term: str) -> None:
    """One term at a time (the others weighted 0): each is exact on its own, not only in the sum."""
    h, w = 200, 230
    full, tiled = _pair("avg", tile=64, tv=1.0)
    objectives = []
    for eq in (full, tiled):
        base = eq.of(_image(h, w, 24), [_image(120, 100, 25)])
        extra = [(1e3, _temporal(h, w)), (1e4, Photorealism.of(_image(h, w, 24)))]
        terms = [(wt if t.name == term else 0.0, t) for wt, t in [*base.terms, *extra]]
        objectives.append(replace(base, terms=terms))
    _, grad, _ = _loss_and_grad(objectives[0], _image(h, w, 26))
    assert float(grad.abs().max()) > 0, "the term moves the pixels"
    _assert_same(objectives[0], objectives[1], _image(h, w, 26))


@pytest.mark.parametrize("term", ["content", "temporal", "photorealism"])
def test_a_local_term_cut_to_a_tile_gives_that_tiles_value_and_gradient(term: str) -> None:
    """What a cluster worker is sent (``at(tile)``, pickled) evaluates each tile exactly as the whole
    term does, and is a small part of it."""
    h, w = 200, 230
    _, tiled = _pair("avg", tile=64)
    base = tiled.of(_image(h, w, 24), [_image(120, 100, 25)])
    content = base.term("content")
    assert isinstance(content, LocalTerm)
    whole: LocalTerm = {
        "content": content,
        "temporal": _temporal(h, w),
        "photorealism": Photorealism.of(_image(h, w, 24)),
    }[term]
    x = _image(h, w, 26)
    tiles = base.tiles(h, w)
    assert len(tiles) == 16
    for tile in tiles:
        sent = pickle.dumps(whole.at(tile))
        assert len(sent) < len(pickle.dumps(whole)) / 6, "a tile's cut, not the whole term"
        cut = pickle.loads(sent)
        values: list[float] = []
        grads: list[torch.Tensor] = []
        for t in (whole, cut):
            crop = crop_of(x, tile).clone().requires_grad_(True)
            value = t.local(features_of(base.vgg, crop, t.layers), crop, Where(tile))
            value.backward()
            values.append(float(value.detach()))
            assert crop.grad is not None
            grads.append(crop.grad)
        assert values[0] == values[1] and values[0] > 0
        assert torch.equal(grads[0], grads[1])


def test_a_tile_larger_than_the_image_is_one_tile() -> None:
    full, tiled = _pair("max", tile=1024)
    assert len(layout(200, 150, 1024, full.layers)) == 1
    objectives = [eq.of(_image(200, 150, 9), [_image(160, 160, 10)]) for eq in (full, tiled)]
    _assert_same(objectives[0], objectives[1], _image(200, 150, 11))


def test_without_gradient_it_returns_the_value_only() -> None:
    full, tiled = (eq.of(_image(96, 128, 12), [_image(96, 96, 13)]) for eq in _pair("max", tile=64))
    with torch.no_grad():
        loss, _ = full(_image(96, 128, 14))
        t_loss, _ = tiled(_image(96, 128, 14))
    assert not t_loss.requires_grad
    assert float(t_loss) == pytest.approx(float(loss), rel=1e-9)


def test_geometry_of_the_paper_layers() -> None:
    align, halo = geometry(["conv4_2", *STYLE])
    assert align == 16  # four poolings before conv5_1
    assert halo % align == 0 and halo >= 78  # conv5_1's receptive field is 156 px
    assert geometry(["conv1_1"]) == (1, 1)
    tiles = layout(100, 70, 32, ["conv3_1"])
    cores = torch.zeros(100, 70, dtype=torch.int32)
    for t in tiles:
        y0, y1, x0, x1 = t.core
        cores[y0:y1, x0:x1] += 1
    assert bool((cores == 1).all())  # the cores partition the image


@pytest.mark.parametrize("layers", [["conv4_2"], ["conv3_1", "pool3"], ["conv4_2", *STYLE]])
def test_the_halo_is_the_smallest_that_is_exact(layers: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With the halo from geometry() the tiled gradient is exact; one alignment step less, it is not."""
    net = narrow_vgg("max").double()
    content = {layers[0]: 1.0}
    style = {k: 1.0 for k in layers[1:]}
    eq = Eq7(net, content, style, 1.0, 1.0)
    full = eq.of(_image(256, 320, 15), [_image(128, 128, 16)])
    align, halo = geometry(layers)

    def error(halo_px: int) -> float:
        monkeypatch.setattr("impasto.core.tile_layout.geometry", lambda _layers: (align, halo_px))
        tiled = replace(eq, tile=64).of(_image(256, 320, 15), [_image(128, 128, 16)])
        _, grad, _ = _loss_and_grad(full, _image(256, 320, 17))
        _, t_grad, _ = _loss_and_grad(tiled, _image(256, 320, 17))
        return float((t_grad - grad).abs().max() / grad.abs().max())

    assert error(halo) < 1e-9
    assert error(halo - align) > 1e-6


def test_a_web_job_with_a_tile_runs_tiled_and_records_it(tmp_path: Path) -> None:
    """The studio's ``tile`` field reaches transfer(): the result is tiled and says so."""
    from fastapi.testclient import TestClient

    from impasto.core.transfer import Result, Step, transfer
    from impasto.web.server import create_app
    from impasto.web.settings import StudioSettings

    settings = StudioSettings(workdir=tmp_path / "work", max_size=256, max_steps=10, preview_seconds=0.0)
    net = narrow_vgg("max")
    headers: list[str] = []

    def runner(content: Path, styles: list[Path], opts: Options, **kw: Any) -> Result:
        """transfer()'s signature (the studio's runner), on the stand-in network."""
        report = kw.pop("on_step")

        def on_step(s: Step) -> None:
            headers.append(s.compute)
            report(s)

        return transfer(content, styles, opts, network=net, on_step=on_step, **kw)

    photo = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((96, 72)).save(photo, format="PNG")
    files = [("content", ("photo.png", photo.getvalue(), "image/png"))]
    form = {"size": "96", "steps": "3", "scales": "1", "tile": "32", "device": "cpu", "precision": "fp32"}
    with TestClient(create_app(settings, runner)) as client:
        reply = client.post("/api/jobs", data={**form, "style_example": "starry_night"}, files=files)
        assert reply.status_code == 201, reply.text
        job_id = reply.json()["id"]
        manager = manager_of(client)
        job = manager.get(job_id)
        assert job is not None
        assert manager.wait(lambda: job.state.value in ("done", "failed", "cancelled"), 300)
        status = client.get(f"/api/jobs/{job_id}").json()
        assert status["state"] == "done", status
        png = client.get(f"/api/jobs/{job_id}/image")
    result = Image.open(io.BytesIO(png.content))
    assert isinstance(result, PngImagePlugin.PngImageFile)
    params = json.loads(result.text["impasto"])
    assert params["tile"] == 32
    assert params["tile"] == 32 and params["precision"] == "fp32" and params["device"] == "cpu"
    assert params["lbfgs_history"] == 100 and params["alpha"] > 0  # as the run chose them
    assert headers and all("tiling into 32-px cores" in h for h in headers)


@pytest.mark.parametrize("keep", [1, 3, 100])
def test_kept_forwards_give_the_same_loss_and_gradient(keep: int) -> None:
    """Pass 2 reusing pass 1's forward for some or all tiles: nothing changes but the time."""
    image = _image(150, 170, seed=21)
    content, painting = _image(150, 170, seed=22), _image(120, 140, seed=23)
    full, tiled = (eq.of(content, [painting]) for eq in _pair("max", 64, tv=0.1, keep=keep))
    assert len(tiled.tiles(150, 170)) == 9
    _assert_same(full, tiled, image)
