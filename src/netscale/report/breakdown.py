"""Where a study's time went, for the report: the breakdown its driver runs recorded in the
store (:class:`netscale.study.store.TimeBreakdown`), as an HTML section and as JSON."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from netscale.study.store import (
    STORE_NAME,
    TIME_LABELS,
    TIME_PARTS,
    Store,
    TimeBreakdown,
    time_breakdown,
)


def study_breakdown(study: str | Path) -> TimeBreakdown | None:
    """The breakdown of a study directory (or its store file); None for a results file, a
    store without recorded run times, or nothing readable."""
    path = Path(study)
    db = path if path.is_file() and path.name == STORE_NAME else path / STORE_NAME
    if not db.is_file():
        return None
    with Store(db, readonly=True) as store:
        return time_breakdown(store)


def breakdown_json(study: str | Path) -> dict[str, Any] | None:
    """The breakdown as plain data (seconds and shares of the wall time), or None."""
    b = study_breakdown(study)
    return None if b is None else b.to_dict()


def breakdown_html(study: str | Path) -> str:
    """The report's "Where the time went" section ("" when nothing is recorded)."""
    b = study_breakdown(study)
    if b is None:
        return ""
    rows = []
    for part in (*TIME_PARTS, "overhead"):
        label = "overhead (set-up + idle)" if part == "overhead" else TIME_LABELS[part]
        seconds = b.overhead if part == "overhead" else float(getattr(b, part))
        rows.append(f"<tr><td style='text-align:left'>{html.escape(label)}</td>"
                    f"<td>{seconds:,.1f}</td><td>{100 * b.share(part):.1f}</td></tr>")
    runs = f" over {b.runs} driver runs (the study was resumed)" if b.runs > 1 else ""
    return (
        "<h2>Where the time went</h2>"
        f"<p>{b.wall:,.0f} s of wall time{runs}; training ran {b.workers} trial(s) at a "
        "time, and its steps' and evaluations' seconds are summed over the trials and divided "
        "by that number, so the parts add up to the wall time.</p>"
        "<table><thead><tr><th>part</th><th>seconds</th><th>share of wall time (%)</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        "<p class='small'>Benchmark: runtime measurements and the execution-setting probe. "
        "Set-up: the driver outside the phases (data description, planning, the store, "
        "recovery, workers starting and stopping). Idle and bookkeeping: worker time in the "
        "training phase that is neither a training step nor an evaluation (model builds, "
        "checkpoints, workers waiting for the last trials).</p>")
