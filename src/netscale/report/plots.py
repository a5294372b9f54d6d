"""Report figures (matplotlib, Agg backend): PNG files, one per view of the study."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netscale.report.analysis import Series, runtime_correlations
from netscale.report.marks import SAME_MARK, same_network_labels, timing_flag
from netscale.scaling import parse_strategy
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.study.store import TrialRow
from netscale.util.io import atomic_savefig

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Text sizes for figures shown at about their native pixel size in the report (half-width
# figures ~570 px, full-width ~1140 px at 110 dpi): 9 pt at 110 dpi is 13.75 px, so every
# label stays >= 10 px at 100 % zoom even when the browser scales the image down by 25 %.
RC: dict[RcKeyType, float] = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9,
    "figure.titlesize": 11}
#: Axis labels of the counts, in millions (flops are multiply-adds).
AXIS_LABELS = {"flops": "flops (M multiply-adds)", "params": "params (M)",
               "acts": "activations (M)"}
#: Runtime slopes are given per these units of each count: (divisor, unit).
SLOPE_UNITS = {"flops": (1e9, "G multiply-adds"), "params": (1e6, "M params"),
               "acts": (1e6, "M activations")}
HALF_W = 5.2  # inches at 110 dpi: one column of the report's two-column grid
FULL_W = 10.4  # the page width


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    return plt


def plain_log_ticks(ax: Any, axis: str = "x", unit: str = "") -> None:
    """Plain tick labels on a log axis (2, 3, 4, 6 M rather than 10^6.3): ticks at
    1, 1.5, 2, 3, 4, 6, 8 × 10^k thinned to at most 8, no minor labels; ``unit`` suffixes each
    label (e.g. ' M')."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if not (lo > 0 and hi > lo):
        return
    ticks: list[float] = []
    for mults in ((1, 1.5, 2, 3, 4, 6, 8), (1, 2, 3, 4, 6), (1, 2, 4, 6), (1, 2, 5), (1, 3),
                  (1,)):
        ticks = [m * 10.0**k for k in range(math.floor(math.log10(lo)) - 1,
                                            math.ceil(math.log10(hi)) + 1)
                 for m in mults if lo <= m * 10.0**k <= hi]
        if len(ticks) <= 8:
            break
    if len(ticks) < 2:
        ticks = [lo, hi]
    which = ax.xaxis if axis == "x" else ax.yaxis
    which.set_major_locator(FixedLocator(ticks))
    which.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}{unit}"))
    which.set_minor_formatter(NullFormatter())


def legend_below(ax: Any, title: str | None = None, ncol: int = 4) -> None:
    """The legend under the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, loc="upper center", ncol=min(ncol, len(labels)),
                  bbox_to_anchor=(0.5, -0.2), frameon=False)


def mark_flags(ax: Any, xs: Sequence[float], ys: Sequence[float], flagged: Sequence[bool],
               label: bool = True) -> None:
    """A red ring around each point whose timing was flagged (noisy or busy CPU)."""
    pts = [(x, y) for x, y, f in zip(xs, ys, flagged) if f]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=140, facecolors="none",
                   edgecolors="#d00000", linewidths=1.4, zorder=6,
                   label="flagged timing" if label else None)


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    order = sorted(set(names) - {BASE_STRATEGY})
    out = {n: COLORS[i % len(COLORS)] for i, n in enumerate(order)}
    out[BASE_STRATEGY] = "#000000"
    return out


def error_vs_flops(series: Sequence[Series], path: Path) -> Path | None:
    plt = pyplot()
    drawn = False
    colors = strategy_colors([s.strategy for s in series])
    fig, ax = plt.subplots(figsize=(HALF_W, 4.2))
    for s in series:
        pts = [p for p in s.points if p.err is not None]
        if not pts:
            continue
        x = [p.flops / 1e6 for p in pts]
        y = [100 * p.err for p in pts if p.err is not None]  # all: pts have an error
        yerr = [100 * p.err_std if p.err_std else 0.0 for p in pts]
        label = s.strategy if len({q.base for q in series}) == 1 else f"{s.base} {s.strategy}"
        ax.errorbar(x, y, yerr=yerr if any(yerr) else None, marker="o", label=label,
                    color=colors[s.strategy], capsize=3, zorder=3)
        drawn = True
    return _finish_error_plot(plt, fig, ax, drawn, path, "flops (M multiply-adds)",
                              "Error vs flops, one line per scaling strategy", unit=" M")


def error_vs_runtime(series: Sequence[Series], path: Path,
                     flagged: Collection[tuple[str, float]] = ()) -> Path | None:
    """``flagged``: (strategy, factor) pairs whose timing was flagged (ringed in red)."""
    plt = pyplot()
    colors = strategy_colors([s.strategy for s in series])
    fig, ax = plt.subplots(figsize=(HALF_W, 4.2))
    flagged = set(flagged)
    any_flag = False
    drawn = False
    for s in series:
        pts = [p for p in s.points if p.err is not None and p.time_ms is not None]
        if not pts:
            continue
        ax.plot([p.time_ms for p in pts], [100 * p.err for p in pts if p.err is not None],
                marker="o",
                label=s.strategy, color=colors[s.strategy], zorder=3)
        show = factor_labels(len(pts))
        for i, p in enumerate(pts):
            if i in show and p.err is not None:  # p.err is set on every pts point
                ax.annotate(f"×{p.factor:g}", (p.time_ms, 100 * p.err), fontsize=9,
                            textcoords="offset points", xytext=(4, 3))
        fl = [(p.strategy, p.factor) in flagged for p in pts]
        mark_flags(ax, [p.time_ms for p in pts if p.time_ms is not None],
                   [100 * p.err for p in pts if p.err is not None], fl, label=not any_flag)
        any_flag = any_flag or any(fl)
        drawn = True
    return _finish_error_plot(plt, fig, ax, drawn, path, "measured time per batch (ms)",
                              "Error vs measured runtime (lower-left is better)", unit="")


def _finish_error_plot(plt: Any, fig: Any, ax: Any, drawn: bool, path: Path, xlabel: str,
                       title: str, unit: str = "") -> Path | None:
    """Log-x axes, labels, legend; saves the figure (None when nothing was drawn)."""
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    plain_log_ticks(ax, "x", unit)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    legend_below(ax, "strategy")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def runtime_vs_metrics(trials: Sequence[TrialRow], path: Path) -> Path | None:
    """Time per batch against flops, params and acts; flagged timings ringed in red,
    identical networks labelled."""
    timed = [t for t in trials if t.time_ms is not None]
    if len(timed) < 2:
        return None
    plt = pyplot()
    colors = strategy_colors([t.strategy for t in timed])
    model = runtime_correlations(timed)  # fitted on every timed trial
    n_timed = len(timed)
    flagged = [bool(timing_flag(t)) for t in timed]
    same = same_network_labels(timed)
    rows: list[TrialRow] | list[TimedGroup] = timed
    if len(timed) > MAX_MARKERS:  # a big study: one marker per (strategy, factor)
        rows, flagged = aggregate_timed(timed, flagged)
        same = {g.id: sorted({x for tid in g.trial_ids for x in same.get(tid, [])})
                for g in rows if any(tid in same for tid in g.trial_ids)}
    fig, axes = plt.subplots(1, 3, figsize=(FULL_W, 4.2), sharey=True)
    for i, (ax, metric) in enumerate(zip(axes, ("flops", "params", "acts"))):
        for strat in sorted({t.strategy for t in rows}):
            pts = [t for t in rows if t.strategy == strat]
            ax.scatter([getattr(t, metric) / 1e6 for t in pts], [t.time_ms for t in pts],
                       label=strat, color=colors[strat], s=30, zorder=3)
        mark_flags(ax, [getattr(t, metric) / 1e6 for t in rows],
                   [t.time_ms for t in rows if t.time_ms is not None],  # all: rows are timed
                   flagged, label=i == 0)
        labelled: set[frozenset[str]] = set()  # one label per identical network
        for t in rows:
            names = frozenset([*same.get(t.id, []), f"{t.strategy} ×{t.factor:g}"])
            if t.id in same and names not in labelled:
                labelled.add(names)
                ax.annotate(f"{SAME_MARK} {t.strategy} ×{t.factor:g} = "
                            f"{', '.join(same[t.id])}", (getattr(t, metric) / 1e6, t.time_ms),
                            fontsize=8.5, textcoords="offset points", xytext=(4, -11))
        c = model.per_metric[metric] if model is not None else None
        if c is not None and math.isfinite(c.pearson_r):
            xs = np.linspace(min(getattr(t, metric) for t in rows),
                             max(getattr(t, metric) for t in rows), 50)
            ax.plot(xs / 1e6, c.slope * xs + c.intercept, "k--", lw=1)
        r = f"r = {c.pearson_r:.3f}" if c is not None and math.isfinite(c.pearson_r) \
            else "r = n/a"
        ax.set_title(f"time vs {metric} ({r})")
        ax.set_xlabel(AXIS_LABELS[metric])
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("time per batch (ms)")
    if len(rows) < n_timed:
        fig.suptitle(f"{n_timed:,} timed trials: one marker per (strategy, factor), the median "
                     "of its trials' times; lines and r fitted on every trial", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="strategy", loc="lower center", ncol=len(labels),
               frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


#: Above this many timed trials, runtime_vs_metrics draws one marker per (strategy, factor).
MAX_MARKERS = 400
#: A line of error_vs_runtime labels at most this many of its points with their factor.
MAX_FACTOR_LABELS = 8


@dataclass
class TimedGroup:
    """The trials of one (base, strategy, factor) as one plot marker: the median time."""

    id: str
    base: str
    strategy: str
    factor: float
    flops: float
    params: float
    acts: float
    time_ms: float
    trial_ids: tuple[str, ...]
    n: int
    seed: int = 0


def aggregate_timed(rows: Sequence[TrialRow], flagged: Sequence[bool]
                    ) -> tuple[list[TimedGroup], list[bool]]:
    """One :class:`TimedGroup` per (base, strategy, factor) of timed trials (median time,
    flagged when any of its trials is); keeps a plot of 10,000 trials at one marker per
    model."""
    groups: dict[tuple[str, str, float], list[int]] = {}
    for i, t in enumerate(rows):
        groups.setdefault((t.base, t.strategy, t.factor), []).append(i)
    out, flags = [], []
    for (base, strategy, factor), idx in sorted(groups.items()):
        ts = [rows[i] for i in idx]
        out.append(TimedGroup(
            id=f"{ts[0].id}+{len(ts) - 1}", base=base, strategy=strategy, factor=factor,
            flops=float(np.mean([t.flops for t in ts])),
            params=float(np.mean([t.params for t in ts])),
            acts=float(np.mean([t.acts for t in ts])),
            time_ms=float(np.median([t.time_ms for t in ts])),
            trial_ids=tuple(t.id for t in ts), n=len(ts)))
        flags.append(any(flagged[i] for i in idx))
    return out, flags


def factor_labels(n: int, limit: int = MAX_FACTOR_LABELS) -> set[int]:
    """Indices of the points of a line that get a factor label: all of them up to ``limit``,
    else ``limit`` evenly spread ones (the first and the last included)."""
    if n <= limit:
        return set(range(n))
    return {int(round(v)) for v in np.linspace(0, n - 1, limit)}


def growth(series: Sequence[Series], path: Path) -> Path | None:
    plt = pyplot()
    colors = strategy_colors([s.strategy for s in series])
    fig, axes = plt.subplots(1, 2, figsize=(FULL_W, 4.4))
    drawn = False
    for s in series:
        if s.strategy == BASE_STRATEGY:
            continue
        try:
            strat = parse_strategy(s.strategy)
        except Exception:
            continue
        pts = [p for p in s.points if p.acts_factor is not None]
        if len(pts) < 2:
            continue
        f = np.array([p.factor for p in pts])
        grid = np.geomspace(f.min(), f.max(), 30)
        for ax, attr, exp in ((axes[0], "acts_factor", strat.acts_exponent),
                              (axes[1], "params_factor", strat.params_exponent)):
            ax.plot(f, [getattr(p, attr) for p in pts], marker="o", color=colors[s.strategy],
                    label=f"{s.strategy} (s^{exp:.2f})")
            ax.plot(grid, grid**exp, ls=":", color=colors[s.strategy], lw=1)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, what in zip(axes, ("activations", "parameters")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        plain_log_ticks(ax, "x", "×")
        plain_log_ticks(ax, "y", "×")
        ax.set_xlabel("flops factor s (× the base's multiply-adds)")
        ax.set_ylabel(f"{what} factor (× the base's)")
        ax.set_title(f"{what.capitalize()} growth (dotted: s^exponent)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path
