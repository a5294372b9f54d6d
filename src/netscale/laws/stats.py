"""Replicate statistics: mean error, seed count and 95 % intervals; runtime intervals.

Pure numerics (numpy/scipy, no torch). See docs/statistics.md for the method in plain words
and a worked example. Errors are fractions (0.18 = 18 % top-1 error), times ms per batch.

Error interval of a group of seed replicates:
:func:`netscale.laws.replicates.error_interval` from the per-seed errors alone,
:func:`netscale.laws.replicates.group_interval` also from per-image results (the method, its
fallbacks and their calibration: docs/statistics.md). With one seed the interval holds the
validation sampling only and says ``seeds_missing``.

Two estimates given only as intervals are *tied* when the interval of their difference
contains 0: with a the lower mean, b the other, tied iff
``b.mean − a.mean <= √((a.high − a.mean)² + (b.mean − b.low)²)`` (predicted errors, runtimes;
measured groups are compared from their replicates by
:func:`netscale.laws.replicates.compare`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netscale.util import serial

DEFAULT_LEVEL = 0.95
NOTCH = 1.57  # median ± 1.57·IQR/√n: the ~95 % interval of a median (McGill et al. 1978)
QUALITIES = ("ok", "noisy", "contended", "none")


def t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile: t(1 − (1 − level)/2, dof)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, 1 - (1 - level) / 2))


def z_quantile(level: float) -> float:
    """Two-sided normal quantile: z(1 − (1 − level)/2) (1.95996 at 0.95)."""
    from scipy.special import ndtri

    return float(ndtri(1 - (1 - level) / 2))


@dataclass(frozen=True)
class ErrorInterval:
    """Mean top-1 error of n seed replicates with its interval (fractions)."""

    mean: float
    low: float
    high: float
    n_seeds: int
    seed_half: float  # half-width from the seed spread (0 when n_seeds == 1)
    sampling_half: float  # half-width from the finite validation set (0 when n_val unknown)
    std: float | None  # sample std of the replicates (None when n_seeds == 1)
    n_val: int | None
    level: float
    df: float | None = None  # degrees of freedom of the t quantile (None: normal)
    method: str = ""  # how the variance was computed (netscale.laws.replicates)

    @property
    def half(self) -> float:
        return math.hypot(self.seed_half, self.sampling_half)

    @property
    def seeds_missing(self) -> bool:
        """One replicate only: the seed spread is unknown and not in the interval."""
        return self.n_seeds < 2

    def to_dict(self) -> dict[str, Any]:
        return {**serial.to_dict(self), "half": self.half, "seeds_missing": self.seeds_missing}


@dataclass(frozen=True)
class TimeInterval:
    """Runtime of a group (ms per batch): the median of its rows' medians, and the envelope
    of the rows' median intervals (median ± 1.57·IQR/√samples)."""

    time_ms: float
    low: float
    high: float
    n_rows: int
    quality: str  # "ok" | "noisy" | "contended"
    flagged_rows: int

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


def row_interval(row: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """(median, low, high) of one bench row, or None if it has no time."""
    t = row.get("time_ms")
    if t is None or not math.isfinite(float(t)):
        return None
    t = float(t)
    iqr = row.get("iqr_ms")
    if iqr is None and row.get("q1_ms") is not None and row.get("q3_ms") is not None:
        iqr = float(row["q3_ms"]) - float(row["q1_ms"])
    n = int(row.get("samples") or 0)
    if iqr is None or n < 1 or not math.isfinite(float(iqr)):
        return t, t, t
    h = NOTCH * float(iqr) / math.sqrt(n)
    return t, max(0.0, t - h), t + h


def row_quality(row: Mapping[str, Any]) -> str:
    if row.get("contended"):
        return "contended"
    if row.get("noisy"):
        return "noisy"
    return "ok"


def worst_quality(qualities: Sequence[str]) -> str:
    """contended > noisy > ok (> none: no timing)."""
    for q in ("contended", "noisy", "ok"):
        if q in qualities:
            return q
    return "none"


def time_interval(rows: Sequence[Mapping[str, Any]]) -> TimeInterval | None:
    """Combines the bench rows of a group (one per seed replicate, usually); None if none has a
    time. The quality is the worst flag of its rows (contended > noisy > ok)."""
    ivs, quals = [], []
    for r in rows:
        iv = row_interval(r)
        if iv is None:
            continue
        ivs.append(iv)
        quals.append(row_quality(r))
    if not ivs:
        return None
    med = float(statistics.median(v[0] for v in ivs))
    return TimeInterval(time_ms=med, low=min(v[1] for v in ivs), high=max(v[2] for v in ivs),
                        n_rows=len(ivs), quality=worst_quality(quals),
                        flagged_rows=sum(q != "ok" for q in quals))


def difference_half(a_mean: float, a_high: float, b_mean: float, b_low: float) -> float:
    """Half-width of the interval of b − a (a the lower one): the upper half of a's interval
    and the lower half of b's, added in quadrature."""
    return math.hypot(max(0.0, a_high - a_mean), max(0.0, b_mean - b_low))


def tied(a: tuple[float, float, float], b: tuple[float, float, float],
         min_gap: float = 0.0) -> bool:
    """Are two estimates (mean, low, high) statistically tied? True when the interval of their
    difference contains 0 (or the difference is at most ``min_gap``)."""
    lo_, hi_ = (a, b) if a[0] <= b[0] else (b, a)
    d = hi_[0] - lo_[0]
    return d <= max(min_gap, difference_half(lo_[0], lo_[2], hi_[0], hi_[1]))
