"""Recommendation over the groups of a results file (results trained elsewhere).

A results file (:mod:`netscale.advise.results_io`) has groups (strategies or families) but no
base network to scale, so ``netscale recommend FILE --target-flops 8G`` ranks the *groups*:
each group's fitted law is evaluated at the target flops (multiply-adds) with its prediction
interval, exactly as a study's strategies are, and :func:`netscale.advise.ranking.rank`
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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from netscale.advise.candidates import check_latency, check_static, infeasible
from netscale.advise.options import RecommendOptions
from netscale.advise.ranking import rank
from netscale.advise.records import (
    Candidate,
    Constraints,
    ErrorEstimate,
    Recommendation,
    fmt_count,
)
from netscale.advise.sources import ResultsFile
from netscale.advise.study_fits import StrategyFit, StudyFits, fit_study
from netscale.errors import NetscaleError
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.specs import NetSpec
from netscale.study.store import TrialRow
from netscale.util.fmt import table
from netscale.util.units import parse_count


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

    def chosen_spec(self) -> NetSpec:
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
        lines = self.head_lines(
            f"recommend: the group with the lowest predicted top-1 error at "
            f"{fmt_count(self.target_flops)} flops (multiply-adds), from {self.source}")
        lines.append(f"chosen: {c.name}")
        if c.error:
            e, ex = c.error, c.error.past("the group's data")
            lines.append(f"  predicted error {e.text('%')} ({e.level:.0%} prediction interval; "
                         f"{e.source}{ex})")
        est = [f"{k} {fmt_count(v)}" for k, v in (("params", c.params), ("acts", c.acts))
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
    rows = []
    for c in cands:
        e = c.error
        err = e.text() if e else "-"
        ex = "-" if e is None else ("inside" if e.extrapolation <= 1 + 1e-9
                                    else f"x{e.extrapolation:.3g}")
        rows.append([str(c.rank) if c.rank is not None else "-", c.name,
                     fmt_count(c.params) if c.params else "-",
                     fmt_count(c.acts) if c.acts else "-", err, ex,
                     f"{c.runtime_ms:.3g}" if c.runtime_ms is not None else "-", c.verdict])
    return table(rows, ["rank", "group", "params", "acts", "error % [interval]", "past data",
                        "ms", "verdict"], align="rlrrrrrl")


def _timing_setting(trials: Sequence[TrialRow]) -> tuple[str, int] | None:
    c: Counter[tuple[str, int]] = Counter(
        (tm.device, tm.batch_size) for t in trials for tm in t.timings
        if tm.mode == "infer" and tm.time_ms)
    return c.most_common(1)[0][0] if c else None


GROUPS_TIE = 0.001
"""The extra minimum error gap (0.1 points) when a results file's groups are ranked directly."""


def recommend_groups(study: ResultsFile, target: str | float,
                     options: RecommendOptions | None = None, *,
                     fits: StudyFits | None = None) -> GroupRecommendation:
    """Ranks the groups of a results file by predicted error at ``target`` flops.

    ``options`` as for :func:`netscale.advise.recommend.recommend` (default: ``tie``
    :data:`GROUPS_TIE`)."""
    opts = options or RecommendOptions(tie=GROUPS_TIE)
    laws = opts.laws
    target_flops = _groups_target(target, opts)
    cons = opts.constraints.validate()
    trials = list(study.trials)
    if fits is None:
        fits = fit_study(trials, x=laws.x, law=laws.law, n_boot=laws.n_boot, level=laws.level,
                         seed=laws.seed, noise=laws.noise)
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
        raise NetscaleError(f"--target-flops {fmt_count(target_flops)} is below the smallest "
                            f"model in the file ({fmt_count(smallest)} flops): the laws "
                            "describe larger models; give a target within or above the data")
    cands = [_group_candidate(label, f, trials, target_flops, setting, cons, laws.level)
             for label, f in fits.fits.items()]
    batch = setting[1] if setting else None
    if cons.batch_size is None and batch:
        cons = replace(cons, batch_size=batch)
    _check_group_limits(cands, cons, batch)
    notes: list[str] = []
    chosen, ranking, _decision = rank(cands, float(opts.tie), notes)
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
                                      f"(x = flops; {laws.level:.0%} prediction intervals)"),
        runtime_basis=runtime_basis, runtime_batch=batch, runtime=None, fits=fit_summary,
        notes=notes + _group_notes(chosen, ranked))


def _groups_target(target: str | float, opts: RecommendOptions) -> float:
    """The absolute target flops (multiply-adds) of a results file's recommendation."""
    if opts.timing.measure:
        raise NetscaleError("--measure times scaled networks, but a results file has no "
                            "networks to time; give time_ms columns in the file instead")
    if opts.laws.x != "flops":
        raise NetscaleError(f"recommend over a results file predicts at a flops target; "
                            f"--x {opts.laws.x} is not supported here (use --x flops)")
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        raise NetscaleError("a results file has no base model to multiply; give the target as "
                            "absolute flops, e.g. --target-flops 8G")
    t = str(target).strip()
    if t.lower().endswith("x"):
        raise NetscaleError(f"--target-flops {t}: a results file has no base model to scale by "
                            "a factor; give absolute flops (multiply-adds), e.g. 8G")
    return parse_count(t, "--target-flops")


def _group_candidate(label: str, f: StrategyFit, trials: Sequence[TrialRow], target_flops: float,
                     setting: tuple[str, int] | None, cons: Constraints,
                     level: float) -> Candidate:
    """One group at the target: its law's predicted error, params / acts / runtime from
    log-log lines through its rows, and its violations of the static limits."""
    rows = [tr for tr in trials if tr.strategy in (f.strategy, BASE_STRATEGY)]
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
        pairs = [(float(tm.flops or tr.flops), tm.time_ms) for tr in rows for tm in tr.timings
                 if tm.mode == "infer" and tm.time_ms
                 and (tm.device, tm.batch_size) == setting]
        line = _logline(pairs)
        if line is not None:
            c.runtime_ms = line(target_flops)
            c.runtime_extrapolation = max(target_flops / line.x_max,
                                          line.x_min / target_flops, 1.0)
    check_static(c, cons)
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
            check_latency(c, cons, batch)
    if not any(c.feasible for c in cands):
        raise infeasible(cands, cons, batch)
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
