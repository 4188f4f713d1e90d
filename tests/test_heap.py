"""impasto.net.heap: a CPU run keeps freed memory, so the next step's tensors reuse mapped pages."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from impasto.net.heap import OPT_OUT, _chosen_elsewhere

# Ten forward and backward passes of two 3x3 convolutions at 256 px, as a step makes them (after one
# to warm up): the page faults they take. With freed memory kept they reuse the pages already mapped;
# without, each step maps (and faults) its buffers afresh. Where a freed block lands depends on the
# allocator's state, so the test compares the two instead of expecting none.
PROBE = """
import resource, torch
from impasto.net.network import resolve_device
resolve_device("cpu")
torch.manual_seed(0)
conv = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1))
for p in conv.parameters():
    p.requires_grad_(False)
x = torch.rand(1, 3, 256, 256, requires_grad=True)
def step():
    x.grad = None
    conv(x).square().sum().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's (Linux)"
)


def faults(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES", OPT_OUT)}
    clean = {k: v for k, v in clean.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, timeout=120, check=True
    )
    return int(done.stdout.split()[-1])


@glibc
@pytest.mark.slow  # ~5 s of conv steps with and without the policy (make test runs it; make check does not)
def test_a_cpu_run_reuses_the_pages_of_freed_tensors() -> None:
    kept, fresh = faults(), faults(**{OPT_OUT: "0"})
    assert fresh > 50_000  # fresh pages: 90-160 thousand faults on Zen 5 (4 kB pages)
    assert kept * 4 < fresh, (kept, fresh)  # 0-13 thousand: the pages of freed buffers are reused


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({}, None),
        ({OPT_OUT: "1"}, None),
        ({OPT_OUT: "0"}, f"{OPT_OUT}=0"),
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "an allocator in LD_PRELOAD"),
        ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "an allocator in LD_PRELOAD"),
        ({"LD_PRELOAD": "libfoo.so"}, None),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}, "glibc malloc tunables in the environment"),
        ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, None),
        ({"MALLOC_ARENA_MAX": "2"}, "glibc malloc tunables in the environment"),
    ],
)
def test_the_allocator_chosen_elsewhere_is_left_alone(env: dict[str, str], why: str | None) -> None:
    assert _chosen_elsewhere(env) == why
