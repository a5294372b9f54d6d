"""Where trials run: in this process, in local worker processes, or as Ray tasks.

Every executor has the same small interface used by the study driver:

* ``submit(payload)`` starts a trial (payload: plain data, see :mod:`netscale.study.worker`);
* ``poll(timeout)`` returns the trials that finished: ``(trial_id, ok, result_or_error)``;
* progress events ``(trial_id, kind, data)`` reach the driver through ``on_event`` as they
  happen, so that the driver is the only writer of the results store.
"""

from __future__ import annotations

import os
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from netscale.errors import NetscaleError
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
            return [(tid, False, format_exception(exc))]
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


def _run_reporting(payload: Mapping[str, Any], events: Any) -> dict[str, Any]:
    """Runs one trial in a worker, sending its events to ``events`` (a queue); the result is
    {"ok": True, "value": result} or {"ok": False, "value": one-line error}."""
    tid = payload["id"]
    try:
        return {"ok": True, "value": run_trial(
            payload, lambda kind, data: events.put((tid, kind, data)))}
    except Exception as exc:
        return {"ok": False, "value": format_exception(exc)}


def _process_entry(payload: Mapping[str, Any], events: Any, parent: int) -> dict[str, Any]:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    return _run_reporting(payload, events)


class ProcessExecutor:
    """Runs up to ``workers`` trials at once in local worker processes (spawned)."""

    name = "local"

    def __init__(self, on_event: OnEvent, workers: int) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        self.on_event = on_event
        self.capacity = workers
        self._manager = ctx.Manager()
        self._events = self._manager.Queue()
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        self._futures: dict[Any, str] = {}

    def submit(self, payload: Mapping[str, Any]) -> None:
        fut = self._pool.submit(_process_entry, dict(payload), self._events, os.getpid())
        self._futures[fut] = payload["id"]

    def drain(self) -> None:
        while True:
            try:
                tid, kind, data = self._events.get_nowait()
            except queue_mod.Empty:
                return
            self.on_event(tid, kind, data)

    def poll(self, timeout: float) -> list[Finished]:
        from concurrent.futures import FIRST_COMPLETED, wait

        self.drain()
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        self.drain()
        out: list[Finished] = []
        for fut in done:
            tid = self._futures.pop(fut)
            try:
                r = fut.result()
                out.append((tid, bool(r["ok"]), r["value"]))
            except Exception as exc:  # the worker process died
                out.append((tid, False, f"worker process failed: {format_exception(exc)}"))
        return out

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()


def _ray_entry(payload: Mapping[str, Any], events: Any) -> dict[str, Any]:
    return _run_reporting(payload, events)


class RayExecutor:
    """Runs trials as Ray tasks on an existing cluster (``address``) or a local one.

    Each task asks for ``cpus``/``gpus`` resources; progress events travel back through a
    Ray queue actor, and results return to the driver, which writes the store.
    """

    name = "ray"

    def __init__(self, on_event: OnEvent, *, address: str | None, workers: int | None,
                 cpus: float, gpus: float) -> None:
        try:
            import ray
            from ray.util.queue import Queue
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
        total = ray.cluster_resources().get("CPU", 1.0)
        self.capacity = max(1, int(workers or total // max(cpus, 1e-9)))
        self._events = Queue()
        self._remote = ray.remote(_ray_entry).options(num_cpus=cpus, num_gpus=gpus,
                                                      max_retries=0)
        self._refs: dict[Any, str] = {}

    def submit(self, payload: Mapping[str, Any]) -> None:
        ref = self._remote.remote(dict(payload), self._events)
        self._refs[ref] = payload["id"]

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
            try:
                r = self.ray.get(ref)
                out.append((tid, bool(r["ok"]), r["value"]))
            except Exception as exc:  # task or node died
                out.append((tid, False, f"Ray task failed: {format_exception(exc)}"))
        return out

    def shutdown(self) -> None:
        try:
            self.drain()
            self.ray.kill(self._events.actor)
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
