"""Turning a study's trials into the numbers a report shows: per-strategy series, runtime
correlations and a recommendation with its evidence. Pure Python/numpy (no plotting)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netscale.study.store import TrialRow

BASE = "base"


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


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def _std(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.std(xs, ddof=1)) if len(xs) > 1 else None


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
        if strategy == BASE:
            continue
        base_pts = points.get((base, BASE), [])
        s = Series(base, strategy, sorted(base_pts + pts, key=lambda p: p.factor))
        out.append(s)
    if not out:  # a study with only the base model
        out = [Series(b, BASE, sorted(p, key=lambda q: q.factor))
               for (b, st), p in points.items() if st == BASE]
    return sorted(out, key=lambda s: (s.base, s.strategy))


@dataclass
class Correlation:
    metric: str
    n: int
    pearson_r: float | None
    log_pearson_r: float | None
    slope: float | None  # ms per unit of the metric (linear fit)
    intercept: float | None


def runtime_correlations(trials: Sequence[TrialRow]) -> list[Correlation]:
    """How well flops, params and acts each predict the measured time per batch."""
    from netscale.bench.fit import fit_metric

    rows = [t for t in trials if t.time_ms is not None and t.time_ms > 0]
    y = [t.time_ms for t in rows]
    out = []
    for metric in ("flops", "params", "acts"):
        x = [getattr(t, metric) for t in rows]
        if len(rows) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            out.append(Correlation(metric, len(rows), None, None, None, None))
            continue
        f = fit_metric(x, y, metric)
        out.append(Correlation(metric, len(rows), f.pearson_r, f.loglog_r, f.slope,
                               f.intercept))
    return out


@dataclass
class Recommendation:
    strategy: str | None
    factor: float | None
    reason: str
    table: list[dict[str, Any]]


def recommend_from_trials(trials: Sequence[TrialRow], tie_pp: float = 0.5) -> Recommendation:
    """The strategy to use, judged at the largest factor every strategy finished.

    Strategies whose top-1 error is within ``tie_pp`` percentage points (or one seed standard
    deviation, whichever is larger) of the best are considered equally accurate; among them
    the one with the lowest measured runtime wins (the paper's "fast and accurate").
    """
    series = [s for s in series_by_strategy(trials) if s.strategy != BASE]
    table = []
    for s in series:
        for p in s.points:
            if p.factor == 1:
                continue
            table.append({"strategy": s.strategy, "factor": p.factor, "err": p.err,
                          "err_std": p.err_std, "time_ms": p.time_ms, "flops": p.flops,
                          "acts": p.acts, "params": p.params, "n": p.n})
    finished = [r for r in table if r["err"] is not None]
    if not finished:
        return Recommendation(None, None, "no trained trials yet: nothing to recommend", table)
    by_factor: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in finished:
        by_factor[r["factor"]].append(r)
    n_strats = len({r["strategy"] for r in finished})
    complete = [f for f, rs in by_factor.items() if len(rs) == n_strats]
    factor = max(complete) if complete else max(by_factor)
    rows = by_factor[factor]
    best = min(rows, key=lambda r: r["err"])
    stds = [r["err_std"] for r in rows if r["err_std"] is not None]
    tie = max(tie_pp / 100.0, max(stds) if stds else 0.0)
    close = [r for r in rows if r["err"] <= best["err"] + tie]
    timed = [r for r in close if r["time_ms"] is not None]
    pick = min(timed, key=lambda r: r["time_ms"]) if timed else best
    others = ", ".join(f"{r['strategy']} {100 * r['err']:.2f}%" for r in
                       sorted(rows, key=lambda r: r["err"]) if r is not pick)
    if pick is best:
        reason = (f"at ×{factor:g} flops, {pick['strategy']} has the lowest top-1 error "
                  f"({100 * pick['err']:.2f}%; others: {others})")
    else:
        reason = (f"at ×{factor:g} flops, {pick['strategy']} is within {100 * tie:.2f} points "
                  f"of the most accurate ({best['strategy']} {100 * best['err']:.2f}% vs "
                  f"{100 * pick['err']:.2f}%) and is the fastest of those "
                  f"({pick['time_ms']:.2f} ms/batch vs {best['time_ms']:.2f})"
                  if best["time_ms"] is not None else
                  f"at ×{factor:g} flops, {pick['strategy']} is within {100 * tie:.2f} points "
                  "of the most accurate and fastest")
    if pick.get("time_ms") is not None:
        fastest = min((r for r in rows if r["time_ms"] is not None), key=lambda r: r["time_ms"])
        if fastest is not pick:
            reason += (f"; fastest overall is {fastest['strategy']} "
                       f"({fastest['time_ms']:.2f} ms/batch, {100 * fastest['err']:.2f}% error)")
    return Recommendation(pick["strategy"], factor, reason, table)
