"""Crash-safe file writing: write to a temporary file in the same folder, fsync, rename.

Temporary files are named ``.NAME.XXXXXXXX.tmp`` next to their target; a writer killed
before its rename leaves one behind, and :func:`sweep_temp_files` removes them (the study
runner and the trainer call it on resume and on completion, when no writer is active).
Files get the mode a plain ``open()`` would give them (``0o666`` less the umask), not the
``0600`` of :func:`tempfile.mkstemp`, so a shared study directory stays readable.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from netscale.util import jsonio

_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def current_umask() -> int:
    """The process umask (read from /proc on Linux, so no thread sees it changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Calls ``write(fileobj)`` on a temp file next to ``path`` and renames it into place.

    Readers see either the old file or the complete new one, never a partial write, even if
    the process is killed (``kill -9``) in the middle. The file's mode honours the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        with open(tmp, "wb") as f:  # opened by name, so f.name tells which file it becomes
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
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


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """``fig.savefig(path, **kwargs)`` through :func:`atomic_write`: a kill never leaves a
    zero-byte or half-written image (the format comes from the file's suffix)."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.lower().lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs))


def is_temp_file(name: str) -> bool:
    """True for the names :func:`atomic_write` gives its temporary files."""
    return bool(_TEMP_RE.match(name))


def sweep_temp_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Removes temp files left by interrupted atomic writes in ``folder`` (and below, with
    ``recursive``); returns what was removed. Call it only when no writer is active there
    (e.g. under the study or run lock)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    walker = os.walk(root) if recursive else [(str(root), [], os.listdir(root))]
    for dirpath, _dirs, files in walker:
        for name in files:
            if is_temp_file(name):
                p = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    p.unlink()
                    removed.append(p)
    return removed
