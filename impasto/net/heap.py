"""The process's heap on the CPU: freed tensors' memory is kept for the next step, not given back.

An optimisation step allocates the same tensors every time (each layer's activations, their
gradients, the Gram matrices), and frees them when it ends. glibc's malloc hands blocks of more
than 128 kB to the kernel with ``mmap`` and gives them back on ``free``, so every step's tensors
are fresh pages again: the kernel maps and zeroes each 4 kB page on first touch (at 512×384 that
is ~170,000 page faults a step). Serving every block from the heap (``M_MMAP_MAX`` 0) and keeping
its freed top (``M_TRIM_THRESHOLD``) lets the next step reuse pages already mapped: measured on an
AMD EPYC Zen 5 (2 threads, bf16, 512×384), 0.385 → 0.367 s a step (benchmarks/README.md). The
peak is the same (the same tensors are alive at once); what the process keeps after a run is its
peak, until it exits.

Left alone: processes that are not on glibc, those that chose their allocator (``LD_PRELOAD``
of jemalloc or tcmalloc, glibc malloc tunables in ``GLIBC_TUNABLES`` or ``MALLOC_*`` variables),
and any where ``IMPASTO_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # the largest an int holds: the heap's freed top is kept (up to 2 GiB)
OPT_OUT = "IMPASTO_KEEP_FREED_MEMORY"


def _chosen_elsewhere(env: os._Environ[str] | dict[str, str]) -> str | None:
    """Why this process's allocator is someone else's choice, or None."""
    if env.get(OPT_OUT, "1") == "0":
        return f"{OPT_OUT}=0"
    preload = env.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "an allocator in LD_PRELOAD"
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", "") or any(k.startswith("MALLOC_") for k in env):
        return "glibc malloc tunables in the environment"
    return None


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Keep freed memory in the process (once per process); whether that was done.

    Called when a run is placed on the CPU (:func:`impasto.network.resolve_device`).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    why = _chosen_elsewhere(os.environ)
    if why is not None:
        log.debug("heap left as it is: %s", why)
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):  # no such library or symbol: not glibc after all
        return False
    return bool(done)
