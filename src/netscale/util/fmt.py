"""Formatting helpers for human-readable output (units always stated)."""

from __future__ import annotations

from collections.abc import Sequence


def si(value: float, digits: int = 3) -> str:
    """1234567 -> '1.23 M' (SI prefixes, base 1000)."""
    v = float(value)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g} {unit}"
    return f"{v:.{digits}g} "


def table(rows: Sequence[Sequence[object]], headers: Sequence[str],
          align: str | None = None) -> str:
    """A plain-text table; ``align`` is a string of 'l'/'r' per column (default: numbers right)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if align is None:
        align = "".join(
            "r" if rows and all(isinstance(r[i], (int, float)) for r in rows) else "l"
            for i in range(len(headers))
        )
    lines = []
    for j, row in enumerate(cells):
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(c: object) -> str:
    if isinstance(c, float):
        return f"{c:.4g}"
    if isinstance(c, int) and not isinstance(c, bool):
        return f"{c:,}"
    return str(c)


def duration(seconds: float) -> str:
    """The one duration / ETA format, units stated: ``45s``, ``3m05s``, ``1h02m`` (rounded to
    the second; negative durations read as 0s)."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
