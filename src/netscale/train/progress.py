"""Progress on stderr: a redrawn bar on a terminal, occasional lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from netscale.util.fmt import duration


class TrainProgress:
    """Per-step progress with images/s and ETA; one summary line per epoch."""

    def __init__(self, epochs: int, steps_per_epoch: int, *, enabled: bool = True,
                 stream: TextIO | None = None, interval: float | None = None) -> None:
        self.epochs, self.steps = epochs, max(1, steps_per_epoch)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 30.0)
        self.epoch_seconds: list[float] = []
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._drawn = False

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._t0 = time.perf_counter()
        self._last = self._t0

    def step(self, step: int, images: int, loss: float | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.interval and (step < self.steps or not self.tty):
            return
        self._last = now
        elapsed = now - self._t0
        rate = images / elapsed if elapsed > 0 else 0.0
        left_epoch = elapsed / step * (self.steps - step) if step else 0.0
        per_epoch = (sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds
                     else elapsed / max(step, 1) * self.steps)
        eta = left_epoch + per_epoch * (self.epochs - self.epoch)
        width = 24
        done = int(width * step / self.steps)
        bar = "=" * done + (">" if done < width else "") + " " * max(0, width - done - 1)
        loss_s = f"loss {loss:.4f}  " if loss is not None else ""
        line = (f"epoch {self.epoch}/{self.epochs} [{bar}] {step}/{self.steps}  {loss_s}"
                f"{rate:,.0f} img/s  ETA {duration(eta)}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end_epoch(self, seconds: float, summary: str) -> None:
        self.epoch_seconds.append(seconds)
        if not self.enabled:
            return
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        self.stream.write(summary + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self._drawn = False
            self.stream.write(text + "\n")
            self.stream.flush()
