"""`netscale quickstart`, the README's main command: plan, bad data, and a full short run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from netscale.advise.verdict import GroupStats, Option, Verdict, decide
from netscale.cli.study import quickstart_verdict_lines


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
                             "--seeds", "7", "--json")
    assert code == 0, err
    # --json: stdout is the verdict as one JSON object, the readable verdict is on stderr
    verdict = json.loads(out)
    assert out.count("\n") == 1
    assert "11 trials done, 0 failed" in err and "  recommended  " in err
    assert json.loads((out_dir / "verdict.json").read_text()) == verdict
    assert f"  JSON         {out_dir / 'verdict.json'}" in err
    assert f"  report       {out_dir / 'report' / 'index.html'}" in err
    # digits is labelled a smoke test on screen and in the verdict
    assert "SMOKE TEST on digits" in err
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


def _verdict(errs: dict[str, tuple[float, float, float]], times: dict[str, float]) -> Verdict:
    """A verdict at x4 over hand-made groups (3 seeds, 3,000 validation images)."""
    groups = [GroupStats("qb", s, 4.0, 3, e, lo, hi, times[s], times[s] * 0.98,
                         times[s] * 1.02, "ok", seeds=[0, 1, 2], seeds_missing=False,
                         n_val=3000, epochs=2) for s, (e, lo, hi) in errs.items()]
    opts = [Option(g.strategy, g.top1_err_mean or 0, g.top1_err_low or 0,
                   g.top1_err_high or 0, g.time_ms, g.time_ms_low, g.time_ms_high, "ok")
            for g in groups]
    dec = decide(opts)
    return Verdict(recommended=dec.pick.name, tied=[o.name for o in dec.tied], reason="r",
                   factor=4.0, groups=groups, base="qb", n_val=3000, batch_size=64,
                   to_separate="more seeds" if dec.tied else "", decision=dec)


def test_quickstart_verdict_reads_as_a_few_labelled_lines() -> None:
    v = _verdict({"w": (0.20, 0.19, 0.21), "dWr": (0.205, 0.19, 0.22),
                  "d": (0.30, 0.28, 0.32)}, {"w": 20.0, "dWr": 15.0, "d": 30.0})
    lines = quickstart_verdict_lines(v, report=Path("S/report/index.html"),
                                     verdict_json=Path("S/verdict.json"))
    assert lines == [
        "verdict at x4 flops (multiply-adds), 3 seed(s) per strategy, 3,000 validation "
        "images; top-1 error and ms per batch of 64, 95% intervals:",
        "  recommended  dWr 20.50% [19.00, 22.00], 15 ms [14.7, 15.3]",
        "  tied with    w 20.00% [19.00, 21.00] (on error: each difference to the best "
        "includes 0)",
        "  why          dWr is the fastest of the strategies tied on error",
        "  to separate  more seeds",
        "  report       S/report/index.html",
        "  JSON         S/verdict.json (--json prints it)",
    ]


def test_quickstart_verdict_without_a_tie_says_how_far_the_next_is() -> None:
    v = _verdict({"w": (0.20, 0.19, 0.21), "d": (0.30, 0.29, 0.31)}, {"w": 20.0, "d": 10.0})
    lines = quickstart_verdict_lines(v, report=Path("r"), verdict_json=Path("j"))
    assert lines[1:4] == [
        "  recommended  w 20.00% [19.00, 21.00], 20 ms [19.6, 20.4]",
        "  tied with    none",
        "  why          w has the lowest top-1 error; the next, d, is 10.00 points worse, "
        "outside the interval of the difference",
    ]
    assert not any(ln.startswith("  to separate") for ln in lines)
