"""Peak memory of a measurement: CUDA max allocated, or the CPU peak resident set size.

* **CUDA**: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
  memory allocated when the measurement started: tensors the caching allocator handed out
  (weights, activations, gradients, optimizer state, workspace); the allocator's cached but
  unused blocks are not counted.
* **CPU** (Linux): the process peak RSS (``VmHWM`` in ``/proc/self/status``) after resetting
  it to the current RSS by writing ``5`` to ``/proc/self/clear_refs``, minus the RSS at the
  start. Before the start, freed heap is returned to the OS (``gc.collect`` and glibc
  ``malloc_trim``) so that memory freed by an earlier model is not silently reused. It counts
  every page the process touched (weights, activations, gradients, oneDNN scratch, allocator
  slack), so it is an upper bound on what the model needs, with a resolution of a few pages.
  Where ``clear_refs`` is not writable the fallback is ``ru_maxrss`` (the lifetime peak): its
  delta is a lower bound and reads 0 when the process was already bigger earlier; the result's
  ``mem_method`` says which method was used.

The window starts before the model is built (``bench_spec``) or moved to the device
(``bench_module``): for ``bench_spec`` the weights count on both devices; for ``bench_module``
on the CPU the weights are already resident and do not count.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import re
import resource
import sys
from typing import Any

_KB = 1024


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            m = re.search(rf"^{field}:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def current_rss_bytes() -> int | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * _KB


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * _KB  # bytes on macOS, kB on Linux


_STEADY = False


def steady_state_allocator() -> None:
    """Pins glibc malloc's mmap and trim thresholds (once per process, best effort).

    By default glibc serves large blocks (activations) with ``mmap`` and unmaps them when
    freed, raising the threshold only after it has seen big blocks freed. The first models
    timed in a process then pay page faults on every iteration that later ones do not: on
    the reference machine RegNetY-200MF took 79 ms/batch when timed first and 61 ms after a
    bigger model. With the thresholds pinned (mmap 32 MiB, trim 512 MiB) every model is
    timed in the steady state of a long-running process, whatever was timed before.
    """
    global _STEADY
    if _STEADY:
        return
    _STEADY = True
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD


def release_free_memory() -> None:
    """Garbage-collects and asks glibc to hand freed heap back to the OS (best effort)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Context manager: ``with PeakMemory("cpu") as m: ...; m.peak_mb, m.method``."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        self.method = ""
        self.peak_bytes: int | None = None
        self._base = 0

    def __enter__(self) -> PeakMemory:
        release_free_memory()
        if self.cuda:
            import torch

            dev = self.device
            torch.cuda.synchronize(dev)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            self._base = torch.cuda.memory_allocated(dev)
            self.method = "cuda_max_allocated"
            return self
        rss = current_rss_bytes()
        if rss is not None and _reset_hwm():
            self._base = rss
            self.method = "cpu_peak_rss (VmHWM reset)"
        else:
            self._base = _ru_maxrss_bytes()
            self.method = "cpu_ru_maxrss (lower bound)"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak_bytes = self.read()

    def read(self) -> int:
        """Peak bytes above the start so far."""
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            return max(0, torch.cuda.max_memory_allocated(self.device) - self._base)
        if self.method.startswith("cpu_peak_rss"):
            kb = _status_kb("VmHWM")
            if kb is not None:
                return max(0, kb * _KB - self._base)
        return max(0, _ru_maxrss_bytes() - self._base)

    @property
    def peak_mb(self) -> float | None:
        return None if self.peak_bytes is None else self.peak_bytes / 2**20
