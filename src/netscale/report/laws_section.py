"""The report's "Scaling laws" section: fitted laws, bands, runtime model, recommendation.

``netscale report`` (netscale.report.html) puts :func:`laws_section` after its runtime
sections. Figures are written as PNG into the report directory and inlined as base64 data
URIs so that the page stays self-contained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from netscale.advise.options import LawOptions, RecommendOptions
from netscale.advise.recommend import recommend_study
from netscale.advise.records import pct, pct_interval, with_interval
from netscale.advise.sources import ResultsFile, StudyResults
from netscale.advise.study_fits import (
    StudyFits,
    StudyRuntime,
    fit_study,
    study_runtime,
    trial_error,
)
from netscale.errors import NetscaleError
from netscale.report.fragments import esc, img
from netscale.report.plots import (
    AXIS_LABELS,
    SLOPE_UNITS,
    plain_log_ticks,
    pyplot,
    strategy_colors,
)
from netscale.study.store import TrialRow
from netscale.util.io import atomic_savefig

FIG_ALL = "laws_error_vs_flops.png"
FIG_PANELS = "laws_per_strategy.png"
EXTEND = 4.0  # curves run to 4x the largest trained model


WIDE_DECADES = 6.0  # an interval spanning more orders of magnitude says "unconstrained"


def _wide(iv: tuple[float, float] | None) -> bool:
    if iv is None:
        return False
    lo, hi = (abs(float(v)) for v in iv)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return True
    lo, hi = sorted((lo, hi))
    return hi > 0 and (lo == 0 or math.log10(hi / lo) > WIDE_DECADES)


def _ci(v: float, iv: tuple[float, float] | None, digits: int = 3) -> str:
    if _wide(iv):  # the interval itself goes below the table (_wide_note)
        return f"{v:.{digits}g} (unconstrained*)"
    return with_interval(v, iv, digits)


def _wide_note(fits: StudyFits) -> str:
    """The law-parameter intervals too wide for the table, and what they mean."""
    items = []
    for label, f in fits.fits.items():
        if f.report is None:
            continue
        lf = f.report.best_fit
        for name in ("a", "b", "c"):
            iv = lf.intervals.get(name)
            if _wide(iv):
                assert iv is not None
                items.append(f"{label} {name}: [{iv[0]:.3g}, {iv[1]:.3g}]")
    if not items:
        return ""
    return (f'<p class="small">* unconstrained: the data do not pin this parameter down (its '
            f"{fits.level:.0%} interval spans more than {WIDE_DECADES:g} orders of magnitude; "
            "other combinations of the parameters fit the points as well). The predictions "
            "and their bands remain meaningful; the parameter alone is not. Intervals: "
            + "; ".join(esc(i) for i in items) + ".</p>")


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def plot_fits(fits: StudyFits, path: Path) -> Path | None:
    """All strategies on one log-x plot: points, fitted curves (dashed past the largest
    trained model) and prediction bands."""
    fitted = fits.fitted
    if not fitted:
        return None
    plt = pyplot()
    colors = strategy_colors(list(fits.fits))
    scale = 1e6 if "flops" in fits.x_metric or fits.x_metric in ("params", "acts") else 1.0
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    seen: list[float] = []  # points and curves (not bands) set the y range
    for label, f in fits.fits.items():
        col = colors.get(label, "#333333")
        if f.report is None:
            continue
        rep = f.report
        cv = rep.curve(extend=EXTEND)
        seen += [100 * v for v in rep.y] + [100 * v for v in cv.y]
        x = [v / scale for v in cv.x]
        inside = [v <= rep.best_fit.x_max * (1 + 1e-9) for v in cv.x]
        # faint band with its edges drawn: five overlapping bands stay readable and never
        # hide a point (points are drawn on top, white-edged)
        ax.fill_between(x, [100 * v for v in cv.lo], [100 * v for v in cv.hi], color=col,
                        alpha=0.05, lw=0, zorder=1)
        ax.plot(x, [100 * v for v in cv.lo], color=col, lw=0.6, alpha=0.45, zorder=1)
        ax.plot(x, [100 * v for v in cv.hi], color=col, lw=0.6, alpha=0.45, zorder=1)
        xi = [v for v, k in zip(x, inside) if k]
        yi = [100 * v for v, k in zip(cv.y, inside) if k]
        ax.plot(xi, yi, color=col, lw=1.8, label=f"{label} ({rep.best})")
        k0 = max(sum(inside) - 1, 0)
        ax.plot(x[k0:], [100 * v for v in cv.y[k0:]], color=col, lw=1.4, ls="--")
        ax.scatter([v / scale for v in rep.x], [100 * v for v in rep.y], color=col, s=30,
                   zorder=5, edgecolors="white", linewidths=0.8)
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    if seen:  # wide bands of poorly constrained fits must not flatten the others
        lo, hi = min(seen), max(seen)
        pad = max(0.5, 0.25 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + pad))
    unit = AXIS_LABELS.get(fits.x_metric, fits.x_metric)
    ax.set_xlabel(unit)
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(f"Fitted laws ({fits.level:.0%} prediction bands; dashed: "
                 f"extrapolation to {EXTEND:g}×)")
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, title="strategy (law)", loc="upper center", ncol=2,
              bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_panels(fits: StudyFits, path: Path) -> Path | None:
    """One small panel per strategy: points, curve, prediction and confidence bands."""
    fitted = fits.fitted
    if not fitted:
        return None
    plt = pyplot()
    colors = strategy_colors(list(fits.fits))
    n = len(fitted)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    # full page width (about 1140 px at 100 dpi): ~380 px per panel, text >= 12 px
    fig, axes = plt.subplots(rows, cols, figsize=(11.4 / 3 * cols, 3.3 * rows + 0.6),
                             squeeze=False)
    scale = 1e6 if fits.x_metric in ("flops", "params", "acts", "epochs*flops") else 1.0
    for ax, (label, f) in zip(axes.flat, fitted.items()):
        rep = f.report
        assert rep is not None
        col = colors.get(label, "#333333")
        cv = rep.curve(extend=EXTEND)
        x = [v / scale for v in cv.x]
        ax.fill_between(x, [100 * v for v in cv.lo], [100 * v for v in cv.hi], color=col,
                        alpha=0.12, lw=0, label="prediction")
        ax.fill_between(x, [100 * v for v in cv.conf_lo], [100 * v for v in cv.conf_hi],
                        color=col, alpha=0.28, lw=0, label="curve")
        ax.plot(x, [100 * v for v in cv.y], color=col, lw=1.6)
        ax.scatter([v / scale for v in rep.x], [100 * v for v in rep.y], color="k", s=20,
                   zorder=5, edgecolors="white", linewidths=0.6, label="trained")
        ax.axvline(rep.best_fit.x_max / scale, color="#888888", lw=0.8, ls=":")
        seen = [100 * v for v in rep.y] + [100 * v for v in cv.y]
        pad = max(1.0, 0.5 * (max(seen) - min(seen)))
        ax.set_ylim(max(0.0, min(seen) - pad), min(100.0, max(seen) + pad))
        ax.set_xscale("log")
        plain_log_ticks(ax, "x")
        ax.set_title(f"{label}: {rep.best} law")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    unit = AXIS_LABELS.get(fits.x_metric, f"{fits.x_metric} (M)")
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 error (%)")
    for ax in axes.flat[:n]:
        ax.set_xlabel(unit)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"Per strategy: {fits.level:.0%} prediction band (light), band on the curve "
                 "(dark); dotted line = largest trained model")
    fig.tight_layout(rect=(0, 0.6 / (3.3 * rows + 0.6), 1, 1))
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _fits_table(fits: StudyFits) -> str:
    lvl = f"{fits.level:.0%}"
    head = ["strategy", "α (fast)", "points (sizes)", "law", f"a [{lvl} CI]", f"b [{lvl} CI]",
            f"c [{lvl} CI] (pts)", "R² (log)", "RMSE (pts)", "leave-largest-out: predicted vs "
            "actual error (pts, difference)", f"predicted error at {EXTEND:g}× largest (pts)"]
    out = ["<table><thead><tr>" + "".join(
        f'<th class="{"l" if i in (0, 3, 9) else ""}">{esc(h)}</th>' for i, h in enumerate(head))
        + "</tr></thead><tbody>"]
    out.append(_base_fit_row(fits, len(head)))
    for label, f in fits.fits.items():
        alpha = "" if f.alpha is None else f"{f.alpha:.3g}"
        cells = [f'<td class="l">{esc(label)}</td>', f"<td>{esc(alpha)}</td>",
                 f"<td>{f.n_points} ({f.n_sizes})</td>"]
        if f.report is None:
            cells.append(f'<td class="l" colspan="8">not fitted: {esc(f.skipped)}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
            continue
        rep = f.report
        lf = rep.best_fit
        h = rep.holdout.get(rep.best)
        if h is None:
            hold = ""
        elif h.skipped:
            hold = "skipped: too few smaller models"
        else:
            # a check that ran (not skipped) always has its prediction and interval
            assert h.predicted is not None and h.lo is not None and h.hi is not None
            hold = (f"{pct(h.predicted)} [{pct(h.lo)}, {pct(h.hi)}] vs {pct(h.actual)} "
                    f"({'inside' if h.within else 'OUTSIDE'}, "
                    f"{100 * (h.predicted - h.actual):+.2f})")
        pr = rep.predict(lf.x_max * EXTEND)
        cells += [
            f'<td class="l">{esc(rep.best)}</td>',
            f"<td>{esc(_ci(lf.a, lf.intervals.get('a')))}</td>",
            f"<td>{esc(_ci(lf.b, lf.intervals.get('b')))}</td>",
            f"<td>{esc(pct_interval(lf.c, lf.intervals.get('c')))}</td>"
            if lf.law == "saturating" else "<td>—</td>",
            f"<td>{lf.r2_log:.3f}</td>" if math.isfinite(lf.r2_log) else "<td></td>",
            f"<td>{100 * lf.rmse:.2f}</td>",
            f'<td class="l">{esc(hold)}</td>',
            f"<td>{pct(pr.value)} [{pct(pr.lo)}, {pct(pr.hi)}]</td>",
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _base_fit_row(fits: StudyFits, ncols: int) -> str:
    """The base (s = 1): the shared first point of every strategy's fit."""
    for f in fits.fits.values():
        rep = f.report
        if rep is not None and rep.x:
            i = min(range(len(rep.x)), key=lambda k: rep.x[k])
            x, y = rep.x[i], rep.y[i]
            unit = "M flops" if fits.x_metric == "flops" else f"M {fits.x_metric}"
            return (f'<tr class="base"><td class="l">base (s = 1)</td><td class="l" '
                    f'colspan="{ncols - 1}">the shared first point of every fit: '
                    f"{x / 1e6:.3g} {esc(unit)}, top-1 error {pct(y)}%</td></tr>")
    return ""


def _base_candidate_row(trials: Sequence[TrialRow]) -> str:
    """The trained base (s = 1) as the reference row of the recommendation table."""
    base = [t for t in trials if t.factor == 1 and trial_error(t) is not None]
    if not base:
        return ""
    t = base[0]
    errs = [trial_error(b) for b in base]
    err = sum(e for e in errs if e is not None) / len(errs)
    tm = "" if t.time_ms is None else f"{t.time_ms:.3g}"
    seeds = f", mean of {len(base)} seeds" if len(base) > 1 else ""
    return (f'<tr class="base"><td></td><td class="l">base (s = 1)</td>'
            f"<td>{t.flops / 1e6:.3g}</td><td>{t.params / 1e6:.3g}</td>"
            f"<td>{t.acts / 1e6:.3g}</td><td>{t.resolution}</td><td>{pct(err)} (trained"
            f"{seeds})</td><td>{tm}</td><td class='l'>the base as trained and timed: the "
            "reference the candidates scale from</td></tr>")


def _notes_html(fits: StudyFits) -> str:
    by_text: dict[str, list[str]] = {}
    for label, f in fits.fits.items():
        notes = list(f.notes) + (list(f.report.best_fit.notes) if f.report else [])
        for n in notes:
            by_text.setdefault(n, []).append(label)
    if not by_text:
        return ""
    items = "".join(f"<li><b>{esc(', '.join(v))}</b>: {esc(k)}</li>" for k, v in by_text.items())
    return f'<ul class="small">{items}</ul>'


def _runtime_html(rt: StudyRuntime | None) -> str:
    if rt is None:
        return ("<p>No runtime model: the study has fewer than three successful benchmark rows "
                "(benchmarking off or failed).</p>")
    rows = ["<table><thead><tr><th class='l'>metric</th><th>Pearson r</th><th>r (log-log)</th>"
            "<th>line: slope</th><th>intercept (ms)</th><th>log-log exponent</th>"
            "</tr></thead><tbody>"]
    for m, f in rt.model.per_metric.items():
        div, unit = SLOPE_UNITS.get(m, (1.0, m))
        rows.append(
            f"<tr><td class='l'>{esc(m)}</td>"
            f"<td>{'' if not math.isfinite(f.pearson_r) else f'{f.pearson_r:.3f}'}</td>"
            f"<td>{'' if not math.isfinite(f.loglog_r) else f'{f.loglog_r:.3f}'}</td>"
            f"<td>{f.slope * div:.3g} ms per {esc(unit)}</td><td>{f.intercept:.3g}</td>"
            f"<td>{'' if not math.isfinite(f.loglog_exponent) else f'{f.loglog_exponent:.2f}'}"
            "</td></tr>")
    rows.append("</tbody></table>")
    best = rt.model.best_metric
    other = (f" Other settings measured (not used): {esc(', '.join(rt.other_settings))}."
             if rt.other_settings else "")
    best_text = ("No single metric correlates with runtime" if best is None else
                 f"Best single predictor: <b>{esc(best)}</b> (Pearson r = "
                 f"{rt.model.per_metric[best].pearson_r:.3f})")
    return (f"<p>Fitted {esc(rt.summary())}: <code>{esc(_formula(rt))}</code>, "
            f"RMSE {rt.rmse:.3g} ms. {best_text}. It applies to this machine at batch "
            f"{rt.batch_size} on {esc(rt.device)} only.{other}</p>" + "".join(rows))


def _formula(rt: StudyRuntime) -> str:
    """The runtime model in the report's one set of units: ms per batch, flops in G
    multiply-adds, params and activations in M."""
    return rt.formula({"flops": (1e9, "G MACs"), "params": (1e6, "M"), "acts": (1e6, "M")})


def _recommend_html(source: StudyResults, fits: StudyFits) -> str:
    trials = source.trials
    if isinstance(source, ResultsFile):  # its groups, not scaled strategies
        return ("<p>The groups are ranked in the Recommendation section at the top (each "
                "group's law at the largest flops in the file).</p>")
    bases = sorted({t.base for t in trials})
    if len(bases) != 1:
        return ("<p class='small'>(Recommendation: run <code>netscale recommend STUDY_DIR "
                "--base NAME --target-flops ...</code>; the study has several bases.)</p>")
    factors = [t.factor for t in trials if trial_error(t) is not None]
    if not factors:
        return ""
    target = 2.0 * max(factors)
    try:
        rec = recommend_study(source, target, RecommendOptions(laws=LawOptions(x=fits.x_metric)),
                              fits=fits)
    except NetscaleError as exc:
        return f"<p class='small'>(No recommendation: {esc(exc)})</p>"
    c = rec.chosen
    err = ("no prediction" if c.error is None else
           f"{c.error.text('%')} ({esc(c.error.source)})")
    rt = "" if c.time_ms is None else f", predicted {c.time_ms:.3g} ms per batch of " \
                                      f"{rec.runtime_batch}"
    stages = (c.spec or {}).get("stages", [])
    head = (f'<div class="box"><b>Extrapolated recommendation for ×{target:g} flops</b> '
            f"(2× the largest trained factor): scale by <code>{esc(c.name)}</code> — depths "
            f"{[s['depth'] for s in stages]}, widths {[s['width'] for s in stages]}, "
            f"{c.resolution} px, {c.flops / 1e6 if c.flops else 0:.3g} M flops; predicted "
            f"top-1 error {err}{esc(rt)}. Ranked by {rec.ranking} with the tie logic of the "
            "verdict above (tied when the interval of the difference contains 0; the fastest "
            "of the tied is chosen), no constraints; <code>netscale recommend</code> adds "
            "latency / params / activations limits."
            + (f" <b>Tie</b> with <code>{esc(', '.join(rec.tied))}</code>." if rec.tied else "")
            + f"<br><span class='small'>{esc(rec.reason)}</span></div>")
    rows = ["<table><thead><tr><th>rank</th><th class='l'>strategy</th><th>flops (M)</th>"
            "<th>params (M)</th><th>acts (M)</th><th>px</th><th>predicted error (%)</th>"
            "<th>time (ms)</th><th class='l'>why not chosen</th></tr></thead><tbody>"]
    rows.append(_base_candidate_row(trials))
    for cand in rec.candidates:
        if not cand.trained and (cand.rank is None or cand.rank > 8):
            continue
        e = ("" if cand.error is None else
             cand.error.text()
             + (" (interp.)" if cand.error.method == "interpolated" else ""))
        rows.append(
            f"<tr><td>{cand.rank or ''}</td><td class='l'>{esc(cand.name)}</td>"
            f"<td>{(cand.flops or 0) / 1e6:.3g}</td><td>{(cand.params or 0) / 1e6:.3g}</td>"
            f"<td>{(cand.acts or 0) / 1e6:.3g}</td><td>{cand.resolution or ''}</td>"
            f"<td>{esc(e)}</td><td>{'' if cand.time_ms is None else f'{cand.time_ms:.3g}'}</td>"
            f"<td class='l'>{esc(cand.verdict)}</td></tr>")
    rows.append("</tbody></table>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in rec.notes)
    return head + "".join(rows) + (f'<ul class="small">{notes}</ul>' if notes else "")


# --------------------------------------------------------------------------------------------
# the section
# --------------------------------------------------------------------------------------------


def laws_section(source: StudyResults, out_dir: str | Path) -> str:
    """HTML of the report's "Scaling laws" section for a study or a results file; figures go
    to ``out_dir`` as PNG."""
    trials = source.trials
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    fits: StudyFits | None = None
    n_done = sum(1 for t in trials if trial_error(t) is not None)
    if n_done == 0:
        parts.append("<p>No trained trials with a top-1 error yet, so no scaling law can be "
                     "fitted. Finish the study (<code>netscale study CONFIG</code> resumes it) "
                     "and regenerate the report.</p>")
    else:
        try:
            fits = fit_study(trials)
        except NetscaleError as exc:
            parts.append(f"<p>No scaling law could be fitted: {esc(exc)}. Each strategy needs "
                         "at least 3 trained sizes (counting the shared s = 1 model) for the "
                         "plain power law and 4 for the saturating law.</p>")
    if fits is not None:
        laws_used = sorted({f.report.best for f in fits.fitted.values()
                            if f.report is not None})
        n_points = sorted({f.n_points for f in fits.fits.values()})
        parts.append(
            "<p>Top-1 error against flops (multiply-adds) per strategy, fitted robustly (Huber "
            "loss on log error) with the saturating law <code>err = a·x^(−b) + c</code> when a "
            "strategy has at least 4 trained points over 3 sizes, else the plain power law "
            f"<code>err = a·x^(−b)</code>. Intervals are {fits.level:.0%} bootstrap "
            f"intervals ({fits.n_boot} refits). The curves extend to {EXTEND:g}× the largest "
            "trained model; their bands widen as they extrapolate.</p>")
        if "saturating" not in laws_used:
            parts.append(
                f'<div class="box warn">Only {"/".join(map(str, n_points))} trained points '
                "per strategy: the plain power law was fitted (the saturating law needs at "
                "least 4). Without an error floor c it keeps improving forever, and with one "
                "degree of freedom left its intervals are rough, so treat the extrapolations "
                "as indicative. Train more factors (e.g. 8 and 16) or seeds for honest "
                "extrapolation.</div>")
        parts.append(img(plot_fits(fits, out / FIG_ALL), "fitted scaling laws"))
        parts.append(img(plot_panels(fits, out / FIG_PANELS), "fits per strategy"))
        parts.append(_fits_table(fits))
        parts.append(_wide_note(fits))
        parts.append(_notes_html(fits))
    try:
        rt = study_runtime(trials)
    except NetscaleError as exc:
        rt = None
        parts.append(f"<p class='small'>(runtime model unavailable: {esc(exc)})</p>")
    parts.append("<h3>Runtime model</h3>" + _runtime_html(rt))
    if fits is not None and fits.fitted:
        parts.append("<h3>Recommendation from the fitted laws</h3>"
                     + _recommend_html(source, fits))
    return "\n".join(p for p in parts if p)
