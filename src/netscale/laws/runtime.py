"""Runtime models: how runtime follows flops, params and activations on one machine.

Given measured rows such as ``{"flops": 4.0e9, "params": 2.1e7, "acts": 1.2e7, "time": 31.5}``
(flops = multiply-adds; the target in whatever unit was measured, e.g. ms per batch),
:func:`fit_runtime` fits

* per metric m: a line ``time = intercept + slope·m`` (with Pearson r, R², RMSE) and a log-log
  power ``time = coef·m^exp`` (with r of the logs);
* jointly: ``time = t0 + Σ β_m·m`` by non-negative least squares (every metric costs ≥ 0 time
  per unit and the overhead t0 ≥ 0), which stays sane when the metrics are collinear, as they
  are within one scaling strategy.

:meth:`RuntimeModel.predict` then predicts the runtime of a new (flops, params, acts).
The numerics are those of ``netscale bench --fit`` (:mod:`netscale.bench.fit`); this module
adds validation of study rows, absolute RMSEs and prediction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netscale.bench.fit import fit_joint, fit_metric, pearson_r
from netscale.errors import NetscaleError

DEFAULT_METRICS = ("flops", "params", "acts")


def _f(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class MetricFit:
    """Runtime against one metric: a line and a log-log power law.

    ``r`` is Pearson's r of (metric, runtime) (NaN when the metric or the runtime is constant);
    ``r_log`` the same for their logs. ``power_coef``/``power_exp`` are None when some values
    are not positive.
    """

    metric: str
    n: int
    slope: float
    intercept: float
    r: float
    r2: float
    rmse: float
    power_coef: float | None = None
    power_exp: float | None = None
    r_log: float | None = None
    rmse_log: float | None = None

    def predict(self, value: float, kind: str = "linear") -> float:
        """Runtime at metric ``value``; ``kind`` is ``linear`` or ``power``."""
        if kind == "linear":
            return self.intercept + self.slope * float(value)
        if kind == "power":
            if self.power_coef is None or self.power_exp is None:
                raise NetscaleError(f"no power-law runtime fit for {self.metric} (it needs "
                                    "positive values); use the linear fit")
            return self.power_coef * float(value) ** self.power_exp
        raise NetscaleError(f"unknown runtime fit kind {kind!r}; use linear or power")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "n": self.n, "slope": self.slope,
                "intercept": self.intercept, "r": _f(self.r), "r2": _f(self.r2),
                "rmse": _f(self.rmse), "power_coef": _f(self.power_coef),
                "power_exp": _f(self.power_exp), "r_log": _f(self.r_log),
                "rmse_log": _f(self.rmse_log)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricFit:
        return cls(metric=str(d["metric"]), n=int(d["n"]), slope=float(d["slope"]),
                   intercept=float(d["intercept"]), r=_nan(d.get("r")), r2=_nan(d.get("r2")),
                   rmse=_nan(d.get("rmse")), power_coef=_f(d.get("power_coef")),
                   power_exp=_f(d.get("power_exp")), r_log=_f(d.get("r_log")),
                   rmse_log=_f(d.get("rmse_log")))


@dataclass(frozen=True)
class RuntimeModel:
    """Runtime fitted from complexity metrics on one machine.

    ``per_metric`` holds a :class:`MetricFit` per metric; ``joint`` maps each metric to its
    non-negative cost per unit and ``intercept`` is the fixed overhead (None when there are
    too few rows for a joint fit: at least one more than the metrics). ``best_metric`` is the
    single metric whose line fits best (highest R²).
    """

    target: str
    metrics: tuple[str, ...]
    n: int
    per_metric: dict[str, MetricFit]
    best_metric: str
    joint: dict[str, float] | None = None
    intercept: float | None = None
    joint_r2: float | None = None
    joint_rmse: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def r(self) -> dict[str, float]:
        """Pearson r of runtime against each metric."""
        return {m: f.r for m, f in self.per_metric.items()}

    def predict(self, point: Mapping[str, float] | None = None, *, using: str | None = None,
                **values: float) -> float:
        """Predicted runtime (in the target's unit) for a model's metrics.

        Give the metrics as a mapping and/or keywords: ``predict(flops=4e9, params=2e7,
        acts=1e7)``. ``using``: ``joint`` (default when available), a metric name (its line,
        e.g. ``acts``) or ``metric:power`` (its log-log fit); default without a joint fit: the
        best single metric.
        """
        vals = {**(dict(point) if point else {}), **values}
        if using is None:
            using = "joint" if self.joint is not None else self.best_metric
        if using == "joint":
            if self.joint is None or self.intercept is None:
                raise NetscaleError("no joint runtime fit (too few rows); predict with one "
                                    f"metric, e.g. using={self.best_metric!r}")
            total = self.intercept
            for m, coef in self.joint.items():
                total += coef * _value(vals, m)
            return float(total)
        metric, _, kind = using.partition(":")
        if metric not in self.per_metric:
            raise NetscaleError(f"unknown runtime predictor {using!r}; use joint or one of "
                                f"{', '.join(self.per_metric)} (optionally with :power)")
        return float(self.per_metric[metric].predict(_value(vals, metric), kind or "linear"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "metrics": list(self.metrics), "n": self.n,
            "per_metric": {m: f.to_dict() for m, f in self.per_metric.items()},
            "best_metric": self.best_metric,
            "joint": None if self.joint is None else dict(self.joint),
            "intercept": _f(self.intercept), "joint_r2": _f(self.joint_r2),
            "joint_rmse": _f(self.joint_rmse), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuntimeModel:
        try:
            return cls(
                target=str(d["target"]), metrics=tuple(str(m) for m in d["metrics"]),
                n=int(d["n"]),
                per_metric={m: MetricFit.from_dict(v) for m, v in d["per_metric"].items()},
                best_metric=str(d["best_metric"]),
                joint=None if d.get("joint") is None else {
                    str(k): float(v) for k, v in d["joint"].items()},
                intercept=_f(d.get("intercept")), joint_r2=_f(d.get("joint_r2")),
                joint_rmse=_f(d.get("joint_rmse")),
                notes=tuple(str(s) for s in d.get("notes", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NetscaleError(f"corrupt runtime model data ({exc!r}); refit it") from None


def _value(vals: Mapping[str, float], metric: str) -> float:
    if metric not in vals:
        raise NetscaleError(f"runtime prediction needs {metric!r}; got "
                            f"{', '.join(sorted(vals)) or 'nothing'}")
    v = float(vals[metric])
    if not math.isfinite(v) or v < 0:
        raise NetscaleError(f"{metric} must be a finite count >= 0, got {vals[metric]!r}")
    return v


def _metric_fit(metric: str, m: np.ndarray, t: np.ndarray) -> MetricFit:
    n = m.size
    fit = fit_metric(m, t, metric)
    if np.ptp(m) == 0:  # a constant metric predicts the mean runtime
        slope, intercept = 0.0, float(t.mean())
    else:
        slope, intercept = fit.slope, fit.intercept
    pred = intercept + slope * m
    sst = float(np.sum((t - t.mean()) ** 2))
    sse = float(np.sum((t - pred) ** 2))
    r2 = 1.0 - sse / sst if sst > 0 else float("nan")
    coef = exp = r_log = rmse_log = None
    if math.isfinite(fit.loglog_exponent):
        coef, exp, r_log = fit.loglog_coef, fit.loglog_exponent, fit.loglog_r
        lm, lt = np.log(m), np.log(t)
        rmse_log = float(np.sqrt(np.mean((lt - (math.log(coef) + exp * lm)) ** 2)))
    return MetricFit(metric=metric, n=n, slope=slope, intercept=intercept,
                     r=pearson_r(m, t), r2=r2, rmse=math.sqrt(sse / n), power_coef=coef,
                     power_exp=exp, r_log=r_log, rmse_log=rmse_log)


def fit_runtime(rows: Sequence[Mapping[str, float]],
                metrics: Sequence[str] = DEFAULT_METRICS, target: str = "time") -> RuntimeModel:
    """Fits runtime (``target``, e.g. ms) against complexity ``metrics`` over measured rows.

    Every row needs every metric (counts >= 0; flops are multiply-adds) and a positive,
    finite target. At least 2 rows; the joint fit needs len(metrics) + 1 rows.
    """
    metrics = tuple(str(m) for m in metrics)
    if not metrics:
        raise NetscaleError("give at least one metric to fit runtime against, e.g. flops")
    if len(set(metrics)) != len(metrics):
        raise NetscaleError(f"metrics listed twice: {', '.join(metrics)}")
    if len(rows) < 2:
        raise NetscaleError(f"a runtime model needs at least 2 measured rows, got {len(rows)}; "
                            "benchmark more models")
    cols = {k: [] for k in (*metrics, target)}  # type: dict[str, list[float]]
    for i, row in enumerate(rows):
        for k in cols:
            if k not in row or row[k] is None:
                raise NetscaleError(f"runtime row {i} has no {k!r}; keys present: "
                                    f"{', '.join(sorted(map(str, row)))}")
            try:
                v = float(row[k])
            except (TypeError, ValueError):
                raise NetscaleError(f"runtime row {i}: {k} = {row[k]!r} is not a number"
                                    ) from None
            if not math.isfinite(v):
                raise NetscaleError(f"runtime row {i}: {k} is {v} (NaN/inf); drop failed "
                                    "measurements")
            if k == target and v <= 0:
                raise NetscaleError(f"runtime row {i}: {target} must be > 0, got {v:g}")
            if k != target and v < 0:
                raise NetscaleError(f"runtime row {i}: {k} must be >= 0, got {v:g}")
            cols[k].append(v)
    t = np.array(cols[target])
    n = t.size
    per = {m: _metric_fit(m, np.array(cols[m]), t) for m in metrics}
    notes = []
    for m, f in per.items():
        if math.isnan(f.r):
            notes.append(f"{m} is constant across rows (or the runtime is): r undefined")
    best = max(metrics, key=lambda m: (-1.0 if math.isnan(per[m].r2) else per[m].r2))

    joint = intercept = joint_r2 = joint_rmse = None
    if n >= len(metrics) + 1:
        jf = fit_joint({m: cols[m] for m in metrics}, t)
        intercept = jf.intercept
        joint = dict(jf.coefficients)
        pred = intercept + sum(joint[m] * np.array(cols[m]) for m in metrics)
        sst = float(np.sum((t - t.mean()) ** 2))
        sse = float(np.sum((t - pred) ** 2))
        joint_r2 = 1.0 - sse / sst if sst > 0 else float("nan")
        joint_rmse = math.sqrt(sse / n)
        zero = [m for m, b in joint.items() if b == 0.0]
        if zero:
            notes.append(f"joint fit gives no weight to {', '.join(zero)} (collinear with the "
                         "others or not adding time)")
    else:
        notes.append(f"no joint fit: {n} rows for {len(metrics)} metrics (need "
                     f"{len(metrics) + 1})")
    return RuntimeModel(target=target, metrics=metrics, n=n, per_metric=per, best_metric=best,
                        joint=joint, intercept=intercept, joint_r2=joint_r2,
                        joint_rmse=joint_rmse, notes=tuple(notes))
