"""Crash-safe file writing: write to a temporary file in the same folder, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from netscale.util import jsonio


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Calls ``write(fileobj)`` on a temp file next to ``path`` and renames it into place.

    Readers see either the old file or the complete new one, never a partial write, even if
    the process is killed (``kill -9``) in the middle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, jsonio.dumps(data, indent=indent) + "\n")
