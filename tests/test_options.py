"""Options objects: settings travel in a typed frozen dataclass (a misspelled field is a
TypeError, and a mypy error), and functions with an options object refuse its fields as loose
keywords; ``recommend`` also takes its option parts by keyword."""

from __future__ import annotations

import numpy as np
import pytest

from netscale.advise.options import CandidateOptions, RecommendOptions
from netscale.advise.recommend import recommend
from netscale.advise.records import Constraints
from netscale.laws.calibration import CalibrationSetup, calibration_study
from netscale.laws.fit import FitOptions, fit_law, fit_report, leave_largest_out
from netscale_fixtures.synthetic import synthetic_study

X = np.geomspace(2e8, 1.6e10, 8)
Y = 0.4 * (X / 2e8) ** -0.3 + 0.2


def test_fit_options_object() -> None:
    opts = FitOptions(n_boot=30, seed=7, noise=0.003)
    fit = fit_law(X, Y, "power", opts)
    assert (fit.n_boot, fit.seed, fit.noise) == (30, 7, 0.003)
    assert fit.to_dict() == fit_law(X, Y, "power", FitOptions(n_boot=30, seed=7,
                                                              noise=0.003)).to_dict()
    assert fit_law(X, Y, "power", FitOptions(n_boot=30, seed=8)).boot != fit.boot
    rep = fit_report(X, Y, opts, group="g", holdout=False)
    assert rep.fits["saturating"].n_boot == 30 and rep.group == "g"
    with pytest.raises(TypeError, match="nboot"):
        FitOptions(nboot=10)  # type: ignore[call-arg]
    # the fields are not loose keywords of the fit functions
    with pytest.raises(TypeError, match="n_boot"):
        fit_law(X, Y, n_boot=10)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="seed"):
        fit_report(X, Y, seed=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="seed"):
        leave_largest_out(X, Y, seed=1)  # type: ignore[call-arg]


def test_calibration_setup_object() -> None:
    res = calibration_study(CalibrationSetup(seeds=2, n_boot=10, points=5))
    assert {k: res.settings[k] for k in ("seeds", "n_boot", "points")} == \
        {"seeds": 2, "n_boot": 10, "points": 5}
    with pytest.raises(TypeError, match="seed_count"):
        CalibrationSetup(seed_count=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="seeds"):
        calibration_study(seeds=2)  # type: ignore[call-arg]


def test_recommend_options_equal_keywords(tmp_path) -> None:
    study = synthetic_study(tmp_path / "s", truth={"dr": (0.40, 0.08), "dwr": (0.55, 0.06),
                                                   "dWr": (0.50, 0.07), "w": (0.30, 0.10),
                                                   "d": (0.25, 0.12), "r": (0.20, 0.14)})
    cands, cons = CandidateOptions(strategies=["d", "w"], alphas=[0.5]), Constraints(
        max_params=1e9)
    by_object = recommend(study, "8x", RecommendOptions(constraints=cons, candidates=cands))
    by_keywords = recommend(study, "8x", candidates=cands, constraints=cons)
    by_object, by_keywords = by_object.to_dict(), by_keywords.to_dict()
    assert by_object == by_keywords
    assert {"d", "w", "fast:0.5"} <= {c["name"] for c in by_object["candidates"]}
    assert by_object["constraints"]["max_params"] == 1e9
    with pytest.raises(TypeError, match=r"max_flops"):
        recommend(study, "8x", max_flops=1e9)  # type: ignore[call-arg]
