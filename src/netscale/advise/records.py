"""What a recommendation is made of: the constraints, each candidate with its predicted error
and runtime, and the :class:`Recommendation` with its text form (flops are multiply-adds,
errors fractions, times ms per batch)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.util import serial
from netscale.util.fmt import si, table


def fmt_count(v: float) -> str:
    """1234567 -> '1.23M' (SI prefixes, no space)."""
    return si(v).replace(" ", "")


def pct(v: float | None) -> str:
    """A fraction in percent with two decimals (0.2345 -> '23.45'; past a million points in
    short form, '1.23e+08'); '-' for None."""
    if v is None:
        return "-"
    pts = 100 * v
    return f"{pts:.2f}" if abs(pts) < 1e6 else f"{pts:.3g}"


def with_interval(v: float, iv: tuple[float, float] | None, digits: int = 3) -> str:
    """'v [lo, hi]' (``digits`` significant digits), or 'v' without an interval."""
    d = digits
    return f"{v:.{d}g}" if iv is None else f"{v:.{d}g} [{iv[0]:.{d}g}, {iv[1]:.{d}g}]"


def pct_interval(v: float, iv: tuple[float, float] | None) -> str:
    """A fraction and its interval in percentage points: '23.45 [22.10, 24.80]'."""
    return pct(v) if iv is None else f"{pct(v)} [{pct(iv[0])}, {pct(iv[1])}]"


@dataclass(frozen=True)
class Constraints:
    """Limits a recommended model must satisfy (None: no limit). ``max_latency_ms`` is the
    time per batch of ``batch_size`` images (the study's benchmark batch size by default)."""

    max_latency_ms: float | None = None
    batch_size: int | None = None
    max_params: float | None = None
    max_acts: float | None = None

    def validate(self) -> Constraints:
        for name in ("max_latency_ms", "max_params", "max_acts"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)
                                      and v > 0):
                raise NetscaleError(f"{name.replace('_', ' ')} must be a positive number, "
                                    f"got {v!r}")
        b = self.batch_size
        if b is not None and (not isinstance(b, int) or isinstance(b, bool) or b < 1):
            raise NetscaleError(f"batch size must be a positive integer, got {b!r}")
        return self

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_params, self.max_acts))

    def text(self, batch: int | None = None) -> str:
        parts = []
        if self.max_latency_ms is not None:
            b = self.batch_size or batch
            parts.append(f"latency <= {self.max_latency_ms:g} ms per batch"
                         + (f" of {b}" if b else ""))
        if self.max_params is not None:
            parts.append(f"params <= {fmt_count(self.max_params)}")
        if self.max_acts is not None:
            parts.append(f"acts <= {fmt_count(self.max_acts)}")
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass(frozen=True)
class ErrorEstimate:
    """A predicted error (fraction) with its prediction interval at ``level``."""

    value: float
    lo: float
    hi: float
    level: float
    law: str
    extrapolation: float
    method: str  # "fit" | "interpolated"
    source: str

    def text(self, sign: str = "") -> str:
        """'23.45 [22.10, 24.80]': the error and its interval in percent (``sign`` after the
        value, e.g. '%')."""
        return f"{pct(self.value)}{sign} [{pct(self.lo)}, {pct(self.hi)}]"

    def past(self, data: str) -> str:
        """', extrapolating x3.2 past DATA' for an estimate beyond its data, else ''."""
        return (f", extrapolating x{self.extrapolation:.3g} past {data}"
                if self.extrapolation > 1 + 1e-9 else "")

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass
class Candidate:
    """One scaled candidate: its spec, predicted error and runtime, and its verdict."""

    name: str
    strategy: dict[str, Any]
    alpha: float | None
    origin: str  # "study" (trained), "named" or "grid"
    trained: bool = False
    spec: dict[str, Any] | None = None
    call: str | None = None  # a zoo base: the zoo call that builds this candidate
    flops: int | None = None
    params: int | None = None
    acts: int | None = None
    resolution: int | None = None
    flops_factor: float | None = None
    error: ErrorEstimate | None = None
    error_note: str = ""
    runtime_ms: float | None = None  # predicted by the study's runtime model
    runtime_extrapolation: float | None = None
    measured_ms: float | None = None
    measured_source: str = ""
    violations: list[str] = field(default_factory=list)
    excess: dict[str, float] = field(default_factory=dict)  # constraint -> value / limit
    same_as: str | None = None
    scale_error: str | None = None
    rank: int | None = None
    verdict: str = ""

    @property
    def usable(self) -> bool:
        return (self.spec is not None or self.call is not None) and self.same_as is None

    @property
    def feasible(self) -> bool:
        return self.usable and not self.violations

    @property
    def time_ms(self) -> float | None:
        """Measured time if available, else predicted (ms per batch)."""
        return self.measured_ms if self.measured_ms is not None else self.runtime_ms

    def to_dict(self, *, spec: bool = True) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("error", "spec")}
        d["error"] = self.error.to_dict() if self.error else None
        d["feasible"] = self.feasible
        d["time_ms"] = self.time_ms
        if spec:
            d["spec"] = self.spec
        return d


@dataclass
class Recommendation:
    """The result of :func:`recommend`: the chosen candidate and every other one ranked."""

    mode: str  # "study" | "base"
    source: str
    base: str
    base_flops: int
    factor: float
    target_flops: float
    constraints: Constraints
    chosen: Candidate
    candidates: list[Candidate]
    ranking: str  # "predicted error" | "prior"
    error_basis: str
    runtime_basis: str
    runtime_batch: int | None
    runtime: dict[str, Any] | None = None
    fits: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)  # statistically tied with the best
    reason: str = ""  # the verdict sentence (netscale.advise.explain / study_verdict)
    verdict: dict[str, Any] | None = None  # at a trained factor: the study verdict

    @property
    def recommended(self) -> str:
        return self.chosen.name

    def chosen_spec(self) -> NetSpec:
        if self.chosen.spec is None:
            raise NetscaleError(f"{self.base} is a zoo model: its candidates are zoo calls, "
                                "not netscale specs; build the chosen one with its printed "
                                "call (or take it from --json)")
        return NetSpec.from_dict(self.chosen.spec)

    def head_lines(self, headline: str) -> list[str]:
        """How the text of every recommendation begins: ``headline``, what the error and the
        runtime rest on, the constraints, a blank line."""
        return [headline, f"error:   {self.error_basis}", f"runtime: {self.runtime_basis}",
                f"constraints: {self.constraints.text(self.runtime_batch)}", ""]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "source": self.source, "base": self.base,
            "base_flops": self.base_flops, "factor": self.factor,
            "target_flops": self.target_flops, "constraints": self.constraints.to_dict(),
            "ranking": self.ranking, "error_basis": self.error_basis,
            "runtime_basis": self.runtime_basis, "runtime_batch": self.runtime_batch,
            "chosen": self.chosen.to_dict(),
            "candidates": [c.to_dict(spec=False) for c in self.candidates],
            "runtime": self.runtime, "fits": self.fits, "notes": list(self.notes),
            "recommended": self.chosen.name, "tied": list(self.tied), "reason": self.reason,
            "verdict": self.verdict,
            "units": {"flops": "multiply-adds", "error": "fraction",
                      "time": "ms per batch"},
        }

    def format_text(self) -> str:
        """The human-readable summary printed by ``netscale recommend``."""
        c = self.chosen
        lines = self.head_lines(
            f"recommend: {self.base} ({fmt_count(self.base_flops)} flops) x{self.factor:.4g} "
            f"-> target {fmt_count(self.target_flops)} flops (multiply-adds)")
        lines.append(f"chosen: {c.name}  ({_exps(c.strategy)})"
                     + (f"  — tied with {', '.join(self.tied)}" if self.tied else ""))
        if c.call is not None:
            lines.append(f"  build: {c.call}  at {c.resolution} px")
        else:
            stages = (c.spec or {}).get("stages", [])
            lines.append(f"  depths {[s['depth'] for s in stages]}  widths "
                         f"{[s['width'] for s in stages]}  resolution {c.resolution} px")
        lines.append(f"  flops {fmt_count(c.flops or 0)} (x{c.flops_factor:.3f}), params "
                     f"{fmt_count(c.params or 0)}, acts {fmt_count(c.acts or 0)}")
        if c.error:
            e = c.error
            ex = e.past("the trained sizes")
            kind = "measured error" if e.method == "measured" else "predicted error"
            iv = "interval" if e.method == "measured" else "prediction interval"
            lines.append(f"  {kind} {e.text('%')} ({e.level:.0%} {iv}; {e.source}{ex})")
        else:
            lines.append(f"  predicted error: none ({c.error_note or 'no trained results'})")
        rt = []
        if c.runtime_ms is not None:
            rt.append(f"predicted {c.runtime_ms:.3g} ms")
        if c.measured_ms is not None:
            rt.append(f"measured {c.measured_ms:.3g} ms ({c.measured_source})")
        batch = f" per batch of {self.runtime_batch}" if self.runtime_batch else ""
        lines.append(f"  runtime: {', '.join(rt) + batch if rt else 'not available'}")
        lines.append(f"  {c.verdict}")
        if self.reason:
            lines.append(f"verdict: {self.reason}")
        lines.append("")
        lines.append(candidate_table(self.candidates))
        calls = [c for c in self.candidates if c.call is not None and c.usable]
        if calls:
            lines.append("build each candidate with the zoo's own call:")
            lines.extend(f"  {c.name}: {c.call}  at {c.resolution} px" for c in calls)
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def _exps(strategy: Mapping[str, Any]) -> str:
    return (f"e_d {strategy['e_d']:.3g}, e_w {strategy['e_w']:.3g}, e_r {strategy['e_r']:.3g}"
            + (", group width follows width" if strategy.get("e_w", 0) > 0
               and abs(strategy.get("e_g", 0) - strategy["e_w"]) < 1e-9 else ""))


def candidate_table(cands: Sequence[Candidate]) -> str:
    rows = []
    for c in cands:
        err = (c.error.text() + {"interpolated": "*", "measured": "m"}.get(c.error.method, "")
               if c.error else "-")
        t = c.time_ms
        rows.append([
            str(c.rank) if c.rank is not None else "-", c.name,
            fmt_count(c.flops) if c.flops else "-", fmt_count(c.params) if c.params else "-",
            fmt_count(c.acts) if c.acts else "-", str(c.resolution or "-"), err,
            f"{t:.3g}" + ("m" if c.measured_ms is not None else "") if t is not None else "-",
            c.verdict,
        ])
    text = table(rows, ["rank", "strategy", "flops", "params", "acts", "px",
                        "error % [interval]", "ms", "verdict"], align="rlrrrrrrl")
    return text + ("\n(* interpolated between trained fast-compound members; m after an "
                   "error = measured mean of the study's seeds, after a time = measured, "
                   "otherwise predicted)")


# --------------------------------------------------------------------------------------------
