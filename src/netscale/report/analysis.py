"""Turning a study's trials into the numbers a report shows: per-strategy series and runtime
correlations (the recommendation is :mod:`netscale.advise`'s). Pure Python/numpy (no
plotting)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from netscale.bench.fit import MIN_ROWS, RuntimeModel, fit_runtime
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.study.store import TrialRow


@dataclass
class Point:
    """Mean over seeds of one (strategy, factor)."""

    strategy: str
    factor: float
    flops: float
    params: float
    acts: float
    err: float | None  # top-1 error, fraction
    err_std: float | None
    time_ms: float | None
    n: int
    acts_factor: float | None = None
    params_factor: float | None = None


@dataclass
class Series:
    base: str
    strategy: str
    points: list[Point] = field(default_factory=list)


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(vals)) if vals else None


def _std(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def series_by_strategy(trials: Sequence[TrialRow]) -> list[Series]:
    """One series per (base, strategy), each starting at the shared base point (s = 1)."""
    groups: dict[tuple[str, str, float], list[TrialRow]] = defaultdict(list)
    for t in trials:
        groups[(t.base, t.strategy, t.factor)].append(t)
    points: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for (base, strategy, factor), ts in groups.items():
        done = [t for t in ts if t.status == "done"]
        use = done or ts
        points[(base, strategy)].append(Point(
            strategy=strategy, factor=factor,
            flops=float(np.mean([t.flops for t in use])),
            params=float(np.mean([t.params for t in use])),
            acts=float(np.mean([t.acts for t in use])),
            err=_mean([t.top1_err for t in done]), err_std=_std([t.top1_err for t in done]),
            time_ms=_mean([t.time_ms for t in use if t.time_ms is not None]),
            n=len(done),
            acts_factor=_mean([t.acts_factor for t in use if t.acts_factor is not None]),
            params_factor=_mean([t.params_factor for t in use if t.params_factor is not None]),
        ))
    out = []
    for (base, strategy), pts in points.items():
        if strategy == BASE_STRATEGY:
            continue
        base_pts = points.get((base, BASE_STRATEGY), [])
        s = Series(base, strategy, sorted(base_pts + pts, key=lambda p: p.factor))
        out.append(s)
    if not out:  # a study with only the base model
        out = [Series(b, BASE_STRATEGY, sorted(p, key=lambda q: q.factor))
               for (b, st), p in points.items() if st == BASE_STRATEGY]
    return sorted(out, key=lambda s: (s.base, s.strategy))


def runtime_correlations(trials: Sequence[TrialRow]) -> RuntimeModel | None:
    """How well flops, params and acts each predict the trials' measured time per batch: the
    runtime model (:func:`netscale.bench.fit.fit_runtime`) of the timed trials, or None with
    fewer than 3 timed trials."""
    rows = [t for t in trials if t.time_ms is not None and t.time_ms > 0]
    if len(rows) < MIN_ROWS:
        return None
    return fit_runtime(rows)
