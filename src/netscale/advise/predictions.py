"""Predicted errors of the candidates: the study's fitted law of the candidate's strategy at
its realized size, with a prediction interval; an untrained ``fast:α`` is interpolated (in
log error, linearly in α) between the two nearest trained members of the fast family."""

from __future__ import annotations

import math
from collections.abc import Sequence

from netscale.advise.records import Candidate, ErrorEstimate
from netscale.advise.study_fits import StudyFits, trial_error
from netscale.errors import NetscaleError
from netscale.study.store import TrialRow


def _metric(c: Candidate, x: str, epochs: float | None) -> float:
    vals = {"flops": c.flops, "params": c.params, "acts": c.acts, "epochs": epochs}
    v = 1.0
    for k in x.split("*"):
        val = vals.get(k)
        if val is None:
            raise NetscaleError(f"cannot evaluate x = {x} for a new model (no {k}); use flops")
        v *= float(val)
    return v


def predict_errors(cands: Sequence[Candidate], fits: StudyFits, epochs: float | None,
                    level: float) -> None:
    by_name = {f.strategy: f for f in fits.fits.values()}
    family = sorted(((f.alpha, f) for f in fits.fitted.values() if f.alpha is not None),
                    key=lambda p: p[0])
    for c in cands:
        if not c.usable:
            continue
        xv = _metric(c, fits.x_metric, epochs)
        f = by_name.get(c.name)
        if f is not None and f.report is not None:
            p = f.report.predict(xv, level)
            c.error = ErrorEstimate(
                value=p.value, lo=p.lo, hi=p.hi, level=p.level, law=p.law,
                extrapolation=p.extrapolation, method="fit",
                source=f"{p.law} law fitted to {f.strategy} ({f.n_points} points)")
            continue
        if f is not None:
            c.error_note = f"trained, but its law could not be fitted: {f.skipped}"
            continue
        if c.alpha is None:
            c.error_note = "no data: not trained in this study"
            continue
        lower = [(a, g) for a, g in family if a <= c.alpha + 1e-9]
        upper = [(a, g) for a, g in family if a >= c.alpha - 1e-9]
        if not lower or not upper:
            have = ", ".join(f"{g.strategy} α={a:.3g}" for a, g in family) or "none"
            c.error_note = (f"no data: not trained, and α={c.alpha:.3g} is outside the trained "
                            f"fast-compound members ({have})")
            continue
        (a1, g1), (a2, g2) = lower[-1], upper[0]
        assert g1.report is not None and g2.report is not None
        p1, p2 = g1.report.predict(xv, level), g2.report.predict(xv, level)
        t = 0.0 if a2 - a1 < 1e-12 else (c.alpha - a1) / (a2 - a1)

        def mix(u: float, v: float, t: float = t) -> float:
            return math.exp((1 - t) * math.log(u) + t * math.log(v))

        c.error = ErrorEstimate(
            value=mix(p1.value, p2.value), lo=mix(p1.lo, p2.lo), hi=mix(p1.hi, p2.hi),
            level=p1.level, law=f"{p1.law}/{p2.law}",
            extrapolation=max(p1.extrapolation, p2.extrapolation), method="interpolated",
            source=(f"interpolated in α between {g1.strategy} (α={a1:.3g}) and {g2.strategy} "
                    f"(α={a2:.3g})"))


def study_epochs(trials: Sequence[TrialRow]) -> float | None:
    """The median epochs of the trained trials (x = epochs*flops); None when unknown."""
    vals = sorted(float(t.epochs_done) for t in trials
                  if trial_error(t) is not None and t.epochs_done)
    return vals[len(vals) // 2] if vals else None
