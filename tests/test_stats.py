"""Replicate statistics (netscale.laws.stats) against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from netscale.laws.replicates import error_interval
from netscale.laws.stats import (
    difference_half,
    t_quantile,
    tied,
    time_interval,
    z_quantile,
)

Z95 = 1.959963984540054  # normal 0.975 quantile
T95_1 = 12.706204736174694  # Student t 0.975 quantile, 1 dof
T95_2 = 4.302652729749464  # 2 dof


def test_quantiles_are_the_textbook_values():
    assert z_quantile(0.95) == pytest.approx(Z95, abs=1e-12)
    assert t_quantile(0.95, 1) == pytest.approx(T95_1, abs=1e-9)
    assert t_quantile(0.95, 2) == pytest.approx(T95_2, abs=1e-9)


def test_one_seed_gives_the_sampling_interval_and_says_seeds_are_missing():
    e = error_interval([0.20], n_val=2000)
    # sqrt(0.2 * 0.8 / 2000) = sqrt(8e-5) = 0.00894427191
    assert e.n_seeds == 1 and e.seeds_missing and e.std is None and e.seed_half == 0.0
    assert e.sampling_half == pytest.approx(Z95 * 0.008944271909999159, abs=1e-15)
    assert e.sampling_half == pytest.approx(0.0175304508, abs=1e-10)
    assert e.low == pytest.approx(0.2 - 0.0175304508, abs=1e-10)
    assert e.high == pytest.approx(0.2 + 0.0175304508, abs=1e-10)


def test_three_seeds_without_validation_size_is_a_t_interval():
    e = error_interval([0.16, 0.18, 0.20], n_val=None)
    # mean 0.18, sample std 0.02, half = t(2) * 0.02 / sqrt(3) = 4.30265 * 0.0115470054
    assert e.mean == pytest.approx(0.18, abs=1e-15) and e.std == pytest.approx(0.02, abs=1e-15)
    assert not e.seeds_missing and e.sampling_half == 0.0
    assert e.seed_half == pytest.approx(T95_2 * 0.011547005383792516, abs=1e-12)
    assert e.low == pytest.approx(0.18 - 0.0496827542, abs=1e-9)
    assert e.high == pytest.approx(0.18 + 0.0496827542, abs=1e-9)


def test_seed_and_sampling_parts_share_one_satterthwaite_t_and_clip_at_zero():
    e = error_interval([0.10, 0.12], n_val=1000)
    # no per-image results, shared set: V_seed = s²/n = 0.0002/2 = 1e-4,
    # V_img = m(1-m)/N = 0.11*0.89/1000 = 9.79e-5; f = (n-1)/chi2_1(0.5) = 2.1981093;
    # df = (V_img + f V_seed)² / ((f V_seed)² / 1) = 2.0891313; t(0.975, 2.0891313) = 4.1314396
    q = 4.131439560284043
    assert e.df == pytest.approx(2.089131317800302, rel=1e-9)
    assert e.seed_half == pytest.approx(q * 0.01, rel=1e-9)
    assert e.sampling_half == pytest.approx(q * math.sqrt(0.11 * 0.89 / 1000), rel=1e-9)
    assert e.half == pytest.approx(0.0581198254, abs=1e-9)
    assert e.method == "shared, no per-image results"
    assert e.low == pytest.approx(0.11 - 0.0581198254, abs=1e-9)
    wide = error_interval([0.01, 0.05], n_val=1000)
    assert wide.low == 0.0 and wide.mean - wide.half < 0


def test_interval_needs_a_finite_error():
    with pytest.raises(ValueError):
        error_interval([], 100)
    with pytest.raises(ValueError):
        error_interval([float("nan")], 100)


def test_time_interval_is_median_of_medians_and_envelope_of_notches():
    rows = [{"time_ms": 10.0, "iqr_ms": 1.0, "samples": 16, "noisy": True},
            {"time_ms": 12.0, "q1_ms": 11.0, "q3_ms": 13.0, "samples": 4}]
    t = time_interval(rows)
    assert t is not None
    assert t.time_ms == 11.0 and t.n_rows == 2
    assert t.low == pytest.approx(10.0 - 1.57 * 1.0 / 4, abs=1e-12)  # 9.6075
    assert t.high == pytest.approx(12.0 + 1.57 * 2.0 / 2, abs=1e-12)  # 13.57
    assert t.quality == "noisy" and t.flagged_rows == 1


def test_time_quality_contended_wins_and_missing_times_are_skipped():
    rows = [{"time_ms": 5.0, "noisy": True}, {"time_ms": 6.0, "contended": True},
            {"time_ms": None}]
    t = time_interval(rows)
    assert t is not None and t.quality == "contended" and t.n_rows == 2
    assert (t.low, t.time_ms, t.high) == (5.0, 5.5, 6.0)  # no IQR: the points themselves
    assert time_interval([{"time_ms": None}]) is None
    ok = time_interval([{"time_ms": 3.0, "iqr_ms": 0.0, "samples": 9}])
    assert ok is not None and ok.quality == "ok" and (ok.low, ok.high) == (3.0, 3.0)


def test_tie_rule_is_the_difference_interval_containing_zero():
    a = (0.10, 0.09, 0.11)
    # difference half-width: sqrt(0.01^2 + 0.01^2) = 0.0141421
    assert difference_half(0.10, 0.11, 0.12, 0.11) == pytest.approx(math.sqrt(2) * 0.01)
    assert not tied(a, (0.12, 0.11, 0.13))  # 0.02 > 0.01414
    assert tied(a, (0.11, 0.10, 0.12))  # 0.01 <= 0.01414
    assert tied((0.11, 0.10, 0.12), a)  # symmetric
    assert tied(a, (0.12, 0.11, 0.13), min_gap=0.02)  # an explicit minimum gap still ties
    # asymmetric intervals: a's upper half and b's lower half count
    assert tied((0.10, 0.09, 0.13), (0.14, 0.11, 0.15))  # 0.04 <= hypot(0.03, 0.03) = 0.0424
    assert not tied((0.10, 0.0, 0.101), (0.14, 0.139, 0.3))  # 0.04 > hypot(0.001, 0.001)
