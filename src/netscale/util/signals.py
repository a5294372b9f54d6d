"""Stop signals handled like Ctrl-C: ``SIGTERM`` and ``SIGHUP`` (what ``timeout``, systemd,
Kubernetes, SLURM preemption and a closed terminal send) raise :class:`Terminated`, a
``KeyboardInterrupt``, so the code they interrupt cleans up as after Ctrl-C (temp files
removed, a study's running attempts closed) and the command exits with code 130."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM or SIGHUP; handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread while inside (no-op
    in another thread, where Python cannot install handlers); a signal the parent set to be
    ignored (SIGHUP under ``nohup``) stays ignored; the previous handlers are restored
    after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    saved: dict[int, Any] = {}
    for name in _STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            saved[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)
