"""Up-front validation of what a user types or points at: ranges, devices, output paths,
memory.

Everything here raises :class:`NetscaleError` (one line, exit code 2 in the CLI) *before*
any work is done, so that nothing is measured, trained or written in vain.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import tempfile
from pathlib import Path

from netscale.errors import NetscaleError
from netscale.util.io import output_target

#: ``--threads`` above this many per CPU is refused (OpenMP may segfault creating them).
THREADS_PER_CPU = 4
#: and never more than this many, whatever the machine.
MAX_THREADS = 1024
#: ``--n-boot`` (bootstrap refits per fit) upper bound: memory grows with it.
MAX_N_BOOT = 100_000


def max_threads() -> int:
    return min(MAX_THREADS, THREADS_PER_CPU * (os.cpu_count() or 1))


def check_threads(n: int | None, flag: str = "--threads") -> int | None:
    """Refuses a thread count that is not a positive integer or absurdly large."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise NetscaleError(f"{flag} must be a positive integer, got {n!r}")
    top = max_threads()
    if n > top:
        raise NetscaleError(
            f"{flag} {n} is too many: this machine has {os.cpu_count() or 1} CPU(s), the "
            f"maximum is {top} ({THREADS_PER_CPU} per CPU); leave it out for torch's default")
    return n


def check_int_range(value: int, flag: str, lo: int, hi: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise NetscaleError(f"{flag} must be an integer from {lo:,} to {hi:,}, got "
                            f"{value!r}{'; ' + hint if hint else ''}")
    return value


def check_fraction(value: float, flag: str) -> float:
    """A number strictly between 0 and 1."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1):
        raise NetscaleError(f"{flag} must be a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- memory


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get on this machine (MemAvailable + free swap,
    capped by a cgroup limit); None if unknown."""
    avail = None
    try:
        info: dict[str, int] = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    info[key] = int(parts[0]) * 1024
        if "MemAvailable" in info:
            avail = info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, ValueError):
        pass
    if avail is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < (1 << 60):
                used = int(Path(usage_file).read_text().strip())
                room = max(0, int(limit) - used)
                avail = room if avail is None else min(avail, room)
                break
        except (OSError, ValueError):
            continue
    return avail


def fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1024:,.1f} KiB"


def device_memory(device: str | None) -> int | None:
    if device and str(device).startswith("cuda"):
        try:
            import torch

            if torch.cuda.is_available():
                dev = torch.device(device)
                return int(torch.cuda.mem_get_info(dev.index or 0)[0])
        except Exception:  # no estimate is better than a crash here
            return None
    return available_memory()


# ----------------------------------------------------------------------------- output paths


def _probe_dir(d: Path, flag: str, path: Path) -> None:
    """Refuses unless a file can be created in the existing directory ``d``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".netscale-probe-", dir=d)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason = "read-only" if exc.errno == errno.EROFS else "not writable (permission denied)"
        raise NetscaleError(f"{flag} {str(path)!r}: cannot write in {str(d)!r} ({reason}); "
                            "choose a writable location") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _existing_ancestor(p: Path, flag: str, path: Path) -> Path:
    a = p.absolute()
    while not a.exists():
        if a.is_symlink():
            try:
                os.stat(a)
                what = "a broken symbolic link"
            except OSError as exc:
                what = ("a loop of symbolic links" if exc.errno == errno.ELOOP
                        else "a broken symbolic link")
            raise NetscaleError(f"{flag} {str(path)!r}: {str(a)!r} is {what}; remove it or "
                                "choose another path")
        a = a.parent
    if not a.is_dir():
        raise NetscaleError(f"{flag} {str(path)!r}: {str(a)!r} is a file, not a directory")
    return a


def check_output_file(path: str | Path, flag: str = "--out", *,
                      suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` can be written as a file: not a directory, in a writable place. Creates
    nothing."""
    p = Path(path)
    if not str(path).strip():
        raise NetscaleError(f"{flag} is empty; give a file path")
    if p.is_dir():
        raise NetscaleError(f"{flag} {str(path)!r} is a directory; give a file path "
                            f"(e.g. {str(p / ('out' + (suffixes[0] if suffixes else '')))!r})")
    if suffixes and p.suffix.lower() not in suffixes:
        raise NetscaleError(f"{flag} {str(path)!r}: the file name must end in "
                            f"{' or '.join(suffixes)}")

    target, through = output_target(p)  # refuses link loops, sockets, block devices
    if through:  # a device or FIFO is written through: nothing is created next to it
        if not os.access(target, os.W_OK):
            raise NetscaleError(f"{flag} {str(path)!r} exists and is not writable")
        return p
    if target.exists() and not os.access(target, os.W_OK):
        raise NetscaleError(f"{flag} {str(path)!r} exists and is not writable")
    _probe_dir(_existing_ancestor(target.parent, flag, target), flag, target)
    return p


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` is (or can become) a writable directory: not a file. Creates nothing."""
    p = Path(path)
    if not str(path).strip():
        raise NetscaleError(f"{flag} is empty; give a directory")
    if p.exists() and not p.is_dir():
        raise NetscaleError(f"{flag} {str(path)!r} is a file, not a directory; give a "
                            "directory path")
    _probe_dir(_existing_ancestor(p, flag, p), flag, p)
    return p
