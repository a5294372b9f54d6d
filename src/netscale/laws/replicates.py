"""Seed replicates scored on validation images: group intervals and paired comparisons.

Pure numpy/scipy. The method in plain words, its calibration and a worked example are in
docs/statistics.md ("Group intervals", "Paired comparisons"). Errors are fractions.

A group is ``n`` seed replicates of one network, each scored on ``N`` validation images.
Its per-image results form an n × N table of wrong answers w[i, j] (1 = image j misclassified
by seed i). The table is a crossed design, seeds × images:

    w[i, j] = μ + a_i + c_j + e_ij

(a: seed effect, c: image difficulty, e: the seed-image interaction). The mean error m
estimates μ, the error of the strategy over seeds and over images like these, with

    Var(m) = σ²_a / n + σ²_c / N + σ²_e / (n N) = V_img + V_seed

* V_img = var_j(column means) / N: the spread of the per-image mean over seeds
  (E = σ²_c + σ²_e / n, divided by N);
* V_seed = σ̂²_a / n, σ̂²_a = max(0, s² − MS_res / N): the seed variance beyond what the
  interaction already puts into the per-seed errors (s² the sample variance of the n
  per-seed errors, MS_res the two-way residual mean square).

The difference of two groups scored on the same images uses the per-image difference of the
two column means instead (the image difficulty shared by both strategies cancels):
Var(m_B − m_A) = var_j(col_B − col_A) / N + σ̂²_aA / n_A + σ̂²_aB / n_B.

Intervals: mean ± t_df · √V with Satterthwaite's degrees of freedom (image part: N − 1,
seed part: n − 1). Deterministic (no resampling), closed form, checkable by hand.

Without per-image results (older stores, results files) the group falls back to
s² / n + m (1 − m) / N when the validation set is shared (conservative: it counts the
interaction twice) and to s² / n when each seed has its own validation images (the seed
spread then holds the sampling error); a difference adds the two groups' variances.
With one seed the seed variance is unknown: the interval is the validation-sampling part
only and is labelled so (``seeds_missing``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netscale.laws.stats import DEFAULT_LEVEL, ErrorInterval, z_quantile

#: how a group's variance was computed (``ErrorInterval.method``, ``Difference.method``)
PER_IMAGE = "per-image"  # crossed seeds × images from the stored per-image results
SHARED_NO_IMAGES = "shared, no per-image results"  # conservative fallback
INDEPENDENT = "independent"  # every seed scored on its own images: the seed spread holds all
SEED_SPREAD = "seed spread only"  # validation-set size unknown
BITS_KEY = "val_correct"  # the key of the per-image bitset in an epoch record
DF_QUANTILE: float | None = 0.5  # seed part for the degrees of freedom: its χ² median bound


# --------------------------------------------------------------------------------------------
# bitsets
# --------------------------------------------------------------------------------------------


def encode_correct(correct: Sequence[bool] | np.ndarray) -> str:
    """Per-image correctness (True = classified correctly, in validation-set order) as a
    compact text: ``"<N>:<base64 of the bits, 8 per byte, little-endian bit order>"``.
    3,000 images take 375 bytes (500 characters)."""
    arr = np.asarray(correct, dtype=bool).ravel()
    packed = np.packbits(arr, bitorder="little").tobytes()
    return f"{arr.size}:{base64.b64encode(packed).decode('ascii')}"


def decode_correct(text: str) -> np.ndarray:
    """The boolean array of :func:`encode_correct`; ValueError when ``text`` is not one."""
    head, sep, body = str(text).partition(":")
    if not sep or not head.isdigit():
        raise ValueError(f"not a per-image bitset (want '<N>:<base64>'): {str(text)[:40]!r}")
    n = int(head)
    try:
        raw = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("per-image bitset: invalid base64") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"per-image bitset: {len(raw)} bytes for {n} images")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
    return bits[:n].astype(bool)


def correct_of_epochs(epochs: Sequence[Mapping[str, Any]] | None,
                      top1_err: float | None = None) -> np.ndarray | None:
    """The per-image correctness of a trial's final evaluation: the last epoch record with a
    :data:`BITS_KEY` bitset, kept only when its error matches ``top1_err`` (within one image);
    None when there is none (older stores)."""
    for rec in reversed(list(epochs or [])):
        text = rec.get(BITS_KEY) if isinstance(rec, Mapping) else None
        if not text:
            continue
        try:
            bits = decode_correct(str(text))
        except ValueError:
            return None
        if bits.size == 0:
            return None
        if top1_err is not None and abs((1.0 - bits.mean()) - float(top1_err)) > 1.0 / bits.size:
            return None
        return bits
    return None


def replicates_of_trials(trials: Sequence[Any], n_val: int | None = None,
                         shared: bool = True) -> Replicates:
    """The :class:`Replicates` of finished trials (objects with ``top1_err`` and ``epochs``,
    e.g. :class:`netscale.study.store.TrialRow`): their errors, and their per-image results
    when every trial stored one for its final evaluation."""
    errs = [float(t.top1_err) for t in trials]
    bits = [correct_of_epochs(getattr(t, "epochs", None), t.top1_err) for t in trials]
    return Replicates.build(errs, n_val, shared=shared, correct=bits)


# --------------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replicates:
    """The seed replicates of one group: per-seed errors (fractions), the validation-set size,
    whether every seed (and every group) is scored on the same images, and optionally the
    per-image wrong answers (n × N, 1 = misclassified, rows in the order of ``errors``)."""

    errors: tuple[float, ...]
    n_val: int | None = None
    shared: bool = True
    wrong: np.ndarray | None = None

    @classmethod
    def build(cls, errors: Sequence[float], n_val: int | None = None, *, shared: bool = True,
              correct: Sequence[np.ndarray | None] | None = None) -> Replicates:
        """From per-seed errors and, optionally, each seed's per-image correctness (the table
        is used only when every seed has one, all of the same size, and the set is shared).
        Errors of a table are recomputed from it."""
        errs = tuple(float(e) for e in errors)
        wrong = None
        if (correct is not None and shared and len(correct) == len(errs) and errs
                and all(c is not None for c in correct)):
            arrs = [np.asarray(c, dtype=bool) for c in correct if c is not None]
            if len({a.size for a in arrs}) == 1:
                wrong = ~np.stack(arrs)
                errs = tuple(float(v) for v in wrong.mean(axis=1))
                n_val = int(wrong.shape[1])
        return cls(errors=errs, n_val=n_val, shared=shared, wrong=wrong)

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def mean(self) -> float:
        return math.fsum(self.errors) / len(self.errors)


@dataclass(frozen=True)
class _Var:
    """A variance as an image part and a seed part with their degrees of freedom.

    ``seed_hi`` is the seed part scaled to its median-unbiased upper value
    ((n − 1) / χ²_{n−1}(0.5) times the estimate), used only for the degrees of freedom:
    Satterthwaite's plug-in df is too large exactly when the seed part happens to be
    underestimated, which makes the plain rule liberal (92–94 % instead of 95 % in the
    calibration, docs/statistics.md)."""

    img: float
    img_df: float
    seed: float
    seed_df: float
    method: str
    seed_hi: float = 0.0

    def __add__(self, o: _Var) -> _Var:
        return _Var(self.img + o.img, _pool(self.img, self.img_df, o.img, o.img_df),
                    self.seed + o.seed, _pool(self.seed_hi, self.seed_df, o.seed_hi, o.seed_df),
                    self.method if self.method == o.method else f"{self.method} / {o.method}",
                    self.seed_hi + o.seed_hi)

    @property
    def total(self) -> float:
        return self.img + self.seed

    @property
    def df(self) -> float:
        return _satterthwaite((self.img, self.img_df), (self.seed_hi, self.seed_df))


def _seed_part(value: float, n: int, df: float, img: float, img_df: float,
               method: str) -> _Var:
    """A group's variance with seed part ``value`` (from n seeds, ``df`` degrees of freedom)."""
    hi = value
    if value > 0 and n >= 2 and DF_QUANTILE is not None:
        from scipy.special import chdtri

        hi = value * (n - 1) / float(chdtri(n - 1, 1.0 - DF_QUANTILE))
    return _Var(img, img_df, value, df, method, hi)


def _pool(v1: float, d1: float, v2: float, d2: float) -> float:
    return _satterthwaite((v1, d1), (v2, d2))


def _satterthwaite(*parts: tuple[float, float]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variance estimates."""
    tot = sum(v for v, _ in parts)
    den = sum(v * v / d for v, d in parts if v > 0 and d > 0 and math.isfinite(d))
    if tot <= 0 or den <= 0:
        return math.inf
    return tot * tot / den


def _seed_var(wrong: np.ndarray) -> tuple[float, float]:
    """(σ̂²_a, its degrees of freedom) of an n × N table: σ̂²_a = max(0, s² − MS_res / N), and
    df = (n − 1)·(σ̂²_a / s²)², the share of s²'s n − 1 degrees of freedom that the estimate
    keeps (Var(σ̂²_a) ≈ Var(s²) = 2 s⁴ / (n − 1)). (0, inf) when n < 2."""
    n, N = wrong.shape
    if n < 2 or N < 2:
        return 0.0, math.inf
    w = wrong.astype(np.float64)
    rows = w.mean(axis=1)
    cols = w.mean(axis=0)
    m = float(rows.mean())
    ss_tot = float(w.sum()) - n * N * m * m  # w² = w for a 0/1 table
    ss_rows = N * float(np.sum((rows - m) ** 2))
    ss_cols = n * float(np.sum((cols - m) ** 2))
    ms_res = max(0.0, ss_tot - ss_rows - ss_cols) / ((n - 1) * (N - 1))
    s2 = float(np.var(rows, ddof=1))
    var_a = max(0.0, s2 - ms_res / N)
    if var_a <= 0 or s2 <= 0:
        return 0.0, math.inf
    return var_a, (n - 1) * (var_a / s2) ** 2


def _group_var(g: Replicates) -> _Var:
    n = g.n
    s2 = float(np.var(np.asarray(g.errors), ddof=1)) if n >= 2 else 0.0
    if g.wrong is not None:
        N = g.wrong.shape[1]
        cols = g.wrong.mean(axis=0)
        img = float(np.var(cols, ddof=1)) / N if N >= 2 else 0.0
        va, va_df = _seed_var(g.wrong)
        return _seed_part(va / n, n, va_df, img, N - 1, PER_IMAGE)
    m = min(max(g.mean, 0.0), 1.0)
    if not g.n_val:
        return _seed_part(s2 / n, n, n - 1, 0.0, math.inf, SEED_SPREAD)
    binom = m * (1 - m) / g.n_val
    if n < 2:
        return _Var(binom, math.inf, 0.0, math.inf,
                    SHARED_NO_IMAGES if g.shared else INDEPENDENT)
    if g.shared:
        return _seed_part(s2 / n, n, n - 1, binom, math.inf, SHARED_NO_IMAGES)
    return _seed_part(s2 / n, n, n - 1, 0.0, math.inf, INDEPENDENT)


def group_interval(g: Replicates, level: float = DEFAULT_LEVEL) -> ErrorInterval:
    """The group's mean error with its interval at ``level`` (module docstring)."""
    if not g.errors or not all(math.isfinite(e) for e in g.errors):
        raise ValueError("group_interval needs finite errors")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    v = _group_var(g)
    df = v.df
    q = _quantile(level, df)
    m = g.mean
    seed_half, samp_half = q * math.sqrt(v.seed), q * math.sqrt(v.img)
    half = math.hypot(seed_half, samp_half)
    std = float(np.std(np.asarray(g.errors), ddof=1)) if g.n >= 2 else None
    return ErrorInterval(mean=m, low=max(0.0, m - half), high=min(1.0, m + half), n_seeds=g.n,
                         seed_half=seed_half, sampling_half=samp_half, std=std,
                         n_val=int(g.n_val) if g.n_val else None, level=level,
                         df=df if math.isfinite(df) and df <= 1e6 else None,
                         method=v.method)


def _quantile(level: float, df: float) -> float:
    if not math.isfinite(df) or df > 1e6:
        return z_quantile(level)
    from scipy.special import stdtrit

    return float(stdtrit(max(df, 1.0), 1 - (1 - level) / 2))


# --------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """m_B − m_A with its interval: ``firm`` when the interval excludes 0 (and the gap
    exceeds ``min_gap``). ``paired``: computed image by image (both groups have per-image
    results on the same images); ``seeds_missing``: a group has one seed, so the seed
    variance is not in the interval."""

    diff: float
    half: float
    df: float
    level: float
    paired: bool
    method: str
    seeds_missing: bool
    min_gap: float = 0.0

    @property
    def firm(self) -> bool:
        return abs(self.diff) > max(self.half, self.min_gap)

    @property
    def low(self) -> float:
        return self.diff - self.half

    @property
    def high(self) -> float:
        return self.diff + self.half

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.diff, "half": self.half, "low": self.low, "high": self.high,
                "df": self.df if math.isfinite(self.df) else None, "level": self.level,
                "paired": self.paired,
                "method": self.method, "seeds_missing": self.seeds_missing,
                "firm": self.firm}


def can_pair(a: Replicates, b: Replicates) -> bool:
    """Both groups have per-image results on the same (shared) validation images."""
    return (a.wrong is not None and b.wrong is not None and a.shared and b.shared
            and a.wrong.shape[1] == b.wrong.shape[1])


def compare(a: Replicates, b: Replicates, level: float = DEFAULT_LEVEL,
            min_gap: float = 0.0) -> Difference:
    """The difference m_B − m_A and its interval: paired image by image when both groups
    have per-image results on the same images, else the sum of the two groups' variances."""
    if not a.errors or not b.errors:
        raise ValueError("compare needs at least one error per group")
    if can_pair(a, b):
        assert a.wrong is not None and b.wrong is not None
        N = a.wrong.shape[1]
        y = b.wrong.mean(axis=0) - a.wrong.mean(axis=0)
        img = float(np.var(y, ddof=1)) / N
        (va, da), (vb, db) = _seed_var(a.wrong), _seed_var(b.wrong)
        v = (_Var(img, N - 1, 0.0, math.inf, PER_IMAGE)
             + _seed_part(va / a.n, a.n, da, 0.0, math.inf, PER_IMAGE)
             + _seed_part(vb / b.n, b.n, db, 0.0, math.inf, PER_IMAGE))
        paired = True
    else:
        v = _group_var(a) + _group_var(b)
        paired = False
    half = _quantile(level, v.df) * math.sqrt(max(v.total, 0.0))
    return Difference(diff=b.mean - a.mean, half=half, df=v.df, level=level, paired=paired,
                      method=v.method, seeds_missing=min(a.n, b.n) < 2, min_gap=min_gap)


def welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch's t statistic of the seed means (b − a) / √(s_a²/n_a + s_b²/n_b); nan below 2
    seeds or with no spread. For comparison with :func:`compare` (docs/statistics.md)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size < 2 or xb.size < 2:
        return math.nan
    se = math.sqrt(float(np.var(xa, ddof=1)) / xa.size + float(np.var(xb, ddof=1)) / xb.size)
    return (float(xb.mean() - xa.mean()) / se) if se > 0 else math.nan


def error_interval(errors: Sequence[float], n_val: int | None,
                   level: float = DEFAULT_LEVEL, *, shared: bool = True) -> ErrorInterval:
    """The group's mean error and its interval from its per-seed errors alone (see
    :func:`group_interval`, which also uses per-image results)."""
    xs = [float(e) for e in errors if e is not None and math.isfinite(float(e))]
    if not xs:
        raise ValueError("error_interval needs at least one finite error")
    return group_interval(Replicates(tuple(xs), int(n_val) if n_val else None, shared),
                          level)
