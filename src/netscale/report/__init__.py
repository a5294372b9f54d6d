"""Study reports: HTML (self-contained), PNG figures, CSV."""

from netscale.report.analysis import recommend_from_trials, runtime_correlations, series_by_strategy
from netscale.report.html import make_report

__all__ = ["make_report", "recommend_from_trials", "runtime_correlations", "series_by_strategy"]
