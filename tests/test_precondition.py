"""The spectral basis: an exact change of coordinates, weighted towards low frequencies, used by optimize()."""

from __future__ import annotations

import pytest
import torch

from impasto.core.eq7 import Eq7
from impasto.core.objective import Objective
from impasto.core.optimize import LBFGS, MAX_LBFGS_MOVE, optimize
from impasto.core.precondition import DECAY, Spectral
from impasto.net.vgg import VGG19


@pytest.mark.parametrize(("h", "w"), [(32, 32), (17, 24), (24, 17), (1, 9)])
def test_the_basis_is_an_exact_change_of_coordinates(h: int, w: int) -> None:
    basis = Spectral(h, w, torch.device("cpu"))
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
    z = basis.from_pixels(x)
    assert z.shape == basis.shape(x) == (2, 3, h, w // 2 + 1, 2)
    assert torch.allclose(basis.to_pixels(z), x, atol=1e-3)


def test_the_weights_fall_with_frequency_as_f_to_the_decay() -> None:
    basis = Spectral(64, 64, torch.device("cpu"))
    wgt = basis.weight
    assert float(wgt.mean()) == pytest.approx(1.0, rel=1e-6)
    assert float(wgt[0, 0]) == float(wgt.max()) and float(wgt[32, 32]) == float(wgt.min())  # DC .. the corner
    # one octave up the horizontal axis: 2^-DECAY of the weight
    assert float(wgt[0, 16] / wgt[0, 8]) == pytest.approx(2.0**-DECAY, rel=1e-5)
    assert float(wgt[0, 0]) == float(wgt[0, 1])  # the mean sits at the lowest frequency's weight


def test_lbfgs_caps_the_move_in_pixels_not_coordinates() -> None:
    """With ``to_pixels``, the cap bounds the image's move; the coordinates may move further."""
    basis = Spectral(8, 8, torch.device("cpu"))
    z = basis.from_pixels(torch.zeros(1, 3, 8, 8)).requires_grad_(True)
    lbfgs = LBFGS(z, 10, basis.to_pixels)
    moves = []
    for _ in range(5):
        before = basis.to_pixels(z.detach())

        def closure() -> torch.Tensor:
            z.grad = None
            loss = 1e-4 * ((basis.to_pixels(z) - 1000.0) ** 2).sum()
            loss.backward()
            return loss

        lbfgs.step(closure)
        moves.append(float((basis.to_pixels(z.detach()) - before).abs().max()))
    assert max(moves) <= MAX_LBFGS_MOVE * (1 + 1e-4)
    assert max(moves) == pytest.approx(MAX_LBFGS_MOVE, rel=1e-4)  # some step was capped: uncapped ~1000


def _objective(vgg: VGG19) -> Objective:
    gen = torch.Generator().manual_seed(1)
    obj = Eq7(vgg, {"conv2_1": 1.0}, {"conv1_1": 0.5, "conv2_1": 0.5}, content_weight=1.0, style_weight=1.0).of(
        torch.rand(1, 3, 32, 40, generator=gen) * 255, [torch.rand(1, 3, 32, 32, generator=gen) * 255]
    )
    return obj


def test_optimize_in_the_spectral_basis_descends_on_another_path(tiny_vgg: VGG19) -> None:
    obj = _objective(tiny_vgg)
    init = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3)) * 255
    start = float(obj(init)[0])
    runs = {
        p: optimize(obj, init, 8, optimizer="lbfgs", learning_rate=2.0, lbfgs_history=10, precondition=p)
        for p in ("none", "spectral")
    }
    for result in runs.values():
        assert result.loss < 0.6 * start and result.steps == 8
        assert result.image.shape == init.shape
        assert float(result.image.min()) >= 0.0 and float(result.image.max()) <= 255.0
        assert result.loss == pytest.approx(float(obj(result.image)[0]), rel=1e-5)  # the image it reports
    assert not torch.equal(runs["none"].image, runs["spectral"].image)


def test_adam_ignores_the_basis(tiny_vgg: VGG19) -> None:
    obj = _objective(tiny_vgg)
    init = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3)) * 255
    a, b = (
        optimize(obj, init, 4, optimizer="adam", learning_rate=2.0, lbfgs_history=10, precondition=p)
        for p in ("none", "spectral")
    )
    assert torch.equal(a.image, b.image)


def test_a_spectral_run_stopped_before_its_first_step_returns_the_init_bit_for_bit(tiny_vgg: VGG19) -> None:
    """z is the change from the init, so no FFT round trip touches the image until a step moves it."""
    obj = _objective(tiny_vgg)
    init = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3)) * 255
    for steps, stop in ((0, None), (5, lambda: True)):
        result = optimize(
            obj,
            init,
            steps,
            optimizer="lbfgs",
            learning_rate=2.0,
            lbfgs_history=10,
            precondition="spectral",
            should_stop=stop,
        )
        assert result.steps == 0 and torch.equal(result.image, init)
