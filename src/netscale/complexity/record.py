"""Complexity records: exact integer flops (multiply-adds), parameters and activations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netscale.util import serial

FLOPS_UNIT = "multiply-adds (1 MAC = 1 flop), batch size 1"


@dataclass(frozen=True)
class Complexity:
    """Flops (multiply-adds), parameters and activations of a network or a part of one."""

    flops: int = 0
    params: int = 0
    acts: int = 0

    def __add__(self, other: Complexity) -> Complexity:
        return Complexity(self.flops + other.flops, self.params + other.params,
                          self.acts + other.acts)

    def to_dict(self) -> dict[str, int]:
        return serial.to_dict(self)


@dataclass(frozen=True)
class ComplexityRecord:
    """The complexity of one model at one resolution, with a breakdown by part.

    ``parts`` holds ``(name, Complexity)`` rows: per stage (stem, s1..sN, head) for analytic
    counts, per module for measured counts. ``uncounted`` (measured only) maps an operator
    name to how often it ran without being counted.
    """

    model: str
    resolution: int
    flops: int
    params: int
    acts: int
    method: str = "analytic"
    parts: tuple[tuple[str, Complexity], ...] = ()
    backward_flops: int | None = None
    uncounted: dict[str, int] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    part_types: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> Complexity:
        return Complexity(self.flops, self.params, self.acts)

    def to_dict(self, *, parts: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "resolution": self.resolution,
            "flops": self.flops,
            "params": self.params,
            "acts": self.acts,
            "method": self.method,
            "units": {"flops": FLOPS_UNIT, "params": "count", "acts": "output elements"},
        }
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        if self.backward_flops is not None:
            out["backward_flops"] = self.backward_flops
        if self.method == "measured":
            out["uncounted_ops"] = dict(self.uncounted)
        if parts and self.parts:
            key = "stages" if self.method == "analytic" else "modules"
            rows = []
            for n, c in self.parts:
                row: dict[str, Any] = {"name": n}
                if n in self.part_types:
                    row["type"] = self.part_types[n]
                rows.append({**row, **c.to_dict()})
            out[key] = rows
        return out
