"""Shared CLI helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from netscale.errors import NetscaleError
from netscale.util import jsonio

T = TypeVar("T")

#: Largest count any integer option takes (batch sizes, epochs, subsets, workers...).
MAX_COUNT = 1 << 40


def print_json(data: Any) -> None:
    sys.stdout.write(jsonio.dumps(data, indent=2) + "\n")


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
    import math

    try:
        parts = text.split(",")
        if len(parts) > 1 and not all(v.strip() for v in parts):
            raise ValueError
        values = [float(v) for v in parts if v.strip()]
    except ValueError:
        raise NetscaleError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise NetscaleError(f"{what} is empty; give comma-separated numbers, e.g. 1,2,4")
    if not all(math.isfinite(v) for v in values):
        raise NetscaleError(f"{what} must be finite numbers, got {text!r}")
    return values


def _number(text: str, cast: Callable[[str], T], kind: str, ok: Callable[[T], bool],
            expected: str) -> T:
    """argparse type helper: ``cast(text)`` (else "expected KIND"), which must be ``ok``
    (else "expected EXPECTED")."""
    import argparse

    try:
        v = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    import argparse

    v = _number(text, int, "a positive integer", lambda v: v >= 1, "a positive integer")
    if v > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {MAX_COUNT:,})")
    return v


#: Largest seed (torch, numpy and Python's random all take it).
MAX_SEED = (1 << 63) - 1


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer from 0 to 2**63 - 1."""
    import argparse

    v = _number(text, int, "an integer seed", lambda v: v >= 0, "a seed >= 0")
    if v > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is too large for a seed (at most "
                                         "2**63 - 1)")
    return v


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0 (and at most MAX_COUNT)."""
    import argparse

    if text.strip() == "0":
        return 0
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None


def threads_int(text: str) -> int:
    """argparse type: a thread count, at most a few per CPU (huge counts crash OpenMP)."""
    import argparse

    from netscale.util.validate import check_threads

    v = positive_int(text)
    try:
        check_threads(v, "")
    except NetscaleError as exc:
        raise argparse.ArgumentTypeError(str(exc).lstrip()) from None
    return v


def seconds(text: str) -> float:
    """argparse type: a positive number of seconds, at most a day."""
    import argparse

    v = positive_float(text)
    if v > 86400:
        raise argparse.ArgumentTypeError(f"{text!r} seconds is more than a day")
    return v


def nonneg_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    import math

    return _number(text, float, "a number", lambda v: v >= 0 and math.isfinite(v),
                   "a finite number >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    import argparse

    v = nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v
