"""How a study stops when its environment stops it: signals and failed writes.

* ``SIGTERM`` and ``SIGHUP`` (what ``timeout``, systemd, Kubernetes and SLURM preemption send)
  stop the driver exactly like ``SIGINT`` (Ctrl-C): ``netscale.util.signals.stop_on_signals``
  turns them into ``Terminated``, a ``KeyboardInterrupt``, so the running attempts are closed as
  *interrupted* (never held against a trial) and the command exits with code 130.
* A worker process that receives one of these signals exits at once with
  :data:`STOPPED_EXIT` (:func:`worker_signals`); the driver treats that as a stop, not as a
  crash of the trial.
* A write that fails because of the environment (disk full, file too large, read-only file
  system, quota) is never a trial failure: :func:`failure_value` turns it into a
  :class:`StopStudy` marker, and the driver stops with one line naming the path
  (:func:`write_failures` does the same for the driver's own writes, the results store
  included). Once the cause is removed, rerunning the same command resumes.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.study.worker import format_exception

#: Exit code of a worker process stopped by SIGINT, SIGTERM or SIGHUP (EX_TEMPFAIL).
STOPPED_EXIT = 75
#: errno values of writes that fail because of where they write, not of what is written.
ENV_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT})


class StopStudy(str):
    """A trial's result that is no failure of the trial: the study must stop (one line)."""

    __slots__ = ()


class WorkerDied(str):
    """A trial's result when its own worker process died without one (signal or exit code);
    ``exitcode`` as ``multiprocessing`` reports it (negative: killed by that signal)."""

    exitcode: int | None = None

    def __new__(cls, message: str, exitcode: int | None) -> WorkerDied:
        self = super().__new__(cls, message)
        self.exitcode = exitcode
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerDied, (str(self), self.exitcode))

    @property
    def stopped(self) -> bool:
        """The worker was stopped by a signal it handles (a stop, not a crash)."""
        return self.exitcode == STOPPED_EXIT


def worker_signals() -> None:
    """In a worker process: SIGINT, SIGTERM and SIGHUP end it at once with
    :data:`STOPPED_EXIT` (its trial resumes from the last checkpoint on the next run; a
    half-written temp file is swept by the driver)."""

    def _stop(_signum: int, _frame: Any) -> None:
        os._exit(STOPPED_EXIT)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, _stop)


def environment_failure(exc: BaseException) -> str | None:
    """One line when ``exc`` (or an exception it was raised from or during) is a write that
    failed because of the environment: disk full, file too large, read-only file system,
    quota exceeded (an ``OSError`` with that errno, or SQLite's "database or disk is full");
    None otherwise."""
    seen: set[int] = set()
    e: BaseException | None = exc
    first_line: str | None = None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, NetscaleError) and first_line is None:
            first_line = str(e)
        if isinstance(e, OSError) and e.errno in ENV_ERRNOS:
            if first_line is not None:
                return first_line
            where = f" {str(e.filename)!r}" if e.filename else ""
            return (f"cannot write{where}: {os.strerror(e.errno or 0)}; free space (or lift "
                    "the limit) and rerun the same command: it resumes where it stopped")
        if isinstance(e, sqlite3.OperationalError) and "disk is full" in str(e):
            return first_line or (f"cannot write the results store: {e}; free space and "
                                  "rerun the same command: it resumes where it stopped")
        e = e.__cause__ or e.__context__
    return None


def failure_value(exc: BaseException, payload: Mapping[str, Any] | None = None) -> str:
    """What an executor reports for a trial that raised ``exc``: a :class:`StopStudy` for
    an environmental write failure, else the one-line error (a trial failure). An error of
    the driver's results store (raised through the events of a trial run in the driver's
    process) is no trial's: it is raised again, for :func:`write_failures` to report."""

    if isinstance(exc, sqlite3.Error):
        raise exc
    stop = environment_failure(exc)
    if stop is not None:
        names_a_file = "'" in stop  # netscale quotes the paths it names
        if payload is not None and not names_a_file:
            stop = f"trial {payload.get('id')!r} in {payload.get('trial_dir')}: {stop}"
        return StopStudy(stop)
    return format_exception(exc)


@contextmanager
def write_failures(store_path: Path) -> Iterator[None]:
    """Environmental write failures of the driver (the store, study.yaml, a trial's stop)
    become one line naming the path."""
    try:
        yield
    except NetscaleError:
        raise
    except (OSError, sqlite3.OperationalError) as exc:
        line = environment_failure(exc)
        if line is None:
            raise
        if isinstance(exc, sqlite3.OperationalError):
            line = (f"cannot write the results store {str(store_path)!r}: {exc}; free space "
                    "and rerun the same command: it resumes where it stopped")
        raise NetscaleError(line) from None


@contextmanager
def environment_writes(where: Path, rerun: str) -> Iterator[None]:
    """A command's writes (e.g. the report's files under ``where``): one that fails because
    of the environment becomes one line naming the file (else ``where``) and ``rerun``, what
    to do once the cause is removed."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in ENV_ERRNOS:
            raise
        path = exc.filename or where
        raise NetscaleError(f"cannot write {str(path)!r}: {os.strerror(exc.errno or 0)}; free "
                            f"space (or lift the limit) and {rerun}") from None
