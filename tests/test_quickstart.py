"""`netscale quickstart`, the README's main command: plan, bad data, and a full short run."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def test_dry_run_plans_five_strategies_at_three_factors(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("quickstart", "--out", str(tmp_path / "q"), "--data", "digits",
                             "--dry-run")
    assert code == 0, err
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("quickstart_base ")]
    assert sorted((r[1], r[2]) for r in rows) == sorted(
        [("base", "1")] + [(s, f) for s in ("d", "w", "r", "dwr", "dWr") for f in ("2", "4")])
    assert "nothing was run" in out and not (tmp_path / "q" / "trials").exists()


def test_unknown_dataset_fails_before_writing_anything(run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli("quickstart", "--out", str(tmp_path / "q"), "--data", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "q").exists()


def test_short_quickstart_on_digits_end_to_end(run_cli, tmp_path: Path) -> None:
    out_dir = tmp_path / "q"
    code, out, err = run_cli("quickstart", "--out", str(out_dir), "--data", "digits",
                             "--epochs", "1", "--workers", "1", "--bench-budget", "0.2")
    assert code == 0, err
    assert "11 trials done, 0 failed" in out and "recommended strategy:" in out
    page = (out_dir / "report" / "index.html").read_text()
    assert "Scaling laws" in page and "Recommendation" in page
    with sqlite3.connect(out_dir / "results.sqlite") as db:
        rows = db.execute("SELECT status, top1_err, time_ms FROM trials").fetchall()
    assert len(rows) == 11
    assert all(s == "done" and 0 <= e <= 1 and t > 0 for s, e, t in rows)
