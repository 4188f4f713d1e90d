"""Where and how the network runs: the precision ``auto`` picks, from the CPU's own flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto.net import network
from impasto.net.network import cpu_bf16, resolve_precision

SAPPHIRE_RAPIDS = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN5 = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
ZEN2 = "flags\t\t: fpu sse2 avx2 fma\n"


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpuinfo: str | None, machine: str = "x86_64") -> None:
    path = tmp_path / "cpuinfo"  # absent for None
    if cpuinfo is not None:
        path.write_text("processor\t: 0\n" + cpuinfo)
    monkeypatch.setattr(network, "CPUINFO", path)
    monkeypatch.setattr("impasto.net.network.platform.machine", lambda: machine)
    cpu_bf16.cache_clear()


@pytest.mark.native_precision
@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (SAPPHIRE_RAPIDS, (True, "AMX-BF16")),
        (ZEN5, (True, "AVX-512 BF16")),
        (ZEN2, (False, "no AMX-BF16 or AVX-512 BF16")),
    ],
)
def test_cpu_bf16_reads_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpuinfo: str, expected: tuple[bool, str]
) -> None:
    _fake_cpu(monkeypatch, tmp_path, cpuinfo)
    try:
        assert cpu_bf16() == expected
        precision, why = resolve_precision("auto", torch.device("cpu"))
        assert precision == ("bf16" if expected[0] else "fp32") and why == f"CPU: {expected[1]}"
    finally:
        cpu_bf16.cache_clear()


@pytest.mark.native_precision
def test_without_cpuinfo_torchs_own_checks_decide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_cpu(monkeypatch, tmp_path, None)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    try:
        assert cpu_bf16() == (True, "AVX-512 BF16")
    finally:
        cpu_bf16.cache_clear()


@pytest.mark.native_precision
def test_other_processors_are_timed_once_and_the_answer_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_cpu(monkeypatch, tmp_path, "Features\t: fp asimd\n", machine="aarch64")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        native, why = cpu_bf16()
        assert why == "measured"
        cache = json.loads((tmp_path / "cache" / "impasto" / "precision.json").read_text())
        assert list(cache.values()) == [native]
        cpu_bf16.cache_clear()
        assert cpu_bf16() == (native, "measured (cached)")
    finally:
        cpu_bf16.cache_clear()


def test_explicit_precision_and_other_devices() -> None:
    assert resolve_precision("fp32", torch.device("cuda")) == ("fp32", "requested")
    assert resolve_precision("bf16", torch.device("cpu")) == ("bf16", "requested")
    assert resolve_precision("auto", torch.device("cuda")) == ("bf16", "CUDA")
    assert resolve_precision("auto", torch.device("mps")) == ("fp32", "mps")


def test_the_tests_see_fp32_for_auto() -> None:
    """conftest pins ``auto`` to fp32 on every CPU, so no result depends on the CPU CI draws."""
    assert resolve_precision("auto", torch.device("cpu")) == ("fp32", "CPU: fp32 in the tests")


def test_a_bf16_network_is_cast_once_and_cached() -> None:
    from impasto.testing import narrow_vgg

    net = narrow_vgg().to(torch.bfloat16)
    assert net.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in net.parameters())
    feats = net(torch.rand(1, 3, 16, 16) * 255, ["conv1_1", "conv1_2", "conv2_1"])
    assert {f.dtype for f in feats.values()} == {torch.bfloat16}


def test_a_bf16_network_sees_pixel_moves_smaller_than_bf16_resolution() -> None:
    """Every pixel moved by 0.1 level, below bf16's step for bright pixels (0.5 above +128 after the
    mean): the split input (kernels.conv_relu) sees the move, by about the right amount; pixels cast
    to bf16 would not see most of it."""
    from impasto.testing import narrow_vgg

    bf16, fp32 = narrow_vgg().to(torch.bfloat16), narrow_vgg()
    gen = torch.Generator().manual_seed(0)
    image = 200 + 55 * torch.rand(1, 3, 16, 16, generator=gen)
    moved = image + 0.1

    def change(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
        return float((net(b, ["conv1_1"])["conv1_1"].double() - net(a, ["conv1_1"])["conv1_1"].double()).sum())

    exact = change(fp32, image, moved)
    split = change(bf16, image, moved)
    rounded = change(bf16, image.to(torch.bfloat16).float(), moved.to(torch.bfloat16).float())
    assert split == pytest.approx(exact, rel=0.25)
    assert abs(rounded - exact) > 2 * abs(split - exact)


def test_network_loader_is_the_seam_every_loading_transfer_goes_through() -> None:
    """transfer() loads its network through load_network; a network_loader block replaces it, nested
    blocks stack, and leaving a block restores the one before (no module is patched)."""
    from impasto.net.network import get_vgg, load_network, network_loader
    from impasto.net.vgg import VGG19
    from impasto.testing import narrow_vgg

    first, second = narrow_vgg("max", seed=1), narrow_vgg("max", seed=2)

    def load() -> VGG19:
        return load_network(None, "auto", "max", "cpu", "raw")

    with network_loader(lambda *a: first):
        assert load() is first
        with network_loader(lambda *a: second):
            assert load() is second
        assert load() is first
    assert load_network.__module__ == get_vgg.__module__
    with pytest.raises(RuntimeError), network_loader(lambda *a: first):
        raise RuntimeError("a failing block still leaves the loader")
    with network_loader(lambda *a: second):
        assert load() is second
