"""Which crashes count against a trial ("poison"), and which never do.

Only a crash of the trial's *own* process, seen by a driver that is still alive, is evidence
against the trial: a worker process that died by a signal or a non-zero exit without a result
(segfault, OOM kill). Such an attempt closes as ``worker-crashed``; a trial whose last
:data:`~netscale.study.store.POISON_CRASHES` such attempts all made no progress (no new epoch,
no new runtime measurement) is marked failed, otherwise it goes back to the queue.

A crash of the *driver* (``kill -9``, OOM kill, power loss) is never held against a trial:
the driver cannot tell an external kill from one the trial caused. The trial that ran alone
when the driver died becomes a *suspect*: the next run of the in-process executor runs it in
a worker process of its own (:class:`IsolatingExecutor`), where a crash of its own is seen.
Stops (SIGINT, SIGTERM, SIGHUP, a failed write) close attempts as ``interrupted``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from netscale.study.executors import InProcessExecutor, ProcessExecutor
from netscale.study.store import POISON_CRASHES, Store

#: Attempt outcomes that say nothing about the trial (skipped when counting a streak).
NEUTRAL = ("crashed", "crashed-with-others", "interrupted", "superseded")


def suspects(store: Store) -> set[str]:
    """Trials whose last attempt (stops and crashes among several aside) was cut short by a
    crash of the driver while they ran alone."""
    last: dict[str, str] = {}
    for r in store.conn.execute("SELECT trial_id, outcome FROM attempts "
                                "WHERE outcome IS NOT NULL ORDER BY id"):
        if r["outcome"] not in ("interrupted", "crashed-with-others", "superseded"):
            last[r["trial_id"]] = r["outcome"]
    return {tid for tid, outcome in last.items() if outcome == "crashed"}


def record_worker_crash(store: Store, tid: str, message: str, wall: float) -> str | None:
    """Closes the open attempt of ``tid`` as ``worker-crashed`` (its own process died) and
    returns the reason when the trial is now poison (then marked failed); else None (the
    trial goes back to pending for another attempt)."""
    now = time.time()
    with store.tx() as c:
        t = c.execute("SELECT epochs_done, bench IS NOT NULL AS has_bench FROM trials "
                      "WHERE id = ?", (tid,)).fetchone()
        for a in c.execute("SELECT id, epochs_at_start, bench_at_start FROM attempts "
                           "WHERE trial_id = ? AND finished_at IS NULL", (tid,)).fetchall():
            progress = t is not None and (t["epochs_done"] > a["epochs_at_start"] or (
                bool(t["has_bench"]) and not a["bench_at_start"]))
            c.execute("UPDATE attempts SET finished_at = ?, outcome = 'worker-crashed', "
                      "progress = ?, wall_time = ? WHERE id = ?",
                      (now, int(progress), wall, a["id"]))
        streak = 0
        for a in c.execute("SELECT outcome, progress FROM attempts WHERE trial_id = ? "
                           "ORDER BY id DESC", (tid,)):
            if a["outcome"] in NEUTRAL:
                continue
            if a["outcome"] != "worker-crashed" or a["progress"]:
                break
            streak += 1
        final = streak >= POISON_CRASHES
        reason = (f"its worker process died {streak} times in a row without finishing an "
                  f"epoch ({message}); make it smaller or fix the cause, then rerun with "
                  "--retry-failed") if final else None
        c.execute("UPDATE trials SET status = ?, error = ?, failures = failures + ?, "
                  "wall_time = wall_time + ?, finished_at = ?, updated_at = ? WHERE id = ?",
                  ("failed" if final else "pending", reason or message, int(final), wall,
                   now if final else None, now, tid))
        c.execute("INSERT INTO events (trial_id, at, kind, message) VALUES (?, ?, ?, ?)",
                  (tid, now, "failed" if final else "crashed", reason or message))
    return reason


def record_stop(store: Store, tid: str, wall: float) -> None:
    """The trial's worker was stopped by a signal: its attempt closes as ``interrupted``,
    the trial waits for the next attempt."""
    now = time.time()
    with store.tx() as c:
        c.execute("UPDATE attempts SET finished_at = ?, outcome = 'interrupted', progress = 0, "
                  "wall_time = ? WHERE trial_id = ? AND finished_at IS NULL", (now, wall, tid))
        c.execute("UPDATE trials SET status = 'pending', wall_time = wall_time + ?, "
                  "updated_at = ? WHERE id = ?", (wall, now, tid))


class IsolatingExecutor:
    """The in-process executor, except that the ``suspects`` run in a worker process of their
    own (one at a time), so that a crash of theirs is seen by a living driver."""

    name = "local"

    def __init__(self, inner: Any, on_event: Any, suspects: set[str]) -> None:
        self.inner = inner
        self.on_event = on_event
        self.suspects = set(suspects)
        self._isolated: Any = None
        self._running: set[str] = set()

    @property
    def capacity(self) -> int:
        return int(self.inner.capacity)

    @capacity.setter
    def capacity(self, value: int) -> None:
        self.inner.capacity = value

    def submit(self, payload: Mapping[str, Any]) -> None:
        if payload["id"] not in self.suspects:
            self.inner.submit(payload)
            return
        if self._isolated is None:
            self._isolated = ProcessExecutor(self.on_event, 1)
        self._isolated.submit(payload)
        self._running.add(payload["id"])

    def poll(self, timeout: float) -> list[Any]:
        out: list[Any] = []
        if self._running:
            out = list(self._isolated.poll(timeout))
            self._running -= {r[0] for r in out}
        return out + list(self.inner.poll(timeout))

    def drain(self) -> None:
        self.inner.drain()
        if self._isolated is not None:
            self._isolated.drain()

    def shutdown(self) -> None:
        self.inner.shutdown()
        if self._isolated is not None:
            self._isolated.shutdown()


def isolate_suspects(ex: Any, store: Store, on_event: Any) -> Any:
    """``ex`` wrapped in an :class:`IsolatingExecutor` when it runs trials in this process
    and some trial is a suspect; ``ex`` itself otherwise."""

    found = suspects(store)
    if not found or not isinstance(ex, InProcessExecutor):
        return ex
    return IsolatingExecutor(ex, on_event, found)
