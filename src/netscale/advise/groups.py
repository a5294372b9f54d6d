"""Recommendation over the groups of a results file (results trained elsewhere).

A results file (:mod:`netscale.advise.results_io`) has groups (strategies or families) but no
base network to scale, so ``netscale recommend FILE --target-flops 8G`` ranks the *groups*:
each group's fitted law is evaluated at the target flops (multiply-adds) with its prediction
interval, exactly as a study's strategies are, and :func:`netscale.advise.recommend._rank`
orders them (near-ties by runtime). Params, activations and runtime at the target are
estimated per group from its own rows (a straight line in log-log against flops, fitted on
the rows that carry the column) so ``--max-params``/``--max-acts``/``--max-latency`` apply;
a group without the column needed by a limit is listed as "unknown", never dropped.

Every group appears in the result: fitted and ranked, or listed with the reason it could not be
fitted or violates a limit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netscale.advise.recommend import (
    Candidate,
    Constraints,
    ErrorEstimate,
    Recommendation,
    RecommendOptions,
    _check_latency,
    _check_static,
    _fmt_count,
    _infeasible,
    _rank,
)
from netscale.advise.study_fits import BASE, StudyFits, StudyResults, fit_study
from netscale.errors import NetscaleError
from netscale.study.store import TrialRow


@dataclass(frozen=True)
class LogLine:
    """log(y) = intercept + slope·log(flops), fitted on a group's rows."""

    slope: float
    intercept: float
    n: int
    x_min: float
    x_max: float

    def __call__(self, flops: float) -> float:
        return float(math.exp(self.intercept + self.slope * math.log(flops)))


def _logline(pairs: Sequence[tuple[float, float]]) -> LogLine | None:
    pts = [(x, y) for x, y in pairs if x and y and x > 0 and y > 0]
    xs = sorted({x for x, _ in pts})
    if len(xs) < 2:
        return None
    lx = np.log([x for x, _ in pts])
    ly = np.log([y for _, y in pts])
    slope, intercept = np.polyfit(lx, ly, 1)
    return LogLine(float(slope), float(intercept), len(pts), xs[0], xs[-1])


class GroupRecommendation(Recommendation):
    """A :class:`Recommendation` whose candidates are the groups of a results file."""

    def chosen_spec(self) -> Any:
        raise NetscaleError("a results file has no network specs to write; --out needs a study "
                            "directory or a base model")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["factor"] = d["base_flops"] = None  # no base model: the target is absolute
        d["base"] = None
        d["units"]["params, acts, time"] = "estimated at the target from each group's rows"
        return d

    def format_text(self) -> str:
        c = self.chosen
        lines = [
            f"recommend: the group with the lowest predicted top-1 error at "
            f"{_fmt_count(self.target_flops)} flops (multiply-adds), from {self.source}",
            f"error:   {self.error_basis}",
            f"runtime: {self.runtime_basis}",
            f"constraints: {self.constraints.describe(self.runtime_batch)}",
            "",
            f"chosen: {c.name}",
        ]
        if c.error:
            e = c.error
            ex = (f", extrapolating x{e.extrapolation:.3g} past the group's data"
                  if e.extrapolation > 1 + 1e-9 else "")
            lines.append(f"  predicted error {100 * e.value:.2f}% [{100 * e.lo:.2f}, "
                         f"{100 * e.hi:.2f}] ({e.level:.0%} prediction interval; {e.source}{ex})")
        est = [f"{k} {_fmt_count(v)}" for k, v in (("params", c.params), ("acts", c.acts))
               if v]
        if est:
            lines.append(f"  estimated at the target from the group's rows: {', '.join(est)}")
        if c.runtime_ms is not None:
            lines.append(f"  runtime: {c.runtime_ms:.3g} ms per batch of {self.runtime_batch} "
                         "(estimated from the group's time_ms rows)")
        lines.append(f"  {c.verdict}")
        lines.append("")
        lines.append(group_table(self.candidates))
        lines.append("(errors in percent with the prediction interval; params, acts and ms "
                     "estimated at the target flops from each group's own rows)")
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def group_table(cands: Sequence[Candidate]) -> str:
    from netscale.util.fmt import table

    rows = []
    for c in cands:
        e = c.error
        err = f"{100 * e.value:.2f} [{100 * e.lo:.2f}, {100 * e.hi:.2f}]" if e else "-"
        ex = "-" if e is None else ("inside" if e.extrapolation <= 1 + 1e-9
                                    else f"x{e.extrapolation:.3g}")
        rows.append([str(c.rank) if c.rank is not None else "-", c.name,
                     _fmt_count(c.params) if c.params else "-",
                     _fmt_count(c.acts) if c.acts else "-", err, ex,
                     f"{c.runtime_ms:.3g}" if c.runtime_ms is not None else "-", c.verdict])
    return table(rows, ["rank", "group", "params", "acts", "error % [interval]", "past data",
                        "ms", "verdict"], align="rlrrrrrl")


def _timing_setting(trials: Sequence[TrialRow]) -> tuple[str, int] | None:
    c: Counter[tuple[str, int]] = Counter()
    for t in trials:
        for b in t.bench or []:
            if b.get("mode", "infer") == "infer" and b.get("time_ms"):
                c[(str(b.get("device")), int(b.get("batch_size") or 0))] += 1
    return c.most_common(1)[0][0] if c else None


GROUPS_TIE = 0.001
"""The extra minimum error gap (0.1 points) when a results file's groups are ranked directly."""


def recommend_groups(study: StudyResults, target: str | float,
                     options: RecommendOptions | None = None, *, fits: StudyFits | None = None,
                     **overrides: Any) -> GroupRecommendation:
    """Ranks the groups of a results file by predicted error at ``target`` flops.

    ``options`` (a :class:`RecommendOptions`, ``tie`` defaulting to :data:`GROUPS_TIE`) and
    keyword ``overrides`` of its fields as for :func:`netscale.advise.recommend.recommend`."""
    opts = RecommendOptions.build(options, overrides, default=RecommendOptions(tie=GROUPS_TIE))
    target_flops = _groups_target(target, opts)
    cons = opts.constraints()
    trials = list(study.trials)
    if fits is None:
        fits = fit_study(trials, x=opts.x, law=opts.law, n_boot=opts.n_boot, level=opts.level,
                         seed=opts.seed, noise=opts.noise)
    setting = _timing_setting(trials)
    if cons.batch_size is not None and setting is not None and setting[1] != cons.batch_size:
        raise NetscaleError(f"the file's time_ms rows are at batch {setting[1]}, not at "
                            f"--batch-size {cons.batch_size}; drop --batch-size or give timings "
                            "at that batch size")
    if cons.max_latency_ms is not None and setting is None:
        raise NetscaleError("--max-latency needs time_ms values in the results file (ms per "
                            "batch); none of its rows has one")
    smallest = min((t.flops for t in trials if t.flops), default=None)
    if smallest is not None and target_flops < smallest:
        raise NetscaleError(f"--target-flops {_fmt_count(target_flops)} is below the smallest "
                            f"model in the file ({_fmt_count(smallest)} flops): the laws "
                            "describe larger models; give a target within or above the data")
    cands = [_group_candidate(label, f, trials, target_flops, setting, cons, opts.level)
             for label, f in fits.fits.items()]
    batch = setting[1] if setting else None
    if cons.batch_size is None and batch:
        cons = Constraints(cons.max_latency_ms, batch, cons.max_params, cons.max_acts)
    _check_group_limits(cands, cons, batch)
    notes: list[str] = []
    chosen, ranking, _decision = _rank(cands, float(opts.tie), notes)
    notes[:] = [n.replace("add them to the study's strategies to compare them",
                          "give them more rows to fit them") for n in notes]
    ranked = sorted((c for c in cands if c.rank is not None), key=lambda c: c.rank or 0)
    rest = [c for c in cands if c.rank is None]
    runtime_basis = (f"estimated per group from the file's time_ms rows (log-log line in flops; "
                     f"batch {setting[1]}, device {setting[0]})" if setting else
                     "not available (no time_ms in the file)")
    fit_summary = {k: {"law": f.report.best if f.report else None,
                       "formula": f.report.best_fit.formula() if f.report else None,
                       "n_points": f.n_points, "skipped": f.skipped or None}
                   for k, f in fits.fits.items()}
    return GroupRecommendation(
        mode="results", source=str(study.path), base=study.name, base_flops=0, factor=math.nan,
        target_flops=target_flops, constraints=cons, chosen=chosen, candidates=ranked + rest,
        ranking=ranking, error_basis=(f"top-1 error predicted from each group's fitted law "
                                      f"(x = flops; {opts.level:.0%} prediction intervals)"),
        runtime_basis=runtime_basis, runtime_batch=batch, runtime=None, fits=fit_summary,
        notes=notes + _group_notes(chosen, ranked))


def _groups_target(target: str | float, opts: RecommendOptions) -> float:
    """The absolute target flops (multiply-adds) of a results file's recommendation."""
    from netscale.util.units import parse_count

    if opts.measure:
        raise NetscaleError("--measure times scaled networks, but a results file has no "
                            "networks to time; give time_ms columns in the file instead")
    if opts.x != "flops":
        raise NetscaleError(f"recommend over a results file predicts at a flops target; "
                            f"--x {opts.x} is not supported here (use --x flops)")
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        raise NetscaleError("a results file has no base model to multiply; give the target as "
                            "absolute flops, e.g. --target-flops 8G")
    t = str(target).strip()
    if t.lower().endswith("x"):
        raise NetscaleError(f"--target-flops {t}: a results file has no base model to scale by "
                            "a factor; give absolute flops (multiply-adds), e.g. 8G")
    return parse_count(t, "--target-flops")


def _group_candidate(label: str, f: Any, trials: Sequence[Any], target_flops: float,
                     setting: tuple[str, int] | None, cons: Constraints,
                     level: float) -> Candidate:
    """One group at the target: its law's predicted error, params / acts / runtime from
    log-log lines through its rows, and its violations of the static limits."""
    rows = [tr for tr in trials if tr.strategy in (f.strategy, BASE)]
    c = Candidate(name=label, strategy={"e_d": 0.0, "e_w": 0.0, "e_r": 0.0},
                  alpha=None, origin="file", trained=True, spec={})
    c.flops = int(round(target_flops))
    if f.report is not None:
        p = f.report.predict(target_flops, level)
        c.error = ErrorEstimate(
            value=p.value, lo=p.lo, hi=p.hi, level=p.level, law=p.law,
            extrapolation=p.extrapolation, method="fit",
            source=f"{p.law} law fitted to {label} ({f.n_points} points)")
    else:
        c.error_note = f"not fitted: {f.skipped}"
    for col in ("params", "acts"):
        line = _logline([(tr.flops, getattr(tr, col)) for tr in rows])
        if line is not None:
            setattr(c, col, int(round(line(target_flops))))
    if setting is not None:
        pairs = [(float(b.get("flops") or tr.flops), float(b["time_ms"])) for tr in rows
                 for b in tr.bench or [] if b.get("mode", "infer") == "infer"
                 and b.get("time_ms") and (str(b.get("device")),
                                           int(b.get("batch_size") or 0)) == setting]
        line = _logline(pairs)
        if line is not None:
            c.runtime_ms = line(target_flops)
            c.runtime_extrapolation = max(target_flops / line.x_max,
                                          line.x_min / target_flops, 1.0)
    _check_static(c, cons)
    for col, limit in (("params", cons.max_params), ("acts", cons.max_acts)):
        if limit is not None and getattr(c, col) is None:
            c.violations.append(f"{col} unknown (the group has no {col} values to estimate "
                                "them from)")
            c.excess[f"max {col}"] = math.inf
    return c


def _check_group_limits(cands: Sequence[Candidate], cons: Constraints, batch: int | None) -> None:
    """The latency limit (a group without runtime rows is "unknown"); raises when no group is
    feasible or none both is feasible and has a fitted law."""
    for c in cands:
        if cons.max_latency_ms is not None and c.runtime_ms is None:
            c.violations.append("runtime unknown (the group has fewer than 2 sizes with "
                                "time_ms)")
            c.excess["max latency"] = math.inf
        else:
            _check_latency(c, cons, batch)
    if not any(c.feasible for c in cands):
        raise _infeasible(cands, cons, batch)
    for c in cands:
        if c.violations:
            c.verdict = "; ".join(c.violations + ([c.error_note] if c.error_note else []))
    if not any(c.feasible and c.error is not None for c in cands):
        why = "; ".join(f"{c.name}: {c.verdict or c.error_note}" for c in cands)
        raise NetscaleError(f"no group both meets the constraints and has a fitted law ({why})")


def _group_notes(chosen: Candidate, ranked: Sequence[Candidate]) -> list[str]:
    notes = []
    if chosen.error is not None and chosen.error.extrapolation > 1 + 1e-9:
        notes.append(f"the chosen group's error is extrapolated x{chosen.error.extrapolation:.3g}"
                     " past its largest model; the interval shows how much to trust it")
    rivals = [c for c in ranked[1:] if c.error is not None and chosen.error is not None
              and c.error.lo <= chosen.error.hi and chosen.error.lo <= c.error.hi]
    if rivals:
        notes.append(f"{len(rivals)} other group(s) have overlapping error intervals: the "
                     "difference may not be real")
    return notes


# --------------------------------------------------------------------------------------------
# report (a results file has no store: the report shows the fits and this verdict)
# --------------------------------------------------------------------------------------------


def is_imported_trials(trials: Sequence[TrialRow]) -> bool:
    from netscale.advise.results_io import IMPORTED

    return bool(trials) and all(t.base == IMPORTED for t in trials)


def groups_verdict_html(trials: Sequence[TrialRow], fits: StudyFits | None = None,
                        target_flops: float | None = None) -> str:
    """The report's verdict for a results file: the groups ranked by predicted error at the
    largest flops in the file (every group listed)."""
    import html

    def e(x: Any) -> str:
        return html.escape(str(x))

    done = [t for t in trials if t.status == "done" and t.top1_err is not None]
    if not done:
        return '<div class="box warn">No rows with a top-1 error: nothing to rank.</div>'
    target = float(target_flops or max(t.flops for t in done))
    study = StudyResults(path=Path("results file"), name="", config={"imported": True},
                         trials=list(trials))
    try:
        rec = recommend_groups(study, f"{target:.17g}", fits=fits)
    except NetscaleError as exc:
        return f'<div class="box warn">No verdict: {e(exc)}</div>'
    c = rec.chosen
    assert c.error is not None
    head = (f'<div class="box"><b>Lowest predicted top-1 error at {_fmt_count(target)} flops '
            f"(the largest model in the file): <code>{e(c.name)}</code></b> — "
            f"{100 * c.error.value:.2f}% [{100 * c.error.lo:.2f}, {100 * c.error.hi:.2f}] "
            f"({c.error.level:.0%} prediction interval; {e(c.error.source)}). "
            "<code>netscale recommend FILE --target-flops 8G</code> ranks at another target "
            "and applies params / activations / latency limits.</div>")
    rows = ["<table><thead><tr><th>rank</th><th class='l'>group</th>"
            "<th>predicted error (%)</th><th>past data</th><th class='l'>verdict</th>"
            "</tr></thead><tbody>"]
    for cand in rec.candidates:
        er = cand.error
        val = "" if er is None else (f"{100 * er.value:.2f} [{100 * er.lo:.2f}, "
                                     f"{100 * er.hi:.2f}]")
        ex = "" if er is None else ("inside" if er.extrapolation <= 1 + 1e-9
                                    else f"×{er.extrapolation:.3g}")
        rows.append(f"<tr><td>{cand.rank or ''}</td><td class='l'>{e(cand.name)}</td>"
                    f"<td>{val}</td><td>{ex}</td><td class='l'>{e(cand.verdict)}</td></tr>")
    rows.append("</tbody></table>")
    notes = "".join(f"<li>{e(n)}</li>" for n in rec.notes)
    return head + "".join(rows) + (f'<ul class="small">{notes}</ul>' if notes else "")


def results_csv(trials: Sequence[TrialRow]) -> str:
    """The imported rows in the results-file format (fractions, flops in multiply-adds)."""
    import io

    from netscale.util.text import csv_writer

    buf = io.StringIO()
    w = csv_writer(buf)
    w.writerow(["group", "model", "flops", "params", "acts", "top1_err", "time_ms", "seed",
                "epochs", "status"])
    for t in trials:
        w.writerow([t.strategy, t.spec.get("name", ""), t.flops, t.params or "",
                    t.acts or "", "" if t.top1_err is None else t.top1_err,
                    "" if t.time_ms is None else t.time_ms, t.seed, t.epochs_done or "",
                    t.status])
    return buf.getvalue()
