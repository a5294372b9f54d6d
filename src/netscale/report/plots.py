"""Report figures (matplotlib, Agg backend): PNG files, one per view of the study."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netscale.report.analysis import BASE, Series, runtime_correlations
from netscale.scaling import parse_strategy
from netscale.study.store import TrialRow
from netscale.util.io import atomic_savefig


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    order = sorted(set(names) - {BASE})
    out = {n: COLORS[i % len(COLORS)] for i, n in enumerate(order)}
    out[BASE] = "#000000"
    return out


def error_vs_flops(series: Sequence[Series], path: Path) -> Path | None:
    plt = _plt()
    drawn = False
    colors = strategy_colors([s.strategy for s in series])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for s in series:
        pts = [p for p in s.points if p.err is not None]
        if not pts:
            continue
        x = [p.flops / 1e6 for p in pts]
        y = [100 * p.err for p in pts]
        yerr = [100 * p.err_std if p.err_std else 0.0 for p in pts]
        label = s.strategy if len({q.base for q in series}) == 1 else f"{s.base} {s.strategy}"
        ax.errorbar(x, y, yerr=yerr if any(yerr) else None, marker="o", label=label,
                    color=colors[s.strategy], capsize=3)
        drawn = True
    return _finish_error_plot(plt, fig, ax, drawn, path, "flops (M multiply-adds)",
                              "Error vs flops, one line per scaling strategy")


def error_vs_runtime(series: Sequence[Series], path: Path) -> Path | None:
    plt = _plt()
    colors = strategy_colors([s.strategy for s in series])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = False
    for s in series:
        pts = [p for p in s.points if p.err is not None and p.time_ms is not None]
        if not pts:
            continue
        ax.plot([p.time_ms for p in pts], [100 * p.err for p in pts], marker="o",
                label=s.strategy, color=colors[s.strategy])
        for p in pts:
            ax.annotate(f"×{p.factor:g}", (p.time_ms, 100 * p.err), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        drawn = True
    return _finish_error_plot(plt, fig, ax, drawn, path, "measured time per batch (ms)",
                              "Error vs measured runtime (lower-left is better)")


def _finish_error_plot(plt: Any, fig: Any, ax: Any, drawn: bool, path: Path, xlabel: str,
                       title: str) -> Path | None:
    """Log-x axes, labels, legend; saves the figure (None when nothing was drawn)."""
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="strategy")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def runtime_vs_metrics(trials: Sequence[TrialRow], path: Path) -> Path | None:
    rows = [t for t in trials if t.time_ms is not None]
    if len(rows) < 2:
        return None
    plt = _plt()
    colors = strategy_colors([t.strategy for t in rows])
    corr = {c.metric: c for c in runtime_correlations(rows)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.0), sharey=True)
    units = {"flops": "flops (M multiply-adds)", "params": "params (M)",
             "acts": "activations (M)"}
    for ax, metric in zip(axes, ("flops", "params", "acts")):
        for strat in sorted({t.strategy for t in rows}):
            pts = [t for t in rows if t.strategy == strat]
            ax.scatter([getattr(t, metric) / 1e6 for t in pts], [t.time_ms for t in pts],
                       label=strat, color=colors[strat], s=28)
        c = corr[metric]
        if c.slope is not None:
            xs = np.linspace(min(getattr(t, metric) for t in rows),
                             max(getattr(t, metric) for t in rows), 50)
            ax.plot(xs / 1e6, c.slope * xs + c.intercept, "k--", lw=1)
        r = f"r = {c.pearson_r:.3f}" if c.pearson_r is not None else "r = n/a"
        ax.set_title(f"time vs {metric} ({r})")
        ax.set_xlabel(units[metric])
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("time per batch (ms)")
    axes[-1].legend(title="strategy", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def growth(series: Sequence[Series], path: Path) -> Path | None:
    plt = _plt()
    colors = strategy_colors([s.strategy for s in series])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = False
    for s in series:
        if s.strategy == BASE:
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
        ax.set_xlabel("flops factor s")
        ax.set_ylabel(f"{what} factor")
        ax.set_title(f"{what.capitalize()} growth (dotted: s^exponent)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
