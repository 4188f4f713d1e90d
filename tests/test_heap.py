"""impasto.heap: a CPU run keeps freed memory, so the next step's tensors reuse mapped pages."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from impasto.heap import OPT_OUT, _chosen_elsewhere

# Allocate and free a 64 MB tensor, then count the page faults of doing it again.
PROBE = """
import resource, sys, torch
from impasto.network import resolve_device
resolve_device("cpu")
x = torch.ones(16_000_000); del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(16_000_000); del x
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
def test_a_cpu_run_reuses_the_pages_of_freed_tensors() -> None:
    assert faults() < 100  # the second 64 MB tensor lies in pages the first one mapped
    assert faults(**{OPT_OUT: "0"}) > 10_000  # fresh pages: one fault per 4 kB (15,625 for 64 MB)


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
