"""An exclusive lock on a run directory, held while training."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from netscale.errors import NetscaleError
from netscale.train.checkpoint import sweep_checkpoint_temps


class RunLock:
    """``out/.lock`` (flock), held while training, so two processes never train into the
    same directory; released when the process ends. Disabled on ranks other than 0."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise NetscaleError(
                f"{str(self.out)!r} is being trained into by another process (pid {other}); "
                "wait for it to finish or choose another output directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        sweep_checkpoint_temps(self.out)  # temp files of writes a kill interrupted
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            sweep_checkpoint_temps(self.out)
            with contextlib.suppress(OSError):
                os.unlink(self.out / ".lock")
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
            if self.created:  # nothing was written (an early error): leave no empty folder
                with contextlib.suppress(OSError):
                    self.out.rmdir()
