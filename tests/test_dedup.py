"""One network, one trial: identical scaled specs are planned, trained and timed once."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from netscale.specs.spec import network_key
from netscale.study.config import load_study_config
from netscale.study.planning import plan_trials
from netscale.study.quickstart import quickstart_base
from netscale.study.runner import run_study
from netscale.study.store import Store
from study_helpers import timing_only, write_config


def _config(tmp_path: Path, **over: object) -> Path:
    base = tmp_path / "qbase.yaml"
    quickstart_base(resolution=16).save(base)
    raw = {
        "name": "dedup",
        "out": "out",
        "bases": [str(base)],
        "strategies": ["w", "dWr"],
        "factors": [1, 2],
        "resolution_multiple": 2,
        **timing_only(batch_size=2, budget=0.1, retries=0),
    }
    return write_config(tmp_path, raw, over)


def test_quickstart_w_and_dwr_at_2_are_one_trial(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path, strategies=["d", "w", "r", "dwr", "dWr"],
                                    factors=[1, 2, 4]))
    plan = plan_trials(cfg)
    by = {(t.strategy, t.factor): t for t in plan}
    w2, dwr2 = by[("w", 2.0)], by[("dWr", 2.0)]
    # dWr's depth (2^0.1) and resolution (2^0.05 of 16 px) steps round to nothing at s = 2
    assert dwr2.spec["stages"] == w2.spec["stages"] and dwr2.resolution == w2.resolution == 16
    assert network_key(dwr2.spec) == network_key(w2.spec)
    assert dwr2.same_as == w2.id and w2.same_as is None
    # every other (strategy, factor) is its own network
    assert [t.id for t in plan if t.same_as] == [dwr2.id]
    assert len({network_key(t.spec) for t in plan}) == len(plan) - 1
    assert len(plan) == 11  # base + 5 strategies x 2 factors: every row exists


def test_aliases_are_per_seed(tmp_path: Path) -> None:
    plan = plan_trials(load_study_config(_config(tmp_path, seeds=[0, 1])))
    aliases = {t.id: t.same_as for t in plan if t.same_as}
    assert aliases == {"qbase|dWr|x2|seed0": "qbase|w|x2|seed0",
                       "qbase|dWr|x2|seed1": "qbase|w|x2|seed1"}


def test_dry_run_says_same_network_as(run_cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("study", str(_config(tmp_path)), "--dry-run")
    assert code == 0
    assert "3 trials (2 to train and time; 1 same network as another" in out
    line = next(ln for ln in out.splitlines() if ln.split()[1:3] == ["dWr", "2"])
    assert line.rstrip().endswith("same network as w x2")
    code, out, _ = run_cli("study", str(_config(tmp_path)), "--dry-run", "--json")
    rows = {(r["strategy"], r["factor"]): r for r in json.loads(out)}
    assert rows[("dWr", 2.0)]["same_as"] == rows[("w", 2.0)]["id"]
    assert rows[("w", 2.0)]["same_as"] is None


def test_alias_is_timed_once_and_carries_identical_results(run_cli, tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path))
    counts = run_study(cfg, stream=None)
    assert counts == {"pending": 0, "running": 0, "done": 3, "failed": 0}
    db = cfg.out_dir / "results.sqlite"
    with Store(db) as store:
        trials = {t.id: t for t in store.trials()}
        started = [e["trial_id"] for e in store.events() if e["kind"] == "start"]
        assert [t.id for t in store.canonical_trials()] == ["qbase|base|x1|seed0",
                                                             "qbase|w|x2|seed0"]
    w2, dwr2 = trials["qbase|w|x2|seed0"], trials["qbase|dWr|x2|seed0"]
    assert "qbase|dWr|x2|seed0" not in started  # never submitted
    assert started.count("qbase|w|x2|seed0") == 1
    assert dwr2.same_as == w2.id and dwr2.status == "done"
    assert dwr2.time_ms == w2.time_ms and dwr2.time_ms is not None
    assert dwr2.bench == w2.bench and dwr2.flops == w2.flops
    # the raw table agrees too (synced when the study ends), for plain SQL readers
    con = sqlite3.connect(db)
    raw = con.execute("SELECT id, status, time_ms, bench, wall_time FROM trials WHERE id IN "
                      "(?, ?) ORDER BY id", (dwr2.id, w2.id)).fetchall()
    con.close()
    assert raw[0][0] == dwr2.id and raw[0][1:] == raw[1][1:] and raw[0][1] == "done"
    # export: every (strategy, factor) row, with identical results and same_as
    code, out, _ = run_cli("study", str(cfg.out_dir), "--export", "csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and len(rows) == 3
    assert rows[dwr2.id]["same_as"] == w2.id and rows[w2.id]["same_as"] == ""
    assert rows[dwr2.id]["time_ms"] == rows[w2.id]["time_ms"]
    # the report's trial table labels the alias
    from netscale.report.html import make_report

    html = Path(make_report(cfg.out_dir)).read_text()
    trials_table = html[html.index('id="trials"'):]
    row = next(r for r in trials_table.split("<tr")[1:] if dwr2.id in r)
    assert "≡ same network as w ×2" in row


def test_store_written_before_dedup_gets_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE trials (id TEXT PRIMARY KEY, base TEXT NOT NULL, strategy TEXT "
                "NOT NULL, factor REAL NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0, "
                "spec TEXT NOT NULL, flops INTEGER NOT NULL, params INTEGER NOT NULL, "
                "acts INTEGER NOT NULL, resolution INTEGER NOT NULL, flops_factor REAL, "
                "params_factor REAL, acts_factor REAL, within_tolerance INTEGER, bench TEXT, "
                "time_ms REAL, top1_err REAL, top5_err REAL, loss REAL, epochs_done INTEGER "
                "NOT NULL DEFAULT 0, error TEXT, wall_time REAL NOT NULL DEFAULT 0, env TEXT, "
                "worker TEXT, created_at REAL, started_at REAL, finished_at REAL, "
                "updated_at REAL)")
    # the other tables of a store of that time (a store is recognised by its tables)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE TABLE epochs (trial_id TEXT NOT NULL REFERENCES trials(id), epoch "
                "INTEGER NOT NULL, metrics TEXT NOT NULL, recorded_at REAL NOT NULL, "
                "PRIMARY KEY (trial_id, epoch))")
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, trial_id TEXT, "
                "at REAL NOT NULL, kind TEXT NOT NULL, message TEXT)")
    con.execute("INSERT INTO trials (id, base, strategy, factor, seed, status, spec, flops, "
                "params, acts, resolution) VALUES ('a', 'b', 'w', 2, 0, 'done', '{}', 1, 1, "
                "1, 16)")
    con.commit()
    con.close()
    with Store(db) as store:
        (t,) = store.trials()
        assert t.same_as is None and t.status == "done"
        assert store.counts()["done"] == 1
