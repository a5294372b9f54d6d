"""Scaling laws: error-vs-complexity fits and interval statistics.

Pure numpy/scipy, no torch, and nothing from the packages above (the runtime model is
:mod:`netscale.bench.fit`). See docs/laws.md.
"""

from netscale.laws.calibration import CalibrationResult, CalibrationSetup, calibration_study
from netscale.laws.fit import (
    DEFAULT_HUBER_SCALE,
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    ERROR_DOMAIN,
    LAW_FORMULAS,
    LAWS,
    SELECTION_METHODS,
    Curve,
    FitOptions,
    FitReport,
    GroupFits,
    HoldoutCheck,
    LawFit,
    Prediction,
    check_law,
    fit_groups,
    fit_law,
    fit_report,
    leave_largest_out,
    metric_value,
    validate_points,
)
from netscale.laws.replicates import (
    Difference,
    Replicates,
    compare,
    decode_correct,
    encode_correct,
    group_interval,
)

__all__ = [
    "DEFAULT_HUBER_SCALE",
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "ERROR_DOMAIN",
    "LAWS",
    "LAW_FORMULAS",
    "SELECTION_METHODS",
    "CalibrationResult",
    "CalibrationSetup",
    "Curve",
    "Difference",
    "FitOptions",
    "FitReport",
    "GroupFits",
    "HoldoutCheck",
    "LawFit",
    "Prediction",
    "Replicates",
    "calibration_study",
    "check_law",
    "compare",
    "decode_correct",
    "encode_correct",
    "fit_groups",
    "fit_law",
    "fit_report",
    "group_interval",
    "leave_largest_out",
    "metric_value",
    "validate_points",
]
