"""Parsing quantities users type: 4G, 400M, 4e9, 4x."""

from __future__ import annotations

import math
import re

from netscale.errors import NetscaleError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(?:f|flops|macs)?\s*$",
                 re.IGNORECASE)


def parse_count(text: str, what: str = "value") -> float:
    """'4G' -> 4e9, '400M' -> 4e8, '4e9' -> 4e9, '2.5k' -> 2500 (also '4GF', '4 GMACs')."""
    m = _RE.match(str(text))
    if not m:
        raise NetscaleError(
            f"{what} {text!r} is not a count; write e.g. 4G, 400M, 4e9 (flops = multiply-adds)"
        )
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise NetscaleError(f"{what} must be positive, got {text!r}")
    return value


def parse_target(text: str, base: float, what: str = "target") -> float:
    """A factor relative to ``base``: '4x' -> 4, '4G' -> 4e9 / base."""
    t = str(text).strip()
    if t.lower().endswith("x"):
        try:
            f = float(t[:-1])
        except ValueError:
            raise NetscaleError(
                f"{what} {text!r}: write a factor like 4x or a count like 4G"
            ) from None
        if not math.isfinite(f) or f <= 0:
            raise NetscaleError(f"{what} factor must be positive, got {text!r}")
        return f
    return parse_count(t, what) / base
