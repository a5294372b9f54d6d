"""The verdict's statistics hold their stated level on simulated studies of known truth
(netscale.laws.verdict_calibration; the full grid is benchmarks/calibration.py).

A fast subset: 3 seeds, 1 point of seed noise, 1,000 validation images, shared and
independent validation sets, gaps 0 and 2 points. The RNG is seeded; every bound below is the
target widened by 3 Monte-Carlo standard errors (binomial, √(p(1−p)/count)), so a correct
method stays inside with probability > 99.7 % whatever the seed, and a method off by more
than that margin fails."""

from __future__ import annotations

import math

import pytest

from netscale.laws.verdict_calibration import Cell, CellResult, run_cell, welch_power_at

REPS = 1200
BASE = Cell(seeds=3, seed_noise=0.01, n_val=1000)


def se(p: float, count: int) -> float:
    return math.sqrt(p * (1 - p) / count)


@pytest.fixture(scope="module")
def cells() -> dict[tuple[bool, float], CellResult]:
    out = {}
    for shared, gap in ((True, 0.0), (True, 0.02), (False, 0.0)):
        cell = Cell(seeds=BASE.seeds, seed_noise=BASE.seed_noise, n_val=BASE.n_val,
                    shared=shared, gap=gap)
        out[(shared, gap)] = run_cell(cell, reps=REPS, seed=7)
    return out


def test_group_intervals_cover_the_truth_at_their_level(cells):
    shared = [cells[(True, 0.0)], cells[(True, 0.02)]]
    count = sum(2 * r.reps for r in shared)
    cover = sum(r.covered for r in shared) / count
    margin = 3 * se(0.95, count)  # 0.0094
    assert 0.93 - margin <= cover <= 0.97 + margin
    indep = cells[(False, 0.0)]
    margin = 3 * se(0.95, 2 * indep.reps)
    assert 0.93 - margin <= indep.coverage <= 0.97 + margin


def test_without_per_image_results_the_shared_interval_is_conservative(cells):
    r = cells[(True, 0.0)]
    count = 2 * r.reps
    # the fallback counts the seed-image interaction twice: wider, never narrower
    assert r.coverage_fallback >= 0.95 - 3 * se(0.95, count)
    assert r.coverage_fallback > r.coverage


@pytest.mark.parametrize("shared", [True, False])
def test_false_firm_rate_under_equal_truths_is_between_1_and_5_percent(cells, shared):
    r = cells[(shared, 0.0)]
    assert r.firm_rate <= 0.05 + 3 * se(0.05, r.reps)  # <= 6.9 %
    assert r.firm_rate >= 0.01 - 3 * se(0.01, r.reps)  # >= 0.1 %: not 0 by excess caution


def test_paired_comparison_beats_the_fallback_and_matches_welch_at_2_points(cells):
    null, alt = cells[(True, 0.0)], cells[(True, 0.02)]
    assert alt.paired == alt.reps  # every comparison went image by image
    assert alt.firm_wrong == 0
    diff_se = math.sqrt(2 * 0.25 / alt.reps)  # bound on the SE of a difference of two rates
    # pairing: the shared image difficulty cancels; the fallback cannot use it
    assert alt.firm_rate - alt.firm_fallback_rate > 3 * diff_se
    welch = welch_power_at(null, alt)
    assert welch is not None
    assert alt.firm_rate >= welch - 3 * diff_se
