"""Host memory on Linux: keep XLA:CPU's freed buffers in the process instead of unmapping them.

XLA:CPU allocates each execution's temporary buffer (99.7 MB for MnistNet's Adam step at batch
128) with ``malloc`` from its worker threads. glibc serves a request that large from a fresh
``mmap`` and unmaps it on ``free`` (a thread's own arena cannot hold it, and above 32 MB the
main arena maps it too), so every step touches its whole working set as new pages: measured
25,500 minor page faults per MnistNet step and 12,000 per LeNet5 step on the project's 2-core
VM, in the middle of XLA's kernels. With one arena, no ``mmap`` and no trimming, the freed
buffer is reused by the next step: no faults in the median step (``docs/benchmark.md``).
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

# glibc's ``mallopt`` parameters (<malloc.h>) and the values this module sets: one arena
# for every thread, never ``mmap`` an allocation, never give the top of the heap back.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))

# ``1``: ``import cnnjax`` applies the setting (before it imports JAX, so fully); ``0``:
# ``reuse_host_memory`` does nothing (the ``cnnjax`` command calls it); unset: neither.
ENV_VAR = "CNNJAX_REUSE_HOST_MEMORY"

_applied = False


def reuse_host_memory() -> bool:
    """Makes this process keep freed host memory for reuse; returns whether it applied.

    On Linux with glibc, sets ``mallopt`` so that all threads share one malloc arena, no
    allocation is served by ``mmap`` and freed memory at the top of the heap is kept: the
    ~100 MB XLA:CPU allocates and frees on every training step is then reused instead of
    being mapped and page-faulted anew (see the module docstring for the measurements). The
    ``cnnjax`` command calls it for its ``HEAVY_COMMANDS`` (:mod:`cnnjax.cli`).

    Threads that already allocated keep their own arenas, which cannot hold a buffer that
    large, so the earlier the better: ``CNNJAX_REUSE_HOST_MEMORY=1`` in the environment
    applies it at ``import cnnjax``, before JAX is imported. Called after JAX is imported but
    before its first computation, as the command does, it works as well (measured: the
    median step has no page faults either way, while now and then a step faults a buffer
    in anew as the heap grows); after the first computation, little. The price is that the
    process keeps its peak heap until it exits, which is what a training process wants and
    a long-lived service that trains once may not. Does nothing and returns ``False`` on other platforms or C
    libraries, or when ``CNNJAX_REUSE_HOST_MEMORY`` is ``0``; calling it again returns
    ``True`` without changing anything.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV_VAR, "").strip() == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    return _applied


def apply_if_requested() -> None:
    """``import cnnjax`` calls this before it imports JAX: applies the setting when
    ``CNNJAX_REUSE_HOST_MEMORY`` is ``1``."""
    if os.environ.get(ENV_VAR, "").strip() == "1":
        reuse_host_memory()


def reused() -> bool:
    """Whether ``reuse_host_memory`` applied in this process: a large buffer costs no fresh
    pages per call then, which the im2col convolution's chunk size and the tuning cache's
    machine key take into account."""
    return _applied
