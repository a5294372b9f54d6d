"""Study reports: HTML (self-contained), PNG figures, CSV."""

from netscale.report.analysis import runtime_correlations, series_by_strategy
from netscale.report.html import make_report

__all__ = ["make_report", "runtime_correlations", "series_by_strategy"]
