"""The recommendation engine: which scaling strategy to use for a flops budget.

Given a study (trained results) or just a base model (no trained results), a target (a factor
such as ``4x`` or absolute flops such as ``4G``; flops are multiply-adds) and optional
constraints (max latency in ms per batch of B images, max params, max activations):

1. **Candidates**: the strategies the study trained, the named strategies (d, w, r, dw, dr,
   wr, dwr, dWr) and fast compound scaling ``fast:α`` on a grid of α. Each is scaled from the
   base to the target with exact rounding. Strategies with the same exponents, or that give
   the same network at this size, are merged.
2. **Predicted error**: from the study's fitted law of that strategy (see
   :mod:`netscale.advise.study_fits`), evaluated at the candidate's realized flops, with a
   prediction interval. A ``fast:α`` the study did not train is interpolated (in log error,
   linearly in α) between the two nearest trained members of the fast family, identified by
   their exponents (dr is α = 0, dwr α = 1/3, dWr α = 0.8, w α = 1). Other untrained
   candidates have no prediction ("no data").
3. **Runtime**: predicted by the study's runtime model (fitted on its benchmark rows; it
   applies to the study's benchmark batch size and device), or measured here with the bench
   harness (``measure=True``, and always without a study).
4. **Ranking** (the tie logic of :func:`netscale.advise.decide`, shared with the study
   verdict): the candidates statistically tied with the lowest error (the interval of the
   difference contains 0, or it is at most ``tie``) are ranked by runtime and the fastest is
   chosen. At a factor the study trained, the trained candidates' errors are the measured
   groups (mean of the seeds, 95 % interval) and the choice is the study's verdict
   (:func:`netscale.advise.study_verdict`, the report's box), so ``recommend`` and the report
   agree by construction; untrained candidates are listed but not ranked there. Beyond the
   trained factors the errors are the laws' predictions with their prediction intervals, the
   runtimes the runtime model's ± z·RMSE. Without any prediction (no study, or no trained
   candidate is feasible), the paper's prior is used: fast compound scaling with α closest
   to 0.8 (dWr), then runtime.

Every other candidate says why it lost: a violated constraint, a higher predicted error (by
how much, and whether the intervals overlap), the same network as another, or no data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netscale.advise.study_fits import (
    BASE,
    StudyFits,
    StudyResults,
    StudyRuntime,
    check_x_metric,
    fast_alpha,
    fit_study,
    is_study_dir,
    load_study,
    measured_times,
    study_runtime,
    trial_error,
)
from netscale.errors import NetscaleError
from netscale.laws.fit import DEFAULT_LEVEL, DEFAULT_N_BOOT
from netscale.specs.spec import network_key
from netscale.util import serial

DEFAULT_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PRIOR_ALPHA = 0.8
DEFAULT_TIE = 0.0  # an extra minimum gap; ties come from the intervals
DEFAULT_BUDGET_S = 1.0

MeasureFn = Callable[[Any, "int | None", "str | None"], "tuple[float, int, str] | None"]
"""(spec, batch_size, device) -> (ms per batch, batch size used, device) or None (failed)."""


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _fmt_count(v: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


@dataclass(frozen=True)
class Constraints:
    """Limits a recommended model must satisfy (None: no limit). ``max_latency_ms`` is the
    time per batch of ``batch_size`` images (the study's benchmark batch size by default)."""

    max_latency_ms: float | None = None
    batch_size: int | None = None
    max_params: float | None = None
    max_acts: float | None = None

    def validate(self) -> Constraints:
        for name in ("max_latency_ms", "max_params", "max_acts"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)
                                      and v > 0):
                raise NetscaleError(f"{name.replace('_', ' ')} must be a positive number, "
                                    f"got {v!r}")
        b = self.batch_size
        if b is not None and (not isinstance(b, int) or isinstance(b, bool) or b < 1):
            raise NetscaleError(f"batch size must be a positive integer, got {b!r}")
        return self

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_params, self.max_acts))

    def describe(self, batch: int | None = None) -> str:
        parts = []
        if self.max_latency_ms is not None:
            b = self.batch_size or batch
            parts.append(f"latency <= {self.max_latency_ms:g} ms per batch"
                         + (f" of {b}" if b else ""))
        if self.max_params is not None:
            parts.append(f"params <= {_fmt_count(self.max_params)}")
        if self.max_acts is not None:
            parts.append(f"acts <= {_fmt_count(self.max_acts)}")
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass(frozen=True)
class ErrorEstimate:
    """A predicted error (fraction) with its prediction interval at ``level``."""

    value: float
    lo: float
    hi: float
    level: float
    law: str
    extrapolation: float
    method: str  # "fit" | "interpolated"
    source: str

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass
class Candidate:
    """One scaled candidate: its spec, predicted error and runtime, and its verdict."""

    name: str
    strategy: dict[str, Any]
    alpha: float | None
    origin: str  # "study" (trained), "named" or "grid"
    trained: bool = False
    spec: dict[str, Any] | None = None
    flops: int | None = None
    params: int | None = None
    acts: int | None = None
    resolution: int | None = None
    flops_factor: float | None = None
    error: ErrorEstimate | None = None
    error_note: str = ""
    runtime_ms: float | None = None  # predicted by the study's runtime model
    runtime_extrapolation: float | None = None
    measured_ms: float | None = None
    measured_source: str = ""
    violations: list[str] = field(default_factory=list)
    excess: dict[str, float] = field(default_factory=dict)  # constraint -> value / limit
    same_as: str | None = None
    scale_error: str | None = None
    rank: int | None = None
    verdict: str = ""

    @property
    def usable(self) -> bool:
        return self.spec is not None and self.same_as is None

    @property
    def feasible(self) -> bool:
        return self.usable and not self.violations

    @property
    def time_ms(self) -> float | None:
        """Measured time if available, else predicted (ms per batch)."""
        return self.measured_ms if self.measured_ms is not None else self.runtime_ms

    def to_dict(self, *, spec: bool = True) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("error", "spec")}
        d["error"] = self.error.to_dict() if self.error else None
        d["feasible"] = self.feasible
        d["time_ms"] = self.time_ms
        if spec:
            d["spec"] = self.spec
        return d


@dataclass
class Recommendation:
    """The result of :func:`recommend`: the chosen candidate and every other one ranked."""

    mode: str  # "study" | "base"
    source: str
    base: str
    base_flops: int
    factor: float
    target_flops: float
    constraints: Constraints
    chosen: Candidate
    candidates: list[Candidate]
    ranking: str  # "predicted error" | "prior"
    error_basis: str
    runtime_basis: str
    runtime_batch: int | None
    runtime: dict[str, Any] | None = None
    fits: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)  # statistically tied with the best
    reason: str = ""  # the verdict sentence (netscale.advise.explain / study_verdict)
    verdict: dict[str, Any] | None = None  # at a trained factor: the study verdict

    @property
    def recommended(self) -> str:
        return self.chosen.name

    def chosen_spec(self) -> Any:
        from netscale.specs import NetSpec

        assert self.chosen.spec is not None
        return NetSpec.from_dict(self.chosen.spec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "source": self.source, "base": self.base,
            "base_flops": self.base_flops, "factor": self.factor,
            "target_flops": self.target_flops, "constraints": self.constraints.to_dict(),
            "ranking": self.ranking, "error_basis": self.error_basis,
            "runtime_basis": self.runtime_basis, "runtime_batch": self.runtime_batch,
            "chosen": self.chosen.to_dict(),
            "candidates": [c.to_dict(spec=False) for c in self.candidates],
            "runtime": self.runtime, "fits": self.fits, "notes": list(self.notes),
            "recommended": self.chosen.name, "tied": list(self.tied), "reason": self.reason,
            "verdict": self.verdict,
            "units": {"flops": "multiply-adds", "error": "fraction",
                      "time": "ms per batch"},
        }

    def format_text(self) -> str:
        """The human-readable summary printed by ``netscale recommend``."""
        c = self.chosen
        lines = [
            f"recommend: {self.base} ({_fmt_count(self.base_flops)} flops) x{self.factor:.4g} "
            f"-> target {_fmt_count(self.target_flops)} flops (multiply-adds)",
            f"error:   {self.error_basis}",
            f"runtime: {self.runtime_basis}",
            f"constraints: {self.constraints.describe(self.runtime_batch)}",
            "",
            f"chosen: {c.name}  ({_exps(c.strategy)})"
            + (f"  — tied with {', '.join(self.tied)}" if self.tied else ""),
        ]
        spec = c.spec or {}
        stages = spec.get("stages", [])
        lines.append(f"  depths {[s['depth'] for s in stages]}  widths "
                     f"{[s['width'] for s in stages]}  resolution {c.resolution} px")
        lines.append(f"  flops {_fmt_count(c.flops or 0)} (x{c.flops_factor:.3f}), params "
                     f"{_fmt_count(c.params or 0)}, acts {_fmt_count(c.acts or 0)}")
        if c.error:
            e = c.error
            ex = (f", extrapolating x{e.extrapolation:.3g} past the trained sizes"
                  if e.extrapolation > 1 + 1e-9 else "")
            kind = "measured error" if e.method == "measured" else "predicted error"
            iv = "interval" if e.method == "measured" else "prediction interval"
            lines.append(f"  {kind} {100 * e.value:.2f}% [{100 * e.lo:.2f}, "
                         f"{100 * e.hi:.2f}] ({e.level:.0%} {iv}; {e.source}{ex})")
        else:
            lines.append(f"  predicted error: none ({c.error_note or 'no trained results'})")
        rt = []
        if c.runtime_ms is not None:
            rt.append(f"predicted {c.runtime_ms:.3g} ms")
        if c.measured_ms is not None:
            rt.append(f"measured {c.measured_ms:.3g} ms ({c.measured_source})")
        batch = f" per batch of {self.runtime_batch}" if self.runtime_batch else ""
        lines.append(f"  runtime: {', '.join(rt) + batch if rt else 'not available'}")
        lines.append(f"  {c.verdict}")
        if self.reason:
            lines.append(f"verdict: {self.reason}")
        lines.append("")
        lines.append(candidate_table(self.candidates))
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def _exps(strategy: Mapping[str, Any]) -> str:
    return (f"e_d {strategy['e_d']:.3g}, e_w {strategy['e_w']:.3g}, e_r {strategy['e_r']:.3g}"
            + (", group width follows width" if strategy.get("e_w", 0) > 0
               and abs(strategy.get("e_g", 0) - strategy["e_w"]) < 1e-9 else ""))


def candidate_table(cands: Sequence[Candidate]) -> str:
    from netscale.util.fmt import table

    rows = []
    for c in cands:
        err = (f"{100 * c.error.value:.2f} [{100 * c.error.lo:.2f}, {100 * c.error.hi:.2f}]"
               + {"interpolated": "*", "measured": "m"}.get(c.error.method, "")
               if c.error else "-")
        t = c.time_ms
        rows.append([
            str(c.rank) if c.rank is not None else "-", c.name,
            _fmt_count(c.flops) if c.flops else "-", _fmt_count(c.params) if c.params else "-",
            _fmt_count(c.acts) if c.acts else "-", str(c.resolution or "-"), err,
            f"{t:.3g}" + ("m" if c.measured_ms is not None else "") if t is not None else "-",
            c.verdict,
        ])
    text = table(rows, ["rank", "strategy", "flops", "params", "acts", "px",
                        "error % [interval]", "ms", "verdict"], align="rlrrrrrrl")
    return text + ("\n(* interpolated between trained fast-compound members; m after an "
                   "error = measured mean of the study's seeds, after a time = measured, "
                   "otherwise predicted)")


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------


def _strategy_list(trained: Sequence[str], extra: Sequence[str] | None,
                   alphas: Sequence[float]) -> list[tuple[Any, str]]:
    """(Strategy, origin) for trained, named (or ``extra``) and fast:α, deduplicated by
    exponents (first wins)."""
    from netscale.scaling import NAMED, fast, parse_strategy

    out: list[tuple[Any, str]] = []
    seen: set[tuple[float, float, float]] = set()

    def add(s: Any, origin: str) -> None:
        key = (round(s.e_d, 6), round(s.e_w, 6), round(s.e_r, 6))
        if key not in seen:
            seen.add(key)
            out.append((s, origin))

    for name in trained:
        try:
            add(parse_strategy(name), "study")
        except NetscaleError:
            continue
    for name in (NAMED if extra is None else extra):
        add(parse_strategy(name), "named")
    for a in alphas:
        a = float(a)
        if not 0.0 <= a <= 1.0:
            raise NetscaleError(f"fast compound α must be in [0, 1], got {a:g}")
        add(fast(round(a, 4)), "grid")
    return out


def _error_value(c: Candidate) -> float:
    """A ranked candidate's predicted error (unpredicted ones sort last)."""
    return c.error.value if c.error is not None else math.inf


def _metric(c: Candidate, x: str, epochs: float | None) -> float:
    vals = {"flops": c.flops, "params": c.params, "acts": c.acts, "epochs": epochs}
    v = 1.0
    for k in x.split("*"):
        val = vals.get(k)
        if val is None:
            raise NetscaleError(f"cannot evaluate x = {x} for a new model (no {k}); use flops")
        v *= float(val)
    return v


def _predict_errors(cands: Sequence[Candidate], fits: StudyFits, epochs: float | None,
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


def _over(ratio: float) -> str:
    return f"+{100 * (ratio - 1):.0f}%"


def _check_static(c: Candidate, cons: Constraints) -> None:
    if cons.max_params is not None and c.params is not None and c.params > cons.max_params:
        c.excess["max params"] = c.params / cons.max_params
        c.violations.append(f"params {_fmt_count(c.params)} > max {_fmt_count(cons.max_params)}"
                            f" ({_over(c.excess['max params'])})")
    if cons.max_acts is not None and c.acts is not None and c.acts > cons.max_acts:
        c.excess["max acts"] = c.acts / cons.max_acts
        c.violations.append(f"acts {_fmt_count(c.acts)} > max {_fmt_count(cons.max_acts)}"
                            f" ({_over(c.excess['max acts'])})")


def _check_latency(c: Candidate, cons: Constraints, batch: int | None) -> None:
    if cons.max_latency_ms is None or not c.usable:
        return
    t = c.time_ms
    if t is None:
        if c.violations:  # already excluded (and so not measured)
            return
        c.violations.append("runtime unknown (measurement failed)")
        c.excess["max latency"] = math.inf
        return
    if t > cons.max_latency_ms:
        kind = "measured" if c.measured_ms is not None else "predicted"
        c.excess["max latency"] = t / cons.max_latency_ms
        c.violations.append(f"latency {t:.4g} ms ({kind}) > max {cons.max_latency_ms:g} ms"
                            + (f" at batch {batch}" if batch else "")
                            + f" ({_over(c.excess['max latency'])})")


def default_measure(budget_s: float = DEFAULT_BUDGET_S, mode: str = "infer",
                    setting: str = "contiguous+fp32") -> MeasureFn:
    """Times a spec with the bench harness (median ms per batch): inference, or a training
    step (forward + backward + SGD step) with ``mode="train"``, in the execution ``setting``
    (``memory_format+precision``; one setting for every candidate, so they compare)."""
    memory_format, _, precision = setting.partition("+")

    def run(spec: Any, batch_size: int | None, device: str | None
            ) -> tuple[float, int, str] | None:
        from netscale.bench.harness import BenchConfig, bench_spec
        from netscale.bench.timing import TimingPolicy

        cfg = BenchConfig(mode=mode, batch_size=batch_size, device=device,
                          policy=TimingPolicy(budget_s=budget_s, warmup_s=min(0.3, budget_s)),
                          memory_format=memory_format, precision=precision)
        r = bench_spec(spec, cfg)
        if r.status != "ok" or r.time_ms is None:
            return None
        return float(r.time_ms), int(r.batch_size), str(r.device)

    return run


# --------------------------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------------------------


def _pts(v: float) -> str:
    return f"{100 * v:.2f}"


def _speed(c: Candidate, ref: Candidate) -> str:
    if c.time_ms is None or ref.time_ms is None or ref.time_ms <= 0:
        return ""
    r = c.time_ms / ref.time_ms
    if abs(r - 1) < 0.01:
        return "; same runtime"
    return (f"; {100 * (1 - r):.0f}% faster" if r < 1 else f"; {100 * (r - 1):.0f}% slower") + (
        f" ({c.time_ms:.3g} vs {ref.time_ms:.3g} ms)")


def _option(c: Candidate, time_half: float) -> Any:
    from netscale.advise import Option

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
                         f"({_pts(e.value)}% vs {_pts(ce.value)}%; the interval of the "
                         "difference includes 0) but not faster" + _speed(c, chosen))
            continue
        overlap = e.lo <= ce.hi and ce.lo <= e.hi
        c.verdict = (f"+{_pts(e.value - ce.value)} points {kind} error vs {chosen.name} "
                     f"({_pts(e.value)}% vs {_pts(ce.value)}%; "
                     f"{'intervals overlap' if overlap else 'intervals do not overlap'}, "
                     "the difference's does not include 0)" + _speed(c, chosen))


def _rank(cands: list[Candidate], tie: float, notes: list[str], time_half: float = 0.0
          ) -> tuple[Candidate, str, Any]:
    """Ranks feasible candidates with :func:`netscale.advise.decide` (the tie logic of every
    verdict): tied with the lowest predicted error when the interval of the difference
    contains 0 (or it is at most ``tie``); the fastest of the tied set is chosen."""
    from netscale.advise import decide

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
                              f"({best.name} {_pts(best.error.value)}%) and faster")
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
    return _rank_by_prior(cands, feasible, notes), "prior", None


def _rank_by_prior(cands: Sequence[Candidate], feasible: Sequence[Candidate],
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


def _infeasible(cands: Sequence[Candidate], cons: Constraints, batch: int | None) -> NetscaleError:
    usable = [c for c in cands if c.usable]
    if not usable:
        why = "; ".join(f"{c.name}: {c.scale_error}" for c in cands if c.scale_error)
        return NetscaleError(f"no candidate could be scaled to the target ({why})")
    counts: dict[str, int] = {}
    for c in usable:
        for k in c.excess:
            counts[k] = counts.get(k, 0) + 1
    total = len(usable)
    parts = []
    for k, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if k == "max latency":
            limit = f"{cons.max_latency_ms:g} ms" + (f" at batch {batch}" if batch else "")
        else:
            limit = _fmt_count((cons.max_params if k == "max params" else cons.max_acts) or 0)
        parts.append(f"{k} {limit} excludes {n} of {total}")
    alone = [k for k, n in counts.items() if n == total]
    if len(alone) == 1:
        head = f"{alone[0]} alone excludes every candidate"
    elif alone:
        head = f"{' and '.join(alone)} each exclude every candidate"
    else:
        head = "together the constraints exclude every candidate"
    closest = min(usable, key=lambda c: max(c.excess.values(), default=0.0))
    return NetscaleError(
        f"no candidate meets the constraints: {head} ({'; '.join(parts)}); closest: "
        f"{closest.name} ({'; '.join(closest.violations)}); relax the constraint or lower "
        "--target-flops")


def _trained_factor(trials: Sequence[Any], factor: float, rel: float = 0.02) -> float | None:
    """The study factor (other than 1) within ``rel`` of ``factor`` that has finished trials."""
    fs = sorted({float(t.factor) for t in trials if t.strategy != BASE
                 and trial_error(t) is not None and float(t.factor) != 1.0})
    near = [f for f in fs if abs(factor / f - 1) <= rel]
    return min(near, key=lambda f: abs(factor / f - 1)) if near else None


def _measured_rank(cands: list[Candidate], trials: Sequence[Any], factor: float,
                   meta: Mapping[str, Any], level: float, notes: list[str], tie: float = 0.0
                   ) -> tuple[Candidate, list[str], str, dict[str, Any]] | None:
    """At a factor the study trained: the study's verdict (netscale.advise.study_verdict, the
    same call as the report's box) restricted to the feasible trained candidates; None when
    no trained candidate is feasible (then the laws rank the others)."""
    from netscale.advise import study_verdict

    base = trials[0].base if trials else None
    by_name = {c.name: c for c in cands if c.spec is not None and c.trained}
    probe = study_verdict(trials, data_info=meta.get("data_info"), config=meta.get("config"),
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
    v = study_verdict(trials, data_info=meta.get("data_info"), config=meta.get("config"),
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
            pred = (f"predicted {_pts(c.error.value)}% [{_pts(c.error.lo)}, "
                    f"{_pts(c.error.hi)}]; " if c.error is not None
                    else f"{c.error_note}; " if c.error_note else "")
            c.verdict = (f"not trained at ×{factor:g}: {pred}the verdict at a trained factor "
                         "compares measured results only")
    notes.extend(v.notes)
    return chosen, list(v.tied), v.reason, v.to_dict()


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def _base_spec(study: StudyResults, base: str) -> Any:
    from netscale.specs import NetSpec

    for t in study.trials:
        if t.base == base and t.strategy == BASE:
            model = t.model
            if model is None:  # not a full spec: NetSpec says what is missing
                return NetSpec.from_dict(t.spec)
            if not isinstance(model, NetSpec):
                raise NetscaleError(
                    f"base {base!r} is a module factory: recommend scales specs only; use "
                    "'netscale fit' on the study and 'netscale scale --module … "
                    "--target-flops …' to size it")
            return model
    # no s = 1 trial: rebuild the base from the config
    from netscale.study.config import parse_study_config

    try:
        cfg = parse_study_config(study.config, source=str(study.path / "study config"))
        for ref in cfg.bases:
            label = Path(ref).stem if ref.lower().endswith((".yaml", ".yml", ".json")) else ref
            if label == base:
                return cfg.resolve_base(ref, study.data_info or None)
    except NetscaleError:
        pass
    raise NetscaleError(f"cannot find the base model {base!r} of the study (no s = 1 trial and "
                        "its config does not resolve); pass the base spec file instead")


def _study_epochs(trials: Sequence[Any]) -> float | None:
    vals = sorted(float(t.epochs_done) for t in trials
                  if trial_error(t) is not None and bool(getattr(t, "epochs_done", 0)))
    return vals[len(vals) // 2] if vals else None


@dataclass(frozen=True)
class RecommendOptions:
    """How :func:`recommend` ranks: constraints, candidates, law fits, ties and timing.

    ``max_latency_ms`` is per batch of ``batch_size`` (default: the study's benchmark batch
    size); ``max_params`` and ``max_acts`` are counts. ``measure``: time candidates here with
    the bench harness (default: only when there is no study); ``device`` where. ``strategies``
    replaces the named strategies (d, w, r, dw, dr, wr, dwr, dWr); ``alphas`` is the fast
    compound grid. ``base`` picks one base of a study with several. ``x``, ``law``, ``level``,
    ``n_boot`` and ``seed`` configure the law fits; ``tie`` is an extra minimum error gap.
    ``budget_s`` is the timing budget per candidate and ``measure_fn`` replaces the bench
    harness. ``latency_mode``: ``infer`` (inference time per batch) or ``train`` (training step
    time per batch) for the runtime model, the measurements and the latency limit. ``noise``:
    the known noise of a results file's errors (results files only).
    """

    max_latency_ms: float | None = None
    batch_size: int | None = None
    max_params: float | None = None
    max_acts: float | None = None
    device: str | None = None
    measure: bool | None = None
    strategies: Sequence[str] | None = None
    alphas: Sequence[float] = DEFAULT_ALPHAS
    base: str | None = None
    x: str = "flops"
    law: str = "auto"
    level: float = DEFAULT_LEVEL
    n_boot: int = DEFAULT_N_BOOT
    seed: int = 0
    tie: float = DEFAULT_TIE
    budget_s: float = DEFAULT_BUDGET_S
    measure_fn: MeasureFn | None = None
    latency_mode: str = "infer"
    noise: float | None = None

    @classmethod
    def build(cls, options: RecommendOptions | None, overrides: Mapping[str, Any],
              default: RecommendOptions | None = None) -> RecommendOptions:
        """``options`` (else ``default``, else the defaults) with ``overrides`` applied."""
        from netscale.util.options import build_options

        return build_options(cls, options, overrides, default)

    def constraints(self) -> Constraints:
        return Constraints(self.max_latency_ms, self.batch_size, self.max_params,
                           self.max_acts).validate()

    def timer(self, setting: str = "contiguous+fp32") -> MeasureFn:
        """``measure_fn``, else the bench harness in ``latency_mode`` and ``setting`` (the
        study runtime model's execution setting, so measured and predicted times compare)."""
        return self.measure_fn or default_measure(self.budget_s, mode=self.latency_mode,
                                                  setting=setting)


@dataclass(frozen=True)
class _Run:
    """What one recommendation works on: the base, the study's fits and runtime model (if
    any), the constraints and whether candidates are timed here."""

    spec: Any
    label: str
    source: str
    mode: str  # "study" | "base"
    opts: RecommendOptions
    cons: Constraints
    measure: bool
    device: str | None
    fits: StudyFits | None = None
    runtime: StudyRuntime | None = None
    study_times: Mapping[str, float] = field(default_factory=dict)
    trials: Sequence[Any] = ()
    study_meta: Mapping[str, Any] = field(default_factory=dict)


def _source_study(source: str | Path | Any) -> StudyResults | None:
    """The study ``source`` names (a directory, a results file or a loaded study), or None
    for a model name, spec file or NetSpec."""
    from netscale.specs import NetSpec

    if isinstance(source, StudyResults):
        return source
    if isinstance(source, NetSpec):
        return None
    if str(source).lower().endswith((".csv", ".json")):  # results trained elsewhere
        return load_study(source)
    if is_study_dir(source) or Path(str(source)).is_dir():
        return load_study(source)  # a directory without results raises "not a study"
    return None


def _source_spec(source: str | Path | Any) -> tuple[Any, str]:
    from netscale.specs import NetSpec, resolve_spec

    if isinstance(source, NetSpec):
        return source.validate(), source.name
    try:
        spec = resolve_spec(str(source))
    except NetscaleError as exc:
        raise NetscaleError(f"{source!s} is neither a study directory (with "
                            f"results.sqlite) nor a model or spec file: {exc}") from None
    return spec, spec.name


def recommend(source: str | Path | Any, target: str | float,
              options: RecommendOptions | None = None, **overrides: Any) -> Recommendation:
    """Ranks scaling strategies for a target and returns the best feasible candidate.

    ``source``: a study directory (trained results), a :class:`StudyResults`, a model name,
    a spec file or a :class:`NetSpec` (no trained results). ``target``: a factor (``4`` or
    ``"4x"``) or absolute flops (``"4G"``, multiply-adds). ``options`` (a
    :class:`RecommendOptions`) and keyword ``overrides`` of its fields (``max_latency_ms=40``,
    ``strategies=[...]``, ``measure=True``, ...) say how to rank.
    """
    opts = RecommendOptions.build(options, overrides)
    if opts.latency_mode not in ("infer", "train"):
        raise NetscaleError(f"latency mode must be infer or train, got {opts.latency_mode!r}")
    study = _source_study(source)
    if study is not None:
        return recommend_study(study, target, opts)
    spec, label = _source_spec(source)
    cons = opts.constraints()
    if opts.measure is False and cons.max_latency_ms is not None:
        raise NetscaleError("a latency limit without a study needs measured runtimes; drop "
                            "--no-measure (candidates are timed here with the bench harness)")
    return _recommend(_Run(spec=spec, label=label, source=str(getattr(source, "name", source)),
                           mode="base", opts=opts, cons=cons, measure=opts.measure is not False,
                           device=opts.device), target)


def recommend_study(study: StudyResults, target: str | float,
                    options: RecommendOptions | None = None, *, fits: StudyFits | None = None,
                    **overrides: Any) -> Recommendation:
    """:func:`recommend` for a loaded study (``fits`` reuses already fitted laws; a study
    never times candidates unless ``measure`` is set)."""
    opts = RecommendOptions.build(options, overrides)
    if study.config.get("imported"):  # a results file: rank its groups (advise/groups.py)
        from netscale.advise.groups import recommend_groups

        return recommend_groups(study, target, opts, fits=fits)
    return _recommend(_study_run(study, opts, fits), target)


def _pick_base(study: StudyResults, base: str | None) -> str:
    bases = study.bases
    if not bases:
        raise NetscaleError(f"study {str(study.path)!r} has no trials yet; run 'netscale study "
                            "CONFIG' first")
    if base is None:
        if len(bases) > 1:
            raise NetscaleError(f"the study has several bases ({', '.join(bases)}); pick one "
                                "with --base")
        return bases[0]
    if base not in bases:
        raise NetscaleError(f"base {base!r} is not in the study; bases: {', '.join(bases)}")
    return base


def _study_runtime_model(trials: Sequence[Any], opts: RecommendOptions, cons: Constraints,
                         measure: bool) -> StudyRuntime | None:
    """The study's runtime model in ``latency_mode``; None when it has none and candidates
    are timed here instead."""
    device = opts.device
    runtime: StudyRuntime | None
    try:
        runtime = study_runtime(trials, mode=opts.latency_mode, batch_size=cons.batch_size,
                                device=device)
    except NetscaleError as exc:
        if not measure:
            raise NetscaleError(f"{exc}; add --measure to time the candidates here at batch "
                                f"{cons.batch_size or 'the default'}"
                                + (f" on {device}" if device else "")) from None
        runtime = None
    if cons.max_latency_ms is not None and runtime is None and not measure:
        raise NetscaleError(f"the study has no {opts.latency_mode} runtime measurements to "
                            "check --max-latency "
                            "against (benchmarking was off or failed); add --measure to time "
                            "the candidates on this machine")
    return runtime


def _study_run(study: StudyResults, opts: RecommendOptions, fits: StudyFits | None) -> _Run:
    x = check_x_metric(opts.x)
    cons = opts.constraints()
    base = _pick_base(study, opts.base)
    trials = [t for t in study.trials if t.base == base]
    if fits is None:
        fits = fit_study(trials, x=x, law=opts.law, n_boot=opts.n_boot, level=opts.level,
                         seed=opts.seed)
    measure = bool(opts.measure)
    runtime = _study_runtime_model(trials, opts, cons, measure)
    spec = _base_spec(study, base)
    if runtime is not None and cons.batch_size is None:
        cons = replace(cons, batch_size=runtime.batch_size)
    device = opts.device
    if measure and device is None and runtime is not None:
        device = runtime.device
    return _Run(spec=spec, label=base, source=str(study.path), mode="study", opts=opts,
                cons=cons, measure=measure, device=device, fits=fits, runtime=runtime,
                study_times=measured_times(trials, runtime, mode=opts.latency_mode),
                trials=trials, study_meta={"data_info": study.data_info, "config": study.config})


# --------------------------------------------------------------------------------------------
# the steps of one recommendation
# --------------------------------------------------------------------------------------------


def _target_factor(run: _Run, target: str | float) -> tuple[float, int]:
    """(factor, base flops) of ``target``; flops are multiply-adds."""
    from netscale.complexity import complexity_totals
    from netscale.util.units import parse_target

    base_flops = complexity_totals(run.spec).flops
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        factor = float(target)
        if not (math.isfinite(factor) and factor > 0):
            raise NetscaleError(f"target factor must be positive, got {target!r}")
    else:
        factor = parse_target(str(target), base_flops, "--target-flops")
    if not 1e-9 <= factor <= 1e12:
        raise NetscaleError(f"target x{factor:.3g} of {run.label} is out of range (factors from "
                            "1e-9 to 1e12)")
    return factor, base_flops


def _candidates(run: _Run, factor: float) -> list[Candidate]:
    """Every strategy scaled from the base to ``factor`` with exact rounding; a candidate
    that gives the same network as an earlier one is marked ``same_as``."""
    from netscale.scaling import scale_report

    trained = [f.strategy for f in run.fits.fits.values()] if run.fits else []
    cands: list[Candidate] = []
    by_arch: dict[str, str] = {}
    for strat, origin in _strategy_list(trained, run.opts.strategies, run.opts.alphas):
        c = Candidate(name=strat.name, strategy=strat.to_dict(), alpha=fast_alpha(
            strat.to_dict()), origin=origin, trained=strat.name in trained)
        cands.append(c)
        try:
            r = scale_report(run.spec, factor, strat, rounding="exact",
                             name=f"{run.label}_x{factor:.3g}_{strat.name}")
        except NetscaleError as exc:
            c.scale_error = str(exc)
            c.verdict = f"could not be scaled: {exc}"
            continue
        c.spec = r.spec.to_dict()
        c.flops, c.params, c.acts = r.counts.flops, r.counts.params, r.counts.acts
        c.resolution = r.spec.resolution
        c.flops_factor = r.flops_factor
        key = network_key(c.spec)
        if key in by_arch:
            c.same_as = by_arch[key]
            c.verdict = f"same network as {c.same_as} at this target"
        else:
            by_arch[key] = c.name
    _check_reachable(cands, factor, run.label)
    return cands


def _check_reachable(cands: Sequence[Candidate], factor: float, label: str) -> None:
    landed = [(c.flops_factor, c.name) for c in cands if c.flops_factor is not None]
    if not landed or any(abs(f / factor - 1) <= 0.10 for f, _ in landed):
        return
    near, near_name = min(landed, key=lambda p: abs(math.log(p[0] / factor)))
    lo = min(f for f, _ in landed)
    where = (f"{label} cannot shrink that far (the smallest model any candidate reaches "
             f"is x{lo:.3g})" if factor < 1 else
             f"no candidate lands within 10% of it (closest: x{near:.3g} by {near_name})")
    raise NetscaleError(f"target x{factor:.3g} of {label} cannot be reached: {where}; "
                        "choose a target nearer the base")


def _predicted_runtimes(run: _Run, cands: Sequence[Candidate]) -> None:
    """The study's runtime model for every usable candidate, and the time the study measured
    for the same network (unless candidates are timed here)."""
    runtime = run.runtime
    if runtime is None:
        return
    for c in cands:
        if not c.usable:
            continue
        assert c.flops is not None and c.params is not None and c.acts is not None
        c.runtime_ms = runtime.predict(c.flops, c.params, c.acts)
        c.runtime_extrapolation = runtime.extrapolation(c.flops, c.params, c.acts)
        if not run.measure:
            t = run.study_times.get(network_key(c.spec or {}))
            if t is not None:
                c.measured_ms, c.measured_source = t, "measured in the study"


def _measured_runtimes(run: _Run, cands: Sequence[Candidate]) -> tuple[int, str] | None:
    """Times every candidate the static constraints leave (with ``measure``); returns the
    (batch size, device) used, None when nothing was timed."""
    if not run.measure:
        return None
    from netscale.specs import NetSpec

    timer = run.opts.timer(run.runtime.setting if run.runtime is not None
                           else "contiguous+fp32")
    setting = None
    for c in cands:
        if not c.usable or c.violations:  # static constraints already exclude it
            continue
        res = timer(NetSpec.from_dict(c.spec or {}), run.cons.batch_size, run.device)
        if res is None:
            c.measured_source = "measurement failed (e.g. out of memory)"
            continue
        c.measured_ms, used_batch, used_device = res
        c.measured_source = f"measured here on {used_device}"
        setting = (used_batch, used_device)
    return setting


@dataclass(frozen=True)
class _Choice:
    """The ranking's outcome: the chosen candidate, how it was ranked, the ones tied with it
    and the verdict sentence (at a trained factor also the study's verdict and factor)."""

    chosen: Candidate
    ranking: str  # "measured error" | "predicted error" | "prior"
    tied: list[str]
    reason: str
    verdict: dict[str, Any] | None = None
    trained_at: float | None = None


def _choose(run: _Run, cands: list[Candidate], factor: float, cons: Constraints,
            notes: list[str]) -> _Choice:
    """The study's verdict at a trained factor, else the ranking by predicted error (or the
    paper's prior without predictions)."""
    level, tie = run.opts.level, float(run.opts.tie)
    trained_at = _trained_factor(run.trials, factor) if run.mode == "study" else None
    if trained_at is not None:
        v = _measured_rank(cands, run.trials, trained_at, run.study_meta, level, notes, tie)
        if v is not None:
            return _Choice(v[0], "measured error", v[1], v[2], v[3], trained_at)
    where = f"at ×{factor:.4g} flops (multiply-adds)"
    z_rmse = 0.0
    if run.runtime is not None and math.isfinite(run.runtime.rmse):
        from netscale.laws.stats import z_quantile

        z_rmse = z_quantile(level) * run.runtime.rmse
    chosen, ranking, dec = _rank(cands, tie, notes, z_rmse)
    if dec is None:
        return _Choice(chosen, ranking, [], chosen.verdict)
    from netscale.advise.verdict import explain

    reason = explain(dec, where + ", predicted by the fitted laws",
                     what="predicted top-1 error", level=level, batch=cons.batch_size)
    return _Choice(chosen, ranking, [o.name for o in dec.tied], reason)


def _error_basis(run: _Run, choice: _Choice) -> str:
    level = run.opts.level
    if choice.verdict is not None:
        return (f"top-1 error measured by the study at ×{choice.trained_at:g} (mean of its "
                f"seeds, {level:.0%} intervals: seed spread + validation set); the "
                "verdict is the study's (netscale report --json)")
    if run.fits is not None:
        return (f"top-1 error predicted from the study's fitted laws (x = "
                f"{run.fits.x_metric}; {level:.0%} prediction intervals)")
    return "no trained results: errors cannot be predicted; ranked by prior"


def _runtime_basis(run: _Run, measured: tuple[int, str] | None) -> str:
    runtime = run.runtime
    if run.measure and measured:
        return (f"measured here with the bench harness (inference, batch "
                f"{measured[0]}, {measured[1]})")
    if run.measure:
        return "measurement requested but every candidate was excluded or failed"
    if runtime is not None:
        return (f"predicted by the study's runtime model: {runtime.formula()} "
                f"({runtime.describe()}); applies to batch {runtime.batch_size} on "
                f"{runtime.device} only")
    if run.mode == "base":
        return "not measured (--no-measure)"
    return "not available (the study has no benchmark rows; use --measure)"


def _choice_notes(run: _Run, choice: _Choice, cons: Constraints) -> list[str]:
    """What to watch out for in the chosen model: extrapolated error or runtime, a latency
    near the limit, ties."""
    chosen, runtime, trials = choice.chosen, run.runtime, run.trials
    notes = []
    if chosen.error is not None and chosen.error.extrapolation > 1 + 1e-9:
        side = ("below the smallest" if trials and chosen.flops is not None and chosen.flops
                < min((t.flops for t in trials if getattr(t, "flops", None)), default=0)
                else "past the largest")
        notes.append(f"the chosen model's error is extrapolated x{chosen.error.extrapolation:.3g}"
                     f" {side} trained model; the interval shows how much to trust it")
    if (runtime is not None and not run.measure and chosen.runtime_extrapolation
            and chosen.runtime_extrapolation > 1.5 and chosen.measured_ms is None):
        notes.append(f"the chosen model's runtime is predicted x"
                     f"{chosen.runtime_extrapolation:.3g} outside the benchmarked sizes; "
                     "--measure times it here")
    if cons.max_latency_ms is not None and runtime is not None and not run.measure:
        rmse = runtime.rmse
        if chosen.time_ms is not None and math.isfinite(rmse) and \
                chosen.time_ms > cons.max_latency_ms - 2 * rmse:
            notes.append(f"the chosen model's predicted latency is within 2 RMSE "
                         f"({rmse:.3g} ms) of the limit; --measure checks it")
    if choice.ranking == "predicted error" and choice.tied:
        notes.append(f"{len(choice.tied)} other candidate(s) are statistically tied with the "
                     f"chosen one ({', '.join(choice.tied)}): the difference may not be real; "
                     "train the top few (with several seeds) to confirm")
    return notes


def _fit_summary(fits: StudyFits | None) -> dict[str, Any]:
    if fits is None:
        return {}
    return {k: {"law": f.report.best if f.report else None,
                "formula": f.report.best_fit.formula() if f.report else None,
                "n_points": f.n_points, "skipped": f.skipped or None, "fast_alpha": f.alpha}
            for k, f in fits.fits.items()}


def _recommend(run: _Run, target: str | float) -> Recommendation:
    """Candidates -> predicted errors and static limits -> runtimes and the latency limit ->
    ranking -> explanation."""
    tie = run.opts.tie
    if not (isinstance(tie, (int, float)) and tie >= 0):
        raise NetscaleError(f"tie must be an error difference >= 0 (0.001 = 0.1 points), "
                            f"got {tie!r}")
    factor, base_flops = _target_factor(run, target)
    cands = _candidates(run, factor)
    if run.fits is not None:
        _predict_errors(cands, run.fits, _study_epochs(run.trials), run.opts.level)
    for c in cands:
        if c.usable:
            _check_static(c, run.cons)
    cons, batch = run.cons, run.cons.batch_size
    _predicted_runtimes(run, cands)
    if run.runtime is not None:
        batch = batch or run.runtime.batch_size
    measured = _measured_runtimes(run, cands)
    if measured:
        batch = measured[0]
        if cons.batch_size is None:
            cons = replace(cons, batch_size=batch)
    for c in cands:
        _check_latency(c, cons, batch)
    if not any(c.feasible for c in cands):
        raise _infeasible(cands, cons, batch)
    for c in cands:
        if c.usable and c.violations:
            c.verdict = "; ".join(c.violations)
    notes: list[str] = []
    choice = _choose(run, cands, factor, cons, notes)
    ranked = sorted((c for c in cands if c.rank is not None), key=lambda c: c.rank or 0)
    rest = [c for c in cands if c.rank is None]
    rest.sort(key=lambda c: (not c.usable, c.error is None, bool(c.violations)))
    return Recommendation(
        mode=run.mode, source=run.source, base=run.label, base_flops=int(base_flops),
        factor=factor, target_flops=factor * base_flops, constraints=cons,
        chosen=choice.chosen, candidates=ranked + rest, ranking=choice.ranking,
        error_basis=_error_basis(run, choice), runtime_basis=_runtime_basis(run, measured),
        runtime_batch=batch, runtime=run.runtime.to_dict() if run.runtime is not None else None,
        fits=_fit_summary(run.fits), notes=notes + _choice_notes(run, choice, cons),
        tied=choice.tied, reason=choice.reason, verdict=choice.verdict)
