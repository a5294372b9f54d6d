"""Where trials run: in this process, in local worker processes, or as Ray tasks.

Every executor has the same small interface used by the study driver:

* ``submit(payload)`` starts a trial (payload: plain data, see :mod:`netscale.study.worker`);
* ``poll(timeout)`` returns the trials that finished: ``(trial_id, ok, result_or_error)``;
* progress events ``(trial_id, kind, data)`` reach the driver through ``on_event`` as they
  happen, so that the driver is the only writer of the results store.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from netscale.errors import NetscaleError
from netscale.study.interrupts import WorkerDied, failure_value, worker_signals
from netscale.study.worker import format_exception, run_trial

OnEvent = Callable[[str, str, dict[str, Any]], None]
Finished = tuple[str, bool, Any]


class InProcessExecutor:
    """Runs trials one at a time in the driver process (the default, and the simplest)."""

    name = "local"

    def __init__(self, on_event: OnEvent) -> None:
        self.on_event = on_event
        self.capacity = 1
        self._queue: list[Mapping[str, Any]] = []

    def submit(self, payload: Mapping[str, Any]) -> None:
        self._queue.append(payload)

    def poll(self, timeout: float) -> list[Finished]:
        if not self._queue:
            return []
        payload = self._queue.pop(0)
        tid = payload["id"]
        try:
            result = run_trial(payload, lambda kind, data: self.on_event(tid, kind, data))
        except Exception as exc:  # the driver records it and decides on a retry
            return [(tid, False, failure_value(exc, payload))]
        return [(tid, True, result)]

    def drain(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def _watch_parent(parent: int) -> None:
    """Exit a worker process when the driver dies (e.g. kill -9), so no orphan keeps going."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def die_with_parent(parent: int) -> None:
    """Makes this (child) process die with ``parent``: on Linux the kernel sends SIGKILL
    when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a watcher thread exits
    when the parent pid changes."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread does it
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(3)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _run_reporting(payload: Mapping[str, Any], events: Any) -> dict[str, Any]:
    """Runs one trial in a worker, sending its events to ``events`` (a queue); the result is
    {"ok": True, "value": result} or {"ok": False, "value": one-line error}. An event that
    cannot be delivered is dropped, not fatal: the driver backfills epochs from the trial's
    checkpoint."""
    tid = payload["id"]

    def emit(kind: str, data: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # e.g. the queue actor's node died
            events.put((tid, kind, data))

    try:
        return {"ok": True, "value": run_trial(payload, emit)}
    except Exception as exc:
        return {"ok": False, "value": failure_value(exc, payload)}


def _process_main(tasks: Any, messages: Any, parent: int) -> None:
    """Entry point of a local worker process: trials one after another, from ``tasks``,
    until it reads None. The process (its imports, and the datasets it loaded: see
    :func:`netscale.study.worker.cached_dataset`) lives across trials; every phase of a trial
    runs inside :func:`netscale.study.worker.phase_state`, so no trial sees what an earlier
    one changed."""
    die_with_parent(parent)
    worker_signals()  # SIGINT/SIGTERM/SIGHUP: a stop, not a crash (exit STOPPED_EXIT)

    class _Events:
        @staticmethod
        def put(item: tuple[str, str, dict[str, Any]]) -> None:
            messages.put(("event", *item))

    while True:
        payload = tasks.get()
        if payload is None:
            break
        tid = payload["id"]
        r = _run_reporting(payload, _Events())
        messages.put(("result", tid, bool(r["ok"]), r["value"]))
    messages.close()
    messages.join_thread()  # everything sent before the process exits


class _Slot:
    """One worker process, its task queue and the trial it runs (None: idle)."""

    def __init__(self, ctx: Any, messages: Any, index: int) -> None:
        self.tasks = ctx.SimpleQueue()
        self.proc = ctx.Process(target=_process_main, name=f"netscale-worker {index}",
                                args=(self.tasks, messages, os.getpid()))
        self.proc.start()
        self.tid: str | None = None


class ProcessExecutor:
    """Runs up to ``workers`` trials at once in spawned worker processes that stay alive
    across trials (a process starts once, not once per trial: no repeated interpreter start,
    torch import or dataset load).

    Events and results come back through one plain ``multiprocessing`` queue (no manager
    process); each worker dies with the driver (PDEATHSIG on Linux, a parent-pid watcher
    elsewhere), so a ``kill -9`` of the driver alone leaves no process behind. A worker
    that dies (segfault, OOM kill) fails only the trial it was running; the next trial gets
    a new process."""

    name = "local"

    def __init__(self, on_event: OnEvent, workers: int) -> None:
        import multiprocessing as mp

        self._ctx = mp.get_context("spawn")
        self.on_event = on_event
        self.capacity = workers
        self._messages = self._ctx.Queue()
        self._slots: list[_Slot] = []
        self._started = 0
        self._results: dict[str, tuple[bool, Any]] = {}

    def submit(self, payload: Mapping[str, Any]) -> None:
        slot = next((s for s in self._slots if s.tid is None and s.proc.is_alive()), None)
        if slot is None:
            self._slots = [s for s in self._slots if s.tid is not None or s.proc.is_alive()]
            slot = _Slot(self._ctx, self._messages, self._started)
            self._started += 1
            self._slots.append(slot)
        slot.tid = payload["id"]
        slot.tasks.put(dict(payload))

    def drain(self) -> None:
        while True:
            try:
                msg = self._messages.get_nowait()
            except (queue_mod.Empty, EOFError, OSError):
                return
            if msg[0] == "event":
                self.on_event(msg[1], msg[2], msg[3])
            else:
                self._results[msg[1]] = (msg[2], msg[3])

    def poll(self, timeout: float) -> list[Finished]:
        from multiprocessing.connection import wait

        self.drain()
        busy = [s for s in self._slots if s.tid is not None]
        if not busy:
            return []
        if not any(s.tid in self._results for s in busy):
            # the queue's private read end: ready as soon as a message is waiting
            wait([cast(Any, self._messages)._reader, *(s.proc.sentinel for s in busy)],
                 timeout=timeout)
            self.drain()
        out: list[Finished] = []
        for slot in busy:
            tid = cast(str, slot.tid)
            if tid not in self._results:
                if slot.proc.is_alive():
                    continue
                slot.proc.join()
                self.drain()  # its last messages
            slot.tid = None
            if tid in self._results:
                ok, value = self._results.pop(tid)
                out.append((tid, ok, value))
            else:
                code = slot.proc.exitcode
                how = (f"killed by signal {-code}" if code is not None and code < 0
                       else f"exit code {code}")
                out.append((tid, False, WorkerDied(f"worker process died ({how}) without a "
                                                   "result; out of memory or a crash?", code)))
        self._slots = [s for s in self._slots if s.proc.is_alive() or s.tid is not None]
        return out

    def shutdown(self) -> None:
        self.drain()
        for slot in self._slots:
            if slot.proc.is_alive():
                if slot.tid is None:
                    with contextlib.suppress(Exception):
                        slot.tasks.put(None)  # idle: finishes its loop and exits
                else:
                    slot.proc.kill()  # busy: it would end on SIGTERM too, but mid-write
        for slot in self._slots:
            slot.proc.join(timeout=30)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(timeout=10)
        self._slots.clear()
        self._messages.close()
        self._messages.join_thread()


def _ray_entry(payload: Mapping[str, Any], events: Any) -> dict[str, Any]:
    return _run_reporting(payload, events)


class RayExecutor:
    """Runs trials as Ray tasks on an existing cluster (``address``) or a local one.

    Each task asks for ``cpus``/``gpus`` resources; progress events travel back through a
    Ray queue actor pinned to the driver's node (so a worker node's death never takes the
    events with it), and results return to the driver, which writes the store. When the node
    running a task dies, Ray runs the task again elsewhere (``max_retries`` counts such
    system failures only, never errors raised by the trial); it resumes from the trial's last
    checkpoint in the study directory, which every node must therefore see at the same path.
    A task that still dies after those re-runs comes back as a :class:`WorkerDied`: like a
    local worker's crash, it fails the trial only when it happens again without progress
    (see :mod:`netscale.study.crashes`), so a trial that kept finishing epochs while nodes
    came and went is never failed for it.
    """

    name = "ray"
    #: Re-runs of a task after its worker process or node died (not after trial errors).
    SYSTEM_RETRIES = 3

    def __init__(self, on_event: OnEvent, *, address: str | None, workers: int | None,
                 cpus: float, gpus: float) -> None:
        try:
            import ray
            from ray.util.queue import Queue
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        except ImportError:
            raise NetscaleError(
                "the Ray executor needs Ray: pip install 'ray[default]' (or netscale[ray])"
            ) from None
        self.ray = ray
        self.on_event = on_event
        self._started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False,
                                      "include_dashboard": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = int(workers or os.cpu_count() or 1)
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise NetscaleError(
                    f"cannot start or reach Ray ({format_exception(exc)}); check --address "
                    "(e.g. ray://host:10001 or auto) or run 'ray start --head'"
                ) from None
            self._started_here = True
        total = cast(Any, ray).cluster_resources().get("CPU", 1.0)  # untyped in Ray
        self.capacity = max(1, int(workers or total // max(cpus, 1e-9)))
        options: dict[str, Any] = {"num_cpus": 0}
        try:  # keep the queue on the driver's node (not possible from a Ray client)
            here = ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=here,
                                                                            soft=True)
        except Exception:
            pass
        self._events = Queue(actor_options=options)
        self._remote = ray.remote(_ray_entry).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=self.SYSTEM_RETRIES,
            retry_exceptions=False)
        self._refs: dict[Any, str] = {}
        self._submitted: dict[str, float] = {}

    def submit(self, payload: Mapping[str, Any]) -> None:
        ref = self._remote.remote(dict(payload), self._events)
        self._refs[ref] = payload["id"]
        self._submitted[payload["id"]] = time.time()

    def drain(self) -> None:
        while True:
            try:
                tid, kind, data = self._events.get_nowait()
            except Exception:  # ray.util.queue.Empty
                return
            self.on_event(tid, kind, data)

    def poll(self, timeout: float) -> list[Finished]:
        self.drain()
        if not self._refs:
            return []
        done, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        self.drain()
        out: list[Finished] = []
        for ref in done:
            tid = self._refs.pop(ref)
            # wall time as the driver saw it: covers runs that Ray repeated after a node died
            wall = time.time() - self._submitted.pop(tid, time.time())
            try:
                r = self.ray.get(ref)
                value = r["value"]
                if r["ok"] and isinstance(value, dict):
                    value = {**value, "wall_time": max(float(value.get("wall_time", 0)), wall)}
                out.append((tid, bool(r["ok"]), value))
            except Exception as exc:  # its worker process or node died, after Ray's re-runs
                out.append((tid, False, WorkerDied(
                    f"Ray task's worker died {self.SYSTEM_RETRIES + 1} times "
                    f"({format_exception(exc)})", None)))
        return out

    def shutdown(self) -> None:
        try:
            self.drain()
            self.ray.kill(cast(Any, self._events.actor))  # typed as handle-or-class
        except Exception:
            pass
        if self._started_here:
            self.ray.shutdown()


def make_executor(kind: str, on_event: OnEvent, *, workers: int = 1,
                  address: str | None = None, cpus: float = 1.0,
                  gpus: float = 0.0) -> InProcessExecutor | ProcessExecutor | RayExecutor:
    if kind == "local":
        if workers <= 1:
            return InProcessExecutor(on_event)
        return ProcessExecutor(on_event, workers)
    if kind == "ray":
        return RayExecutor(on_event, address=address, workers=workers if workers > 1 else None,
                           cpus=cpus, gpus=gpus)
    raise NetscaleError(f"unknown executor {kind!r}; use local or ray")
