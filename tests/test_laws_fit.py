"""Scaling-law fits on synthetic data drawn from known laws with noise."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.optimize import least_squares

from netscale.errors import NetscaleError
from netscale.laws import (
    CalibrationSetup,
    FitOptions,
    FitReport,
    GroupFits,
    LawFit,
    fit_groups,
    fit_law,
    fit_report,
    leave_largest_out,
)
from netscale.laws.fit import _Problem

# truth: err = A·x^(−B) + C over 200 MF .. 16 GF (multiply-adds), reducible error 0.3 at 200 MF
B_TRUE, C_TRUE = 0.3, 0.2
A_TRUE = 0.3 * 2e8**B_TRUE
X = np.geomspace(2e8, 1.6e10, 10)


def law(x, a=A_TRUE, b=B_TRUE, c=C_TRUE):
    return a * np.asarray(x, dtype=float) ** -b + c


def noisy(x, seed, sigma=0.03, c=C_TRUE):
    rng = np.random.default_rng(10_000 + seed)
    return law(x, c=c) * np.exp(rng.normal(0.0, sigma, np.size(x)))


# --------------------------------------------------------------------------------------------
# recovery and calibration


@pytest.mark.parametrize("name, c", [("saturating", C_TRUE), ("power", 0.0)])
def test_parameters_recovered_within_intervals_in_90_percent_of_seeds(name, c):
    seeds = 40
    truth = {"a": A_TRUE, "b": B_TRUE, "c": c}
    hits = {k: 0 for k in (("a", "b", "c") if name == "saturating" else ("a", "b"))}
    new_run_hits = 0
    widths_b = []
    for s in range(seeds):
        y = noisy(X, s, c=c)
        fit = fit_law(X, y, name, FitOptions(n_boot=200, seed=s), loo=False)
        for k in hits:
            lo, hi = fit.intervals[k]
            assert lo <= fit.params[k] <= hi or k == "c"  # c may sit on its bound 0
            hits[k] += lo <= truth[k] <= hi
        widths_b.append(fit.intervals["b"][1] - fit.intervals["b"][0])
        # prediction interval 4x beyond the largest model covers a new run there
        xq = 4 * X.max()
        pred = fit.predict_interval(xq)
        new_run = law(xq, c=c) * math.exp(np.random.default_rng(s).normal(0, 0.03))
        new_run_hits += pred.contains(new_run)
    for k, h in hits.items():
        assert h / seeds >= 0.9, (k, h)
    assert new_run_hits / seeds >= 0.85
    # the intervals are informative, not just wide: b = 0.3 is pinned to within ~±0.3
    assert np.median(widths_b) < 0.6


def test_intervals_shrink_with_less_noise():
    def fit(s: int, sigma: float) -> LawFit:
        return fit_law(X, noisy(X, s, sigma=sigma), options=FitOptions(n_boot=100, seed=s),
                       loo=False)

    wide = [fit(s, 0.05) for s in range(5)]
    tight = [fit(s, 0.005) for s in range(5)]
    w = lambda f: f.intervals["b"][1] - f.intervals["b"][0]  # noqa: E731
    assert np.median([w(f) for f in tight]) < 0.3 * np.median([w(f) for f in wide])
    for f in tight:
        assert abs(f.b - B_TRUE) < 0.05 and abs(f.c - C_TRUE) < 0.02
        assert f.r2_log > 0.99


def test_intervals_widen_when_extrapolating():
    for s in range(5):
        fit = fit_law(X, noisy(X, s), options=FitOptions(n_boot=200, seed=s), loo=False)
        preds = [fit.predict_interval(X.max() * m) for m in (1, 2, 4, 16, 64)]
        widths = [math.log(p.hi / p.lo) for p in preds]
        conf = [math.log(p.conf_hi / p.conf_lo) for p in preds]
        assert all(b > a for a, b in itertools.pairwise(widths)), widths
        assert all(b > a for a, b in itertools.pairwise(conf)), conf
        assert [p.extrapolation for p in preds] == pytest.approx([1, 2, 4, 16, 64])
        assert not preds[0].extrapolated and preds[2].extrapolated
        for p in preds:
            assert p.lo <= p.conf_lo <= p.value <= p.conf_hi <= p.hi and p.lo < p.hi
        # inside the data, the band is narrower than at the edge
        mid = fit.predict_interval(math.sqrt(X.min() * X.max()))
        assert math.log(mid.hi / mid.lo) < widths[0]


def test_scale_of_x_does_not_change_the_fit():
    y = noisy(X, 3)
    f1 = fit_law(X, y, options=FitOptions(n_boot=50, seed=1))
    f2 = fit_law(X / 1e9, y, options=FitOptions(n_boot=50, seed=1))  # same data in GMACs
    assert f1.b == pytest.approx(f2.b, rel=1e-6)
    assert f1.c == pytest.approx(f2.c, rel=1e-6, abs=1e-9)
    assert f1.a == pytest.approx(f2.a * 1e9**f2.b, rel=1e-5)
    assert f1.predict(3e10) == pytest.approx(f2.predict(30.0), rel=1e-6)
    assert f1.intervals["b"] == pytest.approx(f2.intervals["b"], rel=1e-6)


def test_huber_loss_resists_an_outlier():
    better = 0
    err_h, err_l2 = [], []
    for s in range(20):
        y = noisy(X, s, sigma=0.02)
        y[2 + s % 6] *= 1.4  # one broken run
        h = fit_law(X, y, options=FitOptions(n_boot=0), loo=False)
        # ~ plain least squares
        l2 = fit_law(X, y, options=FitOptions(n_boot=0, huber_scale=100.0), loo=False)
        err_h.append(abs(h.b - B_TRUE))
        err_l2.append(abs(l2.b - B_TRUE))
        better += err_h[-1] < err_l2[-1]
    assert better >= 14
    assert np.median(err_h) < np.median(err_l2)


def test_solver_matches_scipy_least_squares():
    """The batched solver reaches scipy's Huber optimum (or better) from the same starts."""
    rng = np.random.default_rng(0)
    for _ in range(12):
        n = int(rng.integers(4, 12))
        logxn = np.sort(rng.uniform(-3, 3, n))
        y = (rng.uniform(0.02, 0.5) * np.exp(-rng.uniform(0.05, 1.0) * logxn)
             + rng.uniform(0, 0.4)) * np.exp(rng.normal(0, rng.uniform(0.005, 0.15), n))
        y = np.clip(y, 1e-3, 1.0)
        for name in ("saturating", "power"):
            prob = _Problem(name, logxn, 0.05)
            starts = prob.starts(y)
            ours = prob.solve(np.tile(y, (len(starts), 1)), starts)[1].min()
            lo, hi = (v[0] for v in prob.bounds(y[None], np.ones((1, n))))

            def resid(t, prob, logy):
                return prob._eval(t[None], logy)[2][0]

            ref = min(
                least_squares(resid, np.clip(s0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi),
                              loss="huber", f_scale=0.05, args=(prob, np.log(y))).cost
                for s0 in starts)
            assert ours <= ref * (1 + 1e-6) + 1e-12


# --------------------------------------------------------------------------------------------
# model selection, holdout, reports


def test_aicc_selection_prefers_the_true_law_when_noise_is_low():
    sat = sum(fit_report(X, noisy(X, s, sigma=0.01), FitOptions(seed=s), holdout=False,
                         select="aicc").best == "saturating" for s in range(8))
    powr = sum(fit_report(X, noisy(X, s, sigma=0.01, c=0.0), FitOptions(seed=s), holdout=False,
                          select="aicc").best == "power" for s in range(8))
    assert sat >= 7 and powr >= 7
    rep = fit_report(X, noisy(X, 0, sigma=0.01), select="loo", holdout=False)
    assert rep.selection == "loo" and "leave-one-out" in rep.reason
    assert all(f.loo_rmse_log is not None and f.loo_rmse_log > 0 for f in rep.fits.values())


def test_default_selection_is_the_general_law():
    rep = fit_report(X, noisy(X, 0, c=0.0), holdout=False)
    assert rep.selection == "general" and rep.best == "saturating"
    assert "AICc" in rep.reason and "LOO" in rep.reason


def test_calibration_study_shows_why_the_general_law_is_the_default():
    from netscale.laws.calibration import calibration_study

    res = calibration_study(CalibrationSetup(points=8, noise=0.02, c=0.2, seeds=15, n_boot=100,
                                             extrapolation=(16.0,)))
    assert res.pred_coverage["general"][16.0] >= 0.8
    assert res.pred_coverage["power"][16.0] <= 0.3  # the power law ignores saturation
    assert min(res.param_coverage.values()) >= 0.8
    assert res.picked["general"] == 1.0 and res.picked["power"] == 0.0
    assert "cover x16" in res.table()


def test_leave_largest_out_predicts_the_largest_model():
    # two seeds per model size; the largest size's two runs are held out together
    x = np.repeat(X[:8], 2)
    within = 0
    for s in range(10):
        y = noisy(x, s, sigma=0.02)
        chk = leave_largest_out(x, y, "saturating", FitOptions(n_boot=200, seed=s))
        assert chk.skipped is None
        assert chk.x == X[7] and chk.n_train == 14
        assert chk.actual == pytest.approx(y[-2:].mean())
        assert chk.lo < chk.predicted < chk.hi
        assert chk.rel_error == pytest.approx((chk.predicted - chk.actual) / chk.actual)
        assert chk.extrapolation == pytest.approx(X[7] / X[6])
        within += chk.within
    assert within >= 8


def test_leave_largest_out_with_too_few_points_is_skipped_not_raised():
    chk = leave_largest_out(X[:4], noisy(X[:4], 0), "saturating")
    assert chk.skipped and "only 3 points" in chk.skipped
    assert chk.predicted is None and chk.within is None


def test_report_keeps_both_laws_and_skips_one_that_cannot_fit():
    rep = fit_report(X[:3], noisy(X[:3], 1), group="d")
    assert rep.best == "power" and set(rep.fits) == {"power"}
    assert "saturating" in rep.skipped and "at least 4" in rep.skipped["saturating"]
    full = fit_report(X, noisy(X, 1))
    assert set(full.fits) == {"saturating", "power"} and set(full.holdout) == set(full.fits)
    assert full.best_fit is full.fits[full.best]
    assert full.predict(1e11).law == full.best


def test_json_round_trip_reproduces_predictions():
    rep = fit_report(X, noisy(X, 2), FitOptions(n_boot=100), group="dWr")
    back = FitReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert back.best == rep.best and back.x == rep.x and back.holdout == rep.holdout
    for name, fit in rep.fits.items():
        other = back.fits[name]
        assert other.params == pytest.approx(fit.params)
        assert other.predict_interval(6e10) == fit.predict_interval(6e10)
        for k, iv in fit.intervals.items():
            assert other.intervals[k] == pytest.approx(iv)
    slim = LawFit.from_dict(rep.best_fit.to_dict(samples=False))
    assert slim.predict(6e10) == pytest.approx(rep.best_fit.predict(6e10))
    assert "boot" not in rep.best_fit.to_dict(samples=False)


def test_deterministic_given_seed():
    y = noisy(X, 5)
    s3, s4 = FitOptions(seed=3), FitOptions(seed=4)
    assert fit_law(X, y, options=s3).to_dict() == fit_law(X, y, options=s3).to_dict()
    assert fit_law(X, y, options=s3).boot != fit_law(X, y, options=s4).boot


def test_curve_for_plots():
    fit = fit_law(X, noisy(X, 0), options=FitOptions(n_boot=100))
    cur = fit.curve(num=30, extend=8.0)
    assert len(cur.x) == 30 and cur.x[0] == pytest.approx(X.min())
    assert cur.x[-1] == pytest.approx(8 * X.max())
    y, lo, hi = map(np.array, (cur.y, cur.lo, cur.hi))
    assert np.all(lo < y) and np.all(y < hi) and np.all(np.diff(y) < 0)
    assert (hi[-1] / lo[-1]) > (hi[0] / lo[0])
    assert np.array(cur.y) == pytest.approx(fit.predict(np.array(cur.x)))
    own = fit.curve([1e9, 1e10])
    assert own.x == (1e9, 1e10) and set(cur.to_dict()) >= {"x", "y", "lo", "hi", "level"}
    assert "flops^(−" in fit.formula()


def test_fit_groups_by_strategy_and_metric_products():
    rows = []
    for strat, shift in (("dWr", 1.0), ("w", 1.05)):
        for i, (x, y) in enumerate(zip(X, noisy(X, 7))):
            rows.append({"strategy": strat, "flops": x, "epochs": 10 + i % 2,
                         "error": min(y * shift, 1.0)})
    rows.append({"strategy": "d", "flops": 1e9, "epochs": 10, "error": 0.4})
    res = fit_groups(rows, FitOptions(n_boot=50), x="epochs*flops")
    assert set(res.reports) == {"dWr", "w"} and set(res.skipped) == {"d"}
    assert "only 1 point" in res.skipped["d"]
    rep = res.reports["w"]
    assert rep.x_metric == "epochs*flops" and rep.x[1] == pytest.approx(11 * X[1])
    assert "(epochs*flops)^" in rep.best_fit.formula()
    back = GroupFits.from_dict(json.loads(json.dumps(res.to_dict(samples=False))))
    assert set(back.reports) == {"dWr", "w"}
    one = fit_groups(rows[:10], FitOptions(n_boot=20), group=None)
    assert set(one.reports) == {"all"}


# --------------------------------------------------------------------------------------------
# degenerate inputs


@pytest.mark.parametrize("x, y, law_name, words", [
    (X[:3], law(X[:3]), "saturating", "at least 4"),
    (X[:2], law(X[:2]), "power", "at least 3"),
    ([1e9, 1e9, 2e9, 2e9], [0.5, 0.51, 0.4, 0.41], "saturating", "distinct x"),
    (X, np.full(10, 0.3), "saturating", "constant"),
    (X, np.r_[law(X[:9]), np.nan], "saturating", "NaN"),
    (np.r_[X[:9], np.inf], law(X), "power", "NaN or infinite"),
    (np.r_[0.0, X[1:]], law(X), "power", "positive"),
    (X, law(X) * 100, "saturating", "percentage: divide by 100"),
    (X, np.r_[0.0, law(X[1:])], "power", "fractions in (0, 1]"),
    (X, law(X[:9]), "power", "9 errors"),
])
def test_degenerate_inputs_raise_clear_errors(x, y, law_name, words):
    with pytest.raises(NetscaleError, match=None) as exc:
        fit_law(x, y, law_name, FitOptions(n_boot=10))
    assert words in str(exc.value)
    assert "\n" not in str(exc.value)


def test_bad_options_raise_clear_errors():
    y = law(X)
    with pytest.raises(NetscaleError, match="unknown law"):
        fit_law(X, y, "exponential")
    with pytest.raises(NetscaleError, match="level"):
        fit_law(X, y, options=FitOptions(level=95))
    with pytest.raises(NetscaleError, match="n_boot"):
        fit_law(X, y, options=FitOptions(n_boot=-1))
    with pytest.raises(NetscaleError, match="model selection"):
        fit_report(X, y, select="bic")
    with pytest.raises(NetscaleError, match="no 'error' value"):
        fit_groups([{"strategy": "d", "flops": 1e9}])
    with pytest.raises(NetscaleError, match="no group could be fitted"):
        fit_groups([{"strategy": "d", "flops": 1e9, "error": 0.3}])
    fit = fit_law(X, noisy(X, 0), options=FitOptions(n_boot=20))
    with pytest.raises(NetscaleError, match="positive"):
        fit.predict(-1.0)
    with pytest.raises(NetscaleError, match="unknown parameter"):
        fit.param_interval("d")


def test_error_not_falling_is_flagged():
    y = np.linspace(0.3, 0.4, 10)  # error grows with flops
    fit = fit_law(X, y, "power", FitOptions(n_boot=20))
    assert fit.b == 0.0
    assert any("does not fall" in note for note in fit.notes)
