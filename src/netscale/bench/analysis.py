"""Runtime analysis: measure a set of models (e.g. every strategy × factor of one base), fit
runtime against flops, params and activations, and plot runtime vs each metric."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from netscale.bench.fit import METRICS, RuntimeModel, drift_of, fit_runtime, scatter_of
from netscale.bench.harness import BenchConfig, bench_spec
from netscale.bench.result import BenchResult
from netscale.bench.timing import Clock
from netscale.errors import NetscaleError
from netscale.scaling import parse_strategy, scale_report
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.specs import NetSpec
from netscale.util.fmt import table
from netscale.util.io import atomic_write


@dataclass(frozen=True)
class BenchModel:
    """A model to measure, with how it was derived (None for explicit models)."""

    spec: NetSpec
    base: str | None = None
    strategy: str | None = None
    factor: float | None = None


def generate_models(base: NetSpec, strategies: Sequence[str], factors: Sequence[float],
                    rounding: str = "exact") -> list[BenchModel]:
    """The base (factor 1, labelled ``base``) plus every strategy × factor (≠ 1)."""
    if any(not (f > 0 and math.isfinite(f)) for f in factors):
        raise NetscaleError(f"--factors must be positive numbers, got {list(factors)}")
    parsed = [parse_strategy(s) for s in strategies]
    out = [BenchModel(base, base.name, BASE_STRATEGY, 1.0)]
    for strat in parsed:
        for f in factors:
            if f == 1:
                continue
            res = scale_report(base, f, strat, rounding=rounding)
            out.append(BenchModel(res.spec, base.name, strat.name, float(f)))
    return out


@dataclass(frozen=True)
class Analysis:
    rows: list[BenchResult]
    fits: dict[str, RuntimeModel]  # per mode

    def to_dict(self) -> dict[str, Any]:
        return {"fits": {m: f.to_dict() for m, f in self.fits.items()}}


DEFAULT_RETIME = 6  # models re-timed after the run (the first included): drift and scatter


def retime_order(n: int, k: int) -> list[int]:
    """Indices of ``k`` of ``n`` models to re-time, evenly spread over the list with the first
    (the reference) included, in reverse order: the second pass runs backwards, so the
    reference is re-timed last, at the end of the run."""
    if n <= 0 or k <= 0:
        return []
    if k >= n:
        return list(range(n - 1, -1, -1))
    picks = {round(i * (n - 1) / (k - 1)) for i in range(k)} if k > 1 else {0}
    return sorted(picks, reverse=True)


def run_analysis(entries: Sequence[BenchModel], config: BenchConfig,
                 modes: Sequence[str] = ("infer",), *, fit: bool = True,
                 progress: Callable[[BenchResult], None] | None = None,
                 clock: Clock = time.perf_counter, retime: int = DEFAULT_RETIME) -> Analysis:
    """Measures every entry in every mode (modes in the outer loop); with ``fit``, then
    re-times ``retime`` of the successful entries (evenly spread, the first included) in
    reverse order, and fits runtime per mode over the successful rows. The re-timings are not
    result rows: the first entry's change from the start to the end of the run is the drift
    (netscale.bench.fit.drift_of), the spread of the pairs around their common shift the
    between-run scatter of one model's timing (netscale.bench.fit.scatter_of); both go into
    the intervals."""
    if retime < 0:
        raise NetscaleError(f"--retime must be >= 0 models, got {retime}")
    rows: list[BenchResult] = []
    drift: dict[str, float] = {}
    scatter: dict[str, tuple[float, int]] = {}
    for mode in modes:
        cfg = replace(config, mode=mode)
        mode_rows = []
        for e in entries:
            r = bench_spec(e.spec, cfg, clock=clock, base=e.base, strategy=e.strategy,
                           factor=e.factor)
            rows.append(r)
            mode_rows.append(r)
            if progress:
                progress(r)
        if not fit:
            continue
        timed = [i for i, r in enumerate(mode_rows) if r.ok and r.time_ms]
        pairs: dict[int, tuple[float, float]] = {}
        for j in retime_order(len(timed), retime):
            i = timed[j]
            again = bench_spec(entries[i].spec, cfg, clock=clock)
            if again.ok and again.time_ms:
                pairs[i] = (cast(float, mode_rows[i].time_ms), again.time_ms)
        if timed and timed[0] in pairs:  # the reference: the first model that ran
            drift[mode] = drift_of(pairs[timed[0]])
        if len(pairs) >= 2:
            first, second = zip(*pairs.values())
            scatter[mode] = (scatter_of(first, second), len(pairs))
    return Analysis(rows=rows, fits=fit_rows(rows, modes, drift, scatter) if fit else {})


def fit_rows(rows: Sequence[BenchResult], modes: Sequence[str],
             drift: Mapping[str, float] | None = None,
             scatter: Mapping[str, tuple[float, int]] | None = None
             ) -> dict[str, RuntimeModel]:
    """Per mode, the runtime model of the successful rows, with the mode's between-run drift
    (relative; see :func:`netscale.bench.fit.drift_of`) and scatter (relative, and the number
    of models it comes from; :func:`netscale.bench.fit.scatter_of`) when given."""
    out = {}
    for m in modes:
        s, n = (scatter or {}).get(m, (0.0, 0))
        out[m] = fit_runtime([r for r in rows if r.mode == m and r.ok],
                             drift=(drift or {}).get(m, 0.0), scatter=s, scatter_n=n)
    return out


_SCALE = {"flops": (1e9, "G multiply-adds"), "params": (1e6, "M params"),
          "acts": (1e6, "M activations")}


def format_fit(fit: RuntimeModel, mode: str, level: float = 0.95) -> str:
    """A human-readable table of the per-metric and joint fits, with the half-width of the
    ``level`` prediction interval for a new model of average size."""
    lvl = f"{level:.0%}"
    rows = []
    for m in METRICS:
        if m not in fit.per_metric:
            continue
        f = fit.per_metric[m]
        div, unit = _SCALE[m]
        _, lo, hi = f.interval(f.x_mean, level) if math.isfinite(f.x_mean) else (0, *[math.nan] * 2)
        pi = f"±{_f((hi - lo) / 2, '.3g')}" if math.isfinite(lo) else "n/a"
        rows.append([m, _f(f.pearson_r, "+.3f"), f"{_f(f.slope * div, '.4g')} ms per {unit}",
                     _f(f.intercept, ".3g"), _f(f.r2, ".3f"), _pct(f.rel_rmse), pi,
                     _f(f.loglog_exponent, ".3f"), _f(f.loglog_r, ".3f")])
    out = [f"runtime model ({mode}, {fit.n} models, time = median ms per batch):", "",
           table(rows, ["metric", "Pearson r", "linear fit: slope", "intercept ms", "r²",
                        "rel. RMSE", f"{lvl} PI ms", "log-log exp.", "log-log r"],
                 align="lrlrrrrrr")]
    if fit.joint:
        j = fit.joint
        units = {m: (div, unit.split()[0]) for m, (div, unit) in _SCALE.items()}
        mean = {m: fit.per_metric[m].x_mean for m in j.metrics if m in fit.per_metric}
        pi = ""
        if len(mean) == len(j.metrics):
            _, lo, hi = j.interval(mean, level)
            if math.isfinite(lo):
                pi = f", {lvl} prediction interval ±{(hi - lo) / 2:.3g} ms"
        out.append(f"\njoint (non-negative least squares): {fit.formula('joint', units)}; "
                   f"r {_f(j.pearson_r, '.3f')}, r² "
                   f"{_f(j.r2, '.3f')}, rel. RMSE {_pct(j.rel_rmse)}{pi}")
    if fit.log is not None and fit.joint is not None:
        units = {m: (div, unit.split()[0]) for m, (div, unit) in _SCALE.items()}
        out.append(f"log-space fit: {fit.formula('log', units)}; leave-one-out rel. error "
                   f"{_pct(fit.log.loo_rel_rmse)} (joint {_pct(fit.joint.loo_rel_rmse)}); "
                   f"default predictor: {fit.predictor}")
    out.append(f"({lvl} PI: prediction interval for one new model of average size, Student t; "
               "it widens away from the measured range)")
    if fit.drift:
        out.append(f"drift: the first model re-timed at the end of the run moved "
                   f"{fit.drift * math.sqrt(2):.1%} (relative); the intervals include it as a "
                   f"between-run spread of {fit.drift:.1%}")
    if fit.scatter_n:
        out.append(f"between-run scatter: {fit.scatter:.1%} of one model's timing (relative "
                   f"standard deviation; {fit.scatter_n} models re-timed); the intervals "
                   "include it")
    if fit.note:
        out.append(f"note: {fit.note}")
    if fit.best_metric:
        out.append(f"best single predictor of {mode} runtime here: {fit.best_metric} "
                   f"(Pearson r {fit.per_metric[fit.best_metric].pearson_r:.3f}; ranking "
                   f"{' > '.join(fit.ranking())})")
    return "\n".join(out)


def format_predictions(fit: RuntimeModel, mode: str, models: Sequence[tuple[str, Any]],
                       level: float = 0.95) -> str:
    """Predicted runtime of each (name, ComplexityRecord-like) with ``level`` prediction
    intervals (between-run drift and scatter included), by every single-metric line and the
    joint fit."""
    rows = []
    for name, rec in models:
        vals = {m: float(getattr(rec, m)) for m in METRICS}
        for using in [*(m for m in METRICS if m in fit.per_metric), "joint"]:
            if using == "joint" and fit.joint is None:
                continue
            y, lo, hi = fit.interval(vals, using=using, level=level)
            iv = f"[{max(lo, 0.0):.3g}, {hi:.3g}]" if math.isfinite(lo) else "n/a"
            rows.append([name, using, f"{y:.3g}", iv])
    return (f"predicted {mode} runtime (ms per batch) with {level:.0%} prediction intervals:\n"
            + table(rows, ["model", "predictor", "ms", f"{level:.0%} PI ms"], align="llrl"))


def _f(x: float, spec: str) -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "n/a"


def _pct(x: float) -> str:
    return f"{x:.1%}" if x is not None and math.isfinite(x) else "n/a"


def _plot_panel(ax: Any, mrows: Sequence[BenchResult], mode: str, metric: str, f: Any,
                colours: dict[str, Any]) -> None:
    """One panel: runtime vs ``metric`` per strategy (bars: quartiles; dashed ring: a noisy
    or busy measurement), the least-squares line ``f`` and its Pearson r in the title."""
    div, unit = _SCALE[metric]
    for s, colour in colours.items():
        pts = [r for r in mrows if (r.strategy or r.model) == s]
        if not pts:
            continue
        ts = [cast(float, r.time_ms) for r in pts]  # ok rows carry a time_ms (type-only cast)
        yerr = [[t - (r.q1_ms if r.q1_ms is not None else t) for r, t in zip(pts, ts)],
                [(r.q3_ms if r.q3_ms is not None else t) - t for r, t in zip(pts, ts)]]
        ax.errorbar([getattr(r, metric) / div for r in pts],
                    [r.time_ms for r in pts], yerr=yerr,
                    fmt="o", ms=5, color=colour, label=s, capsize=2)
        noisy = [r for r in pts if r.noisy or r.contended]
        if noisy:
            ax.scatter([getattr(r, metric) / div for r in noisy],
                       [r.time_ms for r in noisy], s=110, facecolors="none",
                       edgecolors="0.25", linewidths=1, linestyle="--")
    if f is not None and math.isfinite(f.slope) and mrows:
        xs = [getattr(r, metric) for r in mrows]
        lo, hi = min(xs), max(xs)
        ax.plot([lo / div, hi / div], [f.predict(lo), f.predict(hi)], "--",
                color="grey", lw=1)
    r_txt = f"r = {f.pearson_r:.3f}" if f and math.isfinite(f.pearson_r) else "r n/a"
    ax.set_title(f"{mode}: {metric} ({r_txt})", fontsize=10)
    ax.set_xlabel(unit)
    ax.grid(alpha=0.3)


def plot_runtime(rows: Sequence[BenchResult], fits: dict[str, RuntimeModel],
                 path: str | Path, title: str | None = None) -> Path:
    """Scatter of runtime vs each metric (one colour per strategy), one row per mode, with the
    per-metric least-squares line and Pearson r. Written with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise NetscaleError(f"--plot {str(path)!r}: use a .png (or .svg/.pdf) file name")
    modes = list(fits)
    labels = list(dict.fromkeys(r.strategy or r.model for r in rows if r.ok))
    labels.sort(key=lambda s: s != BASE_STRATEGY)  # base first, then in order of appearance
    cmap = plt.get_cmap("tab10")
    colours = {s: ("black" if s == BASE_STRATEGY else cmap(i % 10)) for i, s in enumerate(labels)}
    fig, axes = plt.subplots(len(modes), len(METRICS), figsize=(4.2 * len(METRICS),
                                                                  3.6 * len(modes)),
                             squeeze=False)
    for i, mode in enumerate(modes):
        mrows = [r for r in rows if r.mode == mode and r.ok]
        for j, metric in enumerate(METRICS):
            ax = axes[i][j]
            _plot_panel(ax, mrows, mode, metric, fits[mode].per_metric.get(metric), colours)
            if j == 0:
                ax.set_ylabel("ms per batch (median, bars: quartiles)")
        axes[i][0].legend(fontsize=8, title="strategy", title_fontsize=8)
    if any(r.noisy or r.contended for r in rows if r.ok):
        title = f"{title or ''}\n(dashed ring: noisy or busy measurement)".strip()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format=path.suffix.lower()[1:], dpi=110))
    finally:
        plt.close(fig)
    return path
