"""Scaling-law fits and runtime models of a study's trials.

Shared by ``netscale fit``, ``netscale recommend`` and the report's "Scaling laws" section.
It turns the study store's trials into points and fits them with :mod:`netscale.laws`:

* **points**: every finished trial with a top-1 error gives one point (flops, params, acts,
  epochs, error). The shared s = 1 trial (strategy ``base``) belongs to every strategy's
  curve, so a study with factors 1, 2, 4 has 3 points per strategy (per seed).
* **fits**: per strategy, :func:`netscale.laws.fit_report` (law ``auto``: the saturating law
  err = a·x^(−b) + c when there are enough points, otherwise the plain power law
  err = a·x^(−b), with a note saying so).
* **runtime**: :func:`netscale.bench.fit.fit_runtime` (the one runtime model) on the trials'
  benchmark rows (one mode, one batch size, one device: the model applies to that setting
  only).

Errors are fractions (0.234 = 23.4 %); flops are multiply-adds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from netscale.bench.fit import METRICS, MIN_ROWS, RuntimeModel, fit_runtime, scatter_from_repeats
from netscale.errors import NetscaleError
from netscale.laws.fit import LAWS, FitOptions, FitReport, fit_report
from netscale.scaling.strategy import BASE_STRATEGY, parse_strategy
from netscale.specs.spec import network_key
from netscale.study.store import TrialRow
from netscale.util import jsonio

X_METRICS = ("flops", "params", "acts", "epochs*flops")
LAW_CHOICES = ("auto", "saturating", "power")
ERROR_FLOOR = 1e-4  # a run with 0 error counts as this (the fit works on log(error))
_FAMILY_TOL = 1e-6
POWER_FALLBACK_NOTE = (
    "the plain power law has no floor, so it keeps falling where real error curves level off: "
    "on pycls's published RegNet ImageNet errors a power law fitted on 3 small models "
    "underpredicts the larger ones by 2-6 points (benchmarks/pycls_errors.py); treat its "
    "predictions as optimistic, and with 3 points its intervals are either useless (1 degree "
    "of freedom) or far too narrow")


# --------------------------------------------------------------------------------------------
# points
# --------------------------------------------------------------------------------------------


def trial_error(t: TrialRow, y: str = "top1_err") -> float | None:
    """The trial's error (fraction) if it finished with one (``y``: top1_err or top5_err),
    else None."""
    if t.status != "done":
        return None
    v = t.top5_err if y == "top5_err" else t.top1_err
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _epochs(t: TrialRow) -> float | None:
    n = t.epochs_done or len(t.epochs)
    return float(n) if n else None


def point_row(t: TrialRow, err: float) -> dict[str, Any]:
    return {"id": t.id, "base": t.base, "strategy": t.strategy, "factor": float(t.factor),
            "seed": t.seed, "flops": float(t.flops), "params": float(t.params),
            "acts": float(t.acts), "epochs": _epochs(t), "error": err}


def strategy_names(trials: Sequence[TrialRow]) -> dict[str, list[str]]:
    """Strategies per base (the shared ``base`` trial is not a strategy)."""
    out: dict[str, set[str]] = defaultdict(set)
    for t in trials:
        names = out.setdefault(t.base, set())
        if t.strategy != BASE_STRATEGY:
            names.add(t.strategy)
    return {b: sorted(s) for b, s in out.items()}


def strategy_points(trials: Sequence[TrialRow], y: str = "top1_err"
                    ) -> dict[tuple[str, str], tuple[list[dict[str, Any]], int]]:
    """Per (base, strategy): the points of finished trials (the base trial included in
    every strategy) and how many of the group's trials have no result (pending, running,
    failed or without an error)."""
    names = strategy_names(trials)
    out: dict[tuple[str, str], tuple[list[dict[str, Any]], int]] = {}
    for base, strategies in names.items():
        base_trials = [t for t in trials if t.base == base and t.strategy == BASE_STRATEGY]
        for s in strategies:
            group = base_trials + [t for t in trials if t.base == base and t.strategy == s]
            rows, missing = [], 0
            for t in group:
                e = trial_error(t, y)
                if e is None:
                    missing += 1
                else:
                    rows.append(point_row(t, e))
            out[(base, s)] = (rows, missing)
    return out


# --------------------------------------------------------------------------------------------
# strategy exponents
# --------------------------------------------------------------------------------------------


def strategy_exponents(name: str) -> dict[str, float] | None:
    """(e_d, e_w, e_r, e_g) of a strategy name, or None if it cannot be parsed."""
    try:
        s = parse_strategy(name)
    except NetscaleError:
        return None
    return {"e_d": s.e_d, "e_w": s.e_w, "e_r": s.e_r, "e_g": s.e_g}


def fast_alpha(exponents: Mapping[str, float] | None) -> float | None:
    """α if the exponents are those of fast compound scaling (e_d = (1−α)/2, e_w = α/2,
    e_r = (1−α)/4), else None. dr is α = 0, dwr α = 1/3, dWr α = 0.8, w α = 1. The group
    width exponent is ignored."""
    if not exponents:
        return None
    a = 2.0 * exponents["e_w"]
    if not -_FAMILY_TOL <= a <= 1 + _FAMILY_TOL:
        return None
    if (abs(exponents["e_d"] - (1 - a) / 2) > _FAMILY_TOL
            or abs(exponents["e_r"] - (1 - a) / 4) > _FAMILY_TOL):
        return None
    return min(max(a, 0.0), 1.0)


# --------------------------------------------------------------------------------------------
# fits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyFit:
    """The scaling-law fit of one strategy of one base (``report`` None when it could not be
    fitted; ``skipped`` says why)."""

    base: str
    strategy: str
    label: str
    n_points: int
    n_sizes: int
    missing: int
    report: FitReport | None
    skipped: str = ""
    notes: tuple[str, ...] = ()
    exponents: dict[str, float] | None = None
    alpha: float | None = None

    @property
    def ok(self) -> bool:
        return self.report is not None

    def to_dict(self, *, samples: bool = False) -> dict[str, Any]:
        return {
            "base": self.base, "strategy": self.strategy, "label": self.label,
            "n_points": self.n_points, "n_sizes": self.n_sizes, "missing": self.missing,
            "exponents": self.exponents, "fast_alpha": self.alpha,
            "law": self.report.best if self.report else None,
            "formula": self.report.best_fit.formula() if self.report else None,
            "report": self.report.to_dict(samples=samples) if self.report else None,
            "skipped": self.skipped or None, "notes": list(self.notes),
        }


@dataclass(frozen=True)
class StudyFits:
    """Per-strategy fits of a study (``fits`` keyed by label: the strategy name, or
    ``BASE/strategy`` when the study has several bases)."""

    x_metric: str
    y: str
    law: str
    level: float
    n_boot: int
    fits: dict[str, StrategyFit]

    @property
    def fitted(self) -> dict[str, StrategyFit]:
        return {k: f for k, f in self.fits.items() if f.ok}

    def to_dict(self, *, samples: bool = False) -> dict[str, Any]:
        return {
            "x": self.x_metric, "y": self.y, "law": self.law, "level": self.level,
            "n_boot": self.n_boot, "units": {"flops": "multiply-adds", "error": "fraction"},
            "fits": {k: f.to_dict(samples=samples) for k, f in self.fits.items()},
        }


def check_x_metric(x: str) -> str:
    x = "*".join(p.strip() for p in str(x).split("*"))
    if x not in X_METRICS:
        raise NetscaleError(f"unknown x metric {x!r}; use one of: {', '.join(X_METRICS)}")
    return x


def check_law_choice(law: str) -> str:
    name = str(law).strip().lower()
    if name not in LAW_CHOICES:
        raise NetscaleError(f"unknown law {law!r}; use one of: {', '.join(LAW_CHOICES)} (auto: "
                            "saturating when there are enough points, else power)")
    return name


def _x_values(rows: Sequence[Mapping[str, Any]], x: str) -> list[float]:
    out = []
    for r in rows:
        v = 1.0
        for key in x.split("*"):
            if r.get(key) is None:
                raise NetscaleError(f"trial {r['id']!r} has no {key!r} (needed for x = {x}); "
                                    "use --x flops")
            v *= float(r[key])
        out.append(v)
    return out


def fit_strategy(base: str, strategy: str, rows: Sequence[Mapping[str, Any]],
                 options: FitOptions | None = None, *, law: str = "auto", missing: int = 0,
                 label: str | None = None) -> StrategyFit:
    """Fits one strategy's points against ``options.x_metric`` with ``law`` (auto,
    saturating, power); never raises for too few or bad points (``skipped``)."""
    options = options or FitOptions()
    x = check_x_metric(options.x_metric)
    law = check_law_choice(law)
    noise = options.noise
    exps = strategy_exponents(strategy)
    label = label or strategy
    notes: list[str] = []
    xs = _x_values(rows, x)
    ys = [float(r["error"]) for r in rows]
    zero = sum(1 for v in ys if v <= 0)
    if zero:
        ys = [max(v, ERROR_FLOOR) for v in ys]
        notes.append(f"{zero} run(s) had 0 error; counted as {ERROR_FLOOR:g} (the fit works on "
                     "log error)")
    if missing:
        notes.append(f"{missing} trial(s) without a result (pending, running or failed) "
                     "are not in the fit")
    n, sizes = len(xs), len(set(xs))
    common: dict[str, Any] = dict(base=base, strategy=strategy, label=label, n_points=n,
                                  n_sizes=sizes, missing=missing, exponents=exps,
                                  alpha=fast_alpha(exps))
    laws = {"auto": ("saturating", "power"), "saturating": ("saturating",),
            "power": ("power",)}[law]
    try:
        rep = fit_report(xs, ys, replace(options, x_metric=x), group=label, laws=laws,
                         select="general")
    except NetscaleError as exc:
        hint = ""
        if law == "saturating" and n >= len(LAWS["power"]) + 1:
            hint = "; --law power or auto fits the plain power law"
        return StrategyFit(**common, report=None,
                           skipped=f"{exc}{hint}", notes=tuple(notes))
    dof = n - len(LAWS[rep.best])
    if dof <= 1:
        notes.append(f"the {rep.best} law leaves {dof} degree(s) of freedom with {n} points: "
                     "its intervals are rough (the noise is estimated from almost nothing)")
    if law == "auto" and "saturating" in rep.skipped:
        notes.insert(0, f"only {n} point(s) over {sizes} size(s): fitted the plain power law "
                        "err = a·x^(−b); the saturating law err = a·x^(−b) + c needs at least "
                        "4 points over 3 sizes (train more factors, e.g. 8, or more seeds)")
        notes.insert(1, POWER_FALLBACK_NOTE + ("" if noise else "; give --noise (the "
                                               "run-to-run spread you know) to widen them"))
    return StrategyFit(**common, report=rep, notes=tuple(notes))


def fit_study(trials: Sequence[TrialRow], options: FitOptions | None = None, *, x: str = "flops",
              law: str = "auto", y: str = "top1_err", base: str | None = None,
              n_boot: int | None = None, level: float | None = None, seed: int | None = None,
              noise: float | None = None) -> StudyFits:
    """Per-strategy fits of error (``y``) against ``x`` for a study's trials; ``options``
    (a :class:`netscale.laws.fit.FitOptions`), with ``n_boot``, ``level``, ``seed`` and
    ``noise`` replacing its fields when given, say how each law is fitted.

    Strategies that cannot be fitted are kept with ``skipped``; raises only when the study has
    no trained trial at all.
    """
    x = check_x_metric(x)
    law = check_law_choice(law)
    if not any(trial_error(t, y) is not None for t in trials):
        raise NetscaleError(f"the study has no trained trials with a {y} yet ({_status(trials)}); "
                            "run 'netscale study CONFIG' to train them (a study with "
                            "'train: false' only measures runtime)")
    o = options or FitOptions()
    options = replace(o, x_metric=x, n_boot=o.n_boot if n_boot is None else n_boot,
                      level=o.level if level is None else level,
                      seed=o.seed if seed is None else seed,
                      noise=o.noise if noise is None else noise)
    groups = strategy_points(trials, y)
    bases = sorted({b for b, _ in groups})
    if base is not None:
        if base not in bases:
            raise NetscaleError(f"base {base!r} is not in the study; bases: {', '.join(bases)}")
        bases = [base]
    fits: dict[str, StrategyFit] = {}
    for (b, s), (rows, missing) in sorted(groups.items()):
        if b not in bases:
            continue
        label = s if len(bases) == 1 else f"{b}/{s}"
        fits[label] = fit_strategy(b, s, rows, options, law=law, missing=missing, label=label)
    if not fits:
        raise NetscaleError("the study has only base-model trials (no strategies); scaling "
                            "laws need scaled models: add strategies and factors to the config")
    if not any(f.ok for f in fits.values()):
        reasons: dict[str, list[str]] = defaultdict(list)
        for label, f in fits.items():
            reasons[f.skipped.replace(f" for {label}:", ":")].append(label)
        why = "; ".join(f"{', '.join(v)}: {k}" for k, v in reasons.items())
        raise NetscaleError(f"no strategy could be fitted with law {law} (trials: "
                            f"{_status(trials)}): {why}")
    return StudyFits(x_metric=x, y=y, law=law, level=options.level, n_boot=options.n_boot,
                     fits=fits)


def _status(trials: Sequence[TrialRow]) -> str:
    c = Counter(t.status for t in trials)
    return ", ".join(f"{v} {k}" for k, v in sorted(c.items())) or "no trials"


# --------------------------------------------------------------------------------------------
# runtime
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyRuntime:
    """The study's runtime model (:class:`netscale.bench.fit.RuntimeModel`) and the one
    (mode, batch size, device, execution setting) it was fitted on: ``setting`` is
    ``memory_format+precision`` (docs/precision.md); times are ms per batch of
    ``batch_size``. Predictions use the model's default predictor (:attr:`using`: ``joint``
    or the line of the best single metric)."""

    model: RuntimeModel
    mode: str
    batch_size: int
    device: str
    other_settings: tuple[str, ...] = ()
    setting: str = "contiguous+fp32"

    @property
    def n(self) -> int:
        return self.model.n

    @property
    def using(self) -> str:
        return self.model.predictor

    @property
    def r2(self) -> float:
        return self.model.r2_of()

    @property
    def rmse(self) -> float:
        return self.model.rmse_of()

    def predict(self, flops: float, params: float, acts: float) -> float:
        """Predicted ms per batch (at least 1 % of the fastest measured time)."""
        t = self.model.predict(flops=flops, params=params, acts=acts)
        return max(float(t), 0.01 * self.model.ranges[self.model.target][0])

    def interval(self, flops: float, params: float, acts: float,
                 level: float = 0.95) -> tuple[float, float, float]:
        """(prediction, lo, hi) ms per batch with the ``level`` prediction interval."""
        return self.model.interval(flops=flops, params=params, acts=acts, level=level)

    def extrapolation(self, flops: float, params: float, acts: float) -> float:
        """How far outside the measured range (as a factor; 1.0 = inside)."""
        return self.model.extrapolation(flops=flops, params=params, acts=acts)

    def formula(self, units: Mapping[str, tuple[float, str]] | None = None) -> str:
        """The predictor as a formula in ms per batch (see RuntimeModel.formula)."""
        return self.model.formula(units=units)

    def summary(self) -> str:
        kind = {"joint": "joint fit", "log": "log-space fit"}.get(self.using,
                                                                  f"line in {self.using}")
        return (f"{kind} on {self.n} benchmark rows ({self.mode}, batch {self.batch_size}, "
                f"{self.device}, {self.setting}; R² {self.r2:.3f})")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "batch_size": self.batch_size, "device": self.device,
                "setting": self.setting, "using": self.using, "formula": self.formula(),
                "r2": jsonio.finite(self.r2),
                "rmse_ms": jsonio.finite(self.rmse), "pearson_r": {
                    m: jsonio.finite(f.pearson_r) for m, f in self.model.per_metric.items()},
                "ranges": {k: list(v) for k, v in self.model.ranges.items()},
                "other_settings": list(self.other_settings), "model": self.model.to_dict(),
                "units": {"time": "ms per batch", "flops": "multiply-adds"}}


def bench_rows(trials: Sequence[TrialRow], mode: str = "infer") -> list[dict[str, Any]]:
    """One row per successful benchmark of ``mode`` in the trials (any status), with its
    execution setting (``memory_format+precision``; rows written before settings were
    recorded count as contiguous+fp32)."""
    out = []
    for t in trials:
        for b in t.timings:
            tm = b.time_ms
            if b.mode != mode or not b.ok or tm is None or not math.isfinite(tm) or tm <= 0:
                continue
            out.append({"id": t.id, "strategy": t.strategy, "factor": t.factor,
                        "flops": b.flops or float(t.flops), "params": b.params or float(t.params),
                        "acts": b.acts or float(t.acts), "time_ms": tm,
                        "batch_size": b.batch_size, "device": b.device, "spec": t.spec,
                        "setting": b.setting, "timed_as": str(b.row.get("timed_as") or t.id)})
    return out


def bench_settings(rows: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, int, str]]:
    """Rows per (device, batch size, execution setting): one runtime model each."""
    return Counter((r["device"], r["batch_size"], r["setting"]) for r in rows)


def study_runtime(trials: Sequence[TrialRow], *, mode: str = "infer", batch_size: int | None = None,
                  device: str | None = None, setting: str | None = None
                  ) -> StudyRuntime | None:
    """The runtime model of a study's benchmark rows, or None without (enough) rows.

    Rows are grouped by (device, batch size, execution setting); the most frequent group is
    fitted unless ``batch_size``/``device``/``setting`` pick one; asking for a group the study
    did not measure raises.

    Between runs: each row was timed in its own worker process, one network at a time, so the
    fit's residual already holds the machine's slow changes (no separate drift). The
    between-run scatter of one network's timing comes from networks timed more than once
    (:func:`network_timings`: the seeds of a timing-only study; trials that each timed the
    same network): :func:`netscale.bench.fit.scatter_from_repeats`. A study that trains
    times each network once (its seeds share the timing): then there is no repeat, the
    scatter is 0 and the intervals rest on the residual between networks.
    """
    rows = bench_rows(trials, mode)
    if not rows:
        return None
    settings = bench_settings(rows)
    chosen = [k for k in settings if (batch_size is None or k[1] == batch_size)
              and (device is None or _same_device(k[0], device))
              and (setting is None or k[2] == setting)]
    if not chosen:
        have = ", ".join(f"batch {b} on {d} in {s}" for d, b, s in sorted(settings))
        want = " and ".join(p for p in (f"batch {batch_size}" if batch_size else "",
                                        f"device {device}" if device else "",
                                        f"setting {setting}" if setting else "") if p)
        raise NetscaleError(f"the study's runtime was measured at {have}, not at {want}")
    key = max(chosen, key=lambda k: settings[k])
    use = [r for r in rows if (r["device"], r["batch_size"], r["setting"]) == key]
    if len(use) < MIN_ROWS:
        return None
    scatter, n_repeated = scatter_from_repeats(network_timings(use).values())
    model = fit_runtime(use, metrics=METRICS, target="time_ms", scatter=scatter,
                        scatter_n=n_repeated)
    others = tuple(f"batch {b} on {d} in {s} ({n} rows)"
                   for (d, b, s), n in sorted(settings.items()) if (d, b, s) != key)
    return StudyRuntime(model=model, mode=mode, batch_size=key[1], device=key[0],
                        other_settings=others, setting=key[2])


def network_timings(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The distinct timings of each network (by architecture and resolution) among benchmark
    rows (:func:`bench_rows`): one per trial that timed it. A row shared from another trial
    (``timed_as``: the seeds of a network in a study that trains share one timing) is that
    trial's timing, not a repeat."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        out[network_key(r["spec"])].setdefault(str(r.get("timed_as") or r.get("id")),
                                               float(r["time_ms"]))
    return {k: list(v.values()) for k, v in out.items()}


def _same_device(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or (a.split(":")[0] == b.split(":")[0] and (":" not in a or ":" not in b))




def measured_times(trials: Sequence[TrialRow], runtime: StudyRuntime | None,
                   mode: str = "infer") -> dict[str, float]:
    """Median measured ms per batch per architecture, at the runtime model's setting."""
    if runtime is None:
        return {}
    times: dict[str, list[float]] = defaultdict(list)
    for r in bench_rows(trials, mode):
        if (r["batch_size"], r["device"], r["setting"]) == (runtime.batch_size, runtime.device,
                                                            runtime.setting):
            times[network_key(r["spec"])].append(r["time_ms"])
    return {k: float(np.median(v)) for k, v in times.items()}
