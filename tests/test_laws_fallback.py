"""Law-fit intervals with few sizes (netscale.laws.fit): the classical t floor, the power law
standing in for the saturating law, the leave-one-out flag and their calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import stdtrit

from netscale.laws import fit_report
from netscale.laws.calibration import CalibrationSetup, calibration_study
from netscale.laws.fit import LawFit, Prediction

# pycls dev/model_error.json (top-1 error, ImageNet) and the flops netscale counts for them
# (multiply-adds, `netscale info EfficientNet-B0 --json`)
EFFNET = {"B0": (385825092, 0.2492), "B1": (686817992, 0.24068), "B2": (993578282, 0.23518),
          "B3": (1827162472, 0.2247)}


def test_three_efficientnets_predict_the_fourth_inside_the_interval():
    x = [EFFNET[k][0] for k in ("B0", "B1", "B2")]
    y = [EFFNET[k][1] for k in ("B0", "B1", "B2")]
    rep = fit_report(x, y)
    assert rep.best == "power" and "saturating" in rep.skipped
    lf = rep.best_fit
    assert lf.floor_unknown and any("no floor fitted" in n for n in lf.notes)
    x3, y3 = EFFNET["B3"]
    p = rep.predict(x3)
    assert p.extrapolation == pytest.approx(x3 / x[-1])
    assert p.contains(y3)
    # the lower end is the classical prediction interval of the log-log line (t with 1 dof)
    X = np.c_[np.ones(3), np.log(x)]
    beta, *_ = np.linalg.lstsq(X, np.log(y), rcond=None)
    r = np.log(y) - X @ beta
    v = np.array([1.0, math.log(x3)])
    h = float(v @ np.linalg.inv(X.T @ X) @ v)
    half = float(stdtrit(1, 0.975)) * math.sqrt(float(r @ r)) * math.sqrt(1 + h)
    assert p.value == pytest.approx(math.exp(float(v @ beta)), rel=1e-6)
    assert p.lo == pytest.approx(p.value * math.exp(-half), rel=1e-6)
    # the upper end reaches the interval at the largest model: the error may level off
    assert p.hi >= rep.predict(x[-1]).hi - 1e-12


def test_the_envelope_only_acts_past_the_data_and_survives_a_round_trip():
    rep = fit_report([1e8, 2e8, 4e8], [0.30, 0.27, 0.25])
    lf = rep.best_fit
    inside = np.array([1.5e8, 3e8])
    assert np.allclose(lf._bands(inside, 0.95), lf._bands_of(inside, 0.95))
    far = lf.predict_interval(4e9)
    assert far.hi >= lf.predict_interval(4e8).hi
    back = LawFit.from_dict(lf.to_dict())
    assert back.floor_unknown and back.predict_interval(4e9) == far


def test_predictions_narrower_than_the_leave_one_out_error_are_flagged():
    def pred(lo: float, hi: float, loo: float | None) -> Prediction:
        return Prediction(x=1.0, value=0.2, lo=lo, hi=hi, conf_lo=lo, conf_hi=hi, level=0.95,
                          law="saturating", extrapolation=1.0, loo_rmse_log=loo)

    # half-width in log units: log(0.21/0.19)/2 = 0.05004
    assert pred(0.19, 0.21, 0.06).narrower_than_loo
    assert not pred(0.19, 0.21, 0.05).narrower_than_loo
    assert not pred(0.19, 0.21, None).narrower_than_loo
    assert pred(0.19, 0.21, 0.06).to_dict()["narrower_than_loo"] is True


def test_three_size_fallback_covers_new_runs_far_past_the_data():
    # truth err = a·x^-0.3 + 0.2, 3 sizes over 8x flops, 1 % noise, 100 simulated studies;
    # target >= 90 %: with 100 studies a method at 90 % falls below 81 % with < 0.2 %
    # probability (3 binomial standard errors)
    res = calibration_study(CalibrationSetup(points=3, noise=0.01, span=8.0, seeds=100,
                                             n_boot=100, extrapolation=(4.0, 20.0)))
    for factor in (4.0, 20.0):
        assert res.pred_coverage["general"][factor] >= 0.90 - 3 * math.sqrt(0.09 / 100)
