"""The study driver: plan trials, run them on an executor, record everything, resume.

Planning is pure and cheap (scale + count); the trial table of ``--dry-run`` is the plan.
Running keeps the results store as the single source of truth:

* trials are inserted once (deterministic ids), finished ones are skipped on re-runs, and
  ``running`` ones (their process was killed) are resumed from their last checkpoint;
* a failing trial is retried up to ``retries`` times, then marked failed with its error,
  and the study goes on;
* a lock file stops two drivers from running the same study at once;
* after a crash of the driver (see :func:`recover_store`), the store gets back every epoch
  and runtime measurement that the trial directories hold (a kill between a checkpoint and
  its store row loses nothing), the wall time of the cut-short attempts is added and temp
  files of interrupted writes are removed; a trial that ran alone when the driver died runs
  in a worker process of its own next time, where only a crash of its own counts against it
  (see :mod:`netscale.study.crashes`);
* SIGTERM and SIGHUP stop the driver like Ctrl-C, and a write that fails for lack of space
  (or a read-only file system) stops it with one line, never failing a trial (see
  :mod:`netscale.study.interrupts`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from netscale.errors import NetscaleError
from netscale.study.config import StudyConfig
from netscale.study.crashes import isolate_suspects, record_stop, record_worker_crash
from netscale.study.executors import make_executor
from netscale.study.interrupts import StopStudy, WorkerDied, stop_on_signals, write_failures
from netscale.study.planning import data_info, plan_trials, trial_dirname
from netscale.study.store import STORE_NAME, Store, stand_in
from netscale.study.store_check import read_bench_file, valid_history
from netscale.util import jsonio
from netscale.util.fmt import duration
from netscale.util.io import sweep_temp_files


@contextmanager
def study_lock(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ".lock"
    f = open(path, "a+")  # noqa: SIM115 - held for the duration of the run
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise NetscaleError(
                f"study {str(out_dir)!r} is already being run by {holder}; wait for it or "
                "stop it first"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        yield
    finally:
        f.close()


class Progress:
    """One status line per change: trials done / running / failed and an ETA.

    The ETA comes from :class:`netscale.study.estimate.EtaModel` when one is attached (a cost
    model per trial, calibrated by the epochs finished); otherwise from the share of the
    study's cost finished so far."""

    def __init__(self, stream: TextIO | None, total_cost: float, done_cost: float) -> None:
        self.stream = stream
        self.t0 = time.time()
        self.total_cost = total_cost
        self.done_cost = done_cost
        self.start_done_cost = done_cost
        self.last = 0.0
        self.eta_model: Any = None

    def attach(self, cfg: StudyConfig, trials: Sequence[Any], info: Mapping[str, Any] | None,
               workers: int) -> None:
        """Estimates the ETA from each trial's cost (see netscale.study.estimate)."""
        from netscale.study.estimate import EtaModel, StudyWork

        self.eta_model = EtaModel(trials, StudyWork.of(cfg, info, workers))

    def on_start(self, tid: str, phase: str) -> None:
        if self.eta_model is not None:
            self.eta_model.started(tid, phase)

    def on_bench(self, tid: str, time_ms: float | None) -> None:
        if self.eta_model is not None:
            self.eta_model.bench_done(tid, time_ms)

    def on_epoch(self, tid: str, epoch: int) -> None:
        if self.eta_model is not None:
            self.eta_model.epoch_done(tid, epoch)

    def on_finish(self, tid: str) -> None:
        if self.eta_model is not None:
            self.eta_model.finished(tid)

    def eta(self) -> str:
        if self.eta_model is not None:
            rem = self.eta_model.remaining()
            return "?" if rem is None else f"~{duration(rem)}"
        spent = time.time() - self.t0
        finished_here = self.done_cost - self.start_done_cost
        if finished_here <= 0 or spent <= 0:
            return "?"
        remaining = max(0.0, self.total_cost - self.done_cost) * spent / finished_here
        return duration(remaining)

    def show(self, counts: Mapping[str, int], message: str = "", force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.time()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        total = sum(counts.values())
        line = (f"[study] {counts.get('done', 0)}/{total} done, {counts.get('running', 0)} "
                f"running, {counts.get('failed', 0)} failed, ETA {self.eta()}")
        if message:
            line += f" | {message}"
        print(line, file=self.stream, flush=True)


def _cost(t: Any) -> float:
    """Relative work of a trial (training cost ∝ flops x epochs; bench adds a constant)."""
    return float(t.flops) + 1e5


def prepare_store(cfg: StudyConfig, info: Mapping[str, Any] | None) -> tuple[Store, list[Any]]:
    """Opens (or creates) the study's store, checks it belongs to this config, adds trials."""
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out / STORE_NAME)
    fp = cfg.fingerprint()
    old = store.get_meta("fingerprint")
    if old is not None and old != fp:
        store.close()
        raise NetscaleError(
            f"study directory {str(out)!r} holds results of a different config (bases, "
            "strategies, factors, data, recipe or bench changed); set a new 'out' directory "
            "or move the old one away"
        )
    plan = plan_trials(cfg, info)
    store.set_meta({"fingerprint": fp, "config": jsonio.dumps(cfg.to_dict()),
                    "name": cfg.name, "data_info": jsonio.dumps(info or {})})
    store.add_trials(p.row() for p in plan)
    cfg.write_study_yaml()
    return store, plan


def trial_dir(cfg: StudyConfig, tid: str) -> Path:
    return cfg.out_dir / "trials" / trial_dirname(tid)


def checkpoint_history(tdir: Path) -> list[dict[str, Any]]:
    """The epochs a trial's checkpoint holds ([] without a readable checkpoint)."""
    from netscale.train.checkpoint import CHECKPOINT_NAME, load_checkpoint

    ck = tdir / "train" / CHECKPOINT_NAME
    if not ck.is_file():
        return []
    try:
        data = load_checkpoint(ck)
    except NetscaleError:  # unreadable: training starts again and rewrites it
        return []
    hist = data.get("history") or []
    return [dict(h) for h in hist if isinstance(h, Mapping) and "epoch" in h]


def _last_alive(tdir: Path) -> float:
    """The last time anything was written into a trial's directory (0 if nothing)."""
    latest = 0.0
    if tdir.is_dir():
        for dirpath, _dirs, files in os.walk(tdir):
            for name in files:
                try:
                    latest = max(latest, os.stat(os.path.join(dirpath, name)).st_mtime)
                except OSError:
                    continue
    return latest


def backfill_trial(cfg: StudyConfig, store: Store, t: Any) -> int:
    """Writes into the store what the trial's directory holds and the store lacks: epoch
    rows from the checkpoint's history, the runtime rows of ``bench.json``. Returns the
    number of rows added."""
    tdir = trial_dir(cfg, t.id)
    added = 0
    epochs_target = cfg.recipe.epochs if cfg.train else 0
    if cfg.train and (t.epochs_done < epochs_target or not epochs_target):
        hist = valid_history(checkpoint_history(tdir), epochs_target)
        if len(hist) > t.epochs_done:
            added += store.record_epochs(t.id, hist)
    if not t.bench:
        rows = read_bench_file(tdir / "bench.json")  # None: absent or not a valid measurement
        if rows:
            infer = stand_in(rows)
            store.record_bench(t.id, rows, infer.get("time_ms") if infer else None)
            added += 1
    return added


def _sweep(cfg: StudyConfig) -> list[Path]:
    """Temp files of interrupted writes of the driver and its trials (the report directory
    is the report's business: it sweeps it itself)."""
    return (sweep_temp_files(cfg.out_dir)
            + sweep_temp_files(cfg.out_dir / "trials", recursive=True))


def recover_store(cfg: StudyConfig, store: Store) -> dict[str, Any]:
    """Repairs what a crashed driver left: removes temp files of interrupted writes, backfills
    epochs and runtime rows from the trial directories, closes the attempts the crash cut
    short (adding their wall time). Call it under the study lock, before running anything.
    Returns {"swept", "backfilled", "crashed"}."""
    swept = _sweep(cfg)
    open_attempts = {a["trial_id"] for a in store.open_attempts()}
    backfilled = 0
    for t in store.trials(epochs=False):
        if t.status != "done" or t.id in open_attempts or (
                cfg.train and t.epochs_done < cfg.recipe.epochs):
            backfilled += backfill_trial(cfg, store, t)
    alive = {tid: _last_alive(trial_dir(cfg, tid)) for tid in open_attempts}
    crashed = store.close_crashed_attempts(alive)
    return {"swept": len(swept), "backfilled": backfilled, "crashed": crashed}


def run_study(cfg: StudyConfig, *, executor: str = "local", workers: int = 1,
              address: str | None = None, retry_failed: bool = False,
              device: str | None = None, stream: TextIO | str | None = "stderr") -> dict[str, int]:
    """Runs (or resumes) every unfinished trial; returns the final status counts.

    Progress lines go to ``stream`` (default: the current ``sys.stderr``; None: silent).
    """
    if not cfg.train and not cfg.bench.enabled:  # refused before anything is written
        raise NetscaleError(f"{cfg.source}: train is false and bench.enabled is false, so the "
                            "study has nothing to run (--dry-run plans it); set train: true "
                            "or bench: {enabled: true}")
    out: TextIO | None = sys.stderr if stream == "stderr" else (
        None if isinstance(stream, str) else stream)
    with stop_on_signals(), write_failures(cfg.out_dir / STORE_NAME), \
            study_lock(cfg.out_dir):
        info = data_info(cfg)
        store, _ = prepare_store(cfg, info)
        try:
            recover_store(cfg, store)
            opts = RunOptions(executor=executor, workers=workers, address=address,
                              retry_failed=retry_failed, device=device)
            counts = _drive(cfg, store, opts, out)
            store.sync_aliases()  # same-network rows get their canonical trial's results
            return counts
        except BaseException as exc:  # Ctrl-C, SIGTERM, a failed write: no trial's fault
            with contextlib.suppress(Exception):
                closed = store.close_interrupted_attempts()
                if isinstance(exc, KeyboardInterrupt) and out is not None:
                    print(f"[study] stopped ({exc or 'SIGINT'}): {closed} running attempt(s) "
                          "closed; rerun the same command to resume", file=out, flush=True)
            raise
        finally:
            store.close()


def _payload(cfg: StudyConfig, t: Any, device: str | None, threads: int | None,
             phase: str, train_size: int | None = None) -> dict[str, Any]:
    return {
        "train_size": train_size,  # training images (the short-run probe rule needs it)
        "id": t.id, "base": t.base, "strategy": t.strategy, "factor": t.factor,
        "seed": t.seed, "spec": t.spec, "data": cfg.data_dict(), "recipe": cfg.recipe_dict(),
        "bench": {"enabled": cfg.bench.enabled, "mode": cfg.bench.mode,
                  "batch_size": cfg.bench.batch_size, "budget": cfg.bench.budget,
                  "retries": cfg.bench.retries},
        "phases": [phase], "train": cfg.train, "device": device, "threads": threads,
        "trial_dir": str(trial_dir(cfg, t.id)),
    }


@dataclass(frozen=True)
class RunOptions:
    """How :func:`run_study` runs the trials: the executor (``local`` or ``ray``) with
    ``workers`` trials training at a time, the Ray ``address``, whether failed trials get
    another round, and the device (None: automatic)."""

    executor: str = "local"
    workers: int = 1
    address: str | None = None
    retry_failed: bool = False
    device: str | None = None


@dataclass
class _Run:
    """One driver run: the study, its store, the executor and the progress line."""

    cfg: StudyConfig
    store: Store
    ex: Any
    progress: Progress
    by_id: Mapping[str, Any]
    device: str | None
    train_size: int | None = None  # training images of the study's dataset (None: unknown)

    def on_event(self, tid: str, kind: str, data: dict[str, Any]) -> None:
        """An epoch or a runtime measurement reported by a running trial."""
        store, progress = self.store, self.progress
        if kind == "epoch":
            store.record_epoch(tid, data["epoch"], data["metrics"])
            progress.on_epoch(tid, int(data["epoch"]))
            m = data["metrics"]
            err = m.get("top1_err", m.get("val_top1_err"))
            msg = f"{tid}: epoch {data['epoch']}"
            if isinstance(err, (int, float)) and math.isfinite(err):
                msg += f", top-1 error {100 * err:.1f}%"
            progress.show(store.counts(), msg)
        elif kind == "bench":
            store.record_bench(tid, data["rows"], data.get("time_ms"))
            progress.on_bench(tid, data.get("time_ms"))
            ms = data.get("time_ms")
            progress.show(store.counts(), f"{tid}: {ms:.2f} ms/batch" if ms else tid)


def _train_threads(cfg: StudyConfig, opts: RunOptions) -> int | None:
    """Intra-op threads of a training trial: the CPUs shared out between local worker
    processes, the trial's CPUs on Ray, else the process's default (None)."""
    if opts.executor == "local" and opts.workers > 1:
        return max(1, (os.cpu_count() or 1) // opts.workers)
    if opts.executor == "ray":
        return max(1, int(cfg.resources.cpus))
    return None


def _start_progress(cfg: StudyConfig, store: Store, stream: TextIO | None,
                    workers: int) -> tuple[Progress, list[Any], list[Any]]:
    """The progress line, every canonical trial and those still to run."""
    all_trials = store.canonical_trials(epochs=False)  # aliases (same_as) never run
    todo = [t for t in all_trials if t.status in ("pending", "running")]
    done_cost = sum(_cost(t) for t in all_trials if t.status in ("done", "failed"))
    progress = Progress(stream, sum(_cost(t) for t in all_trials), done_cost)
    progress.attach(cfg, all_trials, json.loads(store.get_meta("data_info") or "{}"), workers)
    if not todo:
        progress.show(store.counts(), "nothing to do: every trial is finished", force=True)
    resumed = sum(t.status == "running" for t in todo)
    if resumed:
        progress.show(store.counts(), f"resuming {resumed} interrupted trial(s) from their "
                      "last checkpoint", force=True)
    return progress, all_trials, todo


def _drive(cfg: StudyConfig, store: Store, opts: RunOptions,
           stream: TextIO | None) -> dict[str, int]:
    """Runs the study in two phases: every runtime measurement first, one at a time (so no
    measurement overlaps another trial's work), then training, ``workers`` at a time."""
    if opts.retry_failed:
        store.reset_failed()
    progress, all_trials, todo = _start_progress(cfg, store, stream, opts.workers)
    if not todo:
        return store.counts()
    train_size = json.loads(store.get_meta("data_info") or "{}").get("train_size")
    run = _Run(cfg, store, None, progress, {t.id: t for t in all_trials}, opts.device,
               train_size)
    run.ex = make_executor(opts.executor, run.on_event, workers=opts.workers,
                           address=opts.address, cpus=cfg.resources.cpus,
                           gpus=cfg.resources.gpus)
    run.ex = isolate_suspects(run.ex, store, run.on_event)  # see netscale.study.crashes
    capacity = run.ex.capacity
    phases = [p for p, on in (("bench", cfg.bench.enabled), ("train", cfg.train)) if on]
    try:
        alive = list(todo)
        for phase in phases:
            if phase == "bench":
                trials = [t for t in alive if not t.bench]
                run.ex.capacity, threads = 1, cfg.bench.threads
            else:
                trials = alive
                run.ex.capacity, threads = capacity, _train_threads(cfg, opts)
            failed = _run_phase(run, trials, phase, phase == phases[-1], threads)
            alive = [t for t in alive if t.id not in failed]
    finally:
        run.ex.shutdown()
    _sweep(cfg)  # no writer is left: nothing half-written
    counts = store.counts()
    progress.show(counts, "study finished", force=True)
    return counts


def _run_phase(run: _Run, trials: list[Any], phase: str, last: bool,
               threads: int | None) -> set[str]:
    """Runs one phase of the given trials; returns the ids that failed for good. ``last``:
    the trial's last phase (its end marks the trial done)."""
    cfg, store, ex, progress = run.cfg, run.store, run.ex, run.progress
    queue = list(trials)
    running: set[str] = set()
    started: dict[str, float] = {}
    failed: set[str] = set()
    while queue or running:
        while queue and len(running) < ex.capacity:
            t = queue.pop(0)
            store.mark_running(t.id, count=last, phase=phase)
            running.add(t.id)
            started[t.id] = time.time()
            progress.on_start(t.id, phase)
            ex.submit(_payload(cfg, t, run.device, threads, phase, run.train_size))
            progress.show(store.counts(), f"{phase}: started {t.id}", force=True)
        for tid, ok, value in ex.poll(timeout=0.5):
            running.discard(tid)
            wall = time.time() - started.pop(tid, time.time())
            if ok:
                _finished(run, tid, dict(value), wall, last)
            elif _failed(run, tid, value, wall):
                failed.add(tid)
            else:
                queue.append(run.by_id[tid])
    return failed


def _finished(run: _Run, tid: str, value: dict[str, Any], wall: float, last: bool) -> None:
    """A phase of a trial succeeded: the trial is done (its last phase) or waits for the
    next phase."""
    value.setdefault("wall_time", wall)
    if not last:
        run.store.mark_phase_done(tid, float(value.get("wall_time", wall)))
        return
    train = value.get("train")
    hist = train.get("history") if isinstance(train, Mapping) else None
    run.store.mark_done(tid, value, [h for h in hist or [] if "epoch" in h])
    run.progress.done_cost += _cost(run.by_id[tid])
    run.progress.on_finish(tid)
    run.progress.show(run.store.counts(), f"finished {tid}", force=True)


def _failed(run: _Run, tid: str, error: Any, wall: float) -> bool:
    """A phase of a trial raised: records it; True if the trial failed for good, False if
    it goes back to the queue for a retry."""
    cfg, store, progress = run.cfg, run.store, run.progress
    if isinstance(error, StopStudy):  # the environment stopped the study, not the trial
        raise NetscaleError(str(error))
    if cfg.train:  # epochs its checkpoint holds that no event brought
        row = next(r for r in store.trials(epochs=False) if r.id == tid)
        backfill_trial(cfg, store, row)
    if isinstance(error, WorkerDied):  # its own process died: see netscale.study.crashes
        if error.stopped:
            record_stop(store, tid, wall)
            return False
        reason = record_worker_crash(store, tid, str(error), wall)
        final = reason is not None
        error = reason or error
    else:
        final = store.mark_error(tid, str(error), retries=cfg.retries, wall_time=wall)
    if final:
        progress.done_cost += _cost(run.by_id[tid])
        progress.on_finish(tid)
        progress.show(store.counts(), f"FAILED {tid}: {error}", force=True)
    else:
        progress.show(store.counts(), f"retrying {tid} after: {error}", force=True)
    return final
