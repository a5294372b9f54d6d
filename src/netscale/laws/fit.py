"""Scaling-law fits: error as a function of a complexity metric (flops, params, acts, ...).

Two laws are fitted, with x in the units of the metric (flops = multiply-adds):

* ``saturating``: err = a·x^(−b) + c   (c is the irreducible error the curve tends to)
* ``power``:      err = a·x^(−b)

Errors are **fractions** in (0, 1] (top-1 error 0.234, not 23.4 %).

Method (see docs/laws.md):

* Numerically, x is divided by ``x_ref`` (the geometric mean of the fitted x values) and the
  law is fitted as err = a_ref·(x/x_ref)^(−b) + c, so a = a_ref·x_ref^b. ``a_ref`` is the
  reducible error at x_ref and is O(error) whatever the units of x.
* Residuals are taken in log space, r = log(pred) − log(err) (relative errors), and minimised
  with a Huber loss (``huber_scale``: residuals smaller than this are squared, larger ones count
  linearly, so one bad run cannot drag the curve). Bounds: a_ref > 0, 0 ≤ b ≤ 5,
  0 ≤ c ≤ min(err). Several starting points; the best one wins.
* Uncertainty: residual bootstrap (seeded). Log residuals of the fit are centred, inflated by
  sqrt(n/(n−p)) for the fitted parameters, resampled onto the fitted curve, and the law is
  refitted ``n_boot`` times. Parameter intervals are bootstrap percentiles. Prediction intervals
  at any x combine the refitted curves (parameter uncertainty, which grows away from the data)
  with resampled residuals (run-to-run noise), so they widen honestly when extrapolating.
* Goodness of fit: R² of log(err), RMSE in error units and in log units, AICc (Gaussian
  likelihood of the log residuals) and the leave-one-out RMSE of log(err).
* Leave-largest-out: refit without the points at the largest x and predict them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netscale.errors import NetscaleError
from netscale.laws.stats import t_quantile, z_quantile
from netscale.util import serial

LAWS: dict[str, tuple[str, ...]] = {
    "saturating": ("a", "b", "c"),
    "power": ("a", "b"),
}
"""Known laws and their parameters (err = a·x^(−b) + c; the plain power law has c = 0)."""

LAW_FORMULAS = {"saturating": "err = a·x^(−b) + c", "power": "err = a·x^(−b)"}
SELECTION_METHODS = ("general", "aicc", "loo")
DEFAULT_HUBER_SCALE = 0.05
DEFAULT_N_BOOT = 200
DEFAULT_LEVEL = 0.95
B_MAX = 5.0
_LOG_A_BOUNDS = (math.log(1e-9), math.log(1e3))
_RES_DRAWS = 5  # residual draws per bootstrap curve when forming prediction intervals
WALD_MAX_DOF = 3  # up to this many residual dof the classical t interval floors the bootstrap's
LOO_MAX_HELD_OUT = 256  # leave-one-out refits at most (evenly spread held-out points above)
ERROR_DOMAIN = "errors must be fractions in (0, 1] (e.g. top-1 error 0.234, not 23.4%)"


# --------------------------------------------------------------------------------------------
# dataclasses
# --------------------------------------------------------------------------------------------


def _num(v: float | None) -> float | None:
    """A float for JSON: non-finite values become None."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _opt(v: Any) -> float:
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class Prediction(serial.Record):
    """A prediction of the error at one x.

    ``value`` is the fitted curve at x; ``lo``/``hi`` the prediction interval for a new run
    (curve uncertainty plus run-to-run noise); ``conf_lo``/``conf_hi`` the interval on the curve
    itself. ``extrapolation`` is how far x lies outside the fitted data as a factor
    (1.0 inside [x_min, x_max], 4.0 for 4× beyond the largest or smallest x).
    """

    x: float
    value: float
    lo: float
    hi: float
    conf_lo: float
    conf_hi: float
    level: float
    law: str
    extrapolation: float
    loo_rmse_log: float | None = None  # the fit's leave-one-out error (log units)

    @property
    def extrapolated(self) -> bool:
        return self.extrapolation > 1.0 + 1e-12

    @property
    def narrower_than_loo(self) -> bool:
        """The interval's half-width (log units, log(hi/lo)/2) is smaller than the fit's own
        leave-one-out error: it claims more precision than the fit shows on held-out points."""
        if self.loo_rmse_log is None or self.lo <= 0 or self.hi <= 0:
            return False
        return math.log(self.hi / self.lo) / 2 < self.loo_rmse_log

    def to_dict(self) -> dict[str, Any]:
        return {**serial.to_dict(self), "narrower_than_loo": self.narrower_than_loo}

    def contains(self, err: float) -> bool:
        return self.lo <= err <= self.hi


@dataclass(frozen=True)
class Curve(serial.Record):
    """A fitted curve on an x grid, ready to plot: ``y`` is the fit, ``lo``/``hi`` the
    prediction band, ``conf_lo``/``conf_hi`` the band on the curve itself."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    conf_lo: tuple[float, ...]
    conf_hi: tuple[float, ...]
    level: float
    law: str


@dataclass(frozen=True)
class LawFit:
    """One law fitted to (x, err) points, with bootstrap samples for intervals.

    The law is err = a·x^(−b) + c (c = 0 for ``power``); internally
    err = a_ref·(x/x_ref)^(−b) + c with a = a_ref·x_ref^b. ``intervals`` maps ``a``, ``b``,
    ``c`` (saturating only) and ``a_ref`` to (lo, hi) at ``level``.
    """

    law: str
    x_metric: str
    a_ref: float
    b: float
    c: float
    x_ref: float
    intervals: dict[str, tuple[float, float]]
    level: float
    n: int
    x_min: float
    x_max: float
    r2_log: float
    rmse: float
    rmse_log: float
    sigma_log: float
    aicc: float
    loo_rmse_log: float | None
    huber_scale: float
    n_boot: int
    seed: int
    boot: tuple[tuple[float, ...], ...] = field(repr=False, default=())
    residuals: tuple[float, ...] = field(repr=False, default=())
    notes: tuple[str, ...] = ()
    y_min: float = float("nan")
    noise: float | None = None
    # no floor could be fitted (the power law standing in for the saturating law): past the
    # largest model the prediction interval reaches up to the one at the largest model
    floor_unknown: bool = False
    # (JᵀJ)⁻¹ of the log-space fit in theta = (log a_ref, b[, c]): the classical Student-t
    # prediction interval, a floor under the bootstrap's when few residuals are left to
    # resample (up to WALD_MAX_DOF degrees of freedom), where the bootstrap's is too narrow
    jtj_inv: tuple[tuple[float, ...], ...] = field(repr=False, default=())

    # -- parameters -------------------------------------------------------------------------
    @property
    def a(self) -> float:
        """a in err = a·x^(−b) + c, with x in the metric's own units."""
        return float(self.a_ref * self.x_ref ** self.b)

    @property
    def params(self) -> dict[str, float]:
        out = {"a": self.a, "b": self.b}
        if self.law == "saturating":
            out["c"] = self.c
        return out

    @property
    def n_params(self) -> int:
        return len(LAWS[self.law])

    @property
    def dof(self) -> int:
        """Degrees of freedom of the small-sample widening (n − p; kept with a known noise,
        which is a floor: it never narrows an interval)."""
        return self.n - self.n_params

    def formula(self, digits: int = 4) -> str:
        """'err = 12.3·flops^(−0.31) + 0.182' with the fitted numbers."""
        xm = f"({self.x_metric})" if "*" in self.x_metric else self.x_metric
        s = f"err = {self.a:.{digits}g}·{xm}^(−{self.b:.{digits}g})"
        if self.law == "saturating":
            s += f" + {self.c:.{digits}g}"
        return s

    def _boot_array(self) -> np.ndarray:
        arr = np.asarray(self.boot, dtype=float)
        if arr.size == 0:
            return np.array([[self.a_ref, self.b, self.c]])
        return arr

    def param_interval(self, name: str, level: float | None = None) -> tuple[float, float]:
        """Bootstrap percentile interval of parameter ``name`` (a, b, c or a_ref)."""
        level = self.level if level is None else _check_level(level)
        ivs = _param_intervals(self._boot_array(), self.x_ref, self.law, level, self.dof,
                               c_max=self.y_min)
        if name not in ivs:
            raise NetscaleError(
                f"unknown parameter {name!r} for the {self.law} law; use one of {', '.join(ivs)}")
        return ivs[name]

    # -- predictions --------------------------------------------------------------------------
    def predict(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """The fitted error at x (a float for a scalar x, an array otherwise)."""
        xs = _check_pred_x(x)
        y = _curve(self.a_ref, self.b, self.c, xs / self.x_ref)
        return float(y[0]) if np.ndim(x) == 0 else y

    def _bands(self, xs: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
        if not self.floor_unknown or not np.any(xs > self.x_max):
            return self._bands_of(xs, level)
        lo, hi, clo, chi = self._bands_of(np.append(xs, self.x_max), level)
        # the error may level off anywhere past the data: a new run there can be as bad as
        # one at the largest model (docs/laws.md, "Too few sizes")
        past = xs > self.x_max
        top, ctop = float(hi[-1]), float(chi[-1])
        hi, chi = hi[:-1].copy(), chi[:-1].copy()
        hi[past] = np.maximum(hi[past], top)
        chi[past] = np.maximum(chi[past], ctop)
        return lo[:-1], hi, clo[:-1], chi

    def _bands_of(self, xs: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
        boot = self._boot_array()
        xn = xs / self.x_ref
        # curves[j, k] = bootstrap curve j at x_k
        curves = boot[:, 0:1] * np.exp(-boot[:, 1:2] * np.log(xn)[None, :]) + boot[:, 2:3]
        dof = self.dof
        conf_lo, conf_hi = _interval(curves, level, dof, log=True)
        res = np.asarray(self.residuals, dtype=float)
        if res.size:
            rng = np.random.default_rng(self.seed + 7919)
            draws = rng.choice(res, size=(curves.shape[0], _RES_DRAWS))
            noisy = curves[:, None, :] * np.exp(draws)[:, :, None]
            lo, hi = _interval(noisy.reshape(-1, xs.size), level, dof, log=True)
            if self.noise:
                # a known run-to-run noise (error units) is a floor: normal draws of that size
                # (in log space at each x), and the interval never gets narrower
                sd = np.maximum(self.noise / np.median(curves, axis=0),
                                float(np.sqrt(np.mean(res**2))))
                z = rng.standard_normal((curves.shape[0], _RES_DRAWS))
                floor = curves[:, None, :] * np.exp(z[:, :, None] * sd[None, None, :])
                flo, fhi = _interval(floor.reshape(-1, xs.size), level, dof, log=True)
                lo, hi = np.minimum(lo, flo), np.maximum(hi, fhi)
            # a new run is at least as uncertain as the curve itself
            lo, hi = np.minimum(lo, conf_lo), np.maximum(hi, conf_hi)
        else:
            lo, hi = conf_lo, conf_hi
        wald = self._wald(xs, level)
        if wald is not None:
            lo, hi = np.minimum(lo, wald[0]), np.maximum(hi, wald[1])
            conf_lo, conf_hi = np.minimum(conf_lo, wald[2]), np.maximum(conf_hi, wald[3])
        # an error rate cannot exceed 1: with few points the log-space bands can reach past it
        return (np.minimum(lo, 1.0), np.minimum(hi, 1.0), np.minimum(conf_lo, 1.0),
                np.minimum(conf_hi, 1.0))

    def _wald(self, xs: np.ndarray, level: float) -> tuple[np.ndarray, ...] | None:
        """The classical intervals of the log-space fit at xs (prediction lo, hi; curve lo,
        hi): log pred ± t_dof · √(s_new² + s² gᵀ(JᵀJ)⁻¹g), g = d log pred / d theta, s the
        residual standard deviation (``sigma_log``), s_new the larger of s and the known
        noise. None without the matrix, or outside 1..:data:`WALD_MAX_DOF` residual degrees
        of freedom (with more, the bootstrap's intervals hold on their own: docs/laws.md)."""
        if (not self.jtj_inv or not 1 <= self.dof <= WALD_MAX_DOF
                or not math.isfinite(self.sigma_log)):
            return None
        cov = np.asarray(self.jtj_inv, dtype=float)
        lx = np.log(xs / self.x_ref)
        q = self.a_ref * np.exp(-self.b * lx)
        pred = q + self.c
        cols = [q / pred, -q * lx / pred] + ([1.0 / pred] if cov.shape[0] == 3 else [])
        g = np.stack(cols, axis=1)
        s = self.sigma_log
        par = s * s * np.einsum("ij,jk,ik->i", g, cov, g)
        s_new = np.full_like(pred, s)
        if self.noise:
            s_new = np.maximum(s_new, self.noise / pred)
        k = t_quantile(level, self.dof)
        ph, ch = k * np.sqrt(s_new**2 + par), k * np.sqrt(par)
        return pred * np.exp(-ph), pred * np.exp(ph), pred * np.exp(-ch), pred * np.exp(ch)

    def predict_interval(self, x: float, level: float | None = None) -> Prediction:
        """The fitted error at a single x with prediction and confidence intervals."""
        level = self.level if level is None else _check_level(level)
        xs = _check_pred_x(float(x))
        lo, hi, clo, chi = self._bands(xs, level)
        xv = float(xs[0])
        return Prediction(
            x=xv, value=float(self.predict(xv)), lo=float(lo[0]), hi=float(hi[0]),
            conf_lo=float(clo[0]), conf_hi=float(chi[0]), level=level, law=self.law,
            extrapolation=max(xv / self.x_max, self.x_min / xv, 1.0),
            loo_rmse_log=self.loo_rmse_log,
        )

    def curve(self, x: Sequence[float] | np.ndarray | None = None, *, num: int = 60,
              extend: float = 4.0, level: float | None = None) -> Curve:
        """The fit and its bands on an x grid.

        Default grid: ``num`` points log-spaced from x_min to ``extend``·x_max (so plots show
        the extrapolation and its widening band).
        """
        level = self.level if level is None else _check_level(level)
        if x is None:
            if num < 2 or extend < 1:
                raise NetscaleError("curve needs num >= 2 and extend >= 1")
            xs = np.geomspace(self.x_min, self.x_max * extend, num)
        else:
            xs = _check_pred_x(x)
        lo, hi, clo, chi = self._bands(xs, level)
        y = _curve(self.a_ref, self.b, self.c, xs / self.x_ref)
        def t(v: Any) -> tuple[float, ...]:
            return tuple(float(u) for u in v)

        return Curve(x=t(xs), y=t(y), lo=t(lo), hi=t(hi), conf_lo=t(clo), conf_hi=t(chi),
                     level=level, law=self.law)

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        """JSON-ready dict. With ``samples`` (default) the bootstrap draws and residuals are
        kept so that :meth:`from_dict` gives a fit that predicts intervals exactly as before."""
        out: dict[str, Any] = {
            "law": self.law,
            "formula": LAW_FORMULAS[self.law],
            "x_metric": self.x_metric,
            "params": self.params,
            "a_ref": self.a_ref,
            "x_ref": self.x_ref,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "level": self.level,
            "n": self.n,
            "x_min": self.x_min,
            "x_max": self.x_max,
            "r2_log": _num(self.r2_log),
            "rmse": _num(self.rmse),
            "rmse_log": _num(self.rmse_log),
            "sigma_log": _num(self.sigma_log),
            "aicc": _num(self.aicc),
            "loo_rmse_log": _num(self.loo_rmse_log),
            "huber_scale": self.huber_scale,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "notes": list(self.notes),
            "y_min": _num(self.y_min),
            "noise": self.noise,
            "floor_unknown": self.floor_unknown,
            "jtj_inv": [list(r) for r in self.jtj_inv],
        }
        if samples:
            out["boot"] = [list(r) for r in self.boot]
            out["residuals"] = list(self.residuals)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LawFit:
        try:
            law = str(d["law"])
            if law not in LAWS:
                raise NetscaleError(f"unknown law {law!r} in fit data; known: {', '.join(LAWS)}")
            return cls(
                law=law,
                x_metric=str(d.get("x_metric", "x")),
                a_ref=float(d["a_ref"]),
                b=float(d["params"]["b"]),
                c=float(d["params"].get("c", 0.0)),
                x_ref=float(d["x_ref"]),
                intervals={k: (float(v[0]), float(v[1])) for k, v in d["intervals"].items()},
                level=float(d["level"]),
                n=int(d["n"]),
                x_min=float(d["x_min"]),
                x_max=float(d["x_max"]),
                r2_log=_opt(d.get("r2_log")),
                rmse=_opt(d.get("rmse")),
                rmse_log=_opt(d.get("rmse_log")),
                sigma_log=_opt(d.get("sigma_log")),
                aicc=_opt(d.get("aicc")),
                loo_rmse_log=None if d.get("loo_rmse_log") is None else float(d["loo_rmse_log"]),
                huber_scale=float(d.get("huber_scale", DEFAULT_HUBER_SCALE)),
                n_boot=int(d.get("n_boot", 0)),
                seed=int(d.get("seed", 0)),
                boot=tuple(tuple(float(v) for v in r) for r in d.get("boot", ())),
                residuals=tuple(float(v) for v in d.get("residuals", ())),
                notes=tuple(str(s) for s in d.get("notes", ())),
                y_min=_opt(d.get("y_min")),
                noise=None if d.get("noise") is None else float(d["noise"]),
                floor_unknown=bool(d.get("floor_unknown", False)),
                jtj_inv=tuple(tuple(float(v) for v in r) for r in d.get("jtj_inv", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NetscaleError(f"corrupt scaling-law fit data ({exc!r}); refit with netscale fit"
                                ) from None


@dataclass(frozen=True)
class HoldoutCheck(serial.Record):
    """Leave-largest-out: fit on the smaller models, predict the largest, compare.

    ``actual`` is the mean observed error at the largest x (over its runs); ``within`` says
    whether it falls inside the prediction interval [lo, hi]; ``rel_error`` is
    (predicted − actual)/actual. When the check cannot run, ``skipped`` says why and the
    numbers are None.
    """

    law: str
    x: float
    actual: float
    n_train: int
    predicted: float | None = None
    lo: float | None = None
    hi: float | None = None
    level: float | None = None
    within: bool | None = None
    rel_error: float | None = None
    extrapolation: float | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class FitReport:
    """Both laws fitted to one group's points, the selected law and the holdout checks.

    ``fits`` maps law name to :class:`LawFit` (a law that could not be fitted, e.g. too few
    points for the saturating law, is absent and listed in ``skipped``). ``best`` is the
    selected law and ``reason`` says why. ``x``/``y`` are the data points (for plots).
    """

    group: str
    x_metric: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    fits: dict[str, LawFit]
    best: str
    selection: str
    reason: str
    holdout: dict[str, HoldoutCheck] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def best_fit(self) -> LawFit:
        return self.fits[self.best]

    def predict(self, x: float, level: float | None = None) -> Prediction:
        """Prediction (with intervals) of the selected law at x."""
        return self.best_fit.predict_interval(x, level)

    def curve(self, x: Sequence[float] | np.ndarray | None = None, *, num: int = 60,
              extend: float = 4.0, level: float | None = None) -> Curve:
        """:meth:`LawFit.curve` of the selected law."""
        return self.best_fit.curve(x, num=num, extend=extend, level=level)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        return {
            "group": self.group,
            "x_metric": self.x_metric,
            "points": {"x": list(self.x), "err": list(self.y)},
            "best": self.best,
            "selection": self.selection,
            "reason": self.reason,
            "fits": {k: v.to_dict(samples=samples) for k, v in self.fits.items()},
            "holdout": {k: v.to_dict() for k, v in self.holdout.items()},
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitReport:
        try:
            return cls(
                group=str(d["group"]),
                x_metric=str(d["x_metric"]),
                x=tuple(float(v) for v in d["points"]["x"]),
                y=tuple(float(v) for v in d["points"]["err"]),
                fits={k: LawFit.from_dict(v) for k, v in d["fits"].items()},
                best=str(d["best"]),
                selection=str(d["selection"]),
                reason=str(d["reason"]),
                holdout={k: HoldoutCheck.from_dict(v) for k, v in d.get("holdout", {}).items()},
                skipped={str(k): str(v) for k, v in d.get("skipped", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NetscaleError(f"corrupt fit report data ({exc!r}); refit with netscale fit"
                                ) from None


@dataclass(frozen=True)
class GroupFits:
    """Fit reports per group (e.g. per scaling strategy); ``skipped`` maps group -> reason."""

    x_metric: str
    reports: dict[str, FitReport]
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        return {
            "x_metric": self.x_metric,
            "groups": {k: v.to_dict(samples=samples) for k, v in self.reports.items()},
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupFits:
        return cls(x_metric=str(d["x_metric"]),
                   reports={k: FitReport.from_dict(v) for k, v in d["groups"].items()},
                   skipped={str(k): str(v) for k, v in d.get("skipped", {}).items()})


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise NetscaleError(f"interval level must be in (0, 1), e.g. 0.95; got {level}")
    return level


def _check_pred_x(x: float | Sequence[float] | np.ndarray) -> np.ndarray:
    xs = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
    if xs.size == 0 or not np.all(np.isfinite(xs)) or np.any(xs <= 0):
        raise NetscaleError(f"x to predict at must be finite and positive; got {x!r}")
    return xs


def check_noise(noise: float | None) -> float | None:
    """A known run-to-run noise (standard deviation of the error, a fraction) or None."""
    if noise is None:
        return None
    v = float(noise)
    if not (math.isfinite(v) and 0 <= v < 0.5):
        raise NetscaleError(f"noise must be a standard deviation of the error as a fraction in "
                            f"[0, 0.5) (0.003 = 0.3 points), got {noise!r}")
    return v or None


def check_law(law: str) -> str:
    name = str(law).strip().lower()
    if name not in LAWS:
        raise NetscaleError(f"unknown law {law!r}; use one of: {', '.join(LAWS)}")
    return name


def validate_points(x: Iterable[float], err: Iterable[float], *, n_params: int = 3,
                    what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Checks (x, err) points for a fit with ``n_params`` parameters; returns float arrays.

    Raises :class:`NetscaleError` for: different lengths, NaN/inf, x <= 0, errors outside
    (0, 1] (errors are fractions), fewer than n_params + 1 points or fewer than n_params
    distinct x values, and constant error.
    """
    where = f" for {what}" if what else ""
    try:
        xa = np.asarray(list(x), dtype=float).ravel()
        ya = np.asarray(list(err), dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise NetscaleError(f"scaling-law points{where} must be numbers ({exc})") from None
    if xa.size != ya.size:
        raise NetscaleError(f"got {xa.size} x values but {ya.size} errors{where}; "
                            "give one error per x")
    bad = ~(np.isfinite(xa) & np.isfinite(ya))
    if bad.any():
        raise NetscaleError(
            f"{int(bad.sum())} of {xa.size} points{where} have NaN or infinite x/error "
            f"(first at index {int(np.argmax(bad))}); drop failed or unfinished runs first")
    if (xa <= 0).any():
        raise NetscaleError(f"x must be positive{where}; got {xa[xa <= 0][0]:g} "
                            "(complexity metrics such as flops are counts > 0)")
    if ((ya <= 0) | (ya > 1)).any():
        v = ya[(ya <= 0) | (ya > 1)][0]
        hint = "; looks like a percentage: divide by 100" if 1 < v <= 100 else ""
        raise NetscaleError(f"{ERROR_DOMAIN}{where}; got {v:g}{hint}")
    need = n_params + 1
    if xa.size < need:
        raise NetscaleError(
            f"only {xa.size} point{'s' if xa.size != 1 else ''}{where}: a law with "
            f"{n_params} parameters needs at least "
            f"{need} (one more than its parameters) to fit and estimate noise; train more "
            "model sizes" + (" or use the plain power law" if n_params > 2 else ""))
    distinct = np.unique(xa).size
    if distinct < n_params:
        raise NetscaleError(
            f"only {distinct} distinct x values{where}: a law with {n_params} parameters needs "
            f"at least {n_params} different model sizes; train more sizes")
    if np.ptp(ya) <= 1e-12 * np.max(ya):
        raise NetscaleError(
            f"the error is constant ({ya[0]:g}){where}, so it does not change with x and no "
            "scaling law can be fitted; check that the runs actually trained")
    return xa, ya


# --------------------------------------------------------------------------------------------
# core fitting
# --------------------------------------------------------------------------------------------


def _curve(a_ref: float | np.ndarray, b: float | np.ndarray, c: float | np.ndarray,
           xn: np.ndarray) -> np.ndarray:
    return np.asarray(a_ref * np.exp(-b * np.log(xn)) + c)


def _t_factor(level: float, dof: int) -> float:
    """Small-sample widening t_dof(1−α/2) / z(1−α/2) applied to bootstrap intervals."""
    return t_quantile(level, max(int(dof), 1)) / z_quantile(level)


def _interval(samples: np.ndarray, level: float, dof: int, *, log: bool = False,
              lower: float | None = None, upper: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap percentile interval along axis 0, widened for small samples.

    The distances from the bootstrap median to the α/2 and 1−α/2 percentiles are multiplied
    by t_dof/z (keeps the asymmetry; 1.0 for many points). ``log`` works on log(samples)
    (positive quantities); ``lower``/``upper`` clip at a parameter's bounds.
    """
    v = np.log(samples) if log else samples
    q = (1.0 - level) / 2.0
    lo, med, hi = np.quantile(v, [q, 0.5, 1.0 - q], axis=0)
    k = _t_factor(level, dof)
    lo, hi = med - k * (med - lo), med + k * (hi - med)
    if log:
        lo, hi = np.exp(lo), np.exp(hi)
    if lower is not None:
        lo = np.maximum(lo, lower)
    if upper is not None:
        lo, hi = np.minimum(lo, upper), np.minimum(hi, upper)
    return lo, hi


def _param_intervals(samples: np.ndarray, x_ref: float, law: str, level: float,
                     dof: int, c_max: float | None = None) -> dict[str, tuple[float, float]]:
    """Parameter intervals; c's is clipped to [0, c_max] (c_max: the lowest observed error,
    the floor cannot lie above a measured error; bootstrap refits bound c by the lowest
    *resampled* error, and the small-sample widening can push past it)."""
    a = samples[:, 0] * x_ref ** samples[:, 1]
    cols: dict[str, tuple[np.ndarray, bool, float | None, float | None]] = {
        "a": (a, True, None, None), "b": (samples[:, 1], False, 0.0, B_MAX)}
    if law == "saturating":
        up = None if c_max is None or not math.isfinite(c_max) else float(c_max)
        cols["c"] = (samples[:, 2], False, 0.0, up)
    cols["a_ref"] = (samples[:, 0], True, None, None)
    out = {}
    for name, (col, log, lower, upper) in cols.items():
        lo, hi = _interval(col, level, dof, log=log, lower=lower, upper=upper)
        out[name] = (float(lo), float(hi))
    return out


def _huber_cost(r: np.ndarray, delta: float, w: np.ndarray | None) -> np.ndarray:
    a = np.abs(r)
    m = np.minimum(a, delta)  # 0.5·r² inside delta, delta·(|r| − delta/2) outside
    rho = m * (a - 0.5 * m)
    return np.asarray(np.sum(rho if w is None else rho * w, axis=-1))


class _Problem:
    """Huber-in-log-space least squares for one law on fixed normalised x (log(x/x_ref)).

    Parameters are theta = (log a_ref, b[, c]). :meth:`solve` fits many problems at once (rows
    of ``y`` sharing the x values; a 0/1 ``mask`` drops points per row) with a bounded
    Levenberg-Marquardt iteration on the Huber objective (IRLS weights, active-set handling
    of the bounds), so a 200-resample bootstrap costs a few milliseconds.
    """

    def __init__(self, law: str, logxn: np.ndarray, huber_scale: float) -> None:
        self.law = law
        self.logxn = np.asarray(logxn, dtype=float)
        self.huber_scale = huber_scale
        self.sat = law == "saturating"
        self.p = 3 if self.sat else 2
        # Many points share an x (seeds of one model): the curve and its Jacobian are computed
        # once per distinct x, and only the residuals per point. Points are visited sorted by
        # x so that the per-x sums are contiguous (np.add.reduceat).
        self.order = np.argsort(self.logxn, kind="stable")
        lx = self.logxn[self.order]
        first = np.r_[True, lx[1:] != lx[:-1]] if lx.size else np.zeros(0, bool)
        self.ux = lx[first]  # distinct x values, ascending
        self.starts_at = np.nonzero(first)[0]
        self.inv = np.cumsum(first) - 1  # sorted point -> its distinct x
        self.grouped = self.ux.size < lx.size

    def _eval(self, t: np.ndarray, logy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = np.exp(t[:, :1] - t[:, 1:2] * self.logxn)
        pred = q + t[:, 2:3] if self.sat else q
        return q, pred, np.log(pred) - logy

    def bounds(self, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row bounds: log a_ref in [log 1e-9, log 1e3], b in [0, 5], c in [0, min err]."""
        rows = y.shape[0]
        lo = np.tile([_LOG_A_BOUNDS[0], 0.0, 0.0][: self.p], (rows, 1))
        hi = np.tile([_LOG_A_BOUNDS[1], B_MAX, 0.0][: self.p], (rows, 1))
        if self.sat:
            hi[:, 2] = np.min(np.where(mask > 0, y, np.inf), axis=1)
        return lo, hi

    def starts(self, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """A grid of starting points for one data row ``y`` (b and c/min(err) spread out)."""
        keep = np.ones(y.size, bool) if mask is None else mask > 0
        yk, lk = y[keep], self.logxn[keep]
        ymin = float(np.min(yk))
        out = []
        for b0 in (0.1, 0.3, 0.7, 1.5):
            for cf in ((0.0, 0.5, 0.9) if self.sat else (0.0,)):
                c0 = cf * ymin
                la = float(np.mean(np.log(np.maximum(yk - c0, 1e-6 * ymin)) + b0 * lk))
                out.append([la, b0, c0] if self.sat else [la, b0])
        return np.array(out)

    def _eval_x(self, t: np.ndarray, logy: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, pred) per distinct x and the log residuals per (sorted) point."""
        q = np.exp(t[:, :1] - t[:, 1:2] * self.ux)
        pred = q + t[:, 2:3] if self.sat else q
        lp = np.log(pred)
        return q, pred, (lp[:, self.inv] if self.grouped else lp) - logy

    def _per_x(self, v: np.ndarray) -> np.ndarray:
        """Sums of a (rows, sorted points) array over the points of each distinct x."""
        return np.add.reduceat(v, self.starts_at, axis=1) if self.grouped else v

    def solve(self, y: np.ndarray, theta0: np.ndarray, mask: np.ndarray | None = None,
              max_iter: int = 1000, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """Fits every row of ``y`` (rows x points) from the matching row of ``theta0``.

        Returns (theta, cost) per row; cost is the Huber objective (as in scipy's
        least_squares with loss="huber": 0.5·r² inside ``huber_scale``, linear outside).
        """
        y = np.atleast_2d(np.asarray(y, dtype=float))
        rows, n = y.shape
        ones = np.ones((rows, n)) if mask is None else np.asarray(mask, dtype=float)
        lo, hi = self.bounds(y, ones)
        y = y[:, self.order]
        # point weights (0 drops a point); None: every point counts (no multiplications)
        w0 = None if mask is None else np.ascontiguousarray(
            np.broadcast_to(ones, (rows, n))[:, self.order])
        logy = np.log(y)
        th = np.clip(np.asarray(theta0, dtype=float).reshape(rows, self.p), lo, hi)
        delta = self.huber_scale
        q, pred, r = self._eval_x(th, logy)
        cost = _huber_cost(r, delta, w0)
        lam = np.full(rows, 1e-3)
        active = np.ones(rows, bool)
        eye = np.eye(self.p)
        k = self.ux.size
        for _ in range(max_iter):
            idx = np.nonzero(active)[0]
            if idx.size == 0:
                break
            ta, ra, qa, pa = th[idx], r[idx], q[idx], pred[idx]
            J = np.empty((idx.size, k, self.p))  # d log(pred) / d theta per distinct x
            J[:, :, 0] = qa / pa
            J[:, :, 1] = -self.ux * J[:, :, 0]
            if self.sat:
                J[:, :, 2] = 1.0 / pa
            absr = np.abs(ra)
            w = delta / np.maximum(absr, delta)  # IRLS weight: 1 inside delta
            if w0 is not None:
                w *= w0[idx]
            Jt = J.transpose(0, 2, 1)  # batched matmul: far faster than a 3-operand einsum
            g = np.matmul(Jt, self._per_x(w * ra)[:, :, None])[:, :, 0]
            H = np.matmul(Jt * self._per_x(w)[:, None, :], J)
            lo_a, hi_a = lo[idx], hi[idx]
            fixed = ((ta <= lo_a) & (g > 0)) | ((ta >= hi_a) & (g < 0))
            free = ~fixed
            g = np.where(fixed, 0.0, g)
            H = H * free[:, :, None] * free[:, None, :]
            diag = np.einsum("bpp->bp", H)
            damp = lam[idx, None] * np.maximum(diag, 1e-12) + 1e-15 + fixed
            step = -np.linalg.solve(H + damp[:, :, None] * eye, g[:, :, None])[:, :, 0]
            tn = np.clip(ta + step, lo_a, hi_a)
            qn, pn, rn = self._eval_x(tn, logy[idx])
            cn = _huber_cost(rn, delta, None if w0 is None else w0[idx])
            better = cn < cost[idx]
            acc = idx[better]
            dec = cost[idx] - cn
            th[acc], q[acc], pred[acc], r[acc] = tn[better], qn[better], pn[better], rn[better]
            cost[acc] = cn[better]
            lam[idx] = np.where(better, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 4.0)
            done = ((better & (dec <= tol * (cost[idx] + 1e-20)))
                    | (lam[idx] > 1e10)
                    | (np.max(np.abs(tn - ta), axis=1) < 1e-13))
            active[idx[done]] = False
        return th, cost

    def solve_best(self, y: np.ndarray, starts: np.ndarray,
                   mask: np.ndarray | None = None) -> np.ndarray:
        """Fits each row of ``y`` from every start (k starts per row, shape (rows, k, p)) and
        keeps the lowest cost per row."""
        y = np.atleast_2d(y)
        rows = y.shape[0]
        k = starts.shape[1]
        yy = np.repeat(y, k, axis=0)
        mm = None if mask is None else np.repeat(np.atleast_2d(mask), k, axis=0)
        th, cost = self.solve(yy, starts.reshape(rows * k, self.p), mm)
        th = th.reshape(rows, k, self.p)
        cost = np.where(np.isfinite(cost), cost, np.inf).reshape(rows, k)
        return np.asarray(th[np.arange(rows), np.argmin(cost, axis=1)])

    def full(self, t: np.ndarray) -> np.ndarray:
        """(a_ref, b, c) rows from theta rows."""
        t = np.atleast_2d(t)
        c = t[:, 2] if self.sat else np.zeros(t.shape[0])
        return np.column_stack([np.exp(t[:, 0]), t[:, 1], c])

    def jacobian(self, t: np.ndarray) -> np.ndarray:
        """d log(pred) / d theta at one theta (points x params)."""
        q, pred, _ = self._eval(np.atleast_2d(t), np.zeros(self.logxn.size))
        cols = [q[0] / pred[0], -self.logxn * q[0] / pred[0]]
        if self.sat:
            cols.append(1.0 / pred[0])
        return np.column_stack(cols)


def _aicc(rss: float, n: int, k: int) -> float:
    if n - k - 1 <= 0:
        return float("nan")
    rss = max(rss, 1e-300)
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


@dataclass(frozen=True)
class FitOptions:
    """How a law is fitted: the name of the x metric, ``n_boot`` bootstrap refits (seeded by
    ``seed``) for intervals at ``level``, the Huber scale of the robust loss and an optional
    known run-to-run ``noise`` (standard deviation of the error, a fraction)."""

    x_metric: str = "flops"
    n_boot: int = DEFAULT_N_BOOT
    level: float = DEFAULT_LEVEL
    seed: int = 0
    huber_scale: float = DEFAULT_HUBER_SCALE
    noise: float | None = None

    def checked(self) -> FitOptions:
        """These options with ``level``, ``n_boot``, ``noise`` and ``huber_scale`` checked
        (one-line errors) and normalized."""
        level = _check_level(self.level)
        n_boot = self.n_boot
        if int(n_boot) != n_boot or n_boot < 0:
            raise NetscaleError(f"n_boot must be a whole number >= 0, got {n_boot}")
        noise = check_noise(self.noise)
        if not (self.huber_scale > 0 and math.isfinite(self.huber_scale)):
            raise NetscaleError(f"huber_scale must be a positive number, got {self.huber_scale}")
        return replace(self, level=level, n_boot=int(n_boot), noise=noise)


def fit_law(x: Iterable[float], err: Iterable[float], law: str = "saturating",
            options: FitOptions | None = None, *, loo: bool = True) -> LawFit:
    """Fits one law (``saturating``: err = a·x^(−b) + c, or ``power``: err = a·x^(−b)).

    ``options`` (a :class:`FitOptions`, e.g. ``FitOptions(n_boot=100, seed=3)``; None: the
    defaults) say how.

    ``x`` is the complexity metric (any positive unit; flops are multiply-adds), ``err`` the
    errors as fractions in (0, 1]. Repeated x values (several seeds per model) are fine.
    ``n_boot`` bootstrap refits (seeded by ``seed``) give the parameter intervals at ``level``
    and the prediction intervals; ``loo`` adds the leave-one-out RMSE (n more refits; above
    :data:`LOO_MAX_HELD_OUT` points, that many evenly spread held-out points).
    ``noise``: a known run-to-run standard deviation of the error (a fraction, 0.003 =
    0.3 points), used as a floor on the noise the bootstrap and the prediction intervals
    assume (with few points the fitted residuals can understate it); a floor only widens
    intervals, the small-sample t widening stays. Deterministic for a given ``seed``.
    """
    law = check_law(law)
    opts = (options or FitOptions()).checked()
    x_metric, n_boot, seed, huber_scale = opts.x_metric, opts.n_boot, opts.seed, opts.huber_scale
    level, noise = opts.level, opts.noise
    p = len(LAWS[law])
    xa, ya = validate_points(x, err, n_params=p, what=f"the {law} law")
    n = xa.size
    x_ref = float(np.exp(np.mean(np.log(xa))))
    prob = _Problem(law, np.log(xa / x_ref), huber_scale)
    theta = prob.solve_best(ya, prob.starts(ya)[None])[0]
    a_ref, b, c = (float(v) for v in prob.full(theta)[0])
    pred = _curve(a_ref, b, c, xa / x_ref)
    logy = np.log(ya)
    res = logy - np.log(pred)  # observed minus fitted, log space
    rss = float(np.sum(res**2))
    sst = float(np.sum((logy - logy.mean()) ** 2))
    r2 = 1.0 - rss / sst if sst > 0 else float("nan")
    rmse = float(np.sqrt(np.mean((ya - pred) ** 2)))
    rmse_log = float(np.sqrt(rss / n))
    sigma = float(np.sqrt(rss / (n - p)))
    aicc = _aicc(rss, n, p + 1)

    boot, boot_res = _bootstrap(prob, theta, ya, res, pred, n_boot, noise, seed)
    failures = n_boot - boot.shape[0]
    samples = boot if boot.shape[0] else np.array([[a_ref, b, c]])

    loo_rmse = _loo(prob, ya, theta) if loo else None

    y_min = float(np.min(ya))
    intervals = _param_intervals(samples, x_ref, law, level, n - p, c_max=y_min)
    notes = _fit_notes(law, b, c, y_min, failures, n_boot)
    jac = prob.jacobian(theta)
    jtj_inv = np.linalg.pinv(jac.T @ jac)

    return LawFit(
        law=law, x_metric=x_metric, a_ref=a_ref, b=b, c=c, x_ref=x_ref, intervals=intervals,
        level=level, n=n, x_min=float(xa.min()), x_max=float(xa.max()), r2_log=r2, rmse=rmse,
        rmse_log=rmse_log, sigma_log=sigma, aicc=aicc, loo_rmse_log=loo_rmse,
        huber_scale=huber_scale, n_boot=n_boot, seed=seed,
        boot=tuple(tuple(float(v) for v in r) for r in boot),
        residuals=tuple(float(v) for v in boot_res), notes=tuple(notes), y_min=y_min,
        noise=noise, jtj_inv=tuple(tuple(float(v) for v in r) for r in jtj_inv),
    )


def _bootstrap(prob: _Problem, theta: np.ndarray, ya: np.ndarray, res: np.ndarray,
               pred: np.ndarray, n_boot: int, noise: float | None,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the ``n_boot`` refits that succeeded as rows a_ref, b, c; the bootstrap residuals).

    Residual bootstrap with leverage-corrected residuals r_i / sqrt(1 - h_i) (fitted
    residuals are smaller than the noise, most so at the ends of the x range), centred; with
    a known ``noise`` the draws are normal in log space with at least that spread."""
    n, p = ya.size, prob.p
    J = prob.jacobian(theta)
    h = np.einsum("ij,ji->i", J, np.linalg.pinv(J.T @ J) @ J.T)
    boot_res = res / np.sqrt(1.0 - np.clip(h, 0.0, 0.9))
    boot_res = boot_res - boot_res.mean()
    rng = np.random.default_rng(seed)
    boot = np.empty((0, 3))
    if n_boot:
        if noise:
            sd = np.maximum(noise / pred, float(np.sqrt(np.mean(boot_res**2))))
            ystar = np.minimum(pred * np.exp(rng.standard_normal((n_boot, n)) * sd[None, :]),
                               1.0)
        else:
            ystar = pred * np.exp(boot_res[rng.integers(0, n, size=(n_boot, n))])
        alt = prob.starts(ya)[[4 if prob.sat else 1]]  # a generic start (b=0.3, c=min/2)
        starts = np.stack([np.broadcast_to(theta, (n_boot, p)),
                           np.broadcast_to(alt, (n_boot, p))], axis=1)
        boot = prob.full(prob.solve_best(ystar, starts))
        boot = boot[np.all(np.isfinite(boot), axis=1)]
    return boot, boot_res


def _fit_notes(law: str, b: float, c: float, y_min: float, failures: int,
               n_boot: int) -> list[str]:
    """What a reader of a fit should know: parameters at their bounds, bootstrap trouble."""
    notes = []
    if b <= 1e-6:
        notes.append("b is at its lower bound 0: the error does not fall with x")
    if b >= B_MAX - 1e-6:
        notes.append(f"b is at its upper bound {B_MAX:g}: the error falls implausibly fast")
    if law == "saturating":
        if c >= y_min * (1 - 1e-6):
            notes.append("c is at its upper bound (the smallest observed error): the data show "
                         "no further improvement")
        elif c <= 1e-9:
            notes.append("c is 0: no saturation visible, the plain power law may suffice")
    if failures:
        notes.append(f"{failures} of {n_boot} bootstrap refits failed and were dropped")
    if 0 < n_boot < 100:
        notes.append(f"only {n_boot} bootstrap resamples: intervals are rough")
    if n_boot == 0:
        notes.append("no bootstrap (n_boot=0): intervals are empty, only the noise is modelled")
    return notes


def _loo(prob: _Problem, ya: np.ndarray, theta: np.ndarray) -> float | None:
    """Leave-one-out RMSE of log(err), or None when dropping a point leaves too few.

    Up to :data:`LOO_MAX_HELD_OUT` points every point is held out once (exact LOO); above,
    that many evenly spread points are (each refit still uses all the others), so the cost
    grows linearly with the points instead of quadratically (a 10,000-trial study)."""
    n = ya.size
    distinct = np.unique(prob.logxn).size
    if n - 1 < prob.p + 1 or distinct - 1 < prob.p:
        return None
    held = (np.arange(n) if n <= LOO_MAX_HELD_OUT else
            np.unique(np.linspace(0, n - 1, LOO_MAX_HELD_OUT).round().astype(int)))
    m = held.size
    mask = np.ones((m, n))
    mask[np.arange(m), held] = 0.0
    alt = prob.starts(ya)[[4 if prob.sat else 1]]
    starts = np.stack([np.broadcast_to(theta, (m, prob.p)),
                       np.broadcast_to(alt, (m, prob.p))], axis=1)
    th = prob.full(prob.solve_best(np.tile(ya, (m, 1)), starts, mask))
    lx = prob.logxn[held]
    pred = th[:, 0] * np.exp(-th[:, 1] * lx) + th[:, 2]
    errs = np.log(pred) - np.log(ya[held])
    return float(np.sqrt(np.mean(np.square(errs))))


def leave_largest_out(x: Iterable[float], err: Iterable[float], law: str = "saturating",
                      options: FitOptions | None = None) -> HoldoutCheck:
    """Fits ``law`` without the points at the largest x and predicts them (``options`` as
    for :func:`fit_law`).

    Returns a :class:`HoldoutCheck`; when too few points remain the check is ``skipped``
    (with the reason) rather than raising, because it is a diagnostic.
    """
    law = check_law(law)
    xa, ya = validate_points(x, err, n_params=len(LAWS[law]),
                             what="the leave-largest-out check")
    xmax = float(xa.max())
    top = xa >= xmax
    actual = float(ya[top].mean())
    n_train = int((~top).sum())
    try:
        fit = fit_law(xa[~top], ya[~top], law, options, loo=False)
    except NetscaleError as exc:
        return HoldoutCheck(law=law, x=xmax, actual=actual, n_train=n_train,
                            skipped=f"not enough smaller models to fit without the largest: {exc}")
    pr = fit.predict_interval(xmax)
    return HoldoutCheck(
        law=law, x=xmax, actual=actual, n_train=n_train, predicted=pr.value, lo=pr.lo,
        hi=pr.hi, level=pr.level, within=bool(pr.lo <= actual <= pr.hi),
        rel_error=(pr.value - actual) / actual, extrapolation=pr.extrapolation,
    )


def fit_report(x: Iterable[float], err: Iterable[float], options: FitOptions | None = None, *,
               group: str = "", laws: Sequence[str] = ("saturating", "power"),
               select: str = "general", holdout: bool = True) -> FitReport:
    """Fits each law in ``laws``, selects one and runs the leave-largest-out check
    (``options`` as for :func:`fit_law`).

    Selection (``select``):

    * ``general`` (default): the saturating law whenever it can be fitted. It contains the
      power law (c = 0), so its bootstrap intervals include the uncertainty about saturation;
      picking the power law because it wins on AICc gives confident but wrong extrapolations
      when the error does level off (see docs/laws.md, "Choosing the law").
    * ``aicc``: lowest AICc of the log residuals; falls back to ``loo`` when AICc is
      undefined (too few points).
    * ``loo``: lowest leave-one-out RMSE of log(err).

    Without a usable criterion, the law with fewer parameters wins. A law that cannot be
    fitted (e.g. 3 points for the saturating law) is listed in ``skipped``; if none can be
    fitted the first law's error is raised.
    """
    opts = options or FitOptions()
    if select not in SELECTION_METHODS:
        raise NetscaleError(f"unknown model selection {select!r}; use one of: "
                            f"{', '.join(SELECTION_METHODS)}")
    names = [check_law(name) for name in laws]
    if not names:
        raise NetscaleError("give at least one law to fit: saturating, power")
    xs = list(x)
    ys = list(err)
    # raise the plain data errors (NaN, domain, constant) once, before trying laws
    xa, ya = validate_points(xs, ys, n_params=min(len(LAWS[k]) for k in names),
                             what=group or "")
    fits: dict[str, LawFit] = {}
    skipped: dict[str, str] = {}
    first_exc: NetscaleError | None = None
    for name in names:
        try:
            fits[name] = fit_law(xa, ya, name, opts)
        except NetscaleError as exc:
            skipped[name] = str(exc)
            first_exc = first_exc or exc
    if not fits:
        assert first_exc is not None
        raise first_exc
    if "saturating" in skipped and "power" in fits:
        fits["power"] = replace(fits["power"], floor_unknown=True, notes=(
            *fits["power"].notes, "no floor fitted (too few points for the saturating law): "
            "past the largest model the prediction interval reaches up to the one at the "
            "largest model, since the error may level off anywhere"))
    best, reason = select_law(fits, select)
    checks: dict[str, HoldoutCheck] = {}
    if holdout:
        for name in fits:
            checks[name] = leave_largest_out(xa, ya, name, opts)
    return FitReport(group=group, x_metric=opts.x_metric, x=tuple(float(v) for v in xa),
                     y=tuple(float(v) for v in ya), fits=fits, best=best, selection=select,
                     reason=reason, holdout=checks, skipped=skipped)


def _compare_text(fits: Mapping[str, LawFit]) -> str:
    parts = []
    if all(math.isfinite(f.aicc) for f in fits.values()):
        parts.append("AICc " + ", ".join(f"{k} {f.aicc:.2f}" for k, f in fits.items()))
    if all(f.loo_rmse_log is not None for f in fits.values()):
        parts.append("LOO log RMSE " + ", ".join(
            f"{k} {f.loo_rmse_log:.4f}" for k, f in fits.items()))
    return "; ".join(parts) or "too few points to compare"


def select_law(fits: Mapping[str, LawFit], select: str) -> tuple[str, str]:
    if len(fits) == 1:
        (name,) = fits
        return name, "the only law fitted"
    if select == "general":
        best = max(fits, key=lambda k: fits[k].n_params)
        return best, (f"most general law (the {best} law contains the others; its intervals "
                      f"stay honest when extrapolating) [{_compare_text(fits)}]")
    simplest = min(fits, key=lambda k: fits[k].n_params)
    if select == "aicc":
        vals = {k: f.aicc for k, f in fits.items()}
        if all(math.isfinite(v) for v in vals.values()):
            best = min(vals, key=lambda k: (vals[k], fits[k].n_params))
            others = ", ".join(f"{k} {v:.2f}" for k, v in vals.items() if k != best)
            return best, f"lowest AICc ({best} {vals[best]:.2f} vs {others})"
    vals2 = {k: f.loo_rmse_log for k, f in fits.items() if f.loo_rmse_log is not None}
    if len(vals2) == len(fits):
        best = min(vals2, key=lambda k: (vals2[k], fits[k].n_params))
        others = ", ".join(f"{k} {v:.4f}" for k, v in vals2.items() if k != best)
        pre = "AICc undefined for so few points; " if select == "aicc" else ""
        return best, f"{pre}lowest leave-one-out log RMSE ({best} {vals2[best]:.4f} vs {others})"
    return simplest, "too few points to compare laws; chose the one with fewer parameters"


# --------------------------------------------------------------------------------------------
# rows and groups
# --------------------------------------------------------------------------------------------

_METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\s*\*\s*[A-Za-z_][A-Za-z0-9_]*)*$")


def metric_value(row: Mapping[str, Any], metric: str) -> float:
    """The value of ``metric`` in a row; ``a*b`` multiplies keys (e.g. ``epochs*flops``)."""
    if not _METRIC_RE.match(metric.strip()):
        raise NetscaleError(f"x metric {metric!r} must be a key such as flops, params, acts or "
                            "a product of keys such as epochs*flops")
    v = 1.0
    for key in (k.strip() for k in metric.split("*")):
        if key not in row or row[key] is None:
            raise NetscaleError(f"row has no {key!r} value (needed for x = {metric}); "
                                f"keys present: {', '.join(sorted(map(str, row)))}")
        try:
            v *= float(row[key])
        except (TypeError, ValueError):
            raise NetscaleError(f"{key!r} = {row[key]!r} is not a number") from None
    return v


def fit_groups(rows: Sequence[Mapping[str, Any]], options: FitOptions | None = None, *,
               x: str = "flops", y: str = "error", group: str | None = "strategy",
               laws: Sequence[str] = ("saturating", "power"), select: str = "general",
               holdout: bool = True) -> GroupFits:
    """Fits a :class:`FitReport` per group of rows (e.g. per scaling strategy).

    Each row maps keys to values: ``x`` names the metric (``flops``, ``params``, ``acts`` or a
    product such as ``epochs*flops``; it replaces ``options.x_metric``), ``y`` the error
    fraction, ``group`` the grouping key (None: all rows in one group named ``all``).
    ``options``, ``laws``, ``select`` and ``holdout`` go to :func:`fit_report`. Groups that
    cannot be fitted are listed in ``skipped``; if no group can be fitted a
    :class:`NetscaleError` lists why.
    """
    if not rows:
        raise NetscaleError("no result rows to fit; train some models first")
    data: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        g = "all" if group is None else str(row.get(group, ""))
        if group is not None and group not in row:
            raise NetscaleError(f"row has no {group!r} key to group by; "
                                f"keys present: {', '.join(sorted(map(str, row)))}")
        xv = metric_value(row, x)
        if y not in row or row[y] is None:
            raise NetscaleError(f"row has no {y!r} value; keys present: "
                                f"{', '.join(sorted(map(str, row)))}")
        xs, ys = data.setdefault(g, ([], []))
        xs.append(xv)
        ys.append(float(row[y]))
    opts = replace(options or FitOptions(), x_metric=x)
    reports: dict[str, FitReport] = {}
    skipped: dict[str, str] = {}
    for g in sorted(data):
        xs, ys = data[g]
        try:
            reports[g] = fit_report(xs, ys, opts, group=g, laws=laws, select=select,
                                    holdout=holdout)
        except NetscaleError as exc:
            skipped[g] = str(exc)
    if not reports:
        why = "; ".join(f"{g}: {m}" for g, m in skipped.items())
        raise NetscaleError(f"no group could be fitted ({why})")
    return GroupFits(x_metric=x, reports=reports, skipped=skipped)
