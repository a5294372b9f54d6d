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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netscale.advise.candidates import check_latency, check_static, infeasible, scaled_candidates
from netscale.advise.groups import recommend_groups
from netscale.advise.options import CandidateOptions, LawOptions, RecommendOptions, TimingOptions
from netscale.advise.predictions import predict_errors, study_epochs
from netscale.advise.ranking import measured_rank, rank, trained_factor
from netscale.advise.records import Candidate, Constraints, Recommendation
from netscale.advise.results_io import is_results_file, load_source
from netscale.advise.runtimes import measured_runtimes, predicted_runtimes, study_runtime_model
from netscale.advise.sources import ResultsFile, StudyResults, is_study_dir
from netscale.advise.study_fits import (
    StudyFits,
    StudyRuntime,
    check_x_metric,
    fit_study,
    measured_times,
)
from netscale.advise.verdict import explain
from netscale.advise.zoo_base import ZooBase, zoo_base_flops, zoo_build, zoo_candidates
from netscale.complexity import complexity_totals
from netscale.errors import NetscaleError
from netscale.laws.stats import z_quantile
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.specs import NetSpec, resolve_spec
from netscale.study.config import parse_study_config
from netscale.study.store import TrialRow
from netscale.util.units import parse_target
from netscale.zoo.names import is_zoo_name


@dataclass(frozen=True)
class _Basis:
    """What one recommendation stands on: the base, the study's fits and runtime model (if
    any), the constraints and whether candidates are timed here."""

    spec: NetSpec | None  # None for a zoo base
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
    trials: Sequence[TrialRow] = ()
    study: StudyResults | None = None
    zoo: ZooBase | None = None


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def recommend(source: str | Path | StudyResults | NetSpec, target: str | float,
              options: RecommendOptions | None = None, *,
              constraints: Constraints | None = None, candidates: CandidateOptions | None = None,
              laws: LawOptions | None = None, timing: TimingOptions | None = None,
              tie: float | None = None) -> Recommendation:
    """Ranks scaling strategies for a target and returns the best feasible candidate.

    ``source``: a study directory (trained results), a results file, a :class:`StudyResults`,
    a model name, a spec file or a :class:`NetSpec` (no trained results). ``target``: a
    factor (``4`` or ``"4x"``) or absolute flops (``"4G"``, multiply-adds). ``options`` (a
    :class:`RecommendOptions`) and its parts given by keyword (``constraints=
    Constraints(max_latency_ms=40)``, ``timing=TimingOptions(measure=True)``, ...) say how
    to rank.
    """
    opts = (options or RecommendOptions()).merged(
        constraints=constraints, candidates=candidates, laws=laws, timing=timing, tie=tie)
    if opts.timing.latency_mode not in ("infer", "train"):
        raise NetscaleError(f"latency mode must be infer or train, got "
                            f"{opts.timing.latency_mode!r}")
    zoo = ZooBase.of(source) if isinstance(source, str) and is_zoo_name(source) else None
    study = None if zoo is not None else _source_study(source)
    if study is not None:
        return recommend_study(study, target, opts)
    spec, label = (None, zoo.label) if zoo is not None else _source_spec(source)
    cons = opts.constraints.validate()
    if opts.timing.measure is False and cons.max_latency_ms is not None:
        raise NetscaleError("a latency limit without a study needs measured runtimes; drop "
                            "--no-measure (candidates are timed here with the bench harness)")
    return _recommend(_Basis(spec=spec, label=label, source=str(getattr(source, "name", source)),
                           mode="base", opts=opts, cons=cons,
                           measure=opts.timing.measure is not False,
                           device=opts.timing.device, zoo=zoo), target)


def recommend_study(study: StudyResults, target: str | float,
                    options: RecommendOptions | None = None, *,
                    fits: StudyFits | None = None) -> Recommendation:
    """:func:`recommend` for a loaded study (``fits`` reuses already fitted laws; a study
    never times candidates unless ``measure`` is set); a results file ranks its groups
    (:func:`netscale.advise.groups.recommend_groups`)."""
    opts = options or RecommendOptions()
    if isinstance(study, ResultsFile):
        return recommend_groups(study, target, opts, fits=fits)
    return _recommend(_study_basis(study, opts, fits), target)


def _source_study(source: str | Path | StudyResults | NetSpec) -> StudyResults | None:
    """The study ``source`` names (a directory, a results file or a loaded study), or None
    for a model name, spec file or NetSpec."""
    if isinstance(source, StudyResults):
        return source
    if isinstance(source, NetSpec):
        return None
    if is_results_file(source) or is_study_dir(source) or Path(source).is_dir():
        return load_source(source)  # a directory without results raises "not a study"
    return None


def _source_spec(source: str | Path | StudyResults | NetSpec) -> tuple[NetSpec, str]:
    if isinstance(source, NetSpec):
        return source.validate(), source.name
    try:
        spec = resolve_spec(str(source))
    except NetscaleError as exc:
        raise NetscaleError(f"{source!s} is neither a study directory (with "
                            f"results.sqlite) nor a model or spec file: {exc}") from None
    return spec, spec.name


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


def _base_spec(study: StudyResults, base: str) -> NetSpec | ZooBase:
    for t in study.trials:
        if t.base == base and t.strategy == BASE_STRATEGY:
            model = t.model
            if model is None:  # not a full spec: NetSpec says what is missing
                return NetSpec.from_dict(t.spec)
            zoo = ZooBase.of_trial(model)
            if zoo is not None:
                return zoo
            if not isinstance(model, NetSpec):
                raise NetscaleError(
                    f"base {base!r} is a module factory: recommend scales specs only; use "
                    "'netscale fit' on the study and 'netscale scale --module … "
                    "--target-flops …' to size it")
            return model
    # no s = 1 trial: rebuild the base from the config
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


def _study_basis(study: StudyResults, opts: RecommendOptions, fits: StudyFits | None) -> _Basis:
    laws, timing = opts.laws, opts.timing
    x = check_x_metric(laws.x)
    cons = opts.constraints.validate()
    base = _pick_base(study, opts.candidates.base)
    trials = [t for t in study.trials if t.base == base]
    if fits is None:
        fits = fit_study(trials, x=x, law=laws.law, n_boot=laws.n_boot, level=laws.level,
                         seed=laws.seed)
    measure = bool(timing.measure)
    runtime = study_runtime_model(trials, timing.latency_mode, timing.device, cons, measure)
    model = _base_spec(study, base)
    spec, zoo = (None, model) if isinstance(model, ZooBase) else (model, None)
    if runtime is not None and cons.batch_size is None:
        cons = replace(cons, batch_size=runtime.batch_size)
    device = timing.device
    if measure and device is None and runtime is not None:
        device = runtime.device
    return _Basis(spec=spec, label=base, source=str(study.path), mode="study", opts=opts,
                cons=cons, measure=measure, device=device, fits=fits, runtime=runtime,
                study_times=measured_times(trials, runtime, mode=timing.latency_mode),
                trials=trials, study=study, zoo=zoo)


# --------------------------------------------------------------------------------------------
# the steps of one recommendation
# --------------------------------------------------------------------------------------------


def _target_factor(run: _Basis, target: str | float) -> tuple[float, int]:
    """(factor, base flops) of ``target``; flops are multiply-adds."""
    if run.zoo is not None:
        base_flops = zoo_base_flops(run.zoo)
    else:
        assert run.spec is not None
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


def _choose(run: _Basis, cands: list[Candidate], factor: float, cons: Constraints,
            notes: list[str]) -> _Choice:
    """The study's verdict at a trained factor, else the ranking by predicted error (or the
    paper's prior without predictions)."""
    level, tie = run.opts.laws.level, float(run.opts.tie)
    trained_at = trained_factor(run.trials, factor) if run.study is not None else None
    if trained_at is not None and run.study is not None:
        v = measured_rank(cands, run.trials, trained_at, run.study, level, notes, tie)
        if v is not None:
            return _Choice(v[0], "measured error", v[1], v[2], v[3], trained_at)
    where = f"at ×{factor:.4g} flops (multiply-adds)"
    z_rmse = 0.0
    if run.runtime is not None and math.isfinite(run.runtime.rmse):
        z_rmse = z_quantile(level) * run.runtime.rmse
    chosen, ranking, dec = rank(cands, tie, notes, z_rmse)
    if dec is None:
        return _Choice(chosen, ranking, [], chosen.verdict)
    reason = explain(dec, where + ", predicted by the fitted laws",
                     what="predicted top-1 error", level=level, batch=cons.batch_size)
    return _Choice(chosen, ranking, [o.name for o in dec.tied], reason)


def _error_basis(run: _Basis, choice: _Choice) -> str:
    level = run.opts.laws.level
    if choice.verdict is not None:
        return (f"top-1 error measured by the study at ×{choice.trained_at:g} (mean of its "
                f"seeds, {level:.0%} intervals: seed spread + validation set); the "
                "verdict is the study's (netscale report --json)")
    if run.fits is not None:
        return (f"top-1 error predicted from the study's fitted laws (x = "
                f"{run.fits.x_metric}; {level:.0%} prediction intervals)")
    return "no trained results: errors cannot be predicted; ranked by prior"


def _runtime_basis(run: _Basis, measured: tuple[int, str] | None) -> str:
    runtime = run.runtime
    if run.measure and measured:
        return (f"measured here with the bench harness (inference, batch "
                f"{measured[0]}, {measured[1]})")
    if run.measure:
        return "measurement requested but every candidate was excluded or failed"
    if runtime is not None:
        return (f"predicted by the study's runtime model: {runtime.formula()} "
                f"({runtime.summary()}); applies to batch {runtime.batch_size} on "
                f"{runtime.device} only")
    if run.mode == "base":
        return "not measured (--no-measure)"
    return "not available (the study has no benchmark rows; use --measure)"


def _choice_notes(run: _Basis, choice: _Choice, cons: Constraints) -> list[str]:
    """What to watch out for in the chosen model: extrapolated error or runtime, a latency
    near the limit, ties."""
    chosen, runtime, trials = choice.chosen, run.runtime, run.trials
    notes = []
    if chosen.error is not None and chosen.error.extrapolation > 1 + 1e-9:
        side = ("below the smallest" if trials and chosen.flops is not None and chosen.flops
                < min((t.flops for t in trials if t.flops), default=0)
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


def _recommend(run: _Basis, target: str | float) -> Recommendation:
    """Candidates -> predicted errors and static limits -> runtimes and the latency limit ->
    ranking -> explanation."""
    tie = run.opts.tie
    if not (isinstance(tie, (int, float)) and tie >= 0):
        raise NetscaleError(f"tie must be an error difference >= 0 (0.001 = 0.1 points), "
                            f"got {tie!r}")
    factor, base_flops = _target_factor(run, target)
    trained = [f.strategy for f in run.fits.fits.values()] if run.fits else []
    cand_opts = run.opts.candidates
    if run.zoo is not None:
        cands = zoo_candidates(run.zoo, factor, trained, cand_opts.strategies,
                               cand_opts.alphas)
    else:
        assert run.spec is not None
        cands = scaled_candidates(run.spec, run.label, factor, trained,
                                  cand_opts.strategies, cand_opts.alphas)
    if run.fits is not None:
        predict_errors(cands, run.fits, study_epochs(run.trials), run.opts.laws.level)
    for c in cands:
        if c.usable:
            check_static(c, run.cons)
    cons, batch = run.cons, run.cons.batch_size
    predicted_runtimes(cands, run.runtime, run.study_times, run.measure)
    if run.runtime is not None:
        batch = batch or run.runtime.batch_size
    measured = None
    if run.measure:
        timer = run.opts.timing.timer(run.runtime.setting if run.runtime is not None
                                      else "contiguous+fp32")
        zoo = run.zoo
        build = (lambda c: zoo_build(zoo, c)) if zoo is not None else None
        measured = measured_runtimes(cands, timer, run.cons.batch_size, run.device, build)
    if measured:
        batch = measured[0]
        if cons.batch_size is None:
            cons = replace(cons, batch_size=batch)
    for c in cands:
        check_latency(c, cons, batch)
    if not any(c.feasible for c in cands):
        raise infeasible(cands, cons, batch)
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
