"""Options objects (netscale.util.options): an options object and keyword overrides of its
fields give the same result; an unknown keyword is refused like a function call's."""

from __future__ import annotations

import numpy as np
import pytest

from netscale.advise.options import CandidateOptions, RecommendOptions
from netscale.advise.recommend import recommend
from netscale.advise.records import Constraints
from netscale.laws.calibration import CalibrationSetup, calibration_study
from netscale.laws.fit import FitOptions, fit_law, fit_report
from netscale_fixtures.synthetic import synthetic_study

X = np.geomspace(2e8, 1.6e10, 8)
Y = 0.4 * (X / 2e8) ** -0.3 + 0.2


def test_fit_options_equal_keywords() -> None:
    opts = FitOptions(n_boot=30, seed=7, noise=0.003)
    assert fit_law(X, Y, "power", opts).to_dict() == \
        fit_law(X, Y, "power", n_boot=30, seed=7, noise=0.003).to_dict()
    # overrides win over the options object
    assert fit_law(X, Y, "power", opts, seed=8).seed == 8
    rep = fit_report(X, Y, opts, group="g", holdout=False)
    assert rep.fits["saturating"].n_boot == 30 and rep.group == "g"
    with pytest.raises(TypeError, match=r"unknown FitOptions field.*nboot"):
        fit_law(X, Y, nboot=10)


def test_calibration_setup_equals_keywords() -> None:
    setup = CalibrationSetup(seeds=2, n_boot=10, points=5)
    assert calibration_study(setup).settings == \
        calibration_study(seeds=2, n_boot=10, points=5).settings
    with pytest.raises(TypeError, match="unknown CalibrationSetup field"):
        calibration_study(seed_count=2)


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
