"""`netscale quickstart`, the README's main command: plan, bad data, and a full short run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def test_dry_run_plans_five_strategies_at_three_factors(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("quickstart", "--out", str(tmp_path / "q"), "--data", "digits",
                             "--dry-run")
    assert code == 0, err
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("quickstart_base ")]
    # three seeds by default: every (strategy, factor) three times
    assert sorted((r[1], r[2]) for r in rows) == sorted(3 * (
        [("base", "1")] + [(s, f) for s in ("d", "w", "r", "dwr", "dWr") for f in ("2", "4")]))
    assert "nothing was run" in out and not (tmp_path / "q").exists()  # nothing written


def test_bad_seeds_are_one_line_errors(run_cli, tmp_path: Path) -> None:
    for bad in ("0,0", "a", "-1", ""):
        code, _out, err = run_cli("quickstart", "--out", str(tmp_path / "q"), "--data",
                                  "digits", "--seeds", bad, "--dry-run")
        assert code == 2 and "--seeds must be distinct" in err and err.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_unknown_dataset_fails_before_writing_anything(run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli("quickstart", "--out", str(tmp_path / "q"), "--data", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "q").exists()


def test_short_quickstart_on_digits_end_to_end(run_cli, tmp_path: Path) -> None:
    out_dir = tmp_path / "q"
    code, out, err = run_cli("quickstart", "--out", str(out_dir), "--data", "digits",
                             "--epochs", "1", "--workers", "1", "--bench-budget", "0.2",
                             "--seeds", "7")
    assert code == 0, err
    assert "11 trials done, 0 failed" in out and "recommended strategy:" in out
    # digits is labelled a smoke test on screen and in the verdict, the last line
    assert "SMOKE TEST on digits" in err and "[SMOKE TEST: not meaningful]" in out
    verdict = json.loads(out.strip().splitlines()[-1])
    assert verdict["smoke_test"] is True and verdict["recommended"] in {"d", "w", "r", "dwr",
                                                                        "dWr"}
    assert verdict["factor"] == 4.0 and isinstance(verdict["tied"], list)
    assert {g["n_seeds"] for g in verdict["groups"]} == {1}
    assert {g["seeds"][0] for g in verdict["groups"]} == {7}
    page = (out_dir / "report" / "index.html").read_text()
    assert "Scaling laws" in page and "Recommendation" in page
    with sqlite3.connect(out_dir / "results.sqlite") as db:
        rows = db.execute("SELECT status, top1_err, time_ms FROM trials").fetchall()
    assert len(rows) == 11
    assert all(s == "done" and 0 <= e <= 1 and t > 0 for s, e, t in rows)
