"""Damaged and look-alike stores, and files in trial directories, are validated before they
are trusted: every reader gives one line, recovery ignores invalid files."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from netscale.errors import NetscaleError
from netscale.study.config import load_study_config
from netscale.study.runner import backfill_trial, prepare_store
from netscale.study.store import Store
from netscale.study.store_check import read_bench_file, valid_history
from netscale_fixtures.synthetic import synthetic_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_study(tmp_path_factory.mktemp("s") / "study", strategies=("w",),
                           factors=(1, 2))


def _damaged(study: Path, tmp_path: Path, sql: str) -> Path:
    out = tmp_path / "damaged"
    shutil.copytree(study, out)
    con = sqlite3.connect(out / "results.sqlite")
    con.execute(sql)
    con.commit()
    con.close()
    return out


READERS: list[Callable[[Path], list[str]]] = [
    lambda d: ["study", str(d), "--export", "json"],
    lambda d: ["report", str(d), "--out", str(d / "rep")],
    lambda d: ["fit", str(d)],
]


@pytest.mark.parametrize(("sql", "says"), [
    ("UPDATE trials SET spec = '{not json'", "has an invalid 'spec' value"),
    ("UPDATE trials SET bench = '[[[' WHERE rowid = 1", "has an invalid 'bench' value"),
    ("INSERT OR REPLACE INTO meta VALUES ('config', '{\"a\": ')", "meta 'config' is not a JSON"),
    ("UPDATE meta SET value = '99' WHERE key = 'schema_version'", "schema_version '99'"),
    ("ALTER TABLE epochs RENAME COLUMN metrics TO m", "table 'epochs' lacks column(s) metrics"),
], ids=["spec", "bench", "meta-config", "schema-99", "columns"])
def test_every_reader_refuses_a_damaged_store_in_one_line(
        study: Path, tmp_path: Path, run_cli: Any, sql: str, says: str) -> None:
    d = _damaged(study, tmp_path, sql)
    for args in READERS:
        code, _, err = run_cli(*args(d))
        assert code == 2 and err.count("\n") == 1 and says in err, (args(d), err)
    with pytest.raises(NetscaleError, match=re.escape(says)), \
            Store(d / "results.sqlite") as store:  # the writer refuses it as well
        store.trials()


def test_a_corrupted_page_is_one_line(study: Path, tmp_path: Path, run_cli: Any) -> None:
    d = tmp_path / "corrupt"
    shutil.copytree(study, d)
    db = d / "results.sqlite"
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):  # every page but the header's: b-tree headers gone
        data[p * page:p * page + 16] = b"\xff" * 16
    db.write_bytes(bytes(data))
    for args in READERS:
        code, _, err = run_cli(*args(d))
        assert code == 2 and err.count("\n") == 1 and "is damaged" in err, err


def test_a_look_alike_sqlite_file_is_refused_untouched(tmp_path: Path, run_cli: Any) -> None:
    d = tmp_path / "look"
    d.mkdir()
    con = sqlite3.connect(d / "results.sqlite")
    for table in ("meta", "trials", "epochs", "events"):
        con.execute(f"CREATE TABLE {table} (x TEXT)")
    con.commit()
    con.close()
    before = (d / "results.sqlite").read_bytes()
    for args in READERS:
        code, _, err = run_cli(*args(d))
        assert code == 2 and err.count("\n") == 1 and "not a netscale results store" in err
    assert (d / "results.sqlite").read_bytes() == before


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("text", "valid"), [
    ('[{"mode": "infer", "time_ms": 1.5, "iqr_ms": 0.1}]', True),
    ('[{"mode": "infer", "time_ms": null}]', True),
    ('[{"mode": "infer", "time_ms": -5}]', False),
    ('[{"mode": "infer", "time_ms": NaN}]', False),
    ('[{"mode": "infer", "time_ms": Infinity}]', False),
    ('[{"mode": "sideways", "time_ms": 1}]', False),
    ('[]', False),
    ('{"mode": "infer"}', False),
    (_nested(100_000), False),
    ('[{"mode": "infer", "time_ms": 1, "x": ' + _nested(50) + '}]', False),
], ids=["ok", "untimed", "negative", "nan", "inf", "mode", "empty", "object", "deep",
        "deep-field"])
def test_bench_files_are_validated(tmp_path: Path, text: str, valid: bool) -> None:
    p = tmp_path / "bench.json"
    p.write_text(text)
    assert (read_bench_file(p) is not None) == valid


def test_checkpoint_history_is_bounded_by_the_recipe() -> None:
    hist: list[dict[str, Any]] = [{"epoch": e, "loss": 1.0} for e in range(1, 50_001)]
    assert [h["epoch"] for h in valid_history(hist, 3)] == [1, 2, 3]
    odd: list[dict[str, Any]] = [{"epoch": 2}, {"epoch": 2}, {"epoch": 0}, {"epoch": True},
                                 {"epoch": "1"}, {"epoch": 9}, {"epoch": 1}]
    assert [h["epoch"] for h in valid_history(odd, 3)] == [2]  # only the first 3 entries
    assert valid_history(hist, 0) == []


def test_recovery_ignores_invalid_trial_files(tmp_path: Path) -> None:
    """A negative runtime and a deeply nested bench.json in a trial directory are not
    written into the store (the trial measures again)."""
    raw = {"name": "v", "out": "out", "bases": ["ResNet-20-CIFAR"],
           "base_overrides": {"resolution": 16}, "strategies": ["w"], "factors": [1, 2],
           "train": False, "bench": {"enabled": True, "mode": "infer", "batch_size": 2,
                                     "budget": 0.05}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_study_config(tmp_path / "study.yaml")
    store, plan = prepare_store(cfg, None)
    try:
        from netscale.study.runner import trial_dir

        texts = ['[{"mode": "infer", "time_ms": -5}]', _nested(200_000)]
        for p, text in zip(plan, texts, strict=True):
            trial_dir(cfg, p.id).mkdir(parents=True)
            (trial_dir(cfg, p.id) / "bench.json").write_text(text)
        for t in store.trials(epochs=False):
            assert backfill_trial(cfg, store, t) == 0
        assert all(t.bench == [] and t.time_ms is None for t in store.trials())
        good = [{"mode": "infer", "time_ms": 2.0}]
        (trial_dir(cfg, plan[0].id) / "bench.json").write_text(json.dumps(good))
        t = next(t for t in store.trials(epochs=False) if t.id == plan[0].id)
        assert backfill_trial(cfg, store, t) == 1
        assert next(t for t in store.trials() if t.id == plan[0].id).time_ms == 2.0
    finally:
        store.close()


def test_report_on_a_full_disk_is_one_line(study: Path, tmp_path: Path, run_cli: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC where a write reaches the disk (fsync): one line naming the report's place;
    once space is back the same command writes the report."""
    import errno
    import os

    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "rep"
    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli("report", study, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    assert str(out) in err and "run the report again" in err
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, _, err = run_cli("report", study, "--out", out)
    assert code == 0, err
    assert (out / "index.html").is_file()
