"""The study's results store: one SQLite file (``results.sqlite``) in the study directory.

Every state change is one transaction, and SQLite's journal (WAL) makes each either fully
applied or not at all, so killing the process at any moment (even ``kill -9``) never corrupts
the store. Trials are keyed by a deterministic id and epochs by ``(trial, epoch)``, so
re-running a study never duplicates rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.util import jsonio

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
    updated_at REAL
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
"""


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
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, with_spec: bool = True, with_epochs: bool = True) -> dict[str, Any]:
        d = dict(self.__dict__)
        if not with_spec:
            d.pop("spec")
        if not with_epochs:
            d.pop("epochs")
        return d


_JSON_COLS = ("spec", "bench", "env")


def _row(r: sqlite3.Row) -> TrialRow:
    d = dict(r)
    for k in _JSON_COLS:
        d[k] = json.loads(d[k]) if d[k] else ({} if k != "bench" else [])
    if d.get("within_tolerance") is not None:
        d["within_tolerance"] = bool(d["within_tolerance"])
    return TrialRow(**d)


class Store:
    """Thread-confined SQLite connection to a study's results (open one per process)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=60000")
            self.conn.execute("PRAGMA foreign_keys=ON")
            with self.tx():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise NetscaleError(
                f"results store {str(self.path)!r} is not a readable SQLite database ({exc}); "
                "move it away or point the study at a new directory"
            ) from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

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
                    "acts_factor, within_tolerance, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["id"], r["base"], r["strategy"], float(r["factor"]), int(r["seed"]),
                     jsonio.dumps(r["spec"]), int(r["flops"]), int(r["params"]), int(r["acts"]),
                     int(r["resolution"]), r.get("flops_factor"), r.get("params_factor"),
                     r.get("acts_factor"),
                     None if r.get("within_tolerance") is None else int(r["within_tolerance"]),
                     now, now),
                )
                n += cur.rowcount
        return n

    def mark_running(self, trial_id: str, worker: str | None = None, *,
                     count: bool = True) -> None:
        """The trial starts (a phase of it); ``count`` adds one to ``attempts`` (the runs of
        its main phase, training when the study trains)."""
        now = time.time()
        with self.tx() as c:
            c.execute(
                "UPDATE trials SET status = 'running', attempts = attempts + ?, error = NULL, "
                "worker = ?, started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ?",
                (int(count), worker or _worker_name(), now, now, trial_id),
            )
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "start", worker or _worker_name()))

    def record_epoch(self, trial_id: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        now = time.time()
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO epochs (trial_id, epoch, metrics, recorded_at) "
                "VALUES (?, ?, ?, ?)",
                (trial_id, int(epoch), jsonio.dumps(dict(metrics)), now),
            )
            c.execute(
                "UPDATE trials SET epochs_done = (SELECT COUNT(*) FROM epochs WHERE trial_id = ?),"
                " updated_at = ? WHERE id = ?",
                (trial_id, now, trial_id),
            )

    def record_bench(self, trial_id: str, rows: list[dict[str, Any]],
                     time_ms: float | None) -> None:
        with self.tx() as c:
            c.execute("UPDATE trials SET bench = ?, time_ms = ?, updated_at = ? WHERE id = ?",
                      (jsonio.dumps(rows), time_ms, time.time(), trial_id))

    def mark_done(self, trial_id: str, result: Mapping[str, Any]) -> None:
        now = time.time()
        with self.tx() as c:
            c.execute(
                "UPDATE trials SET status = 'done', top1_err = ?, top5_err = ?, loss = ?, "
                "wall_time = wall_time + ?, env = ?, error = NULL, finished_at = ?, "
                "updated_at = ? WHERE id = ?",
                (result.get("top1_err"), result.get("top5_err"), result.get("loss"),
                 float(result.get("wall_time", 0.0)), jsonio.dumps(result.get("env", {})), now,
                 now, trial_id),
            )
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "done", None))

    def mark_phase_done(self, trial_id: str, wall_time: float) -> None:
        """A phase (e.g. the runtime measurement) finished; the trial waits for the next."""
        now = time.time()
        with self.tx() as c:
            c.execute("UPDATE trials SET status = 'pending', wall_time = wall_time + ?, "
                      "updated_at = ? WHERE id = ?", (wall_time, now, trial_id))

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
            c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                      (trial_id, now, "failed" if final else "retry", error))
        return final

    def reset_failed(self) -> int:
        with self.tx() as c:
            return c.execute("UPDATE trials SET status = 'pending', failures = 0 "
                             "WHERE status = 'failed'").rowcount

    # ------------------------------------------------------------------ reads
    def trials(self, status: str | None = None, *, epochs: bool = True) -> list[TrialRow]:
        q = "SELECT * FROM trials"
        args: tuple[Any, ...] = ()
        if status:
            q += " WHERE status = ?"
            args = (status,)
        rows = [_row(r) for r in self.conn.execute(q + " ORDER BY base, strategy, factor, seed",
                                                   args)]
        if epochs:
            by_id = {r.id: r for r in rows}
            for e in self.conn.execute(
                    "SELECT trial_id, epoch, metrics FROM epochs ORDER BY trial_id, epoch"):
                if e["trial_id"] in by_id:
                    m = json.loads(e["metrics"])
                    m.setdefault("epoch", e["epoch"])
                    by_id[e["trial_id"]].epochs.append(m)
        return rows

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for r in self.conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[r[0]] = r[1]
        return out

    def events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM events ORDER BY id")]

    # ------------------------------------------------------------------ export
    def export_rows(self) -> list[dict[str, Any]]:
        """Flat rows (one per trial) for CSV / pandas: nested values JSON-encoded in CSV."""
        out = []
        for t in self.trials():
            d = t.to_dict(with_spec=False, with_epochs=False)
            d["depths"] = [s["depth"] for s in t.spec.get("stages", [])]
            d["widths"] = [s["width"] for s in t.spec.get("stages", [])]
            d["bench"] = t.bench
            d["epochs"] = t.epochs
            out.append(d)
        return out

    def export(self, fmt: str) -> str:
        rows = self.export_rows()
        if fmt == "json":
            return jsonio.dumps(rows, indent=2) + "\n"
        if fmt == "csv":
            buf = io.StringIO()
            if rows:
                keys = [k for k in rows[0] if k not in ("bench", "epochs", "env")]
                w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
                w.writeheader()
                for r in rows:
                    w.writerow({k: (jsonio.dumps(v) if isinstance(v, (list, dict)) else v)
                                for k, v in r.items()})
            return buf.getvalue()
        raise NetscaleError(f"export format must be csv or json, got {fmt!r}")


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
