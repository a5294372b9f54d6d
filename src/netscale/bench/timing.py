"""Device-independent timing engine: warm-up, adaptive timed blocks, robust statistics.

The engine knows nothing about torch. It drives a *block runner*: a callable
``run_block(n) -> {phase: seconds}`` that runs ``n`` iterations of the thing being measured and
returns the total time spent in each phase (e.g. ``{"forward": 0.12}`` or
``{"forward": .., "backward": .., "step": ..}``). The harness supplies runners that time with
``time.perf_counter`` (CPU) or CUDA events (GPU); tests supply fake runners and a fake clock,
which makes the stopping rule and the noisy flag deterministic to test.

Method (see docs/bench.md):

1. **Warm-up**: at least ``warmup_iters`` iterations and at least ``warmup_s`` seconds (capped
   at a quarter of the budget), so that allocator caches, oneDNN/cuDNN algorithm choices and
   ``torch.compile`` are settled. Warm-up times are discarded.
2. **Blocks**: each sample is the mean time per iteration over a block of ``k`` iterations,
   with ``k`` chosen from the fastest of the last three warm-up iterations so that a block
   lasts at least ``min_block_s`` (timer resolution and per-call overhead vanish for tiny
   models).
3. **Stopping**: after ``min_samples`` samples, stop as soon as the relative IQR
   (IQR / median) is at most ``target_spread``; otherwise keep sampling until the time budget is
   spent or ``max_samples`` is reached.
4. **Report**: median and IQR (linear-interpolated quartiles) per phase and for the total,
   with the number of samples. If the relative IQR of the total exceeds ``noisy_threshold``
   the measurement is flagged ``noisy``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netscale.errors import NetscaleError
from netscale.util import serial

BlockRunner = Callable[[int], Mapping[str, float]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class TimingPolicy:
    """How long and how often to measure. Times in seconds, spreads as fractions."""

    warmup_iters: int = 3
    warmup_s: float = 0.3
    min_samples: int = 7
    max_samples: int = 60
    budget_s: float = 5.0
    min_block_s: float = 0.05
    target_spread: float = 0.02
    noisy_threshold: float = 0.05

    def validate(self) -> TimingPolicy:
        if self.warmup_iters < 0 or self.min_samples < 1 or self.max_samples < self.min_samples:
            raise NetscaleError(
                "timing policy: need warmup_iters >= 0 and 1 <= min_samples <= max_samples"
            )
        if not (self.budget_s > 0 and math.isfinite(self.budget_s)):
            raise NetscaleError(f"--budget must be a positive number of seconds, got "
                                f"{self.budget_s}")
        if self.min_block_s < 0 or self.warmup_s < 0:
            raise NetscaleError("timing policy: min_block_s and warmup_s must be >= 0")
        if not self.noisy_threshold > 0:
            raise NetscaleError("--noise-threshold must be > 0 (a fraction, e.g. 0.05 = 5%)")
        if not self.target_spread >= 0:
            raise NetscaleError("timing policy: target_spread must be >= 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass(frozen=True)
class Stats:
    """Robust summary of samples, in milliseconds per iteration."""

    median_ms: float
    iqr_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float
    samples: int

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**serial.to_dict(self), "rel_iqr": self.rel_iqr}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stats:
        return serial.from_dict(cls, d, unknown="ignore")


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (numpy's default method)."""
    if not sorted_xs:
        raise ValueError("quantile of no samples")
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(samples_s: Sequence[float]) -> Stats:
    """Median, quartiles and IQR of per-iteration times given in seconds."""
    xs = sorted(float(x) * 1e3 for x in samples_s)
    q1, med, q3 = quantile(xs, 0.25), quantile(xs, 0.5), quantile(xs, 0.75)
    return Stats(median_ms=med, iqr_ms=q3 - q1, q1_ms=q1, q3_ms=q3, min_ms=xs[0],
                 max_ms=xs[-1], samples=len(xs))


@dataclass(frozen=True)
class Measurement:
    """The outcome of :func:`measure`: total and per-phase statistics plus bookkeeping."""

    total: Stats
    phases: dict[str, Stats]
    iters_per_sample: int
    warmup_iters: int
    stop_reason: str  # "converged" | "budget" | "max_samples"
    noisy: bool
    noisy_threshold: float
    elapsed_s: float
    raw_ms: list[float] = field(default_factory=list)  # per-sample totals, ms per iteration

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


def measure_runtime(run_block: BlockRunner, policy: TimingPolicy | None = None,
            clock: Clock = time.perf_counter) -> Measurement:
    """Warms up, then times blocks of iterations until the spread is small or time is up."""
    policy = (policy or TimingPolicy()).validate()
    start = clock()
    deadline = start + policy.budget_s

    # 1. warm-up (one iteration per call, so the last ones estimate the steady-state cost)
    warmup_cap = start + min(policy.warmup_s, policy.budget_s / 4)
    n_warm = 0
    recent: list[float] = []
    while n_warm < policy.warmup_iters or (clock() < warmup_cap and n_warm < 1000):
        recent = [*recent[-2:], sum(run_block(1).values())]
        n_warm += 1
    if n_warm == 0:  # no warm-up requested: still need a per-iteration estimate
        recent = [sum(run_block(1).values())]
        n_warm = 1

    # 2. block size from the steady-state estimate: the fastest of the last (up to) 3
    # warm-up iterations, so that one interrupted iteration does not shrink the blocks
    iter_s = min(recent)
    if iter_s <= 0:
        k = 1000
    else:
        k = max(1, math.ceil(policy.min_block_s / iter_s))

    # 3. timed blocks
    totals: list[float] = []
    per_phase: dict[str, list[float]] = {}
    stop = "max_samples"
    while len(totals) < policy.max_samples:
        times = run_block(k)
        for name, t in times.items():
            per_phase.setdefault(name, []).append(t / k)
        totals.append(sum(times.values()) / k)
        n = len(totals)
        if n >= policy.min_samples and summarize(totals).rel_iqr <= policy.target_spread:
            stop = "converged"
            break
        # at least 3 samples, so that quartiles mean something, even on a tiny budget
        if clock() >= deadline and n >= min(3, policy.min_samples):
            stop = "budget"
            break

    total = summarize(totals)
    return Measurement(
        total=total,
        phases={name: summarize(v) for name, v in per_phase.items()},
        iters_per_sample=k,
        warmup_iters=n_warm,
        stop_reason=stop,
        noisy=total.rel_iqr > policy.noisy_threshold,
        noisy_threshold=policy.noisy_threshold,
        elapsed_s=clock() - start,
        raw_ms=[t * 1e3 for t in totals],
    )
