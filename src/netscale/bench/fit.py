"""The runtime model: how runtime follows flops, params and activations on one machine.

The one runtime model of netscale (``netscale bench --fit``, ``netscale fit``, ``recommend``
and the report all use it). Pure numpy (scipy only for Student-t quantiles, through
:func:`netscale.laws.stats.t_quantile`), no torch.

Given measured rows (mappings or objects such as :class:`~netscale.bench.result.BenchResult`)
with ``flops`` (multiply-adds), ``params``, ``acts`` and a runtime (``time_ms`` by default: ms
per batch), :func:`fit_runtime` fits

* per metric m (:class:`MetricFit`): the least-squares line ``time = slope·m + intercept``
  with Pearson r (linear axes, as in the paper's runtime figure), r², RMSE and relative RMSE,
  and a log-log power law ``time = coef·m^exponent`` with its own r in log space;
* jointly (:class:`JointFit`): ``time = t0 + Σ c_m·m`` by non-negative least squares (t0 >= 0
  is a fixed overhead, c_m >= 0 the time per unit of each metric; a metric that does not help
  gets weight 0), which stays sane when the metrics are collinear, as they are within one
  scaling strategy.

* in log space (:class:`LogFit`): ``log time = log k + Σ e_m·log m`` by least squares, a
  product of power laws. Wide models run more multiply-adds per millisecond than narrow ones
  (larger matrix products), so a line in flops fitted on small models over-predicts them past
  the fitted range; the log fit bends with the data instead.

The :class:`RuntimeModel` then predicts the runtime of a new model with a Student-t
prediction interval (:meth:`~RuntimeModel.interval`), says how far a point lies outside the
measured range (:meth:`~RuntimeModel.extrapolation`) and writes itself as a formula
(:meth:`~RuntimeModel.formula`). The best single predictor is the metric with the highest
Pearson r; the default predictor is the joint fit unless a single line fits better, or the log
fit predicts held-out models better (lower leave-one-out relative error).

Between runs: the intervals above hold the scatter between models *within one run*. A fresh
measurement of a model in a later run (another process) also moves in two ways, each a
relative standard deviation (of log time) added in quadrature, relative to the prediction:
half = √(half_fit² + (q·drift·prediction)² + (q·scatter·prediction)²), q the interval's
normal quantile (in log space for the log fit: h = √(h_fit² + q²·(drift² + scatter²))).

* ``drift`` (:func:`drift_of`): the machine's speed moving under every model at once
  (frequency, other load), from a reference model timed at the start and end of a run;
* ``scatter`` (:func:`scatter_of`, :func:`scatter_from_repeats`): one model's single timing
  moving on its own, from models timed twice: the pooled standard deviation of log time over
  the pairs, the common shift between the two passes (the drift) removed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from netscale.errors import NetscaleError
from netscale.laws.stats import t_quantile

METRICS = ("flops", "params", "acts")
METRIC_UNITS = {"flops": "multiply-adds", "params": "parameters", "acts": "activations"}
MIN_ROWS = 3  # a line through fewer points has no residual, so no interval and no r² worth a name


def _get(row: Any, key: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(key)
    return getattr(row, key, None)


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def pearson_r(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation; nan if either variable is constant."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.size < 2:
        return math.nan
    dx = xa - xa.mean()
    dy = ya - ya.mean()
    den = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if den == 0:
        return math.nan
    return float(np.clip((dx @ dy) / den, -1.0, 1.0))


def _rel_rmse(pred: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = pred / y - 1.0
    rel = rel[np.isfinite(rel)]
    return float(np.sqrt(np.mean(rel**2))) if rel.size else math.nan


@dataclass(frozen=True)
class MetricFit:
    """Runtime vs one metric: ``time = slope·x + intercept`` and ``time = coef·x^exponent``.

    A constant metric predicts the mean runtime (slope 0) and has ``pearson_r`` nan; the
    log-log fields are nan unless every value is positive.
    """

    metric: str
    n: int
    pearson_r: float
    slope: float
    intercept: float
    r2: float
    rel_rmse: float  # RMS of (predicted / measured − 1), linear fit
    loglog_exponent: float
    loglog_coef: float
    loglog_r: float
    rmse: float = math.nan  # RMS of (predicted − measured), linear fit, in the target's unit
    rmse_log: float = math.nan  # RMS of the log-log fit's residuals (natural log)
    x_mean: float = math.nan  # for prediction intervals: mean and spread of the metric,
    x_ss: float = math.nan  # sum of squared deviations of the metric
    resid_sd: float = math.nan  # residual standard deviation (n - 2 degrees of freedom)

    def predict(self, x: float, kind: str = "linear") -> float:
        """Runtime at metric value ``x``; ``kind`` is ``linear`` or ``power`` (log-log)."""
        if kind == "linear":
            return self.slope * float(x) + self.intercept
        if kind == "power":
            if not math.isfinite(self.loglog_exponent):
                raise NetscaleError(f"no power-law runtime fit for {self.metric} (it needs "
                                    "positive values); use the linear fit")
            return float(self.loglog_coef * float(x) ** self.loglog_exponent)
        raise NetscaleError(f"unknown runtime fit kind {kind!r}; use linear or power")

    def interval(self, x: float, level: float = 0.95) -> tuple[float, float, float]:
        """(prediction, lo, hi): the line's prediction with its ``level`` prediction interval
        for one new model (Student t, n − 2 degrees of freedom); nan without >= 3 rows."""
        y = self.predict(x)
        if self.n < 3 or not (math.isfinite(self.resid_sd) and self.x_ss > 0):
            return y, math.nan, math.nan
        half = t_quantile(level, self.n - 2) * self.resid_sd * math.sqrt(
            1 + 1 / self.n + (x - self.x_mean) ** 2 / self.x_ss)
        return y, y - half, y + half

    def to_dict(self) -> dict[str, Any]:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricFit:
        return cls(metric=str(d["metric"]), n=int(d["n"]),
                   **{k: _nan(d.get(k)) for k in _METRIC_FLOATS})


_METRIC_FLOATS = ("pearson_r", "slope", "intercept", "r2", "rel_rmse", "loglog_exponent",
                  "loglog_coef", "loglog_r", "rmse", "rmse_log", "x_mean", "x_ss", "resid_sd")


@dataclass(frozen=True)
class JointFit:
    """``time = intercept + Σ coefficients[m]·x_m`` by non-negative least squares."""

    metrics: tuple[str, ...]
    coefficients: dict[str, float]
    intercept: float
    n: int
    r2: float
    pearson_r: float  # r between fitted and measured runtime
    rel_rmse: float
    rank: int  # numerical rank of the (centred) design: < len(metrics) means collinear
    resid_sd: float = math.nan  # residual standard deviation (n − active terms dof)
    active: tuple[str, ...] = ()  # "intercept" and the metrics with a non-zero coefficient
    xtx_inv: tuple[tuple[float, ...], ...] = ()  # (XᵀX)⁻¹ of the active columns
    rmse: float = math.nan  # RMS of (predicted − measured), in the target's unit
    loo_rel_rmse: float = math.nan  # leave-one-out RMS of (predicted / measured − 1)

    def interval(self, values: Mapping[str, float], level: float = 0.95
                 ) -> tuple[float, float, float]:
        """(prediction, lo, hi) with the ``level`` prediction interval of the fit restricted to
        its active terms (ordinary least squares on them; Student t)."""
        y = self.predict(values)
        dof = self.n - len(self.active)
        if dof < 1 or not self.xtx_inv or not math.isfinite(self.resid_sd):
            return y, math.nan, math.nan
        v = np.array([1.0 if a == "intercept" else float(values[a]) for a in self.active])
        lev = float(v @ np.asarray(self.xtx_inv) @ v)
        half = t_quantile(level, dof) * self.resid_sd * math.sqrt(1 + max(lev, 0.0))
        return y, y - half, y + half

    @property
    def unused(self) -> list[str]:
        """Metrics the joint fit gives no weight."""
        return [m for m, c in self.coefficients.items() if c == 0.0]

    def predict(self, values: Mapping[str, float]) -> float:
        return self.intercept + sum(c * float(values[m]) for m, c in self.coefficients.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "coefficients": {k: _clean(v) for k, v in self.coefficients.items()},
            "intercept": _clean(self.intercept), "n": self.n, "r2": _clean(self.r2),
            "pearson_r": _clean(self.pearson_r), "rel_rmse": _clean(self.rel_rmse),
            "rmse": _clean(self.rmse), "rank": self.rank, "unused": self.unused,
            "method": "non-negative least squares", "resid_sd": _clean(self.resid_sd),
            "active": list(self.active), "xtx_inv": [list(r) for r in self.xtx_inv],
            "loo_rel_rmse": _clean(self.loo_rel_rmse),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JointFit:
        return cls(metrics=tuple(str(m) for m in d["metrics"]),
                   coefficients={str(k): _nan(v) for k, v in d["coefficients"].items()},
                   intercept=_nan(d["intercept"]), n=int(d["n"]), r2=_nan(d.get("r2")),
                   pearson_r=_nan(d.get("pearson_r")), rel_rmse=_nan(d.get("rel_rmse")),
                   rank=int(d["rank"]), resid_sd=_nan(d.get("resid_sd")),
                   active=tuple(str(a) for a in d.get("active", ())),
                   xtx_inv=tuple(tuple(float(v) for v in r) for r in d.get("xtx_inv", ())),
                   rmse=_nan(d.get("rmse")), loo_rel_rmse=_nan(d.get("loo_rel_rmse")))


@dataclass(frozen=True)
class LogFit:
    """``log time = intercept + Σ exponents[m]·log x_m`` by least squares (pseudo-inverse when
    the metrics are collinear), with a Student-t prediction interval in log space."""

    metrics: tuple[str, ...]
    exponents: dict[str, float]
    intercept: float
    n: int
    resid_sd: float  # natural-log units, n − p degrees of freedom
    dof: int
    xtx_inv: tuple[tuple[float, ...], ...] = ()
    loo_rel_rmse: float = math.nan  # leave-one-out RMS of (predicted / measured − 1)

    def _row(self, values: Mapping[str, float]) -> np.ndarray:
        xs = [float(values[m]) for m in self.metrics]
        if any(v <= 0 for v in xs):
            raise NetscaleError("the log-space runtime fit needs positive metrics; use the "
                                "joint or a single-metric fit")
        return np.array([1.0] + [math.log(v) for v in xs])

    def predict(self, values: Mapping[str, float]) -> float:
        v = self._row(values)
        beta = np.array([self.intercept] + [self.exponents[m] for m in self.metrics])
        return float(math.exp(float(v @ beta)))

    def interval(self, values: Mapping[str, float], level: float = 0.95
                 ) -> tuple[float, float, float]:
        y = self.predict(values)
        if self.dof < 1 or not self.xtx_inv or not math.isfinite(self.resid_sd):
            return y, math.nan, math.nan
        v = self._row(values)
        lev = float(v @ np.asarray(self.xtx_inv) @ v)
        half = t_quantile(level, self.dof) * self.resid_sd * math.sqrt(1 + max(lev, 0.0))
        return y, y * math.exp(-half), y * math.exp(half)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": list(self.metrics),
                "exponents": {k: _clean(v) for k, v in self.exponents.items()},
                "intercept": _clean(self.intercept), "n": self.n,
                "resid_sd": _clean(self.resid_sd), "dof": self.dof,
                "xtx_inv": [list(r) for r in self.xtx_inv],
                "loo_rel_rmse": _clean(self.loo_rel_rmse), "method": "least squares on logs"}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogFit:
        return cls(metrics=tuple(str(m) for m in d["metrics"]),
                   exponents={str(k): _nan(v) for k, v in d["exponents"].items()},
                   intercept=_nan(d["intercept"]), n=int(d["n"]),
                   resid_sd=_nan(d.get("resid_sd")), dof=int(d.get("dof", 0)),
                   xtx_inv=tuple(tuple(float(v) for v in r) for r in d.get("xtx_inv", ())),
                   loo_rel_rmse=_nan(d.get("loo_rel_rmse")))


def fit_log(columns: Mapping[str, Sequence[float]], y: Sequence[float]) -> LogFit | None:
    """Least squares of log y on log of every column plus an intercept; None when a value is
    not positive or there are too few rows (n <= columns + 1)."""
    names = tuple(columns)
    ya = np.asarray(y, dtype=float)
    n = int(ya.size)
    cols = [np.asarray(columns[m], dtype=float) for m in names]
    if n <= len(names) + 1 or (ya <= 0).any() or any((c <= 0).any() for c in cols):
        return None
    X = np.column_stack([np.ones(n)] + [np.log(c) for c in cols])
    ly = np.log(ya)
    inv = np.linalg.pinv(X.T @ X)
    beta = inv @ X.T @ ly
    rank = int(np.linalg.matrix_rank(X))
    dof = n - rank
    res = ly - X @ beta
    sd = math.sqrt(float(res @ res) / dof) if dof > 0 else math.nan
    loo = math.nan
    h = np.einsum("ij,jk,ik->i", X, inv, X)
    if dof > 0 and (h < 1 - 1e-9).all():
        # leave-one-out residuals of least squares in closed form: r_i / (1 − h_i)
        loo = float(np.sqrt(np.mean(np.expm1(-res / (1 - h)) ** 2)))
    return LogFit(metrics=names, exponents={m: float(b) for m, b in zip(names, beta[1:])},
                  intercept=float(beta[0]), n=n, resid_sd=sd, dof=dof,
                  xtx_inv=tuple(tuple(float(v) for v in r) for r in inv), loo_rel_rmse=loo)


def _joint_loo(cols: Mapping[str, Sequence[float]], y: Sequence[float],
               max_held: int = 64) -> float:
    """Leave-one-out RMS of (predicted / measured − 1) of the joint fit (at most ``max_held``
    evenly spread held-out rows)."""
    n = len(y)
    held = np.unique(np.linspace(0, n - 1, min(n, max_held)).round().astype(int))
    errs = []
    for i in held:
        keep = [j for j in range(n) if j != i]
        f = fit_joint({m: [v[j] for j in keep] for m, v in cols.items()}, [y[j] for j in keep])
        errs.append(f.predict({m: v[i] for m, v in cols.items()}) / y[i] - 1.0)
    return float(np.sqrt(np.mean(np.square(errs)))) if errs else math.nan


def drift_of(reference_ms: Sequence[float]) -> float:
    """The relative between-run drift: the standard deviation of log(time) of one reference
    model timed at the start and end of every benchmark run (ms; at least 2 timings)."""
    xs = [float(v) for v in reference_ms]
    if len(xs) < 2 or any(not math.isfinite(v) or v <= 0 for v in xs):
        raise NetscaleError("drift needs at least 2 positive reference timings (ms), e.g. "
                            "one at the start and one at the end of the run")
    return float(np.std(np.log(xs), ddof=1))


def scatter_of(first_ms: Sequence[float], second_ms: Sequence[float]) -> float:
    """The between-run scatter of one model's single timing (relative: a standard deviation of
    log time), from k >= 2 models timed twice (``first_ms[i]`` and ``second_ms[i]``: model i in
    two passes, ms). With d_i = log(second_i / first_i) and d̄ their mean (the common shift
    of the second pass: drift, which :func:`drift_of` covers),
    scatter² = Σ (d_i − d̄)² / (2·(k − 1)): a difference of two timings has twice the
    variance of one, and the mean costs one degree of freedom."""
    a = [float(v) for v in first_ms]
    b = [float(v) for v in second_ms]
    if len(a) != len(b):
        raise NetscaleError(f"scatter needs pairs of timings: {len(a)} first and {len(b)} "
                            "second timings")
    if len(a) < 2 or any(not math.isfinite(v) or v <= 0 for v in a + b):
        raise NetscaleError("scatter needs at least 2 models with 2 positive timings each (ms)")
    d = np.log(b) - np.log(a)
    return math.sqrt(float(((d - d.mean()) ** 2).sum()) / (2 * (len(d) - 1)))


def scatter_from_repeats(times: Iterable[Sequence[float]]) -> tuple[float, int]:
    """The between-run scatter of one network's single timing from groups of repeated timings
    (ms; one group per network, e.g. the seeds of a timing-only study, each timed in its own
    process): the pooled standard deviation of log(time) within networks, and the number of
    networks timed more than once. Exact repeats of a value (a row mirrored from another)
    count once; (0.0, 0) when no network has two distinct timings. For pairs this is
    √(Σ d_i² / (2k)), :func:`scatter_of` without removing a common shift (the repeats of a
    study are not two passes)."""
    ss, dof, groups = 0.0, 0, 0
    for group in times:
        xs = sorted({float(v) for v in group if v is not None and math.isfinite(float(v))
                     and float(v) > 0})
        if len(xs) < 2:
            continue
        lx = np.log(xs)
        ss += float(((lx - lx.mean()) ** 2).sum())
        dof += len(xs) - 1
        groups += 1
    return (math.sqrt(ss / dof), groups) if dof else (0.0, 0)


@dataclass(frozen=True)
class RuntimeModel:
    """Per-metric and joint runtime fits over a set of measured models.

    ``ranges`` holds the measured (min, max) of every metric and of the target, for the
    extrapolation check and as the floor of predictions; ``notes`` say what was not fitted.
    """

    target: str
    n: int
    per_metric: dict[str, MetricFit]
    joint: JointFit | None
    best_metric: str | None
    metrics: tuple[str, ...] = METRICS
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    log: LogFit | None = None
    drift: float = 0.0  # relative between-run drift (log-time standard deviation)
    scatter: float = 0.0  # relative between-run scatter of one model (log-time SD)
    scatter_n: int = 0  # models (networks) timed more than once that ``scatter`` comes from

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    def ranking(self) -> list[str]:
        """Metrics by decreasing Pearson r (nan last)."""
        def key(m: str) -> float:
            r = self.per_metric[m].pearson_r
            return -r if math.isfinite(r) else math.inf

        return sorted(self.per_metric, key=key)

    @property
    def predictor(self) -> str:
        """The default predictor: ``joint`` unless the best single metric's line fits better
        (higher r²), else that metric."""
        best = self.best_metric or self.metrics[0]
        choice = best
        if self.joint is not None and math.isfinite(self.joint.r2):
            r2 = self.per_metric[best].r2
            if not math.isfinite(r2) or self.joint.r2 >= r2 - 1e-12:
                choice = "joint"
        if (choice == "joint" and self.log is not None and self.joint is not None
                and math.isfinite(self.log.loo_rel_rmse)
                and math.isfinite(self.joint.loo_rel_rmse)
                and self.log.loo_rel_rmse < 0.8 * self.joint.loo_rel_rmse):
            return "log"
        return choice

    def _using(self, using: str | None) -> tuple[str, str]:
        using = using or self.predictor
        if using == "joint":
            if self.joint is None:
                raise NetscaleError("no joint runtime fit (too few rows); predict with one "
                                    f"metric, e.g. using={self.predictor!r}")
            return "joint", ""
        if using == "log":
            if self.log is None:
                raise NetscaleError("no log-space runtime fit (too few rows or a metric <= 0); "
                                    f"use using={self.predictor!r}")
            return "log", ""
        metric, _, kind = using.partition(":")
        if metric not in self.per_metric or kind not in ("", "linear", "power"):
            raise NetscaleError(f"unknown runtime predictor {using!r}; use joint or one of "
                                f"{', '.join(self.per_metric)} (optionally with :power)")
        return metric, kind or "linear"

    def _values(self, point: Mapping[str, float] | None, values: Mapping[str, float],
                need: Iterable[str]) -> dict[str, float]:
        vals = {**(dict(point) if point else {}), **values}
        out = {}
        for m in need:
            if m not in vals:
                raise NetscaleError(f"runtime prediction needs {m!r}; got "
                                    f"{', '.join(sorted(vals)) or 'nothing'}")
            v = float(vals[m])
            if not math.isfinite(v) or v < 0:
                raise NetscaleError(f"{m} must be a finite count >= 0, got {vals[m]!r}")
            out[m] = v
        return out

    def interval(self, point: Mapping[str, float] | None = None, *, using: str | None = None,
                 level: float = 0.95, **values: float) -> tuple[float, float, float]:
        """(prediction, lo, hi) for a model's metrics, given as a mapping and/or keywords
        (``interval(flops=4e9, params=2e7, acts=1e7)``), with the ``level`` prediction
        interval for one new model (nan bounds for the log-log fit or too few rows).

        ``using``: ``joint``, a metric name (its line) or ``metric:power`` (its log-log fit);
        default :attr:`predictor`.
        """
        which, kind = self._using(using)
        if which == "joint":
            assert self.joint is not None
            iv = self.joint.interval(self._values(point, values, self.joint.metrics), level)
        elif which == "log":
            assert self.log is not None
            iv = self.log.interval(self._values(point, values, self.log.metrics), level)
        else:
            x = self._values(point, values, [which])[which]
            fit = self.per_metric[which]
            if kind == "power":
                return fit.predict(x, "power"), math.nan, math.nan
            iv = fit.interval(x, level)
        return self._between_runs(iv, level, log=which == "log")

    @property
    def between_run_sd(self) -> float:
        """The relative standard deviation a fresh timing in a later run adds to the fit's:
        √(drift² + scatter²)."""
        return math.hypot(self.drift, self.scatter)

    def _between_runs(self, iv: tuple[float, float, float], level: float, *, log: bool
                      ) -> tuple[float, float, float]:
        y, lo, hi = iv
        rel = self.between_run_sd
        if not rel or not (math.isfinite(lo) and math.isfinite(hi)):
            return iv
        # a normal quantile: drift and scatter are not estimated from the fit's rows
        q = NormalDist().inv_cdf(0.5 + level / 2)
        if log and lo > 0:  # the log fit's interval is symmetric in log time
            h = math.hypot(math.log(y / lo), q * rel)
            return y, y * math.exp(-h), y * math.exp(h)
        extra = q * rel * y
        return (y, y - math.hypot(y - lo, extra), y + math.hypot(hi - y, extra))

    def with_drift(self, drift: float) -> RuntimeModel:
        """The same model with a between-run drift (see :func:`drift_of`)."""
        if not math.isfinite(drift) or drift < 0:
            raise NetscaleError(f"drift must be a relative standard deviation >= 0, got {drift}")
        return replace(self, drift=float(drift))

    def with_scatter(self, scatter: float, n: int = 0) -> RuntimeModel:
        """The same model with a between-run scatter of one model's timing (see
        :func:`scatter_of`), estimated from ``n`` models timed twice."""
        if not math.isfinite(scatter) or scatter < 0:
            raise NetscaleError("scatter must be a relative standard deviation >= 0, got "
                                f"{scatter}")
        if n < 0:
            raise NetscaleError(f"scatter: the number of re-timed models must be >= 0, got {n}")
        return replace(self, scatter=float(scatter), scatter_n=int(n))

    def predict(self, point: Mapping[str, float] | None = None, *, using: str | None = None,
                **values: float) -> float:
        """Predicted runtime (in the target's unit); arguments as for :meth:`interval`."""
        return self.interval(point, using=using, **values)[0]

    def extrapolation(self, point: Mapping[str, float] | None = None, **values: float) -> float:
        """How far the point lies outside the measured range of the metrics, as a factor
        (1.0 = inside; 2.0 = twice the largest measured value or half the smallest)."""
        vals = {**(dict(point) if point else {}), **values}
        out = 1.0
        for m in self.metrics:
            if m not in vals or m not in self.ranges:
                continue
            v, (lo, hi) = float(vals[m]), self.ranges[m]
            if v > 0 and hi > 0:
                out = max(out, v / hi, lo / v if lo > 0 else 1.0)
        return out

    def r2_of(self, using: str | None = None) -> float:
        which, _ = self._using(using)
        if which == "log":
            which = "joint" if self.joint else (self.best_metric or self.metrics[0])
        return self.joint.r2 if which == "joint" and self.joint else self.per_metric[which].r2

    def rmse_of(self, using: str | None = None) -> float:
        which, _ = self._using(using)
        if which == "log":
            which = "joint" if self.joint else (self.best_metric or self.metrics[0])
        return self.joint.rmse if which == "joint" and self.joint else self.per_metric[which].rmse

    def formula(self, using: str | None = None,
                units: Mapping[str, tuple[float, str]] | None = None) -> str:
        """The predictor as a formula, e.g. ``time_ms = 0.5 + 1e-09·flops + 4e-07·acts``.
        ``units`` maps a metric to (divisor, unit), e.g. ``{"flops": (1e9, "G MACs")}``:
        its coefficient is then per that unit (``2.1·flops[G MACs]``)."""
        which, kind = self._using(using)

        def term(c: float, m: str) -> str:
            div, unit = (units or {}).get(m, (1.0, ""))
            return f"{c * div:.3g}·{m}" + (f"[{unit}]" if unit else "")

        if which == "joint":
            assert self.joint is not None
            parts = " + ".join(term(c, m) for m, c in self.joint.coefficients.items())
            return f"{self.target} = {self.joint.intercept:.3g} + {parts}"
        if which == "log":
            assert self.log is not None
            k = math.exp(self.log.intercept)
            facs = []
            for m, e in self.log.exponents.items():
                div, unit = (units or {}).get(m, (1.0, ""))
                k *= div**e
                facs.append(f"{m}[{unit}]^{e:.3g}" if unit else f"{m}^{e:.3g}")
            return f"{self.target} = {k:.3g}·" + "·".join(facs)
        f = self.per_metric[which]
        if kind == "power":
            div, unit = (units or {}).get(which, (1.0, ""))
            coef = f.loglog_coef * div**f.loglog_exponent
            x = f"({which}[{unit}])" if unit else which
            return f"{self.target} = {coef:.3g}·{x}^{f.loglog_exponent:.3g}"
        return f"{self.target} = {f.intercept:.3g} + {term(f.slope, which)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "metrics": list(self.metrics), "n": self.n,
            "per_metric": {k: v.to_dict() for k, v in self.per_metric.items()},
            "joint": self.joint.to_dict() if self.joint else None,
            "best_metric": self.best_metric, "ranking": self.ranking(),
            "predictor": self.predictor, "formula": self.formula(),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "note": self.note, "notes": list(self.notes),
            "log": self.log.to_dict() if self.log else None, "drift": self.drift,
            "scatter": self.scatter, "scatter_n": self.scatter_n,
            "units": {"time": "ms per batch", **METRIC_UNITS},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuntimeModel:
        try:
            return cls(
                target=str(d["target"]), n=int(d["n"]),
                per_metric={str(m): MetricFit.from_dict(v) for m, v in d["per_metric"].items()},
                joint=None if d.get("joint") is None else JointFit.from_dict(d["joint"]),
                best_metric=None if d.get("best_metric") is None else str(d["best_metric"]),
                metrics=tuple(str(m) for m in d.get("metrics", d["per_metric"])),
                ranges={str(k): (float(v[0]), float(v[1]))
                        for k, v in d.get("ranges", {}).items()},
                notes=tuple(str(s) for s in d.get("notes", ())),
                log=None if d.get("log") is None else LogFit.from_dict(d["log"]),
                drift=float(d.get("drift") or 0.0),
                scatter=float(d.get("scatter") or 0.0),
                scatter_n=int(d.get("scatter_n") or 0),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise NetscaleError(f"corrupt runtime model data ({exc!r}); refit it") from None


def fit_metric(x: Sequence[float], y: Sequence[float], metric: str = "x") -> MetricFit:
    """Linear and log-log fits of y (runtime) against one metric x."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = int(xa.size)
    r = pearson_r(xa, ya)
    slope = intercept = r2 = rel = rmse = x_mean = x_ss = sd = math.nan
    if n >= 1:
        if n >= 2 and np.ptp(xa) > 0:
            slope, intercept = (float(v) for v in np.polyfit(xa, ya, 1))
            x_mean, x_ss = float(xa.mean()), float(((xa - xa.mean()) ** 2).sum())
        else:  # a constant metric predicts the mean runtime
            slope, intercept = 0.0, float(ya.mean())
        pred = slope * xa + intercept
        ss_res = float(((ya - pred) ** 2).sum())
        ss_tot = float(((ya - ya.mean()) ** 2).sum())
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
        rel = _rel_rmse(pred, ya)
        rmse = math.sqrt(ss_res / n)
        sd = math.sqrt(ss_res / (n - 2)) if n > 2 and x_ss > 0 else math.nan
    e = coef = lr = rmse_log = math.nan
    if n >= 2 and (xa > 0).all() and (ya > 0).all() and np.ptp(np.log(xa)) > 0:
        lx, ly = np.log(xa), np.log(ya)
        e, c = (float(v) for v in np.polyfit(lx, ly, 1))
        coef, lr = math.exp(c), pearson_r(lx, ly)
        rmse_log = float(np.sqrt(np.mean((ly - (c + e * lx)) ** 2)))
    return MetricFit(metric=metric, n=n, pearson_r=r, slope=slope, intercept=intercept,
                     r2=r2, rel_rmse=rel, loglog_exponent=e, loglog_coef=coef, loglog_r=lr,
                     rmse=rmse, rmse_log=rmse_log, x_mean=x_mean, x_ss=x_ss, resid_sd=sd)


def fit_joint(columns: Mapping[str, Sequence[float]], y: Sequence[float]) -> JointFit:
    """Non-negative least squares of y on all columns plus an intercept.

    Every metric costs >= 0 time per unit and the fixed overhead is >= 0, which keeps the fit
    interpretable when the metrics are collinear (as they are within one scaling strategy).
    Solved exactly by enumerating supports: for each subset of the columns, ordinary least
    squares; the best feasible (all coefficients >= 0) subset is the NNLS optimum. Fine for a
    handful of metrics (2^(k+1) small solves).
    """
    names = tuple(columns)
    ya = np.asarray(y, dtype=float)
    n = int(ya.size)
    X = np.column_stack([np.ones(n)] + [np.asarray(columns[m], dtype=float) for m in names])
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    best_beta = np.zeros(X.shape[1])
    best_sse = float(ya @ ya)
    k = X.shape[1]
    for mask in range(1, 2**k):
        cols = [i for i in range(k) if mask >> i & 1]
        sol, *_ = np.linalg.lstsq(Xs[:, cols], ya, rcond=None)
        if (sol < -1e-12 * max(1.0, float(np.abs(sol).max()))).any():
            continue
        beta = np.zeros(k)
        beta[cols] = np.maximum(sol, 0.0)
        sse = float(((ya - Xs @ beta) ** 2).sum())
        if sse < best_sse * (1 - 1e-12):
            best_beta, best_sse = beta, sse
    beta = best_beta / scale
    pred = X @ beta
    ss_tot = float(((ya - ya.mean()) ** 2).sum())
    centred = X[:, 1:] - X[:, 1:].mean(axis=0)
    rank = int(np.linalg.matrix_rank(centred / np.where(scale[1:] == 0, 1, scale[1:])))
    act = [i for i in range(k) if beta[i] != 0.0 or i == 0]
    xa = X[:, act]
    try:
        inv = np.linalg.inv(xa.T @ xa)
        xtx_inv = tuple(tuple(float(v) for v in row) for row in inv)
    except np.linalg.LinAlgError:
        xtx_inv = ()
    dof = n - len(act)
    sd = math.sqrt(best_sse / dof) if dof > 0 else math.nan
    return JointFit(
        metrics=names, coefficients={m: float(c) for m, c in zip(names, beta[1:])},
        intercept=float(beta[0]), n=n,
        r2=1.0 - best_sse / ss_tot if ss_tot > 0 else math.nan,
        pearson_r=pearson_r(pred, ya), rel_rmse=_rel_rmse(pred, ya), rank=rank,
        resid_sd=sd, active=tuple("intercept" if i == 0 else names[i - 1] for i in act),
        xtx_inv=xtx_inv, rmse=math.sqrt(float(((ya - pred) ** 2).mean())) if n else math.nan,
    )


def _number(row: Any, i: int, key: str) -> float | None:
    v = _get(row, key)
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise NetscaleError(f"runtime row {i}: {key} = {v!r} is not a number") from None
    if not math.isfinite(x):
        raise NetscaleError(f"runtime row {i}: {key} is {x} (NaN/inf); drop failed "
                            "measurements")
    return x


def _measured(rows: Iterable[Any], metrics: Sequence[str], target: str
              ) -> tuple[dict[str, list[float]], list[float]]:
    """The metric columns and the target of the measured rows: every row needs every metric
    (a count >= 0); a row whose target is missing (not measured, e.g. out of memory) is
    skipped; a measured target must be a positive finite number."""
    cols: dict[str, list[float]] = {m: [] for m in metrics}
    y: list[float] = []
    for i, row in enumerate(rows):
        vals = []
        for m in metrics:
            v = _number(row, i, m)
            if v is None:
                keys = f"; keys present: {', '.join(sorted(map(str, row)))}" \
                    if isinstance(row, Mapping) else ""
                raise NetscaleError(f"runtime row {i} has no {m!r}{keys}")
            if v < 0:
                raise NetscaleError(f"runtime row {i}: {m} must be >= 0, got {v:g}")
            vals.append(v)
        t = _number(row, i, target)
        if t is None:
            continue
        if t <= 0:
            raise NetscaleError(f"runtime row {i}: {target} must be > 0, got {t:g}")
        for m, v in zip(metrics, vals):
            cols[m].append(v)
        y.append(t)
    return cols, y


def fit_runtime(rows: Iterable[Any], metrics: Sequence[str] = METRICS,
                target: str = "time_ms", *, drift: float = 0.0, scatter: float = 0.0,
                scatter_n: int = 0) -> RuntimeModel:
    """Fits runtime (``target``) against each metric alone and jointly.

    ``rows`` are mappings or objects (e.g. :class:`BenchResult`) with the metric fields and the
    target; rows whose target is missing (out-of-memory) are skipped. Needs >= 3 measured rows;
    the joint fit needs >= len(metrics) + 2 (otherwise it is None and ``notes`` say so).
    ``drift`` and ``scatter`` (from ``scatter_n`` re-timed models) widen the intervals for a
    timing in a later run (see the module's docstring).
    """
    metrics = tuple(str(m) for m in metrics)
    if not metrics:
        raise NetscaleError("runtime fit: no metrics given; fit against e.g. flops")
    if len(set(metrics)) != len(metrics):
        raise NetscaleError(f"runtime fit: metrics listed twice: {', '.join(metrics)}")
    cols, y = _measured(rows, metrics, target)
    n = len(y)
    if n < MIN_ROWS:
        raise NetscaleError(
            f"runtime fit needs at least {MIN_ROWS} measured models, got {n}; give more "
            "models or use --base MODEL --strategies ... --factors ...")
    per = {m: fit_metric(cols[m], y, m) for m in metrics}
    notes = [f"{m} is constant across rows (or the runtime is): r undefined"
             for m in metrics if math.isnan(per[m].pearson_r)]
    joint = None
    if n >= len(metrics) + 2:
        joint = fit_joint(cols, y)
        joint = replace(joint, loo_rel_rmse=_joint_loo(cols, y))
        if joint.rank < len(metrics):
            notes.append("metrics are collinear over these models: joint coefficients not "
                         "unique")
        if joint.unused:
            notes.append(f"joint fit gives no weight to {', '.join(joint.unused)}")
    else:
        notes.append(f"joint fit skipped: needs >= {len(metrics) + 2} models, got {n}")
    finite = [m for m in metrics if math.isfinite(per[m].pearson_r)]
    best = max(finite, key=lambda m: per[m].pearson_r) if finite else None
    ranges = {k: (min(v), max(v)) for k, v in {**cols, target: y}.items()}
    log = fit_log(cols, y) if joint is not None else None
    model = RuntimeModel(target=target, n=n, per_metric=per, joint=joint, best_metric=best,
                         metrics=metrics, ranges=ranges, notes=tuple(notes), log=log)
    model = model.with_drift(drift) if drift else model
    return model.with_scatter(scatter, scatter_n) if scatter or scatter_n else model
