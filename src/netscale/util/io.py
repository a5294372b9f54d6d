"""Crash-safe file writing and guarded file reading.

Writing: :func:`atomic_write` writes to a temporary file in the same folder, fsyncs it and
renames it into place, so readers see the old file or the complete new one, never a partial
write. What is already at the output path decides how (one rule for every writer):

* nothing, or a regular file: temp file + rename (the file's mode honours the umask:
  ``0o666`` less the umask, not the ``0600`` of :func:`tempfile.mkstemp`);
* a character device or a FIFO (``-o /dev/null``, ``-o /dev/stdout``, a named pipe with a
  reader): the bytes are written *through* it; the node itself is never replaced;
* a symbolic link: followed; its target is written by the rules above (a dangling link's
  target is created); a link loop is refused;
* a directory, a block device or a socket: refused in one line.

A write the environment refuses (disk full, file too large, read-only file system,
permission denied) raises :class:`OutputError`: a :class:`NetscaleError` (one line naming the
path) that is also an :class:`OSError` with the errno; its temp file is removed.

Temporary files are named ``.NAME.netscale-XXXXXXXX.tmp`` (optionally followed by the
target's suffix); a writer killed before its rename leaves one behind, and
:func:`sweep_temp_files` removes those, and only those: regular files with netscale's marker,
owned by this user. A user's own ``.budget.2024_Q3x.tmp`` is never touched.

Reading: :func:`read_input_bytes` opens only regular files (never a device such as
``/dev/zero``, a FIFO, or a link to them) and refuses files above a size cap.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from netscale.errors import NetscaleError
from netscale.util import jsonio

#: The marker in every temp file name netscale creates (and the only ones it sweeps).
TEMP_MARKER = "netscale-"
_TEMP_RE = re.compile(r"^\..+\.netscale-[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,8})?$")
#: errnos of a write the environment refused (not a bug of the caller)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                          errno.EACCES, errno.EPERM, errno.EIO, errno.ETXTBSY})
_HINTS = {errno.ENOSPC: "the disk is full; free space or choose another location",
          errno.EDQUOT: "the disk quota is exceeded; free space or choose another location",
          errno.EFBIG: "the file is too large for this file system or the file-size limit "
                       "(ulimit -f); raise the limit or choose another location",
          errno.EROFS: "the file system is read-only; choose a writable location",
          errno.EACCES: "permission denied; choose a writable location",
          errno.EPERM: "operation not permitted; choose a writable location",
          # what output_target and the open of a FIFO meet
          errno.ELOOP: "it is a loop of symbolic links; remove the link or choose another path",
          errno.ENXIO: "it is a FIFO with no reader; start its reader first or give a file path"}


class OutputError(NetscaleError, OSError):
    """An output file could not be written (one line naming it); also an ``OSError`` whose
    ``errno`` and ``filename`` say why and where."""

    def __init__(self, path: str | Path, exc: OSError | None = None, *,
                 message: str | None = None) -> None:
        code = exc.errno if exc is not None else None
        if message is None:
            reason = _HINTS.get(code or 0) or (os.strerror(code) if code else str(exc))
            message = f"cannot write {str(path)!r}: {reason}"
        NetscaleError.__init__(self, message)
        self.errno = code
        self.strerror = os.strerror(code) if code else None
        self.filename = str(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


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


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    """'a directory', 'a FIFO (named pipe)', ... for an ``st_mode`` ('a regular file')."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def output_target(path: str | Path) -> tuple[Path, bool]:
    """Where a write to ``path`` goes and whether it goes *through* an existing node
    (a character device, a FIFO, ``/dev/stdout``) rather than by temp file + rename; see
    the module docstring. Refuses a directory, a block device, a socket and a link loop."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return p, False
    except OSError as exc:
        raise OutputError(p, exc) from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(p)
        except FileNotFoundError:  # a dangling link: create its target
            return Path(os.path.realpath(p)), False
        except OSError as exc:
            raise OutputError(p, exc) from None
        if stat.S_ISREG(st.st_mode):
            if _via_proc(p):  # /dev/stdout -> /proc/self/fd/1 -> a file: the shell's file
                return p, True
            return Path(os.path.realpath(p)), False
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return p, False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return p, True
    raise OutputError(p, message=f"cannot write {str(path)!r}: it is {file_kind(mode)}; "
                      "netscale writes regular files (or through a character device such as "
                      "/dev/null, or a FIFO); give a file path")


def _via_proc(p: Path) -> bool:
    """Whether the chain of links from ``p`` passes through /proc (a descriptor link such
    as /dev/stdout: writing the file it names would bypass the open descriptor)."""
    cur = str(p)
    for _ in range(40):
        try:
            target = os.readlink(cur)
        except OSError:
            return False
        cur = os.path.normpath(os.path.join(os.path.dirname(cur), target))
        if cur.startswith("/proc/"):
            return True
    return False


class _RecordingFile(io.FileIO):
    """A raw file that remembers its first failed write: a serializer that wraps the
    ``OSError`` in its own exception (torch.save raises a RuntimeError from its C++ writer)
    still reports a full disk as :class:`OutputError`."""

    error: OSError | None = None

    def write(self, b: Any) -> int:
        try:
            return super().write(b)
        except OSError as exc:
            self.error = self.error or exc
            raise


def _write_to(raw: _RecordingFile, write: Callable[[IO[bytes]], Any], target: Path) -> None:
    """``write(f)`` on a buffered ``raw``, flushed and closed; a failure the environment
    caused (even when the serializer wrapped it) becomes :class:`OutputError`."""
    f = io.BufferedWriter(raw)
    try:
        write(f)
        f.flush()
    except Exception as exc:
        err = exc if isinstance(exc, OSError) else raw.error
        with contextlib.suppress(OSError):
            f.close()
        if isinstance(exc, BrokenPipeError) or err is None or err.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(target, err) from None
    finally:
        with contextlib.suppress(OSError):
            f.close()
        with contextlib.suppress(OSError):
            raw.close()


def _open_through(path: Path) -> _RecordingFile:
    """Opens an existing character device / FIFO / fd link for appending, without ever
    blocking on a FIFO that has no reader."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise OutputError(path, exc) from None
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return _RecordingFile(fd, "w", closefd=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name[:120]}.{TEMP_MARKER}"


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """A temp file path next to ``path`` (or a scratch file, when ``path`` is a device
    or FIFO) for writers that need a file name (exporters); on a normal exit of the block
    its content is published to ``path`` by the rules of :func:`atomic_write`; on an
    exception it is removed and nothing is published."""
    target, through = output_target(path)
    folder = Path(tempfile.gettempdir()) if through else target.parent
    try:
        if not through:
            folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp" + suffix,
                                   dir=folder)
        os.close(fd)
    except OSError as exc:
        raise OutputError(target, exc) from None
    try:
        yield Path(tmp)
        if through:
            with open(tmp, "rb") as src:
                _write_to(_open_through(target), lambda dst: _copy(src, dst), target)
        else:
            _publish(Path(tmp), target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _copy(src: IO[bytes], dst: IO[bytes]) -> None:
    while chunk := src.read(1 << 20):
        dst.write(chunk)


def _publish(tmp: Path, target: Path) -> None:
    """fsync + chmod (umask) + rename ``tmp`` onto ``target``, then fsync the folder."""
    try:
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(target, exc) from None
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Calls ``write(fileobj)`` on a temp file next to ``path`` and renames it into place
    (or writes through an existing device / FIFO; see the module docstring).

    Readers see either the old file or the complete new one, never a partial write, even if
    the process is killed (``kill -9``) in the middle. The file's mode honours the umask.
    A write the environment refuses raises :class:`OutputError` and leaves no temp file.
    """
    path = Path(path)
    target, through = output_target(path)
    if through:
        _write_to(_open_through(target), write, target)
        return path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp",
                                   dir=target.parent)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(target, exc) from None
    try:
        os.close(fd)
        # opened by name, so f.name tells which file it becomes
        _write_to(_RecordingFile(tmp, "w"), write, target)
        _publish(Path(tmp), target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8 (names from non-UTF-8 paths keep their original bytes)."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "backslashreplace")
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, jsonio.dumps(data, indent=indent) + "\n")


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """``fig.savefig(path, **kwargs)`` through :func:`atomic_write`: a kill never leaves a
    zero-byte or half-written image (the format comes from the file's suffix)."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.lower().lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs))


def is_temp_file(name: str) -> bool:
    """True for the names :func:`atomic_write` and :func:`atomic_path` give their temporary
    files (they carry netscale's marker)."""
    return bool(_TEMP_RE.match(name))


def sweep_temp_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Removes temp files left by interrupted atomic writes in ``folder`` (and below, with
    ``recursive``); returns what was removed. Only netscale's own temp files go: regular
    files (not links) named with its marker and owned by this user; everything else in the
    folder is left untouched. Call it only when no writer is active there (e.g. under the
    study or run lock)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    uid = os.getuid()
    walker = os.walk(root) if recursive else [(str(root), [], os.listdir(root))]
    for dirpath, _dirs, files in walker:
        for name in files:
            if not is_temp_file(name):
                continue
            p = Path(dirpath) / name
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and st.st_uid == uid:
                    p.unlink()
                    removed.append(p)
    return removed


# ----------------------------------------------------------------------------- reading

#: Size caps of input files (bytes): configs, specs and model files; results files.
MAX_CONFIG_BYTES = 16 << 20
MAX_RESULTS_BYTES = 512 << 20


def read_input_bytes(path: str | Path, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (links followed), at most ``max_bytes``.

    A device (``/dev/zero``), a FIFO, a socket or a directory is refused without reading
    or blocking, and so is a file above the cap: one-line :class:`NetscaleError` naming
    ``what`` and the path."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetscaleError(f"{what} {p!r} does not exist") from None
    except OSError as exc:
        reason = ("a loop of symbolic links" if exc.errno == errno.ELOOP
                  else os.strerror(exc.errno) if exc.errno else str(exc))
        raise NetscaleError(f"cannot read {what} {p!r}: {reason}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NetscaleError(f"{what} {p!r} is {file_kind(st.st_mode)}, not a regular "
                                "file; give a file")
        if st.st_size > max_bytes:
            raise NetscaleError(f"{what} {p!r} is too large ({st.st_size:,} bytes; at most "
                                f"{max_bytes:,})")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # grew while read
            raise NetscaleError(f"{what} {p!r} is too large (more than {max_bytes:,} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise NetscaleError(f"cannot read {what} {p!r}: {os.strerror(exc.errno or 0)}"
                            ) from None
    finally:
        os.close(fd)


def read_input_text(path: str | Path, what: str, max_bytes: int = MAX_CONFIG_BYTES,
                    encoding: str = "utf-8") -> str:
    """:func:`read_input_bytes` decoded (one line if it is not ``encoding``)."""
    data = read_input_bytes(path, what, max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise NetscaleError(f"{what} {str(path)!r} is not {encoding} text (byte "
                            f"{exc.start:,}); give a text file") from None
