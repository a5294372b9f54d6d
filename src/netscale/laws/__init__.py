"""Scaling laws: error-vs-complexity fits, interval statistics and runtime models.

Pure numpy/scipy, no torch. See docs/laws.md.
"""

from netscale.laws.calibration import CalibrationResult, calibration_study
from netscale.laws.fit import (
    DEFAULT_HUBER_SCALE,
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    ERROR_DOMAIN,
    LAW_FORMULAS,
    LAWS,
    SELECTION_METHODS,
    Curve,
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
from netscale.laws.runtime import DEFAULT_METRICS, MetricFit, RuntimeModel, fit_runtime

__all__ = [
    "DEFAULT_HUBER_SCALE",
    "DEFAULT_LEVEL",
    "DEFAULT_METRICS",
    "DEFAULT_N_BOOT",
    "ERROR_DOMAIN",
    "LAWS",
    "LAW_FORMULAS",
    "SELECTION_METHODS",
    "CalibrationResult",
    "Curve",
    "FitReport",
    "GroupFits",
    "HoldoutCheck",
    "LawFit",
    "MetricFit",
    "Prediction",
    "RuntimeModel",
    "calibration_study",
    "check_law",
    "fit_groups",
    "fit_law",
    "fit_report",
    "fit_runtime",
    "leave_largest_out",
    "metric_value",
    "validate_points",
]
