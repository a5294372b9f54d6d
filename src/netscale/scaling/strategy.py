"""Scaling strategies: exponents (e_d, e_w, e_r) with e_d + 2·e_w + 2·e_r = 1.

Scaling flops by s multiplies depth by s^e_d, width by s^e_w and resolution by s^e_r; group
width by s^e_g (``e_g = e_w`` when the group width follows the width). Parameters then grow as
s^(e_d + 2·e_w) and activations as s^(e_d + e_w + 2·e_r) (docs/conventions.md,
"Scaling strategies").

Accepted spellings (:func:`parse_strategy`):

* named: ``d``, ``w``, ``r``, ``dw``, ``dr``, ``wr``, ``dwr`` (the reference's strings: equal
  weights on the letters, group width fixed) and ``dWr`` (fast compound scaling, α = 0.8,
  group width follows width; the paper's recommendation and netscale's default);
* ``fast`` or ``fast:ALPHA`` for any α in [0, 1]: e_d = (1-α)/2, e_w = α/2, e_r = (1-α)/4,
  group width follows width;
* weight strings in the reference's syntax: letters from ``dwgr`` (``dwgr``: weight 1 each)
  or ``d1_w8_g8_r1`` / ``d1_w2``: with S = W_d + W_w + W_r, e_d = W_d/S, e_w = W_w/(2S),
  e_r = W_r/(2S), e_g = W_g/(2S);
* explicit exponents: ``e_d=0.1,e_w=0.4,e_r=0.05[,e_g=0.4]`` (e_g defaults to 0; write
  ``e_g=w`` to make the group width follow the width).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from netscale.errors import NetscaleError
from netscale.util import serial

NAMED = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr")
DEFAULT_STRATEGY = "dWr"
#: The label of a study's unscaled base network (factor 1), in place of a strategy name.
BASE_STRATEGY = "base"
_TOL = 1e-6


@dataclass(frozen=True)
class Strategy:
    """A scaling strategy: how a flops factor is split between depth, width and resolution."""

    name: str
    e_d: float
    e_w: float
    e_r: float
    e_g: float = 0.0

    def __post_init__(self) -> None:
        for k in ("e_d", "e_w", "e_r", "e_g"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < -_TOL:
                raise NetscaleError(
                    f"strategy {self.name!r}: {k} must be a non-negative number, got {v!r}"
                )
        total = self.e_d + 2 * self.e_w + 2 * self.e_r
        if abs(total - 1.0) > 1e-6:
            raise NetscaleError(
                f"strategy {self.name!r}: e_d + 2*e_w + 2*e_r must be 1 (flops ∝ d·w²·r²), "
                f"got {total:.6g}; valid strategies: {valid_strategies_text()}"
            )

    @property
    def group_follows_width(self) -> bool:
        return self.e_w > 0 and abs(self.e_g - self.e_w) < _TOL

    @property
    def params_exponent(self) -> float:
        """Parameters grow as s ** params_exponent."""
        return self.e_d + 2 * self.e_w

    @property
    def acts_exponent(self) -> float:
        """Activations grow as s ** acts_exponent."""
        return self.e_d + self.e_w + 2 * self.e_r

    def factors(self, s: float) -> tuple[float, float, float, float]:
        """Continuous multipliers ``(depth, width, group width, resolution)`` for factor s."""
        return s**self.e_d, s**self.e_w, s**self.e_g, s**self.e_r

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "e_d": self.e_d, "e_w": self.e_w, "e_r": self.e_r,
                "e_g": self.e_g, "params_exponent": self.params_exponent,
                "acts_exponent": self.acts_exponent}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Strategy:
        return serial.from_dict(cls, d, unknown="ignore")

    def __str__(self) -> str:
        return self.name


class PredictedFactors:
    """The params and activations growth a strategy predicts for a result's flops factor
    (mixed into the scaling results, which have ``factor`` and ``strategy`` fields)."""

    factor: float
    strategy: Strategy

    @property
    def predicted_params_factor(self) -> float:
        return float(self.factor ** self.strategy.params_exponent)

    @property
    def predicted_acts_factor(self) -> float:
        return float(self.factor ** self.strategy.acts_exponent)


def fast(alpha: float = 0.8, name: str | None = None) -> Strategy:
    """Fast compound scaling: e_d = (1-α)/2, e_w = α/2, e_r = (1-α)/4, group follows width."""
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or not 0 <= alpha <= 1:
        raise NetscaleError(f"fast compound scaling needs alpha in [0, 1], got {alpha!r}")
    e_w = alpha / 2
    return Strategy(name or f"fast:{alpha:g}", (1 - alpha) / 2, e_w, (1 - alpha) / 4, e_w)


def from_weights(weights: dict[str, float], name: str) -> Strategy:
    """The reference's weight semantics (see module docstring)."""
    wd, ww, wg, wr = (weights.get(k, 0.0) for k in "dwgr")
    total = wd + ww + wr
    if total <= 0:
        raise NetscaleError(
            f"strategy {name!r} puts no weight on d, w or r; valid strategies: "
            f"{valid_strategies_text()}"
        )
    return Strategy(name, wd / total, ww / total / 2, wr / total / 2, wg / total / 2)


def valid_strategies_text() -> str:
    return (f"named {', '.join(NAMED)}; fast:ALPHA with ALPHA in [0, 1]; weight strings such "
            "as d1_w8_g8_r1, dwgr, d1_w2 (letters d, w, g, r); or e_d=…,e_w=…,e_r=… with "
            "e_d + 2·e_w + 2·e_r = 1")


_WEIGHT_PART = re.compile(r"^([dwgr])(\d+(?:\.\d+)?)$")


def parse_strategy(text: str | Strategy, alpha: float | None = None) -> Strategy:
    """Parses any accepted spelling (see module docstring); ``alpha`` forces fast:ALPHA."""
    if isinstance(text, Strategy):
        return text
    if alpha is not None:
        return fast(alpha, name=None)
    raw = str(text).strip()
    if raw == "dWr":
        return fast(0.8, name="dWr")
    if raw in ("fast", "fast-compound"):
        return fast(0.8, name="dWr")
    if raw.startswith("fast:") or raw.startswith("fast="):
        try:
            a = float(raw[5:])
        except ValueError:
            raise NetscaleError(f"strategy {raw!r}: alpha must be a number in [0, 1]") from None
        return fast(a)
    if raw.startswith("e_") or "=" in raw:
        return _parse_exponents(raw)
    if raw and all(c in "dwgr" for c in raw):
        if len(set(raw)) != len(raw):
            raise NetscaleError(f"strategy {raw!r} repeats a letter; {valid_strategies_text()}")
        return from_weights({c: 1.0 for c in raw}, raw)
    if "_" in raw or _WEIGHT_PART.match(raw):
        weights: dict[str, float] = {}
        for part in raw.split("_"):
            m = _WEIGHT_PART.match(part)
            if not m or m.group(1) in weights:
                raise NetscaleError(
                    f"unknown strategy {raw!r} (bad part {part!r}); valid strategies: "
                    f"{valid_strategies_text()}"
                )
            weights[m.group(1)] = float(m.group(2))
        return from_weights(weights, raw)
    raise NetscaleError(f"unknown strategy {raw!r}; valid strategies: {valid_strategies_text()}")


def _parse_exponents(raw: str) -> Strategy:
    values: dict[str, float | str] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("e_d", "e_w", "e_r", "e_g"):
            raise NetscaleError(
                f"strategy {raw!r}: expected e_d=…,e_w=…,e_r=…[,e_g=…]; bad part {part!r}"
            )
        if key == "e_g" and value.strip() == "w":
            values[key] = "w"
            continue
        try:
            values[key] = float(value)
        except ValueError:
            raise NetscaleError(f"strategy {raw!r}: {key} must be a number") from None
    missing = [k for k in ("e_d", "e_w", "e_r") if k not in values]
    if missing:
        raise NetscaleError(f"strategy {raw!r}: missing {', '.join(missing)}")
    e_w = float(values["e_w"])
    e_g = e_w if values.get("e_g") == "w" else float(values.get("e_g", 0.0))
    return Strategy(raw, float(values["e_d"]), e_w, float(values["e_r"]), e_g)
