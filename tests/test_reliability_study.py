"""The study's stop rules in isolation: which exceptions are the environment's (a stop, never
a trial failure), worker deaths crossing process boundaries, and SIGTERM/SIGHUP handled like
Ctrl-C (the end-to-end kills are in test_crash_safety.py)."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import sqlite3

import pytest

from netscale.errors import NetscaleError
from netscale.study.interrupts import (
    STOPPED_EXIT,
    StopStudy,
    WorkerDied,
    environment_failure,
    failure_value,
)
from netscale.util.signals import Terminated, stop_on_signals


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT])
def test_environmental_write_errors_are_stops(code: int) -> None:
    exc = OSError(code, os.strerror(code), "/data/run/checkpoint.pt")
    line = environment_failure(exc)
    assert line is not None and "'/data/run/checkpoint.pt'" in line
    assert os.strerror(code) in line
    value = failure_value(exc, {"id": "t", "trial_dir": "/data/run"})
    assert isinstance(value, StopStudy) and value == line


def test_a_stop_found_in_the_chain_keeps_netscales_line() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise NetscaleError("cannot write checkpoint 'x/checkpoint.pt': full") from None
    except NetscaleError as exc:
        assert environment_failure(exc) == "cannot write checkpoint 'x/checkpoint.pt': full"
    unnamed = failure_value(OSError(errno.ENOSPC, "No space left on device"),
                            {"id": "a|b", "trial_dir": "/s/trials/a_b"})
    assert isinstance(unnamed, StopStudy)
    assert unnamed.startswith("trial 'a|b' in /s/trials/a_b: cannot write: No space left")


@pytest.mark.parametrize("exc", [OSError(errno.EACCES, "Permission denied", "f"),
                                 ValueError("bad"), MemoryError()])
def test_other_errors_are_trial_failures(exc: BaseException) -> None:
    assert environment_failure(exc) is None
    value = failure_value(_raised(exc), {"id": "t", "trial_dir": "d"})
    assert not isinstance(value, StopStudy) and type(exc).__name__ in value


def test_store_errors_are_raised_again_not_blamed_on_the_trial() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert environment_failure(full) is not None
    with pytest.raises(sqlite3.OperationalError):
        failure_value(full, {"id": "t", "trial_dir": "d"})


def test_worker_deaths_cross_process_boundaries() -> None:
    died = pickle.loads(pickle.dumps(WorkerDied("worker process died", -9)))
    assert isinstance(died, WorkerDied) and died.exitcode == -9 and not died.stopped
    assert WorkerDied("stopped", STOPPED_EXIT).stopped
    stop = pickle.loads(pickle.dumps(StopStudy("disk full")))
    assert isinstance(stop, StopStudy) and stop == "disk full"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_raise_a_keyboard_interrupt(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt) as info, stop_on_signals():
        os.kill(os.getpid(), sig)
        signal.sigtimedwait([], 0.01)  # the handler runs at the next bytecode anyway
    assert isinstance(info.value, Terminated) and info.value.signum == sig
    assert str(info.value) == sig.name
    assert signal.getsignal(sig) == before  # restored
