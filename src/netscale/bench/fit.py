"""Runtime model: how well does each complexity metric predict measured runtime?

Pure numpy, no torch. Given rows (measured models) with ``flops``, ``params``, ``acts`` and a
runtime (``time_ms`` by default), :func:`fit_runtime` reports for each metric alone

* the Pearson correlation r of runtime vs the metric (linear axes, as in the paper's runtime
  figure) and the least-squares line ``time = slope·x + intercept`` (r² = r² of that line);
* a log-log (power-law) fit ``time = coef·x^exponent`` with its own r in log space;
* the relative RMS error of the linear fit,

and, jointly, the non-negative least-squares fit ``time = c0 + Σ c_m·x_m`` over all metrics
(c0 >= 0 is a fixed overhead, c_m >= 0 the time per unit of each metric; a metric that does not
help gets weight 0).

The best single predictor is the metric with the highest Pearson r.

This module is deliberately self-contained; ``netscale.laws`` carries a generic
``fit_runtime``. Both fit the same models (per-metric linear fit + Pearson r, joint least
squares); see docs/bench.md for how they relate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from netscale.errors import NetscaleError

METRICS = ("flops", "params", "acts")
METRIC_UNITS = {"flops": "multiply-adds", "params": "parameters", "acts": "activations"}


def _get(row: Any, key: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(key)
    return getattr(row, key, None)


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
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


@dataclass(frozen=True)
class MetricFit:
    """Runtime vs one metric. ``time = slope·x + intercept``; ``time = coef·x^exponent``."""

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
    x_mean: float = math.nan  # for prediction intervals: mean and spread of the metric,
    x_ss: float = math.nan  # sum of squared deviations of the metric
    resid_sd: float = math.nan  # residual standard deviation (n - 2 degrees of freedom), ms

    def predict(self, x: float) -> float:
        return self.slope * x + self.intercept

    def interval(self, x: float, level: float = 0.95) -> tuple[float, float, float]:
        """(prediction, lo, hi): the line's prediction with its ``level`` prediction interval
        for one new model (Student t, n − 2 degrees of freedom); nan without >= 3 rows."""
        y = self.predict(x)
        if self.n < 3 or not (math.isfinite(self.resid_sd) and self.x_ss > 0):
            return y, math.nan, math.nan
        half = _t(level, self.n - 2) * self.resid_sd * math.sqrt(
            1 + 1 / self.n + (x - self.x_mean) ** 2 / self.x_ss)
        return y, y - half, y + half

    def to_dict(self) -> dict[str, Any]:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


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
    resid_sd: float = math.nan  # residual standard deviation, ms (n − active terms dof)
    active: tuple[str, ...] = ()  # "intercept" and the metrics with a non-zero coefficient
    xtx_inv: tuple[tuple[float, ...], ...] = ()  # (XᵀX)⁻¹ of the active columns

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
        half = _t(level, dof) * self.resid_sd * math.sqrt(1 + max(lev, 0.0))
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
            "rank": self.rank, "unused": self.unused, "method": "non-negative least squares",
            "resid_sd": _clean(self.resid_sd), "active": list(self.active),
            "xtx_inv": [list(r) for r in self.xtx_inv],
        }


@dataclass(frozen=True)
class RuntimeFit:
    """Per-metric and joint runtime fits over a set of measured models."""

    target: str
    n: int
    per_metric: dict[str, MetricFit]
    joint: JointFit | None
    best_metric: str | None
    note: str = ""

    def ranking(self) -> list[str]:
        """Metrics by decreasing Pearson r (nan last)."""
        def key(m: str) -> float:
            r = self.per_metric[m].pearson_r
            return -r if math.isfinite(r) else math.inf

        return sorted(self.per_metric, key=key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "n": self.n,
            "per_metric": {k: v.to_dict() for k, v in self.per_metric.items()},
            "joint": self.joint.to_dict() if self.joint else None,
            "best_metric": self.best_metric, "ranking": self.ranking(), "note": self.note,
            "units": {"time": "ms per batch", **METRIC_UNITS},
        }


def _t(level: float, dof: int) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + level / 2, dof))


def _rel_rmse(pred: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = pred / y - 1.0
    rel = rel[np.isfinite(rel)]
    return float(np.sqrt(np.mean(rel**2))) if rel.size else math.nan


def fit_metric(x: Sequence[float], y: Sequence[float], metric: str = "x") -> MetricFit:
    """Linear and log-log fits of y (runtime) against one metric x."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = int(xa.size)
    r = pearson_r(xa, ya)
    if n >= 2 and np.ptp(xa) > 0:
        slope, intercept = (float(v) for v in np.polyfit(xa, ya, 1))
        pred = slope * xa + intercept
        ss_res = float(((ya - pred) ** 2).sum())
        ss_tot = float(((ya - ya.mean()) ** 2).sum())
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
        rel = _rel_rmse(pred, ya)
        x_mean, x_ss = float(xa.mean()), float(((xa - xa.mean()) ** 2).sum())
        sd = math.sqrt(ss_res / (n - 2)) if n > 2 else math.nan
    else:
        slope = intercept = r2 = rel = x_mean = x_ss = sd = math.nan
    if n >= 2 and (xa > 0).all() and (ya > 0).all() and np.ptp(np.log(xa)) > 0:
        lx, ly = np.log(xa), np.log(ya)
        e, c = (float(v) for v in np.polyfit(lx, ly, 1))
        coef, lr = math.exp(c), pearson_r(lx, ly)
    else:
        e = coef = lr = math.nan
    return MetricFit(metric=metric, n=n, pearson_r=r, slope=slope, intercept=intercept,
                     r2=r2, rel_rmse=rel, loglog_exponent=e, loglog_coef=coef, loglog_r=lr,
                     x_mean=x_mean, x_ss=x_ss, resid_sd=sd)


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
        xtx_inv=xtx_inv,
    )


def fit_runtime(rows: Iterable[Any], metrics: Sequence[str] = METRICS,
                target: str = "time_ms") -> RuntimeFit:
    """Fits runtime (``target``) against each metric alone and jointly.

    ``rows`` are mappings or objects (e.g. :class:`BenchResult`) with the metric fields and the
    target; rows whose target is missing (out-of-memory) are skipped. Needs >= 3 rows; the
    joint fit needs >= len(metrics) + 2 rows (otherwise it is None and ``note`` says so).
    """
    metrics = tuple(metrics)
    if not metrics:
        raise NetscaleError("runtime fit: no metrics given")
    data = []
    for row in rows:
        t = _get(row, target)
        if t is None or not math.isfinite(float(t)):
            continue
        vals = [_get(row, m) for m in metrics]
        if any(v is None for v in vals):
            missing = [m for m, v in zip(metrics, vals) if v is None]
            raise NetscaleError(f"runtime fit: a row has no {', '.join(missing)}")
        data.append(([float(v) for v in vals], float(t)))
    if len(data) < 3:
        raise NetscaleError(
            f"runtime fit needs at least 3 measured models, got {len(data)}; give more models "
            "or use --base MODEL --strategies ... --factors ...")
    y = [t for _, t in data]
    cols = {m: [v[i] for v, _ in data] for i, m in enumerate(metrics)}
    per = {m: fit_metric(cols[m], y, m) for m in metrics}
    joint = None
    note = ""
    if len(data) >= len(metrics) + 2:
        joint = fit_joint(cols, y)
        notes = []
        if joint.rank < len(metrics):
            notes.append("metrics are collinear over these models: joint coefficients not "
                         "unique")
        if joint.unused:
            notes.append(f"joint fit gives no weight to {', '.join(joint.unused)}")
        note = "; ".join(notes)
    else:
        note = f"joint fit skipped: needs >= {len(metrics) + 2} models, got {len(data)}"
    finite = [m for m in metrics if math.isfinite(per[m].pearson_r)]
    best = max(finite, key=lambda m: per[m].pearson_r) if finite else None
    return RuntimeFit(target=target, n=len(data), per_metric=per, joint=joint,
                      best_metric=best, note=note)
