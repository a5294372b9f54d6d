"""Scaling strategies and the scaler (exact and reference rounding)."""

from netscale.scaling.scaler import (
    ROUNDING_MODES,
    ScaleResult,
    growth_table,
    scale,
    scale_report,
)
from netscale.scaling.strategy import (
    DEFAULT_STRATEGY,
    NAMED,
    Strategy,
    fast,
    parse_strategy,
    valid_strategies_text,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "NAMED",
    "ROUNDING_MODES",
    "ScaleResult",
    "Strategy",
    "fast",
    "growth_table",
    "parse_strategy",
    "scale",
    "scale_report",
    "valid_strategies_text",
]
