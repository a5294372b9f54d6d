"""Crash safety of studies: SIGKILL of the study's process group at the worst moments.

The faults are injected from a ``sitecustomize.py`` that these tests write into a temp dir
and put first on the PYTHONPATH of the study subprocess (and so of its worker processes and
Ray workers). It wraps ``os.replace`` (to kill right after a checkpoint rename, or right
before a report PNG's rename) and ``sqlite3.connect`` (to kill inside a store transaction,
before its COMMIT). Nothing in ``src/`` knows about it.

After every series of kills the study is resumed to the end, and the store must hold every
epoch exactly once, no trial may be left running, no temp file may remain, and the final
results must equal those of an uninterrupted run with the same seed (threads fixed to 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from netscale.study.config import load_study_config
from netscale.study.executors import RayExecutor
from netscale.study.runner import run_study
from netscale.study.store import Store
from netscale.util.io import is_temp_file
from study_helpers import (
    TIMING_KEYS,
    TINY_EPOCHS,
    study_results,
    tiny_study_config,
    uninterrupted_results,
)

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCHS = TINY_EPOCHS
_config = tiny_study_config
_results = study_results

HOOK = r'''
import os, signal, sqlite3

_MODE = os.environ.get("CRASH_AT", "")
_LOG = os.environ.get("CRASH_LOG", "")
_MATCH = os.environ.get("CRASH_MATCH", "")


_SIGNAL = getattr(signal, os.environ.get("CRASH_SIGNAL", "SIGKILL"))


def _log(what):
    with open(_LOG, "a") as f:
        f.write(what + "\n")
        f.flush()
        os.fsync(f.fileno())


def _kill(what):
    _log(what)
    # the study's process group: its leader started the session (a Ray worker may sit in
    # a process group of its own, but never leaves the session)
    os.killpg(os.getsid(0), _SIGNAL)


_real_replace = os.replace


def _replace(src, dst, *a, **k):
    dst_s = os.fspath(dst)
    if _MODE == "ckpt-write" and dst_s.endswith("checkpoint.pt"):
        _kill("before rename of " + dst_s)  # the new checkpoint is still a temp file
    if _MODE == "report" and dst_s.endswith(".png"):
        _kill("before rename of " + dst_s)  # the PNG is complete in its temp file
    _real_replace(src, dst, *a, **k)
    if _MODE == "ckpt" and dst_s.endswith("checkpoint.pt"):
        _kill("after rename of " + dst_s)


os.replace = _replace

_real_mkdir = os.mkdir


def _mkdir(path, *a, **k):
    if _MODE == "start" and _MATCH in os.fspath(path):
        _kill("trial started: " + os.fspath(path))
    if _MODE == "start-self" and _MATCH in os.fspath(path):  # as the OOM killer would
        _log("trial started: " + os.fspath(path))
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_mkdir(path, *a, **k)


os.mkdir = _mkdir

if _MODE == "store":
    class _Conn(sqlite3.Connection):
        def execute(self, sql, *args):
            if not hasattr(self, "_stmts") or sql.startswith("BEGIN"):
                self._stmts = []
            elif sql == "COMMIT" and any(_MATCH in s for s in self._stmts):
                _kill("inside a store transaction: " + _MATCH)
            else:
                self._stmts.append(sql)
            return super().execute(sql, *args)

    _real_connect = sqlite3.connect

    def _connect(*a, **k):
        k.setdefault("factory", _Conn)
        return _real_connect(*a, **k)

    sqlite3.connect = _connect
'''


def _hook_env(tmp_path: Path, mode: str, match: str = "",
              sig: str = "SIGKILL") -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    return {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{SRC}", "CRASH_AT": mode,
            "CRASH_MATCH": match, "CRASH_LOG": str(tmp_path / "kills.log"),
            "CRASH_SIGNAL": sig, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def _run(args: list[str], env: dict[str, str], timeout: float = 300,
         codes: tuple[int, ...] = (0, -signal.SIGKILL), err_out: list[str] | None = None
         ) -> int:
    """Runs ``python -m netscale ARGS`` as its own process group; returns its exit code
    (-9 when the hook killed it). The group is killed whatever happens."""
    proc = subprocess.Popen([sys.executable, "-m", "netscale", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode in codes, err.decode()[-2000:]
    if err_out is not None:
        err_out.append(err.decode())
    return proc.returncode


def _kills(tmp_path: Path) -> list[str]:
    log = tmp_path / "kills.log"
    return log.read_text().splitlines() if log.exists() else []


def _check_intact(db: Path, study_dir: Path, n_trials: int) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT trial_id, epoch FROM epochs").fetchall()
        assert len(rows) == len(set(rows)) == n_trials * EPOCHS  # none lost, none twice
        status = con.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
        assert status == [("done", n_trials)]  # nothing stuck in 'running'
        assert con.execute("SELECT COUNT(*) FROM attempts WHERE finished_at IS NULL"
                           ).fetchone()[0] == 0
        epochs_done = con.execute("SELECT epochs_done FROM trials").fetchall()
        assert epochs_done == [(EPOCHS,)] * n_trials
    finally:
        con.close()
    temps = [p for p in study_dir.rglob("*") if is_temp_file(p.name)]
    assert temps == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run (in this process) every killed-and-resumed run must equal."""
    return uninterrupted_results(tmp_path_factory.mktemp("reference"))


def _kill_series(tmp_path: Path, mode: str, extra: list[str], max_kills: int,
                 match: str = "", sig: str = "SIGKILL") -> int:
    """Runs the study with the hook until it finishes on its own or ``max_kills`` kills
    happened; returns the number of kills. A SIGTERM or SIGHUP must end each run like
    Ctrl-C: exit code 130 and the stop message."""
    cfg_path = _config(tmp_path)
    env = _hook_env(tmp_path, mode, match, sig)
    kills = 0
    while kills < max_kills:
        err: list[str] = []
        code = _run(["study", str(cfg_path), *extra], env, codes=(0, -signal.SIGKILL, 130),
                    err_out=err)
        assert code in ((0, -signal.SIGKILL) if sig == "SIGKILL" else (0, 130)), err
        if code == 130:
            assert f"stopped ({sig})" in err[0] and "Traceback" not in err[0], err[0]
        if code == 0:
            break
        kills += 1
        assert len(_kills(tmp_path)) >= kills  # each kill came from the hook
    return kills


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["in-process", "workers2"])
def test_kill_right_after_every_checkpoint_rename(tmp_path: Path, reference: dict[str, Any],
                                                  extra: list[str]) -> None:
    """Kill the study's process group right after each checkpoint rename (the window in
    which epoch rows are only in the checkpoint), then resume without faults."""
    kills = _kill_series(tmp_path, "ckpt", extra, max_kills=2 * EPOCHS)
    # every run makes one more checkpoint and is killed right after it (2 trials x epochs);
    # with two workers, both may rename a checkpoint before the kill lands
    assert kills == 2 * EPOCHS if not extra else 2 <= kills <= 2 * EPOCHS
    assert all("after rename of" in k and k.endswith("checkpoint.pt")
               for k in _kills(tmp_path))
    cfg = load_study_config(_config(tmp_path))
    counts = run_study(cfg, stream=None, workers=2 if extra else 1)
    assert counts == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    db = cfg.out_dir / "results.sqlite"
    _check_intact(db, cfg.out_dir, 2)
    assert _results(db) == reference
    with Store(db, readonly=True) as store:
        for t in store.trials(epochs=False):
            # each kill cut one attempt short; none counts as a failure
            assert t.failures == 0 and t.attempts >= 2
        crashed = [e for e in store.events() if e["kind"] == "crashed"]
        assert len(crashed) >= kills
        # wall time adds up over attempts, the killed ones included
        for t in store.trials():
            walls = [a["wall_time"] for a in store.conn.execute(
                "SELECT wall_time FROM attempts WHERE trial_id = ?", (t.id,))]
            assert all(w is not None and w >= 0 for w in walls)
            assert t.wall_time == pytest.approx(sum(walls))
            assert t.wall_time >= t.epochs[-1]["wall_time"]


@pytest.mark.parametrize(("match", "extra"), [
    ("INTO epochs", []),
    ("status = 'done'", []),
    ("INSERT INTO attempts", []),
    ("SET bench", []),
    ("INTO epochs", ["--workers", "2"]),
], ids=["epoch-row", "done-row", "start-row", "bench-row", "epoch-row-workers2"])
def test_kill_inside_a_store_write(tmp_path: Path, reference: dict[str, Any], match: str,
                                   extra: list[str]) -> None:
    """Kill the process group inside a store transaction (before its COMMIT): the
    transaction is rolled back, and the resume recovers what it would have written."""
    kills = _kill_series(tmp_path, "store", extra, max_kills=1, match=match)
    assert kills == 1 and _kills(tmp_path) == [f"inside a store transaction: {match}"]
    cfg = load_study_config(_config(tmp_path))
    counts = run_study(cfg, stream=None)
    assert counts["done"] == 2
    db = cfg.out_dir / "results.sqlite"
    _check_intact(db, cfg.out_dir, 2)
    assert _results(db) == reference


def test_kill_during_a_checkpoint_write(tmp_path: Path, reference: dict[str, Any]) -> None:
    """A kill before a checkpoint's rename leaves its temp file; the resume removes it (and
    the trial goes on from the previous checkpoint)."""
    assert _kill_series(tmp_path, "ckpt-write", [], max_kills=1) == 1
    cfg = load_study_config(_config(tmp_path))
    temps = [p for p in cfg.out_dir.rglob("*") if is_temp_file(p.name)]
    assert len(temps) == 1 and temps[0].name.startswith(".checkpoint.pt.")
    assert temps[0].stat().st_size > 0
    assert run_study(cfg, stream=None)["done"] == 2
    _check_intact(cfg.out_dir / "results.sqlite", cfg.out_dir, 2)
    assert _results(cfg.out_dir / "results.sqlite") == reference


def test_kill_with_ray(tmp_path: Path, reference: dict[str, Any]) -> None:
    """Ray executor: kill the driver's process group right after a checkpoint rename done
    by a Ray worker, twice; the resumed study (Ray again) equals the uninterrupted run."""
    extra = ["--executor", "ray", "--workers", "2"]
    kills = _kill_series(tmp_path, "ckpt", extra, max_kills=2)
    assert kills == 2
    cfg = load_study_config(_config(tmp_path))
    counts = run_study(cfg, executor="ray", workers=2, stream=None)
    assert counts == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    db = cfg.out_dir / "results.sqlite"
    _check_intact(db, cfg.out_dir, 2)
    assert _results(db) == reference


def test_kill_during_the_report(tmp_path: Path, reference: dict[str, Any]) -> None:
    """A kill while a PNG is being written leaves no zero-byte or partial PNG; the next
    report removes the temp file and writes every figure."""
    cfg = load_study_config(_config(tmp_path))
    run_study(cfg, stream=None)
    report = cfg.out_dir / "report"
    code = _run(["report", str(cfg.out_dir)], _hook_env(tmp_path, "report"))
    assert code == -signal.SIGKILL and len(_kills(tmp_path)) == 1
    assert [p for p in report.iterdir() if p.suffix == ".png"] == []  # no partial PNG
    assert len([p for p in report.iterdir() if is_temp_file(p.name)]) == 1
    assert _run(["report", str(cfg.out_dir)], {**os.environ, "PYTHONPATH": str(SRC)}) == 0
    pngs = sorted(p for p in report.iterdir() if p.suffix == ".png")
    assert pngs and all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert [p for p in report.iterdir() if is_temp_file(p.name)] == []
    # files honour the umask (pytest runs with the usual 022): readable by others
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in pngs)
    _check_intact(cfg.out_dir / "results.sqlite", cfg.out_dir, 2)


def _assert_only_the_poison_trial_failed(tmp_path: Path, cause: str) -> None:
    """The x2 trial is failed as poison (two deaths in a row, ``cause`` in its error); the
    other trial is done."""
    with Store(tmp_path / "out" / "results.sqlite", readonly=True) as store:
        trials = {t.id: t for t in store.trials()}
    bad = next(t for tid, t in trials.items() if "x2" in tid)
    assert bad.status == "failed" and "died 2 times in a row" in (bad.error or "")
    assert cause in (bad.error or "")
    assert [t.status for tid, t in trials.items() if tid != bad.id] == ["done"]


def test_poison_trial_is_failed_after_two_crashes_of_its_own_process(tmp_path: Path) -> None:
    """A trial whose own process dies before finishing an epoch (here: the hook SIGKILLs the
    process that starts it, as the OOM killer would) kills the in-process driver once; the
    rerun runs it in a worker process of its own, sees it die twice and marks it failed;
    the rest of the study finishes."""
    cfg_path = _config(tmp_path)
    env = _hook_env(tmp_path, "start-self", match="_x2_seed")
    assert _run(["study", str(cfg_path)], env) == -signal.SIGKILL
    assert _run(["study", str(cfg_path)], env, codes=(1,)) == 1  # exit 1: a trial failed
    assert len(_kills(tmp_path)) == 3
    assert _run(["study", str(cfg_path)], env, codes=(1,)) == 1  # not started again
    assert len(_kills(tmp_path)) == 3
    _assert_only_the_poison_trial_failed(tmp_path, "killed by signal 9")


def test_poison_trial_on_ray_fails_after_ray_reruns_and_two_crashes(tmp_path: Path) -> None:
    """On Ray, a trial whose own worker process dies at its start is run again by Ray (its
    system re-runs); when the task still dies, the driver counts one crash of the trial's
    own process, as a local worker's, and fails it only at the second in a row without
    progress. The other trial finishes; a plain rerun does not start the failed one."""
    cfg_path = _config(tmp_path)
    env = _hook_env(tmp_path, "start-self", match="_x2_seed")
    ray = ["--executor", "ray", "--workers", "2"]
    errs: list[str] = []
    assert _run(["study", str(cfg_path), *ray], env, codes=(1,), err_out=errs) == 1
    deaths = len(_kills(tmp_path))
    assert deaths == 2 * (RayExecutor.SYSTEM_RETRIES + 1), (deaths, errs[0][-1500:])
    _assert_only_the_poison_trial_failed(tmp_path, "Ray task's worker died")
    assert _run(["study", str(cfg_path), *ray], env, codes=(1,)) == 1
    assert len(_kills(tmp_path)) == deaths  # not started again


def test_driver_kills_during_a_benchmark_never_fail_the_trial(
        tmp_path: Path, reference: dict[str, Any]) -> None:
    """The study's process group is killed each time one trial starts (its benchmark), three
    times: in the driver, then twice in the worker process that runs the suspect. Nothing
    counts against the trial; a plain rerun ends identical to the uninterrupted run."""
    assert _kill_series(tmp_path, "start", [], max_kills=3, match="_x2_seed") == 3
    cfg = load_study_config(_config(tmp_path))
    assert run_study(cfg, stream=None) == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    _check_intact(cfg.out_dir / "results.sqlite", cfg.out_dir, 2)
    assert _results(cfg.out_dir / "results.sqlite") == reference
    with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
        assert all(t.failures == 0 for t in store.trials())


@pytest.mark.parametrize(("sig", "extra"), [("SIGTERM", []), ("SIGHUP", []),
                                            ("SIGTERM", ["--workers", "2"])],
                         ids=["sigterm", "sighup", "sigterm-workers2"])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path: Path, reference: dict[str, Any],
                                             sig: str, extra: list[str]) -> None:
    """The signal reaches the study's process group right after a checkpoint rename, twice:
    each run ends with exit 130 and one stop line, its attempts closed as interrupted; a
    plain rerun ends identical to the uninterrupted run."""
    assert _kill_series(tmp_path, "ckpt", extra, max_kills=2, sig=sig) == 2
    db = tmp_path / "out" / "results.sqlite"
    with Store(db, readonly=True) as store:
        assert store.open_attempts() == []
        assert all(t.failures == 0 and t.status != "failed" for t in store.trials())
    cfg = load_study_config(_config(tmp_path))
    assert run_study(cfg, stream=None)["done"] == 2
    _check_intact(db, cfg.out_dir, 2)
    assert _results(db) == reference


def test_disk_full_stops_the_study_and_a_rerun_resumes(
        tmp_path: Path, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on a checkpoint write, then SQLITE_FULL on the store: each stops the study
    with one line naming the file, no trial failed; once space is back a plain rerun ends
    identical to the uninterrupted run."""
    import errno

    import netscale.train.checkpoint as checkpoint
    from netscale.errors import NetscaleError
    from netscale.study.store import Store as StoreCls

    cfg = load_study_config(_config(tmp_path))
    real_write, writes = checkpoint.atomic_write, []  # type: ignore[attr-defined]

    def full_disk(path: Any, write: Any) -> Any:
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(path, write)

    monkeypatch.setattr(checkpoint, "atomic_write", full_disk)
    with pytest.raises(NetscaleError, match=r"cannot write checkpoint .*checkpoint\.pt.*No "
                                            "space left on device"):
        run_study(cfg, stream=None)
    monkeypatch.setattr(checkpoint, "atomic_write", real_write)
    real_epoch = StoreCls.record_epoch

    def full_store(self: Any, *a: Any, **k: Any) -> None:  # what SQLite raises (SQLITE_FULL)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(StoreCls, "record_epoch", full_store)
    with pytest.raises(NetscaleError, match=r"cannot write the results store .*results\."
                                            r"sqlite.*full"):
        run_study(cfg, stream=None)
    monkeypatch.setattr(StoreCls, "record_epoch", real_epoch)
    db = cfg.out_dir / "results.sqlite"
    with Store(db, readonly=True) as store:
        assert store.open_attempts() == []
        assert all(t.failures == 0 and t.status != "failed" for t in store.trials())
    assert run_study(cfg, stream=None)["done"] == 2
    _check_intact(db, cfg.out_dir, 2)
    assert _results(db) == reference


def test_kill_9_of_the_driver_alone_leaves_no_process(tmp_path: Path) -> None:
    """``kill -9`` of the driver PID only (not its group) with --workers 2: the worker
    processes and multiprocessing's helpers die with it."""
    cfg_path = _config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "netscale", "study", str(cfg_path),
                             "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pgid = proc.pid
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if len(_group(pgid)) >= 3:  # the driver and two trial workers
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(_group(pgid)) >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 60
        while time.time() < deadline and _group(pgid):
            time.sleep(0.2)
        assert _group(pgid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d))
    return out


def test_results_do_not_depend_on_the_bench_phase_or_an_interruption(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipe threads left unset: training runs with the process's own thread count, not
    the one the bench phase used, so the same trial gives the same result after a
    different bench phase or after an interruption between the phases."""
    import netscale.study.worker as worker

    # a fixed execution setting: "auto" probes each study's trials anew, and three separate
    # studies may pick differently (within one study a trial keeps its setting on resume)
    recipe = {"epochs": 1, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0,
              "memory_format": "contiguous", "precision": "fp32"}
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = {}
        for bench_threads, interrupt in ((1, False), (2, False), (1, True)):
            d = tmp_path / f"b{bench_threads}{'i' if interrupt else ''}"
            d.mkdir()
            cfg = load_study_config(_config(
                d, factors=[1], recipe=recipe,
                bench={"enabled": True, "mode": "infer", "batch_size": 4, "budget": 0.05,
                       "threads": bench_threads}))
            if interrupt:  # the driver dies after the bench phase, before training
                real = worker._train

                def boom(*a: Any, **k: Any) -> Any:
                    raise KeyboardInterrupt

                monkeypatch.setattr(worker, "_train", boom)
                with pytest.raises(KeyboardInterrupt):
                    run_study(cfg, stream=None)
                monkeypatch.setattr(worker, "_train", real)
            assert run_study(cfg, stream=None)["done"] == 1
            assert torch.get_num_threads() == 2  # nothing leaked into the caller
            with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
                (t,) = store.trials()
            runs[(bench_threads, interrupt)] = t
        envs = {k: t.env["threads"] for k, t in runs.items()}
        assert set(envs.values()) == {2}, envs  # trained with the process's 2 threads
        first = json.dumps(_results_of(runs[(1, False)]))
        assert all(json.dumps(_results_of(t)) == first for t in runs.values())
    finally:
        torch.set_num_threads(saved)


def _results_of(t: Any) -> dict[str, Any]:
    return {"top1_err": t.top1_err, "loss": t.loss,
            "epochs": [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in t.epochs]}
