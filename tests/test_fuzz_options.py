"""Property test of the options: any combination either runs or is refused up front, in one line.

Every option takes values from a list of ordinary, edge and hostile values (0, -1, NaN, inf,
2**64, wrong types, unknown names, overflowing weights). A combination must either run (on the
narrow stand-in network, tiny sizes: milliseconds) and give a finite RGB image, or raise an
:class:`ImpastoError` whose message is one line naming an option, before the run's first step.
A NaN or infinite loss at the first step counts as refused up front: the run stops there with a
:class:`NumericalError` (``tests/test_faults.py`` covers faults later in a run).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from typing import Any

import numpy as np
import pytest
from conftest import make_painting, make_photo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impasto import style_transfer
from impasto.config import Options
from impasto.core.transfer import Step
from impasto.errors import ImpastoError

NAN, INF, HUGE = math.nan, math.inf, 2**64
COUNTS = [-1, 0, 1, 2, 3, HUGE, NAN, INF, 2.5, "x"]  # steps, scales
SIDES = [-1, 0, 15, 16, 40, 64, HUGE, NAN, INF, 64.0, "64", "big"]  # size, style_size
WEIGHTS = [0, 1e-3, 1.0, 10.0, 1e308, -1.0, NAN, INF, -INF, "w"]
LAYERS = ["conv4_2", "relu3_1", "conv1_1:0.5 conv2_1", "conv9_9", "", "conv1_1:nan", "conv1_1:-1",
          "pool5", "conv1_1:1e308", "conv1_1:inf", ["conv2_1", ("conv3_1", 0.5)], [("conv1_1",)], 7]  # fmt: skip

VALUES: dict[str, list[Any]] = {
    "size": SIDES,
    "print": [None, "1x1cm", "2x1.5cm", "B5", "", "0x1cm", 5, "A9"],  # small papers: at 1200 dpi 1 cm is 472 px
    "dpi": [300, 50, 120, 49, 1201, 0, NAN, HUGE, "x"],
    "style_size": [None, *SIDES],
    "steps": COUNTS,
    "scales": COUNTS,
    "scale_sizes": [None, (32, 64), (64, 32), (), (0,), (64, INF), (48.5, 64), "32 64", 64],
    "max_time": [None, 0, -1, 0.5, 30.0, NAN, INF],
    "content_layers": [None, *LAYERS],
    "style_layers": [None, *LAYERS],
    "ratio": [None, *WEIGHTS],
    "style_strength": [None, *WEIGHTS],
    "style_weight": [None, *WEIGHTS],
    "content_weight": [None, *WEIGHTS],
    "init": ["content", "noise", "image", "start.png", "", 3],
    "optimizer": ["lbfgs", "adam", "sgd", None],
    "learning_rate": [0, 2.0, 1e308, -1, NAN, INF],
    "lbfgs_history": [0, 1, 5, 2**31 - 1, HUGE, NAN],
    "precondition": ["none", "spectral", "fourier", None],
    "style_loss": ["gram", "w2", "wasserstein", None],
    "photorealism": [0.0, 3000.0, -1.0, float("nan"), None],
    "photo_projection": [True, False, None],
    "photo_recolor": [True, False, None],
    "tile": [None, 0, 15, 16, 32, HUGE, NAN],
    "max_memory": [None, "1GB", "1KB", "lots", "0", "-1GB"],
    "pooling": ["max", "avg", "min", 3],
    "tv_weight": [0, 1.0, 1e308, -1, NAN, INF],
    "seed": [0, 7, -1, 2**63, HUGE, NAN, 1.5],
    "device": ["cpu", "auto", "cuda", "cuda:7", "tpu"],
    "precision": ["auto", "fp32", "bf16", "fp16"],
    "color": ["none", "luminance", "histogram", "rgb"],
    "color_match": ["sym", "cholesky", "pca", "x"],
    "original_colors": [False, True],
    "style_blend": [None, (1.0,), (1.0, 1.0), (0.0,), (-1.0,), (NAN,), (INF,), "1"],
    "style_scale": [1.0, 0.5, 2.0, 0, -1, NAN, INF, 1e308],
    "init_noise_blend": [0.0, 0.5, 1.0, 1.5, -0.1, NAN],
    "layer_balance": [False, True],
    "quality": [1, 95, 0, 101, NAN, HUGE],
}
# Left out: weights and weights_format (files: tests/test_vgg.py), network (the stand-in is a raw
# network). The masks and the init image are arguments, not options (tests/test_inputs.py).
LEFT_OUT = {"weights", "weights_format", "network"}
NAMES = {f.name for f in dataclasses.fields(Options)}
CASES = 60


TINY = {"size": 64, "steps": 3, "scales": 1}  # under the drawn values: no draw may run the 512-px default


def _options() -> st.SearchStrategy[dict[str, Any]]:
    """Some options (each absent, or one of its values) on top of TINY: a few changed at a time, or many."""
    drawn = st.fixed_dictionaries({}, optional={name: st.sampled_from(values) for name, values in VALUES.items()})
    return drawn.map(lambda options: TINY | options)


def _names_an_option(message: str) -> bool:
    words = re.findall(r"[a-z][a-z0-9_]*", message)  # `style_size`, or in words: "unknown color match"
    return bool({*words, *(f"{a}_{b}" for a, b in itertools.pairwise(words))} & NAMES)


def test_every_option_is_fuzzed() -> None:
    assert set(VALUES) | LEFT_OUT == NAMES


@settings(
    max_examples=CASES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(options=_options())
@pytest.mark.slow
def test_any_options_run_or_are_refused_up_front(narrow_network: None, options: dict[str, Any]) -> None:
    steps: list[Step] = []
    content, style = make_photo(64, 48), make_painting(48, 48)
    try:
        result = style_transfer(content, style, on_step=steps.append, image_every=0, **options)
    except ImpastoError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert _names_an_option(message), message
        assert not steps, f"refused after {len(steps)} step(s): {message}"
        return
    arr = np.asarray(result.image, dtype=np.float64)
    assert result.image.mode == "RGB" and np.isfinite(arr).all()
    assert result.fault is None or "\n" not in result.fault
