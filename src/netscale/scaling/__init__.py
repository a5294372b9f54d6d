"""Scaling strategies and the scaler (exact and reference rounding)."""

from netscale.scaling.module import ModuleScaleResult, scale_module
from netscale.scaling.scaler import (
    ROUNDING_MODES,
    ScaleResult,
    scale,
    scale_report,
)
from netscale.scaling.strategy import (
    BASE_STRATEGY,
    DEFAULT_STRATEGY,
    NAMED,
    Strategy,
    fast,
    parse_strategy,
    valid_strategies_text,
)

__all__ = [
    "BASE_STRATEGY",
    "DEFAULT_STRATEGY",
    "NAMED",
    "ROUNDING_MODES",
    "ModuleScaleResult",
    "ScaleResult",
    "Strategy",
    "fast",
    "parse_strategy",
    "scale",
    "scale_module",
    "scale_report",
    "valid_strategies_text",
]
