"""The results store and atomic writers: read-only studies, foreign SQLite files, which
crashes count against a trial, temp-file sweeps and file modes."""

from __future__ import annotations

import ctypes
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netscale.errors import NetscaleError
from netscale.study.config import load_study_config
from netscale.study.crashes import record_stop, record_worker_crash, suspects
from netscale.study.interrupts import WorkerDied
from netscale.study.runner import recover_store, run_study
from netscale.study.store import POISON_CRASHES, Store
from netscale.util.io import atomic_write_text, is_temp_file, sweep_temp_files
from netscale_fixtures.synthetic import synthetic_study

SRC = Path(__file__).resolve().parents[1] / "src"


def _bench_config(tmp_path: Path) -> Path:
    raw = {"name": "ro", "out": "out", "bases": ["ResNet-20-CIFAR"],
           "base_overrides": {"resolution": 16}, "strategies": ["w"], "factors": [1, 2],
           "train": False, "bench": {"enabled": True, "mode": "infer", "batch_size": 2,
                                     "budget": 0.05}}
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _no_write_permission() -> None:
    """In the child: drop the capabilities that let root write anywhere (and, as any user,
    nothing changes), so file modes decide as for every other user."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def _cli_read_only(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "netscale", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_no_write_permission)


def _make_read_only(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o444)
        os.chmod(dirpath, 0o555)


def test_readers_work_on_a_read_only_study(tmp_path: Path) -> None:
    cfg_path = _bench_config(tmp_path)
    cfg = load_study_config(cfg_path)
    assert run_study(cfg, stream=None)["done"] == 2
    synth = synthetic_study(tmp_path / "synth")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = {p: p.read_bytes() for p in cfg.out_dir.rglob("*") if p.is_file()}
    _make_read_only(cfg.out_dir)
    _make_read_only(synth)
    try:
        # the place really is read-only for the readers
        r = subprocess.run(["touch", str(cfg.out_dir / "x")], capture_output=True,
                           preexec_fn=_no_write_permission)
        assert r.returncode != 0
        r = _cli_read_only("study", str(cfg.out_dir), "--export", "csv", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("\n") == 3 and "time_ms" in r.stdout
        r = _cli_read_only("study", str(cfg_path), "--dry-run", cwd=tmp_path)
        assert r.returncode == 0 and r.stdout.count(" done") == 2, r.stderr
        r = _cli_read_only("report", str(cfg.out_dir), "--out", str(elsewhere / "rep"),
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (elsewhere / "rep" / "index.html").is_file()
        r = _cli_read_only("fit", str(synth), "--n-boot", "20", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        for root in (cfg.out_dir, synth):
            for dirpath, _dirs, files in os.walk(root):
                os.chmod(dirpath, 0o755)
                for f in files:
                    os.chmod(os.path.join(dirpath, f), 0o644)
    after = {p: p.read_bytes() for p in cfg.out_dir.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing created


def test_a_foreign_sqlite_file_is_refused_untouched(run_cli, tmp_path: Path) -> None:
    cfg_path = _bench_config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    db = out / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    con.commit()
    con.close()
    data = db.read_bytes()
    for args in (["study", str(cfg_path)], ["study", str(out), "--export", "json"],
                 ["study", str(cfg_path), "--dry-run"], ["report", str(out)],
                 ["fit", str(out)]):
        code, _, err = run_cli(*args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert "not a netscale results store" in err and "photos" in err
    assert db.read_bytes() == data
    assert not (out / "results.sqlite-wal").exists() or \
        (out / "results.sqlite-wal").stat().st_size == 0
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["photos"]
    con.close()


def test_only_crashes_of_the_trials_own_process_count(tmp_path: Path) -> None:
    """Driver crashes never fail a trial (the one that ran alone becomes a suspect); two
    deaths of its own worker process in a row without progress do, a death after progress
    (a new epoch) or a stop by a signal does not count."""
    cfg = load_study_config(_bench_config(tmp_path))
    from netscale.study.runner import prepare_store

    store, plan = prepare_store(cfg, None)
    try:
        tid, other = plan[0].id, plan[1].id
        for _ in range(POISON_CRASHES + 1):  # the driver dies while the trial runs alone
            store.mark_running(tid, phase="bench")
            assert recover_store(cfg, store)["crashed"] == 1
        assert suspects(store) == {tid}
        store.mark_running(tid, phase="bench")
        store.mark_running(other, phase="bench")
        recover_store(cfg, store)  # several ran: nobody is a suspect for this crash
        assert suspects(store) == {tid}  # its last attempt alone still was a crash
        assert {t.status for t in store.trials()} == {"running"}
        died = WorkerDied("worker process died (killed by signal 9)", -9)
        store.mark_running(tid, phase="bench")
        assert record_worker_crash(store, tid, died, 1.0) is None
        store.mark_running(tid, phase="train")
        store.record_epoch(tid, 1, {"top1_err": 0.5})  # progress: not counted
        assert record_worker_crash(store, tid, died, 1.0) is None
        store.mark_running(tid, phase="train")
        record_stop(store, tid, 1.0)  # SIGTERM of the worker: a stop, neither way
        for i in range(POISON_CRASHES):
            store.mark_running(tid, phase="train")
            reason = record_worker_crash(store, tid, died, 1.0)
            assert (reason is not None) == (i == POISON_CRASHES - 1)
        (t,) = [t for t in store.trials() if t.id == tid]
        assert t.status == "failed" and t.error == reason
        assert f"died {POISON_CRASHES} times in a row" in (t.error or "")
        assert "signal 9" in (t.error or "")
        assert store.open_attempts() == []
        assert suspects(store) == set()
    finally:
        store.close()


def test_atomic_writes_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        p = atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
        os.umask(0o002)
        p = atomic_write_text(tmp_path / "b.txt", "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_sweep_removes_only_temp_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    temps = [tmp_path / ".checkpoint.pt.netscale-ab_cd123.tmp",
             tmp_path / "sub" / ".x.png.netscale-12345678.tmp"]
    keep = [tmp_path / "checkpoint.pt", tmp_path / ".lock", tmp_path / "notes.tmp",
            tmp_path / "sub" / ".hidden", tmp_path / ".budget.2024_Q3x.tmp"]
    for p in temps + keep:
        p.write_text("x")
    assert all(is_temp_file(p.name) for p in temps)
    assert sweep_temp_files(tmp_path) == [temps[0]]
    assert sweep_temp_files(tmp_path, recursive=True) == [temps[1]]
    assert all(p.exists() for p in keep) and not any(p.exists() for p in temps)


def test_readonly_store_needs_an_existing_store(tmp_path: Path) -> None:
    with pytest.raises(NetscaleError, match="no results store"):
        Store(tmp_path / "none.sqlite", readonly=True)
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(NetscaleError, match="not a netscale results store"):
        Store(tmp_path / "empty.sqlite", readonly=True)
