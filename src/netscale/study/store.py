"""The study's results store: one SQLite file (``results.sqlite``) in the study directory.

Every state change is one transaction, and SQLite's journal (WAL) makes each either fully
applied or not at all, so killing the process at any moment (even ``kill -9``) never corrupts
the store. Trials are keyed by a deterministic id and epochs by ``(trial, epoch)``, so
re-running a study never duplicates rows.

Every run of a trial (a phase of it) is an *attempt* row, written before the trial starts and
closed when it ends; an attempt still open when a driver starts was cut short by a crash of
the previous driver (kill, OOM kill, segfault). :meth:`Store.close_crashed_attempts` closes
them and adds their wall time; which crashes count against a trial (only those of its own
worker process) is :mod:`netscale.study.crashes`' business.

Readers open the store with ``readonly=True`` (SQLite ``mode=ro``, or ``immutable`` on a
read-only directory), so an intact study can be read where it cannot be written. A SQLite
file that is not a netscale store is refused, never written to.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netscale.bench.result import setting_label_of, time_quality_of
from netscale.errors import NetscaleError
from netscale.study.module_base import ModuleSpec, spec_from_payload
from netscale.study.store_check import check_store, json_column
from netscale.util import jsonio, serial
from netscale.util.text import csv_dict_writer

if TYPE_CHECKING:
    from netscale.specs import NetSpec

#: The store's file name inside a study directory.
STORE_NAME = "results.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY,
    base TEXT NOT NULL,
    strategy TEXT NOT NULL,
    factor REAL NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    flops INTEGER NOT NULL,
    params INTEGER NOT NULL,
    acts INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    flops_factor REAL,
    params_factor REAL,
    acts_factor REAL,
    within_tolerance INTEGER,
    bench TEXT,
    time_ms REAL,
    top1_err REAL,
    top5_err REAL,
    loss REAL,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    wall_time REAL NOT NULL DEFAULT 0,
    env TEXT,
    worker TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL,
    same_as TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id TEXT NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL REFERENCES trials(id),
    phase TEXT NOT NULL,
    worker TEXT,
    started_at REAL NOT NULL,
    epochs_at_start INTEGER NOT NULL DEFAULT 0,
    bench_at_start INTEGER NOT NULL DEFAULT 0,
    finished_at REAL,
    outcome TEXT,
    progress INTEGER,
    wall_time REAL
);
CREATE INDEX IF NOT EXISTS attempts_by_trial ON attempts (trial_id, finished_at);
"""

#: Tables a netscale results store has (a SQLite file with other tables is not one).
_TABLES = {"meta", "trials", "epochs", "events"}
#: A trial whose own worker process died this many times in a row, each time without
#: progress (no new epoch, no new runtime measurement), is marked failed.
POISON_CRASHES = 2


@dataclass(frozen=True)
class Timing:
    """One runtime measurement of a trial (a row of its ``bench`` list), typed: ms per batch
    of ``batch_size`` in ``mode`` (infer or train) on ``device`` in the execution ``setting``
    (``memory_format+precision``); ``quality`` is ok / noisy / contended, None when the
    measurement failed. ``flops``/``params``/``acts`` are the counts it was measured at (None:
    the trial's), ``env`` the machine it ran on, ``row`` the stored row (for the statistics
    that read its samples)."""

    mode: str
    ok: bool
    time_ms: float | None
    batch_size: int
    device: str
    setting: str
    quality: str | None
    flops: float | None
    params: float | None
    acts: float | None
    env: Mapping[str, Any] = field(compare=False, repr=False)
    row: Mapping[str, Any] = field(compare=False, repr=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Timing:
        def count(key: str) -> float | None:
            v = row.get(key)
            return float(v) if v else None

        tm, env = row.get("time_ms"), row.get("env")
        return cls(mode=str(row.get("mode") or "infer"), ok=row.get("status", "ok") == "ok",
                   time_ms=None if tm is None else float(tm),
                   batch_size=int(row.get("batch_size") or 0),
                   device=str(row.get("device") or "?"), setting=setting_label_of(row),
                   quality=time_quality_of(row), flops=count("flops"), params=count("params"),
                   acts=count("acts"), env=env if isinstance(env, Mapping) else {}, row=row)


def stand_in(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The bench row that stands for a trial (the one its ``time_ms`` comes from): its
    inference row, else its first row; None without rows."""
    return next((r for r in rows if r.get("mode", "infer") == "infer"), rows[0] if rows else None)


@dataclass
class TrialRow:
    """One trial as stored (complexity, runtime, metrics, status)."""

    id: str
    base: str
    strategy: str
    factor: float
    seed: int
    status: str
    attempts: int
    failures: int
    spec: dict[str, Any]
    flops: int
    params: int
    acts: int
    resolution: int
    flops_factor: float | None = None
    params_factor: float | None = None
    acts_factor: float | None = None
    within_tolerance: bool | None = None
    bench: list[dict[str, Any]] = field(default_factory=list)
    time_ms: float | None = None
    top1_err: float | None = None
    top5_err: float | None = None
    loss: float | None = None
    epochs_done: int = 0
    error: str | None = None
    wall_time: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    # id of the trial that trains and times this same network (same architecture and
    # resolution, another strategy or factor); this row mirrors its results. None: runs itself.
    same_as: str | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        """The name of the trial's model (its spec's, else the trial id)."""
        return str(self.spec.get("name") or self.id)

    @property
    def depths(self) -> list[int]:
        """Blocks per stage of the trial's network ([] without stages, e.g. a module)."""
        return [int(s["depth"]) for s in self.spec.get("stages", [])]

    @property
    def widths(self) -> list[int]:
        """Channels per stage of the trial's network ([] without stages)."""
        return [int(s["width"]) for s in self.spec.get("stages", [])]

    @property
    def timings(self) -> list[Timing]:
        """Every runtime measurement of the trial (the ``bench`` rows), typed."""
        return [Timing.from_row(r) for r in self.bench]

    @property
    def timing(self) -> Timing | None:
        """The measurement that stands for the trial (:func:`stand_in`); None if not timed."""
        row = stand_in(self.bench)
        return None if row is None else Timing.from_row(row)

    @property
    def time_quality(self) -> str | None:
        """Quality of ``time_ms`` (``ok`` / ``noisy`` / ``contended``, after the automatic
        re-measurements): that of the bench row standing for the trial; None when not
        timed."""
        timing = self.timing
        return None if timing is None or self.time_ms is None else timing.quality

    @property
    def model(self) -> NetSpec | ModuleSpec | None:
        """The trial's model as an object: a ``NetSpec``, or a ``ModuleSpec`` for a
        module-factory base; None when the row holds no full spec (results files that
        name their models only)."""
        try:
            model: NetSpec | ModuleSpec = spec_from_payload(self.spec)
        except (NetscaleError, KeyError, TypeError, ValueError):
            return None
        return model

    def to_dict(self, *, with_spec: bool = True, with_epochs: bool = True) -> dict[str, Any]:
        omit = ("spec",) * (not with_spec) + ("epochs",) * (not with_epochs)
        return {**serial.to_dict(self, omit=omit), "time_quality": self.time_quality}


def same_networks(trials: Sequence[TrialRow]) -> dict[str, list[TrialRow]]:
    """Trial id -> the other trials that are the same network, as the store records it
    (``same_as``): an alias and the trial it mirrors, and the aliases of one trial."""
    members: dict[str, list[TrialRow]] = defaultdict(list)
    for t in trials:
        members[t.same_as or t.id].append(t)
    return {t.id: [o for o in group if o is not t]
            for group in members.values() if len(group) > 1 for t in group}


_JSON_COLS = ("spec", "bench", "env")
# What an alias row (same_as set) mirrors from the trial it is the same network as: all of
# its results and bookkeeping. The work was done once: to total the compute a study spent,
# sum over canonical_trials().
_MIRRORED = ("status", "attempts", "failures", "bench", "time_ms", "top1_err", "top5_err",
             "loss", "epochs_done", "error", "wall_time", "env", "worker", "started_at",
             "finished_at", "updated_at")


def _row(r: sqlite3.Row, path: Path) -> TrialRow:
    d = dict(r)
    for k in _JSON_COLS:
        d[k] = json_column(d[k], k, str(d["id"]), path, [] if k == "bench" else {})
    if d.get("within_tolerance") is not None:
        d["within_tolerance"] = bool(d["within_tolerance"])
    return TrialRow(**d)


class Store:
    """Thread-confined SQLite connection to a study's results (open one per process)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._batch = False
        try:
            if readonly:
                self.conn = _connect_readonly(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self._check_foreign()
            self._check(complete=False)
            if readonly:
                return
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=60000")
            self.conn.execute("PRAGMA foreign_keys=ON")
            with self.tx():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                cols = {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}
                if "same_as" not in cols:  # a store written before dedup
                    self.conn.execute("ALTER TABLE trials ADD COLUMN same_as TEXT")
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            self._check(complete=True)
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise NetscaleError(
                    f"results store {str(self.path)!r} is read-only ({exc}); run the study in "
                    "a writable copy of its directory"
                ) from None
            raise NetscaleError(
                f"results store {str(self.path)!r} is not a readable SQLite database ({exc}); "
                "move it away or point the study at a new directory"
            ) from None

    def _check_foreign(self) -> None:
        """Refuses a SQLite file that holds other tables than a netscale store's."""
        names = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        names.discard("sqlite_sequence")
        if (names and not names >= _TABLES) or (self.readonly and not names):
            self.conn.close()
            raise NetscaleError(
                f"{str(self.path)!r} is a SQLite file but not a netscale results store "
                f"(tables: {', '.join(sorted(names)) or 'none'}); point at a study directory "
                "or move the file away"
            )

    def _check(self, *, complete: bool) -> None:
        """Refuses a damaged or look-alike store, or one of an unknown schema version."""

        try:
            check_store(self.conn, self.path, _SCHEMA, tables=_TABLES, version=SCHEMA_VERSION,
                        complete=complete)
        except NetscaleError:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error); inside
        :meth:`batch` it joins the batch's transaction."""
        if self._batch:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[Store]:
        """Many writes as ONE transaction (bulk loads such as synthetic studies: one commit
        instead of one per row); all of them or none are applied."""
        with self.tx():
            self._batch = True
            try:
                yield self
            finally:
                self._batch = False

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, items: Mapping[str, str]) -> None:
        with self.tx() as c:
            for k, v in items.items():
                c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, v))

    # ------------------------------------------------------------------ trials
    def add_trials(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Inserts new trials (``INSERT OR IGNORE``: existing ids are kept untouched)."""
        now = time.time()
        n = 0
        with self.tx() as c:
            for r in rows:
                cur = c.execute(
                    "INSERT OR IGNORE INTO trials (id, base, strategy, factor, seed, status, "
                    "spec, flops, params, acts, resolution, flops_factor, params_factor, "
                    "acts_factor, within_tolerance, created_at, updated_at, same_as) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["id"], r["base"], r["strategy"], float(r["factor"]), int(r["seed"]),
                     jsonio.dumps(r["spec"]), int(r["flops"]), int(r["params"]), int(r["acts"]),
                     int(r["resolution"]), r.get("flops_factor"), r.get("params_factor"),
                     r.get("acts_factor"),
                     None if r.get("within_tolerance") is None else int(r["within_tolerance"]),
                     now, now, r.get("same_as")),
                )
                n += cur.rowcount
        return n

    def mark_running(self, trial_id: str, worker: str | None = None, *,
                     count: bool = True, phase: str = "train") -> int:
        """The trial starts (a phase of it); ``count`` adds one to ``attempts`` (the runs of
        its main phase, training when the study trains). Records an open attempt (closed by
        :meth:`mark_done`, :meth:`mark_phase_done` or :meth:`mark_error`) and returns its
        id."""
        now = time.time()
        who = worker or _worker_name()
        with self.tx() as c:
            c.execute(
                "UPDATE trials SET status = 'running', attempts = attempts + ?, error = NULL, "
                "worker = ?, started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ?",
                (int(count), who, now, now, trial_id),
            )
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "start", who))
            c.execute("UPDATE attempts SET finished_at = ?, outcome = 'superseded' "
                      "WHERE trial_id = ? AND finished_at IS NULL", (now, trial_id))
            cur = c.execute(
                "INSERT INTO attempts (trial_id, phase, worker, started_at, epochs_at_start, "
                "bench_at_start) SELECT id, ?, ?, ?, epochs_done, bench IS NOT NULL "
                "FROM trials WHERE id = ?", (phase, who, now, trial_id))
            return int(cur.lastrowid or 0)

    def _close_attempt(self, c: sqlite3.Connection, trial_id: str, outcome: str, now: float,
                       wall_time: float | None) -> None:
        c.execute("UPDATE attempts SET finished_at = ?, outcome = ?, progress = 1, "
                  "wall_time = COALESCE(?, ? - started_at) "
                  "WHERE trial_id = ? AND finished_at IS NULL",
                  (now, outcome, wall_time, now, trial_id))

    def record_epoch(self, trial_id: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        self.record_epochs(trial_id, [{**dict(metrics), "epoch": int(epoch)}], replace=True)

    def record_epochs(self, trial_id: str, history: Iterable[Mapping[str, Any]], *,
                      replace: bool = False, c: sqlite3.Connection | None = None) -> int:
        """Writes epoch rows (each with an ``epoch`` key) in one transaction; with
        ``replace=False`` rows already there are kept as they are (a backfill from a
        checkpoint's history). Returns the number of rows written."""
        now = time.time()
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        n = 0
        with (self.tx() if c is None else contextlib.nullcontext(c)) as cx:
            for m in history:
                cur = cx.execute(
                    f"{verb} INTO epochs (trial_id, epoch, metrics, recorded_at) "
                    "VALUES (?, ?, ?, ?)",
                    (trial_id, int(m["epoch"]), jsonio.dumps(dict(m)), now),
                )
                n += max(cur.rowcount, 0)
            cx.execute(
                "UPDATE trials SET epochs_done = (SELECT COUNT(*) FROM epochs WHERE trial_id = ?),"
                " updated_at = ? WHERE id = ?",
                (trial_id, now, trial_id),
            )
        return n

    def record_bench(self, trial_id: str, rows: list[dict[str, Any]],
                     time_ms: float | None) -> None:
        with self.tx() as c:
            c.execute("UPDATE trials SET bench = ?, time_ms = ?, updated_at = ? WHERE id = ?",
                      (jsonio.dumps(rows), time_ms, time.time(), trial_id))

    def mark_done(self, trial_id: str, result: Mapping[str, Any],
                  history: Iterable[Mapping[str, Any]] = ()) -> None:
        """The trial finished: its metrics, and (backfilled in the same transaction) every
        epoch of ``history`` that no event recorded."""
        now = time.time()
        with self.tx() as c:
            self.record_epochs(trial_id, history, c=c)
            c.execute(
                "UPDATE trials SET status = 'done', top1_err = ?, top5_err = ?, loss = ?, "
                "wall_time = wall_time + ?, env = ?, error = NULL, finished_at = ?, "
                "updated_at = ? WHERE id = ?",
                (result.get("top1_err"), result.get("top5_err"), result.get("loss"),
                 float(result.get("wall_time", 0.0)), jsonio.dumps(result.get("env", {})), now,
                 now, trial_id),
            )
            self._close_attempt(c, trial_id, "ok", now, float(result.get("wall_time", 0.0)))
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "done", None))

    def mark_phase_done(self, trial_id: str, wall_time: float) -> None:
        """A phase (e.g. the runtime measurement) finished; the trial waits for the next."""
        now = time.time()
        with self.tx() as c:
            c.execute("UPDATE trials SET status = 'pending', wall_time = wall_time + ?, "
                      "updated_at = ? WHERE id = ?", (wall_time, now, trial_id))
            self._close_attempt(c, trial_id, "ok", now, wall_time)

    def mark_error(self, trial_id: str, error: str, *, retries: int,
                   wall_time: float = 0.0) -> bool:
        """Records a failed attempt; returns True if the trial failed for good (its failures
        exceed ``retries``), False if it went back to pending for a retry."""
        now = time.time()
        with self.tx() as c:
            r = c.execute("SELECT failures FROM trials WHERE id = ?", (trial_id,)).fetchone()
            failures = (r[0] if r else 0) + 1
            final = failures > retries
            c.execute(
                "UPDATE trials SET status = ?, failures = ?, error = ?, "
                "wall_time = wall_time + ?, finished_at = ?, updated_at = ? WHERE id = ?",
                ("failed" if final else "pending", failures, error, wall_time,
                 now if final else None, now, trial_id),
            )
            self._close_attempt(c, trial_id, "error", now, wall_time)
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "failed" if final else "retry", error))
        return final

    def open_attempts(self) -> list[dict[str, Any]]:
        """Attempts that were started and never closed (their driver died)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM attempts WHERE finished_at IS NULL ORDER BY id")]

    def close_crashed_attempts(self, last_alive: Mapping[str, float]) -> int:
        """Closes the attempts a crashed driver left open (outcome ``crashed`` when it ran
        alone, else ``crashed-with-others``): their wall time (from the start to
        ``last_alive[trial]``, the last sign of life: a file written or a row recorded) is
        added to the trial's, and the progress they made is noted. Call it after backfilling
        epochs and runtime rows from the trial directories. A crash of the driver is never
        held against a trial (see :mod:`netscale.study.crashes`). Returns the number closed."""
        now = time.time()
        with self.tx() as c:
            rows = c.execute(
                "SELECT a.id, a.trial_id, a.phase, a.started_at, a.epochs_at_start, "
                "a.bench_at_start, t.epochs_done, t.bench IS NOT NULL AS has_bench, "
                "t.updated_at FROM attempts a JOIN trials t ON t.id = a.trial_id "
                "WHERE a.finished_at IS NULL ORDER BY a.id").fetchall()
            outcome = "crashed" if len(rows) == 1 else "crashed-with-others"
            for r in rows:
                progress = (r["epochs_done"] > r["epochs_at_start"]
                            or (r["has_bench"] and not r["bench_at_start"]))
                alive = max(last_alive.get(r["trial_id"], 0.0), r["updated_at"] or 0.0)
                wall = max(0.0, min(alive, now) - r["started_at"])
                c.execute("UPDATE attempts SET finished_at = ?, outcome = ?, "
                          "progress = ?, wall_time = ? WHERE id = ?",
                          (now, outcome, int(progress), wall, r["id"]))
                c.execute("UPDATE trials SET wall_time = wall_time + ?, updated_at = ? "
                          "WHERE id = ?", (wall, now, r["trial_id"]))
                c.execute("INSERT INTO events (trial_id, at, kind, message) "
                          "VALUES (?, ?, ?, ?)", (r["trial_id"], now, "crashed",
                                                  f"{r['phase']} attempt cut short"))
        return len(rows)

    def close_interrupted_attempts(self) -> int:
        """Closes the open attempts of a driver that is stopping on an exception (Ctrl-C):
        outcome ``interrupted`` (never counted against a trial), wall time until now. The
        trials stay ``running`` and resume on the next run."""
        now = time.time()
        with self.tx() as c:
            rows = c.execute("SELECT id, trial_id, started_at FROM attempts "
                             "WHERE finished_at IS NULL").fetchall()
            for r in rows:
                wall = max(0.0, now - r["started_at"])
                c.execute("UPDATE attempts SET finished_at = ?, outcome = 'interrupted', "
                          "progress = 0, wall_time = ? WHERE id = ?", (now, wall, r["id"]))
                c.execute("UPDATE trials SET wall_time = wall_time + ?, updated_at = ? "
                          "WHERE id = ?", (wall, now, r["trial_id"]))
        return len(rows)

    def reset_failed(self) -> int:
        """Failed trials go back to pending with a clean slate (failures and the crash
        streak of :meth:`close_crashed_attempts` start again)."""
        now = time.time()
        with self.tx() as c:
            c.execute("INSERT INTO attempts (trial_id, phase, started_at, finished_at, outcome, "
                      "progress, wall_time) SELECT id, 'reset', ?, ?, 'reset', 0, 0 FROM trials "
                      "WHERE status = 'failed'", (now, now))
            return c.execute("UPDATE trials SET status = 'pending', failures = 0 "
                             "WHERE status = 'failed'").rowcount

    # ------------------------------------------------------------------ reads
    def trials(self, status: str | None = None, *, epochs: bool = True) -> list[TrialRow]:
        """Every trial row; a row with ``same_as`` mirrors the results of that trial."""

        rows = [_row(r, self.path) for r in self.conn.execute("SELECT * FROM trials ORDER BY base, "
                                                   "strategy, factor, seed")]
        by_id = {r.id: r for r in rows}
        if epochs:
            for e in self.conn.execute(
                    "SELECT trial_id, epoch, metrics FROM epochs ORDER BY trial_id, epoch"):
                if e["trial_id"] in by_id:
                    m = json_column(e["metrics"], "metrics", e["trial_id"], self.path, {})
                    m.setdefault("epoch", e["epoch"])
                    by_id[e["trial_id"]].epochs.append(m)
        for r in rows:  # one network, one trial: aliases carry the canonical trial's results
            canon = by_id.get(r.same_as) if r.same_as else None
            if canon is not None:
                for k in _MIRRORED:
                    setattr(r, k, getattr(canon, k))
                r.epochs = [dict(m) for m in canon.epochs]
        return [r for r in rows if status is None or r.status == status]

    def sync_aliases(self) -> int:
        """Writes each canonical trial's results into its alias rows (and their epochs), so
        that the raw table agrees with :meth:`trials` (which mirrors at read time anyway);
        returns the number of alias rows updated."""
        cols = ", ".join(_MIRRORED)
        with self.tx() as c:
            n = c.execute(
                f"UPDATE trials SET ({cols}) = (SELECT {cols} FROM trials AS c "
                "WHERE c.id = trials.same_as) WHERE same_as IS NOT NULL AND EXISTS "
                "(SELECT 1 FROM trials AS c WHERE c.id = trials.same_as)").rowcount
            c.execute("DELETE FROM epochs WHERE trial_id IN "
                      "(SELECT id FROM trials WHERE same_as IS NOT NULL)")
            c.execute("INSERT INTO epochs (trial_id, epoch, metrics, recorded_at) "
                      "SELECT t.id, e.epoch, e.metrics, e.recorded_at FROM trials t "
                      "JOIN epochs e ON e.trial_id = t.same_as")
        return n

    def canonical_trials(self, *, epochs: bool = True) -> list[TrialRow]:
        """The trials that actually run: one per distinct network (aliases left out)."""
        return [t for t in self.trials(epochs=epochs) if not t.same_as]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for r in self.conn.execute(  # an alias counts with its canonical trial's status
                "SELECT COALESCE(c.status, t.status) AS st, COUNT(*) FROM trials t "
                "LEFT JOIN trials c ON t.same_as = c.id GROUP BY st"):
            out[r[0]] = r[1]
        return out

    def events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM events ORDER BY id")]

    # ------------------------------------------------------------------ export
    def export_rows(self, trials: Iterable[TrialRow] | None = None) -> list[dict[str, Any]]:
        """Flat rows (one per trial) for CSV / pandas: nested values JSON-encoded in CSV.
        ``trials``: rows already read by :meth:`trials` (not read again)."""
        out = []
        for t in self.trials() if trials is None else trials:
            d = t.to_dict(with_spec=False, with_epochs=False)
            d["depths"], d["widths"] = t.depths, t.widths
            d["bench"] = t.bench
            d["epochs"] = t.epochs
            out.append(d)
        return out

    def export(self, fmt: str, trials: Iterable[TrialRow] | None = None) -> str:
        rows = self.export_rows(trials)
        if fmt == "json":
            return jsonio.dumps(rows, indent=2) + "\n"
        if fmt == "csv":
            buf = io.StringIO()
            if rows:
                keys = [k for k in rows[0] if k not in ("bench", "epochs", "env")]
                w = csv_dict_writer(buf, keys, extrasaction="ignore")
                w.writeheader()
                for r in rows:  # only the written columns are encoded
                    w.writerow({k: (jsonio.dumps(v) if isinstance(v, (list, dict)) else v)
                                for k, v in r.items() if k in keys})
            return buf.getvalue()
        raise NetscaleError(f"export format must be csv or json, got {fmt!r}")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection: ``mode=ro`` (sees a live WAL), or ``immutable=1`` where
    ``mode=ro`` cannot work (a read-only directory, no write-ahead log left behind)."""
    if not path.is_file():
        raise NetscaleError(f"no results store at {str(path)!r}; run the study first")
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        # Nobody has the store open (no write-ahead log) and the place is writable: a plain
        # connection that only reads (query_only) removes the -wal/-shm files it creates when
        # it closes, where a mode=ro connection would leave them behind in the study folder.
        try:
            conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            pass
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60.0, isolation_level=None)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise NetscaleError(
                f"cannot read results store {str(path)!r} ({exc}): it sits in a read-only "
                "place with an unfinished write-ahead log; copy the study directory somewhere "
                "writable and read the copy") from None
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------- time breakdown
# One row per driver run of the study (a resume is a new run): where its wall time went.
_RUN_TIMES_SCHEMA = ("CREATE TABLE IF NOT EXISTS run_times (id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, started_at REAL NOT NULL, parts TEXT NOT NULL)")
#: The seconds a run records (``workers``: trials training at a time in its training phase).
RUN_TIME_KEYS = ("wall", "probe", "bench", "train", "workers", "steps", "evaluation")


def record_run_times(store: Store, run_id: int | None, parts: Mapping[str, float]) -> int:
    """Writes (``run_id`` None: adds) one driver run's time parts (:data:`RUN_TIME_KEYS`,
    seconds, plus ``started``, a Unix time); returns the run's id."""
    clean = {k: float(parts.get(k, 0.0)) for k in RUN_TIME_KEYS}
    started = float(parts.get("started", time.time()))
    with store.tx() as c:
        c.execute(_RUN_TIMES_SCHEMA)
        if run_id is None:
            cur = c.execute("INSERT INTO run_times (started_at, parts) VALUES (?, ?)",
                            (started, jsonio.dumps(clean)))
            return int(cur.lastrowid or 0)
        c.execute("UPDATE run_times SET parts = ? WHERE id = ?", (jsonio.dumps(clean), run_id))
    return run_id


def run_times(store: Store) -> list[dict[str, float]]:
    """Every driver run's time parts, oldest first ([] for a store without any)."""
    try:
        rows = store.conn.execute("SELECT parts FROM run_times ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no such table: no run recorded its times
        return []
    out = []
    for r in rows:
        try:
            d = json.loads(r[0])
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append({k: float(d.get(k) or 0.0) for k in RUN_TIME_KEYS})
    return out


#: The parts of a :class:`TimeBreakdown`, in order, and how they are labelled.
TIME_PARTS = ("benchmark", "steps", "evaluation", "setup", "idle")
TIME_LABELS = {"benchmark": "benchmark (timing)", "steps": "training steps",
               "evaluation": "evaluation", "setup": "set-up", "idle": "idle and bookkeeping"}


@dataclass(frozen=True)
class TimeBreakdown:
    """Where a study's wall time went, summed over its driver runs (seconds).

    The parts add up to ``wall``: ``benchmark`` (the runtime measurements and the
    execution-setting probe, one at a time), ``steps`` and ``evaluation`` (training steps
    and validation passes: the seconds the trials reported, divided by the workers that ran
    them side by side), ``setup`` (the driver outside the phases: loading the data's
    description, planning, the store, recovery, starting and stopping workers) and ``idle``
    (worker time in the training phase that is neither steps nor evaluation: building
    models, checkpoints, reporting, and workers waiting for the last trials)."""

    wall: float
    benchmark: float
    steps: float
    evaluation: float
    setup: float
    idle: float
    runs: int
    workers: int

    @property
    def overhead(self) -> float:
        """Seconds of everything but training steps, evaluation and timing."""
        return self.setup + self.idle

    def share(self, part: str) -> float:
        value = self.overhead if part == "overhead" else float(getattr(self, part))
        return value / self.wall if self.wall > 0 else 0.0

    @classmethod
    def of(cls, runs: list[dict[str, float]]) -> TimeBreakdown | None:
        if not runs:
            return None
        wall = bench = steps = evaluation = setup = idle = 0.0
        workers = 1
        for r in runs:
            w = max(1.0, r["workers"])
            workers = max(workers, int(w))
            st, ev = r["steps"] / w, r["evaluation"] / w
            # the summed seconds cannot exceed the phase (clock skew between processes)
            scale = min(1.0, r["train"] / (st + ev)) if st + ev > 0 else 1.0
            st, ev = st * scale, ev * scale
            timing = r["probe"] + r["bench"]
            wall += r["wall"]
            bench += timing
            steps += st
            evaluation += ev
            idle += max(0.0, r["train"] - st - ev)
            setup += max(0.0, r["wall"] - timing - r["train"])
        wall = max(wall, bench + steps + evaluation + setup + idle)
        return cls(wall=wall, benchmark=bench, steps=steps, evaluation=evaluation,
                   setup=setup, idle=idle, runs=len(runs), workers=workers)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": round(self.wall, 3), "runs": self.runs,
                               "workers": self.workers}
        for part in (*TIME_PARTS, "overhead"):
            value = self.overhead if part == "overhead" else getattr(self, part)
            out[part] = {"seconds": round(value, 3), "share": round(self.share(part), 4)}
        return out

    def lines(self) -> list[str]:
        """The breakdown as printed at the end of a study (seconds and shares of the wall)."""
        runs = f" over {self.runs} runs" if self.runs > 1 else ""
        out = [f"time: {self.wall:.0f} s wall{runs}, {self.workers} worker(s) training"]
        for part in TIME_PARTS:
            out.append(f"  {TIME_LABELS[part]:<22} {getattr(self, part):7.1f} s "
                       f"{100 * self.share(part):5.1f} %")
        out.append(f"  {'overhead (set-up+idle)':<22} {self.overhead:7.1f} s "
                   f"{100 * self.share('overhead'):5.1f} %")
        return out


def time_breakdown(store: Store) -> TimeBreakdown | None:
    """The study's :class:`TimeBreakdown` (None when no run recorded its times)."""
    return TimeBreakdown.of(run_times(store))
