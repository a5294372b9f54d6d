"""Shared CLI helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

from netscale.errors import NetscaleError


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def parse_int_list(text: str, what: str) -> list[int]:
    parts = text.replace("x", ",").split(",")
    try:
        if any(not p.strip() for p in parts):
            raise ValueError
        values = [int(v) for v in parts]
    except ValueError:
        raise NetscaleError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise NetscaleError(f"{what} must be positive integers, got {text!r}")
    return values


def parse_float_list(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise NetscaleError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise NetscaleError(f"{what} is empty")
    return values


def positive_int(text: str) -> int:
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    import argparse
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    import argparse

    v = nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v
