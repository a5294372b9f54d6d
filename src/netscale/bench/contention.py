"""Was the CPU shared with other work during a measurement?

A spread check alone misses *sustained* contention: when another process keeps a core busy
for the whole measurement, every sample is slow in the same way (a 2-thread OpenMP region
waits for its descheduled thread at each barrier, which can make a 50 ms forward take seconds)
and the IQR stays small. So the harness also records how much CPU *other* processes used:

    others = (system-wide busy CPU time, from /proc/stat) − (this process' CPU time)

over the measurement, as a fraction of the machine's capacity (wall time × logical CPUs), and
the hypervisor's ``steal`` time the same way. A measurement is flagged ``contended`` when
others + steal exceed a threshold (default 10% of the machine). Linux only; elsewhere the
fields are None and nothing is flagged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from netscale.bench.env import logical_cpus

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CONTENDED_THRESHOLD = 0.10


def _proc_stat() -> tuple[float, float] | None:
    """(busy seconds, steal seconds) of all CPUs since boot, or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            parts = f.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu":
        return None
    v = [int(x) for x in parts[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # guest time is already included in user
    steal = v[7] if len(v) > 7 else 0
    return busy / _TICK, steal / _TICK


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class CpuShare:
    """CPU used by other processes (and stolen by the hypervisor) during a measurement,
    as fractions of the machine's capacity (wall time × logical CPUs)."""

    others: float | None
    steal: float | None
    own: float | None  # this process' CPU time / capacity

    @property
    def busy(self) -> float | None:
        if self.others is None:
            return None
        return self.others + (self.steal or 0.0)

    def contended(self, threshold: float = CONTENDED_THRESHOLD) -> bool:
        b = self.busy
        return b is not None and b > threshold


class CpuMonitor:
    """``with CpuMonitor() as m: ...`` then ``m.share``."""

    def __init__(self) -> None:
        self.share = CpuShare(None, None, None)

    def __enter__(self) -> CpuMonitor:
        self._t0 = time.perf_counter()
        self._own0 = _own_cpu()
        self._stat0 = _proc_stat()
        return self

    def __exit__(self, *exc: object) -> None:
        stat1 = _proc_stat()
        wall = time.perf_counter() - self._t0
        own = _own_cpu() - self._own0
        if self._stat0 is None or stat1 is None or wall <= 0:
            return
        cap = wall * logical_cpus()
        busy = stat1[0] - self._stat0[0]
        steal = stat1[1] - self._stat0[1]
        # jiffy resolution (10 ms per CPU): clamp small negative differences
        self.share = CpuShare(others=max(0.0, busy - own) / cap, steal=max(0.0, steal) / cap,
                              own=own / cap)
