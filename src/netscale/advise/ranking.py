"""Ranking the candidates with the tie logic every verdict shares
(:func:`netscale.advise.verdict.decide`): by measured error at a factor the study trained (the
study's verdict), by predicted error beyond it, or by the paper's prior without predictions;
every other candidate says why it lost."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from netscale.advise.records import Candidate, ErrorEstimate, pct
from netscale.advise.sources import StudyResults
from netscale.advise.study_fits import trial_error
from netscale.advise.verdict import Decision, Option, decide, study_verdict
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.study.store import TrialRow

PRIOR_ALPHA = 0.8


def _error_value(c: Candidate) -> float:
    """A ranked candidate's predicted error (unpredicted ones sort last)."""
    return c.error.value if c.error is not None else math.inf



def _speed(c: Candidate, ref: Candidate) -> str:
    if c.time_ms is None or ref.time_ms is None or ref.time_ms <= 0:
        return ""
    r = c.time_ms / ref.time_ms
    if abs(r - 1) < 0.01:
        return "; same runtime"
    return (f"; {100 * (1 - r):.0f}% faster" if r < 1 else f"; {100 * (r - 1):.0f}% slower") + (
        f" ({c.time_ms:.3g} vs {ref.time_ms:.3g} ms)")


def _option(c: Candidate, time_half: float) -> Option:
    assert c.error is not None
    t = c.time_ms
    if t is None:
        lo = hi = None
    elif c.measured_ms is not None:
        lo = hi = t
    else:  # predicted by the runtime model: ± z·RMSE
        lo, hi = max(0.0, t - time_half), t + time_half
    return Option(c.name, c.error.value, c.error.lo, c.error.hi, t, lo, hi,
                  "ok" if t is not None else "none")


def _explain_others(rest: Sequence[Candidate], chosen: Candidate, tied_names: set[str],
                    kind: str) -> None:
    """Each ranked candidate's verdict against the chosen one: statistically tied but not
    faster, or ``+N points`` worse; ``kind`` says whether the errors are predicted or
    measured."""
    ce = chosen.error
    assert ce is not None
    for c in rest:
        e = c.error
        assert e is not None
        if c.name in tied_names:
            c.verdict = (f"{kind} error statistically tied with {chosen.name} "
                         f"({pct(e.value)}% vs {pct(ce.value)}%; the interval of the "
                         "difference includes 0) but not faster" + _speed(c, chosen))
            continue
        overlap = e.lo <= ce.hi and ce.lo <= e.hi
        c.verdict = (f"+{pct(e.value - ce.value)} points {kind} error vs {chosen.name} "
                     f"({pct(e.value)}% vs {pct(ce.value)}%; "
                     f"{'intervals overlap' if overlap else 'intervals do not overlap'}, "
                     "the difference's does not include 0)" + _speed(c, chosen))


def rank(cands: list[Candidate], tie: float, notes: list[str], time_half: float = 0.0
          ) -> tuple[Candidate, str, Decision | None]:
    """Ranks feasible candidates with :func:`netscale.advise.decide` (the tie logic of every
    verdict): tied with the lowest predicted error when the interval of the difference
    contains 0 (or it is at most ``tie``); the fastest of the tied set is chosen."""
    feasible = [c for c in cands if c.feasible]
    predicted = [c for c in feasible if c.error is not None]
    inf = math.inf
    if predicted:
        ranking = "predicted error"
        by_name = {c.name: c for c in predicted}
        dec = decide([_option(c, time_half) for c in predicted], min_gap=tie)
        chosen = by_name[dec.pick.name]
        best = by_name[dec.best.name]
        tied_names = {o.name for o in dec.tied}
        assert best.error is not None and chosen.error is not None
        if chosen is best:
            chosen.verdict = "chosen: lowest predicted error"
            if dec.tied:
                chosen.verdict += " and fastest of those statistically tied with it"
        else:
            chosen.verdict = (f"chosen: statistically tied with the lowest predicted error "
                              f"({best.name} {pct(best.error.value)}%) and faster")
        rest = sorted((c for c in predicted if c is not chosen),
                      key=lambda c: (_error_value(c), c.time_ms if c.time_ms is not None
                                     else inf, c.name))
        order = [chosen, *rest]
        _explain_others(rest, chosen, tied_names, "predicted")
        for i, c in enumerate(order, 1):
            c.rank = i
        unknown = [c for c in feasible if c.error is None]
        for c in unknown:
            c.verdict = c.error_note or "no data"
        if unknown:
            notes.append(f"{len(unknown)} feasible candidate(s) have no error prediction "
                         f"({', '.join(c.name for c in unknown)}); add them to the study's "
                         "strategies to compare them")
        return chosen, ranking, dec
    return rank_by_prior(cands, feasible, notes), "prior", None


def rank_by_prior(cands: Sequence[Candidate], feasible: Sequence[Candidate],
                   notes: list[str]) -> Candidate:
    """Without any error prediction: fast compound scaling with α closest to the paper's
    :data:`PRIOR_ALPHA`, then the fastest."""
    inf = math.inf

    def prior(c: Candidate) -> tuple[float, float, float]:
        t = c.time_ms if c.time_ms is not None else inf
        if c.alpha is not None:
            return (0.0, abs(c.alpha - PRIOR_ALPHA), t)
        return (1.0, 0.0, t)

    order = sorted(feasible, key=prior)
    chosen = order[0]
    trained_any = any(c.trained for c in cands)
    if trained_any:
        notes.append("no feasible candidate has a predicted error (the constraints exclude "
                     "every strategy the study trained or could interpolate); chosen by the "
                     "paper's prior instead")
    if trained_any:
        chosen.verdict = ("chosen by the paper's prior (no feasible candidate has an error "
                          "prediction): the feasible fast compound scaling with α closest to "
                          f"{PRIOR_ALPHA:g} (dWr's), then the fastest")
    else:
        chosen.verdict = ("chosen by the paper's prior (no trained results to predict errors): "
                          f"fast compound scaling with α closest to {PRIOR_ALPHA:g} (dWr) "
                          "among the feasible candidates, then the fastest")
    for c in order[1:]:
        why = c.error_note or "no error prediction"
        pa = (f"α={c.alpha:.3g} is further from {PRIOR_ALPHA:g}" if c.alpha is not None
              else "not fast compound scaling")
        c.verdict = f"{why}; prior: {pa}" + _speed(c, chosen)
    for i, c in enumerate(order, 1):
        c.rank = i
    return chosen


def trained_factor(trials: Sequence[TrialRow], factor: float, rel: float = 0.02) -> float | None:
    """The study factor (other than 1) within ``rel`` of ``factor`` that has finished trials."""
    fs = sorted({float(t.factor) for t in trials if t.strategy != BASE_STRATEGY
                 and trial_error(t) is not None and float(t.factor) != 1.0})
    near = [f for f in fs if abs(factor / f - 1) <= rel]
    return min(near, key=lambda f: abs(factor / f - 1)) if near else None


def measured_rank(cands: list[Candidate], trials: Sequence[TrialRow], factor: float,
                  study: StudyResults, level: float, notes: list[str], tie: float = 0.0
                   ) -> tuple[Candidate, list[str], str, dict[str, Any]] | None:
    """At a factor the study trained: the study's verdict (netscale.advise.study_verdict, the
    same call as the report's box) restricted to the feasible trained candidates; None when
    no trained candidate is feasible (then the laws rank the others)."""
    base = trials[0].base if trials else None
    by_name = {c.name: c for c in cands
               if (c.spec is not None or c.call is not None) and c.trained}
    probe = study_verdict(trials, data_info=study.data_info, config=study.config,
                          level=level, factor=factor, base=base)
    groups = {g.strategy: g for g in probe.groups if g.factor == factor and g.measured
              and g.strategy in by_name}
    for name, g in groups.items():
        c = by_name[name]
        c.same_as = None  # measured on its own in the study
        if c.verdict.startswith("same network as"):
            c.verdict = ""
        c.error = ErrorEstimate(
            value=float(g.top1_err_mean or 0.0), lo=float(g.top1_err_low or 0.0),
            hi=float(g.top1_err_high or 0.0), level=level, law="measured", extrapolation=1.0,
            method="measured",
            source=(f"measured: {g.n_seeds} seed(s) at ×{factor:g}"
                    + (f", {g.n_val} validation images" if g.n_val else "")
                    + (", seeds missing" if g.seeds_missing else "")))
        if g.time_ms is not None and c.measured_ms is None:
            c.measured_ms, c.measured_source = g.time_ms, "measured in the study"
    ok = {n for n, c in by_name.items() if n in groups and c.feasible}
    if not ok:
        return None
    v = study_verdict(trials, data_info=study.data_info, config=study.config,
                      level=level, factor=factor, base=base, only=lambda s: s in ok,
                      min_gap=tie)
    if v.recommended is None or v.decision is None:
        return None
    chosen = by_name[v.recommended]
    tied_names = set(v.tied)
    dec = v.decision
    chosen.verdict = ("chosen: " + ("statistically tied with the lowest measured error and "
                                    "the fastest of those" if v.tied else
                                    "lowest measured error, separated from the others"))
    rest = [by_name[o.name] for o in sorted(dec.tied + dec.separated,
                                            key=lambda o: (o.err, o.name))]
    _explain_others(rest, chosen, tied_names, "measured")
    for i, c in enumerate([chosen, *rest], 1):
        c.rank = i
    for c in cands:
        if c.rank is None and c.usable and not c.violations:
            pred = (f"predicted {c.error.text('%')}; " if c.error is not None
                    else f"{c.error_note}; " if c.error_note else "")
            c.verdict = (f"not trained at ×{factor:g}: {pred}the verdict at a trained factor "
                         "compares measured results only")
    notes.extend(v.notes)
    return chosen, list(v.tied), v.reason, v.to_dict()

