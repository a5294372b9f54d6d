"""Calibration of the verdict's statistics on simulated studies of known truth.

Two strategies A and B (true errors p and p + gap) are trained with ``seeds`` seeds each and
scored on ``n_val`` validation images, image by image. Misclassification follows a latent
threshold model: image j, strategy k, seed i is wrong when

    L = √ρ_between · z_j + √(ρ_same − ρ_between) · u_kj + √(1 − ρ_same) · ε_kij > Φ⁻¹(1 − p_ki)

with z (difficulty shared by every network), u (difficulty for this strategy), ε (this seed),
all standard normal, and p_ki = p_k + seed_noise · δ_ki (δ standard normal: a seed makes the
whole network better or worse). ρ_same is the latent correlation between two seeds of one
strategy on an image, ρ_between between two strategies. With a **shared** validation set every
seed and strategy sees the same images (z, u drawn once per study); with **independent** sets
each (strategy, seed) gets its own images.

Per cell it measures: the coverage of the 95 % group intervals (of the true p_k), the rate of
"firmly different" calls (false-firm when gap = 0, power when gap > 0, wrong-direction calls),
both with the per-image method and with the fallback that has the per-seed errors only, and
Welch's t-test on the seed means at the same false-firm rate. Command (docs/statistics.md)::

    python benchmarks/calibration.py --reps 1000
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netscale.laws.replicates import Replicates, compare, group_interval, welch_t
from netscale.laws.stats import DEFAULT_LEVEL

RHO_SAME = 0.8  # latent correlation of two seeds of one strategy on an image
RHO_BETWEEN = 0.65  # of two strategies


@dataclass(frozen=True)
class Cell:
    """One simulated setting (errors and noise as fractions: 0.01 = 1 point)."""

    seeds: int = 3
    seed_noise: float = 0.01
    shared: bool = True
    gap: float = 0.0
    n_val: int = 3000
    base_err: float = 0.20
    rho_same: float = RHO_SAME
    rho_between: float = RHO_BETWEEN

    def label(self) -> str:
        return (f"{self.seeds} seeds, seed noise {100 * self.seed_noise:g} pt, "
                f"{'shared' if self.shared else 'independent'}, gap {100 * self.gap:g} pt")


@dataclass
class CellResult:
    """Counts over ``reps`` simulated studies of one :class:`Cell` (2 groups each)."""

    cell: Cell
    reps: int
    covered: int = 0  # group intervals containing the truth (of 2 · reps), per-image method
    covered_fallback: int = 0  # the same without per-image results
    firm: int = 0  # "firmly different" and in the right direction (any direction if gap 0)
    firm_wrong: int = 0  # firm in the wrong direction (gap > 0)
    firm_fallback: int = 0
    paired: int = 0  # comparisons computed image by image
    welch: list[float] = field(default_factory=list)  # Welch t of each study (B − A)

    @property
    def coverage(self) -> float:
        return self.covered / (2 * self.reps)

    @property
    def coverage_fallback(self) -> float:
        return self.covered_fallback / (2 * self.reps)

    @property
    def firm_rate(self) -> float:
        return self.firm / self.reps

    @property
    def firm_fallback_rate(self) -> float:
        return self.firm_fallback / self.reps

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.__dict__, "reps": self.reps, "coverage": self.coverage,
                "coverage_fallback": self.coverage_fallback, "firm_rate": self.firm_rate,
                "firm_wrong": self.firm_wrong / self.reps,
                "firm_fallback_rate": self.firm_fallback_rate,
                "paired": self.paired / self.reps}


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return np.asarray(ndtri(p))


def simulate(cell: Cell, reps: int, rng: np.random.Generator
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``reps`` studies: for each, the wrong-answer tables (seeds × n_val, bool) of A and B."""
    n, N = cell.seeds, cell.n_val
    rs, rb = cell.rho_same, cell.rho_between
    if not 0 <= rb <= rs < 1:
        raise ValueError("need 0 <= rho_between <= rho_same < 1")
    out = []
    for _ in range(reps):
        tables = []
        z = rng.standard_normal(N, dtype=np.float32)
        for k, p in enumerate((cell.base_err, cell.base_err + cell.gap)):
            del k
            u = rng.standard_normal(N, dtype=np.float32)
            pk = np.clip(p + cell.seed_noise * rng.standard_normal(n), 1e-3, 1 - 1e-3)
            thr = _norm_ppf(1.0 - pk).astype(np.float32)[:, None]
            if cell.shared:
                common = math.sqrt(rb) * z + math.sqrt(rs - rb) * u
                lat = common[None, :] + math.sqrt(1 - rs) * rng.standard_normal(
                    (n, N), dtype=np.float32)
            else:
                lat = (math.sqrt(rb) * rng.standard_normal((n, N), dtype=np.float32)
                       + math.sqrt(rs - rb) * rng.standard_normal((n, N), dtype=np.float32)
                       + math.sqrt(1 - rs) * rng.standard_normal((n, N), dtype=np.float32))
            tables.append(lat > thr)
        out.append((tables[0], tables[1]))
    return out


def run_cell(cell: Cell, reps: int = 1000, seed: int = 0,
             level: float = DEFAULT_LEVEL) -> CellResult:
    """Simulates ``reps`` studies of ``cell`` and counts coverage and firm calls."""
    rng = np.random.default_rng([seed, cell.seeds, int(cell.seed_noise * 1e4),
                                 int(cell.shared), int(cell.gap * 1e4), cell.n_val])
    res = CellResult(cell=cell, reps=reps)
    truth = (cell.base_err, cell.base_err + cell.gap)
    chunk = 100
    done = 0
    while done < reps:
        k = min(chunk, reps - done)
        for wa, wb in simulate(cell, k, rng):
            groups, fallbacks = [], []
            for w in (wa, wb):
                errs = tuple(float(v) for v in w.mean(axis=1))
                full = Replicates(errs, cell.n_val, cell.shared, w if cell.shared else None)
                fb = Replicates(errs, cell.n_val, cell.shared, None)
                groups.append(full)
                fallbacks.append(fb)
            for g, fb, p in zip(groups, fallbacks, truth):
                iv = group_interval(g, level)
                res.covered += iv.low <= p <= iv.high
                ivf = group_interval(fb, level)
                res.covered_fallback += ivf.low <= p <= ivf.high
            d = compare(groups[0], groups[1], level)
            res.paired += d.paired
            if d.firm:
                if cell.gap == 0 or d.diff > 0:
                    res.firm += 1
                else:
                    res.firm_wrong += 1
            dfb = compare(fallbacks[0], fallbacks[1], level)
            res.firm_fallback += dfb.firm and (cell.gap == 0 or dfb.diff > 0)
            res.welch.append(welch_t(groups[0].errors, groups[1].errors))
        done += k
    return res


def welch_power_at(null: CellResult, alt: CellResult) -> float | None:
    """Welch's t-test power in ``alt`` (right direction) with its threshold set so that its
    false-firm rate in ``null`` (same cell, gap 0) equals the per-image method's there.
    None below 2 seeds."""
    t0 = np.abs(np.asarray(null.welch, dtype=float))
    t1 = np.asarray(alt.welch, dtype=float)
    if not np.isfinite(t0).any() or not np.isfinite(t1).any():
        return None
    rate = max(null.firm_rate, 1.0 / null.reps)
    thr = float(np.quantile(t0[np.isfinite(t0)], 1.0 - rate))
    return float(np.mean(np.nan_to_num(t1, nan=0.0) > thr))


@dataclass(frozen=True)
class Grid:
    """The cells of the harness (noise and gaps as fractions)."""

    seeds: Sequence[int] = (1, 3, 5)
    seed_noise: Sequence[float] = (0.0, 0.005, 0.01, 0.015)
    shared: Sequence[bool] = (False, True)
    gaps: Sequence[float] = (0.0, 0.01, 0.02, 0.04)
    n_val: int = 3000
    base_err: float = 0.20


def run_grid(grid: Grid, reps: int = 1000, seed: int = 0, level: float = DEFAULT_LEVEL,
             progress: Any = None) -> list[CellResult]:
    out = []
    for n in grid.seeds:
        for sn in grid.seed_noise:
            for sh in grid.shared:
                for gap in grid.gaps:
                    cell = Cell(seeds=n, seed_noise=sn, shared=sh, gap=gap, n_val=grid.n_val,
                                base_err=grid.base_err)
                    out.append(run_cell(cell, reps, seed, level))
                    if progress is not None:
                        progress(out[-1])
    return out


def table(results: Sequence[CellResult]) -> str:
    """One row per (seeds, seed noise, validation set): coverage over every gap, false-firm
    rate (gap 0), power at each gap > 0, and Welch's power at 2 points at the same false rate."""
    rows: dict[tuple[int, float, bool], dict[float, CellResult]] = {}
    for r in results:
        c = r.cell
        rows.setdefault((c.seeds, c.seed_noise, c.shared), {})[c.gap] = r
    gaps = sorted({r.cell.gap for r in results if r.cell.gap > 0})
    head = ["seeds", "seed sd", "val set", "cover", "cover fb", "false firm", "false fb"]
    head += [f"power {100 * g:g}pt" for g in gaps] + [f"fb {100 * g:g}pt" for g in gaps]
    head += ["Welch 2pt", "wrong dir"]
    lines = [head]
    for (n, sn, sh), by_gap in sorted(rows.items()):
        cells = list(by_gap.values())
        cov = sum(r.covered for r in cells) / sum(2 * r.reps for r in cells)
        covf = sum(r.covered_fallback for r in cells) / sum(2 * r.reps for r in cells)
        null = by_gap.get(0.0)
        star = "*" if n < 2 else ""
        row = [str(n), f"{100 * sn:g} pt", "shared" if sh else "indep.", _p(cov) + star,
               _p(covf) + star,
               _p(null.firm_rate) if null else "-", _p(null.firm_fallback_rate) if null else "-"]
        row += [_p(by_gap[g].firm_rate) if g in by_gap else "-" for g in gaps]
        row += [_p(by_gap[g].firm_fallback_rate) if g in by_gap else "-" for g in gaps]
        w = (welch_power_at(null, by_gap[0.02]) if null and 0.02 in by_gap else None)
        row.append("-" if w is None else _p(w))
        wrong = sum(r.firm_wrong for r in cells if r.cell.gap > 0)
        row.append(_p(wrong / max(1, sum(r.reps for r in cells if r.cell.gap > 0))))
        lines.append(row)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    if any(r.cell.seeds < 2 for r in results):
        text.append("* one seed: the interval is the validation-sampling part only, labelled "
                    "'seeds missing', not an interval for seed variation")
    return "\n".join(text)


def _p(v: float) -> str:
    return f"{100 * v:.1f}%"


def quick_cells() -> list[Cell]:
    """The fast subset the tests pin (3 seeds; shared and independent; 0 and 2 points)."""
    base = Cell(seeds=3, seed_noise=0.01, n_val=1000)
    return [replace(base, shared=s, gap=g) for s in (True, False) for g in (0.0, 0.02)]
