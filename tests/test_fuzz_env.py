"""Generated (Hypothesis) environmental faults: write failures of every writer and stop
signals during a study.

**Write failures.** A writer command (``scale --out``, ``export -o``, ``bench --out``,
``recommend --out``, ``report --out DIR``, ``study --export csv -o``) runs in-process while
one operation on a file under its output path fails with an errno the environment gives
(ENOSPC, EFBIG, EROFS, EACCES, EDQUOT): the creation of a file, the n-th write, an fsync, a
rename, a directory's creation. The faults are injected where netscale meets the OS: below
``netscale.util.io``'s raw file (a ``FileIO`` layer under its write-recording subclass), in
the builtin ``open`` (the exporter's in-memory bytes are written through it), and in
``os.open`` / ``os.fsync`` / ``os.replace`` / ``os.mkdir``, each for paths under the output
only. The property: exit 2 and one stderr line naming the file, no traceback, no temp file,
and what was at the output path before is unchanged byte for byte.

**Signals.** ``python -m netscale study`` (its own process group) gets SIGTERM, SIGHUP or
SIGINT at a generated moment: after the k-th checkpoint rename, after the k-th committed
epoch row, or a random delay after netscale's entry point started. The property: exit 130
with one line (0 when the signal came after the end), no trial failed, no temp file, and a
plain rerun ends with the results of an uninterrupted run.

NETSCALE_FUZZ_EXAMPLES widens the search (random then); the default run is fixed and fast.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

import netscale.util.io as nio
from netscale.cli.main import main
from netscale.study.config import load_study_config
from netscale.study.runner import run_study
from netscale.study.store import Store
from netscale.util.io import is_temp_file
from study_helpers import study_results, tiny_study_config, uninterrupted_results

SRC = Path(__file__).resolve().parents[1] / "src"
_N = int(os.environ.get("NETSCALE_FUZZ_EXAMPLES", "20"))
_FIXED = _N == 20


def _settings(n: int, seed: str) -> Callable[[Any], Any]:
    """``n`` examples; in the default run a fixed sequence per ``seed`` (the tests differ in
    what they draw, not only in what they run)."""
    fixed: dict[str, Any] = {"database": None} if _FIXED else {}
    s = settings(max_examples=n, deadline=None, **fixed,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])

    def wrap(test: Any) -> Any:
        return s(hseed(zlib.crc32(seed.encode()))(test) if _FIXED else test)

    return wrap


ERRNOS = [errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EDQUOT]
OPS = ("create", "write", "fsync", "rename", "mkdir")
_TEMP_NAME = re.compile(r"^\.(.+)\.netscale-[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,8})?$")


# ----------------------------------------------------------------------------- the fault seam


@dataclass
class Fault:
    """Fail the ``nth`` operation ``op`` on a path under ``root`` with ``code``; counts every
    operation under ``root`` (``nth`` 0 only counts)."""

    root: Path
    op: str = "write"
    nth: int = 0
    code: int = errno.ENOSPC
    counts: dict[str, int] = field(default_factory=dict)
    hit: Path | None = None  # the file (its final name) whose operation failed

    def check(self, op: str, path: str | bytes | os.PathLike[str] | int | None) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        p = Path(os.path.abspath(os.fsdecode(path)))
        if self.root != p and self.root not in p.parents:
            return
        self.counts[op] = self.counts.get(op, 0) + 1
        if op == self.op and self.counts[op] == self.nth and self.hit is None:
            m = _TEMP_NAME.match(p.name)
            self.hit = p.with_name(m.group(1)) if m else p
            name = None if op in ("write", "fsync") else str(path)  # fd-based calls name none
            raise OSError(self.code, os.strerror(self.code), name)


_ACTIVE: list[Fault] = []


class _FaultyFileIO(io.FileIO):
    """The raw file layer netscale's writers end in; ``write`` is where the OS refuses."""

    def write(self, b: Any) -> int:
        if _ACTIVE:
            _ACTIVE[0].check("write", self.name if isinstance(self.name, str) else None)
        return super().write(b)


class _FaultyRecordingFile(nio._RecordingFile, _FaultyFileIO):
    """netscale.util.io's recording file with the faulty layer below its ``write``."""


@contextlib.contextmanager
def inject(fault: Fault) -> Iterator[Fault]:
    real_open, real_os_open = builtins.open, os.open
    real_fsync, real_replace, real_mkdir = os.fsync, os.replace, os.mkdir

    def faulty_open(file: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and mode in ("wb", "xb") and not a and not k:
            p = Path(os.path.abspath(file))
            if fault.root == p or fault.root in p.parents:
                return io.BufferedWriter(_FaultyFileIO(file, mode[0]))
        return real_open(file, mode, *a, **k)

    def faulty_os_open(path: Any, flags: int, *a: Any, **k: Any) -> int:
        if flags & os.O_CREAT:
            fault.check("create", path)
        return real_os_open(path, flags, *a, **k)

    def faulty_fsync(fd: Any) -> None:
        fileno = fd if isinstance(fd, int) else fd.fileno()
        path = None
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.fstat(fileno).st_mode):  # a folder's fsync may fail harmlessly
                path = os.readlink(f"/proc/self/fd/{fileno}")
        fault.check("fsync", path)
        real_fsync(fd)

    def faulty_replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
        fault.check("rename", dst)
        real_replace(src, dst, *a, **k)

    def faulty_mkdir(path: Any, *a: Any, **k: Any) -> None:
        if not os.path.lexists(path):  # the OS says EEXIST first
            fault.check("mkdir", path)
        real_mkdir(path, *a, **k)

    patches = [(builtins, "open", faulty_open), (os, "open", faulty_os_open),
               (os, "fsync", faulty_fsync), (os, "replace", faulty_replace),
               (os, "mkdir", faulty_mkdir), (nio, "_RecordingFile", _FaultyRecordingFile)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    _ACTIVE.append(fault)
    try:
        for obj, name, new in patches:
            setattr(obj, name, new)
        yield fault
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)
        _ACTIVE.clear()


# ----------------------------------------------------------------------------- writers


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study (timing only: 2 trials) that report and --export read."""
    d = tmp_path_factory.mktemp("fuzz-env-study")
    (d / "s.yaml").write_text(yaml.safe_dump({
        "name": "fz", "out": str(d / "st"), "bases": ["ResNet-20-CIFAR"], "strategies": ["d"],
        "factors": [1, 2], "train": False, "resources": {"cpus": 1},
        "bench": {"enabled": True, "mode": "infer", "batch_size": 2, "budget": 0.05,
                  "threads": 1}}))
    assert run_study(load_study_config(d / "s.yaml"), stream=None)["done"] == 2
    return d / "st"


#: writer -> (argv with OUT for the output path and STUDY for the study, output name)
WRITERS: dict[str, tuple[list[str], str]] = {
    "scale": (["scale", "ResNet-20-CIFAR", "--factor", "2", "--out", "OUT"], "s.yaml"),
    "export": (["export", "ResNet-20-CIFAR", "-f", "torchscript", "-o", "OUT"], "m.pt"),
    "bench": (["bench", "ResNet-20-CIFAR", "--budget", "0.2", "--out", "OUT"], "b.json"),
    "recommend": (["recommend", "ResNet-20-CIFAR", "--no-measure", "--target-flops", "2x",
                   "--out", "OUT"], "r.yaml"),
    "study-export": (["study", "STUDY", "--export", "csv", "-o", "OUT"], "e.csv"),
    "report": (["report", "STUDY", "--out", "OUT"], "rep"),
}
#: what a report directory held before (its files are replaced one by one)
OLD_REPORT = {"index.html": b"<p>old report</p>\n", "trials.csv": b"old,rows\n",
              "growth.png": b"old png bytes"}
OLD_FILE = b"precious bytes of an earlier run\n"


def _run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(d: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*"))}


def _complete(name: str, data: bytes) -> bool:
    """A file of a report as a finished write leaves it."""
    if name.endswith(".png"):
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    if name.endswith(".html"):
        return data.rstrip().endswith(b"</html>")
    return data.startswith(b"model,") or b"\n" in data  # trials.csv: a header and rows


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="netscale-fuzz-env-") as d:
        old = os.getcwd()
        os.chdir(d)
        try:
            yield Path(d).resolve()
        finally:
            os.chdir(old)


def _writer_run(capsys: pytest.CaptureFixture[str], study_dir: Path, writer: str,
                fault: Fault, existing: bool) -> tuple[int, str, dict[str, bytes | None],
                                                       dict[str, bytes | None]]:
    """Runs ``writer`` in ``fault.root`` (the cwd) under ``fault``; returns the exit code,
    stderr and the folder's content before and after."""
    argv, name = WRITERS[writer]
    out = fault.root / name
    if existing and writer == "report":
        out.mkdir()
        for n, data in OLD_REPORT.items():
            (out / n).write_bytes(data)
    elif existing:
        out.write_bytes(OLD_FILE)
    before = _snapshot(fault.root)
    args = [{"OUT": name, "STUDY": str(study_dir)}.get(a, a) for a in argv]
    with inject(fault):
        code, _, err = _run_cli(capsys, args)
    return code, err, before, _snapshot(fault.root)


@pytest.mark.parametrize("writer", list(WRITERS))
def test_fuzz_write_failures_are_one_line_and_keep_the_old_file(
        capsys: pytest.CaptureFixture[str], study_dir: Path, writer: str) -> None:
    """Any writer x errno x failing operation (the first or the n-th of its kind under the
    output path), with or without a file there already."""
    seen = _seen_counts(capsys, study_dir, writer)  # the seam sees every kind of operation
    assert all(seen.get(op, 0) >= 1 for op in ("create", "write", "fsync", "rename")), seen
    ops = sorted(op for op in OPS if seen.get(op, 0) > 0)

    # a run takes seconds (export, bench, report) or milliseconds
    runs = {"export": max(2, _N // 4), "bench": max(2, _N // 6), "report": max(2, _N // 4)}
    when = st.sampled_from(ops).flatmap(lambda op: st.tuples(
        st.just(op), st.one_of(st.just(1), st.integers(1, seen[op]))))  # the first or n-th

    @_settings(runs.get(writer, _N), seed=writer)
    @given(when=when, code=st.sampled_from(ERRNOS), existing=st.booleans())
    def inner(when: tuple[str, int], code: int, existing: bool) -> None:
        op, nth = when
        with _workdir() as d:
            fault = Fault(d, op, nth, code)
            rc, err, before, after = _writer_run(capsys, study_dir, writer, fault, existing)
            assert "Traceback" not in err, err
            assert not [p for p in after if is_temp_file(Path(p).name)], after
            if fault.hit is None:  # fewer such operations in this run (or the folder existed)
                assert rc == 0, err
                return
            lines = err.splitlines()
            assert rc == 2 and len(lines) == 1 and lines[0].startswith("netscale "), err
            named = WRITERS[writer][1] if fault.hit.name.startswith(".netscale-probe-") \
                else fault.hit.name  # a writability probe's failure names the --out
            assert WRITERS[writer][1] in lines[0] and named in lines[0], (fault.hit, err)
            rel = str(fault.hit.relative_to(d))
            assert after.get(rel) == before.get(rel), f"{rel} changed after a failed write"
            for name, data in after.items():  # the rest: as before or a complete new file
                if data is not None and data != before.get(name):
                    assert writer == "report" and _complete(name, data), name

    inner()


def _seen_counts(capsys: pytest.CaptureFixture[str], study_dir: Path,
                 writer: str) -> dict[str, int]:
    """The operations under the output path of a clean run of ``writer`` (fresh folder)."""
    with _workdir() as d:
        fault = Fault(d)
        code, err, _, _ = _writer_run(capsys, study_dir, writer, fault, existing=False)
        assert code == 0, err
        return fault.counts


# ----------------------------------------------------------------------------- signals

#: Put first on the study subprocess's PYTHONPATH: sends SIG_NAME to the study's process group
#: at the moment SIG_AT says (after the SIG_K-th checkpoint rename or committed epoch row, or
#: SIG_K seconds after netscale's main() started), once, and never after main() returned.
SIGNAL_HOOK = r"""
import os, signal, sqlite3, sys, threading

_SIG = getattr(signal, os.environ["SIG_NAME"])
_AT = os.environ["SIG_AT"]
_K = float(os.environ["SIG_K"])
_LOG = os.environ["SIG_LOG"]
_DRIVER = os.getpid() == os.getpgid(0)  # the study's driver leads its process group
_lock = threading.Lock()
_state = {"n": 0, "sent": False, "exiting": False}


def _send(what):
    with _lock:
        if _state["sent"] or _state["exiting"]:
            return
        _state["sent"] = True
        with open(_LOG, "a") as f:
            f.write(what + "\n")
        os.killpg(os.getpgid(0), _SIG)


def _count(what):
    _state["n"] += 1
    if _state["n"] == _K:
        _send(what)


if _DRIVER:
    _real_exit = sys.exit

    def _exit(*a):
        with _lock:
            _state["exiting"] = True
        _real_exit(*a)

    sys.exit = _exit

    if _AT == "delay":  # counted from netscale's entry point (its first act: SIGXFSZ)
        _real_signal = signal.signal

        def _signal(sig, handler):
            if sig == signal.SIGXFSZ and not _state.get("timer"):
                _state["timer"] = t = threading.Timer(_K, _send, ("after %.2f s" % _K,))
                t.daemon = True
                t.start()
            return _real_signal(sig, handler)

        signal.signal = _signal

    _real_replace = os.replace

    def _replace(src, dst, *a, **k):
        _real_replace(src, dst, *a, **k)
        if _AT == "ckpt" and os.fspath(dst).endswith("checkpoint.pt"):
            _count("after checkpoint rename %d" % _K)

    os.replace = _replace

    if _AT == "epoch":
        class _Conn(sqlite3.Connection):
            def execute(self, sql, *args):
                if not hasattr(self, "_epoch") or sql.startswith("BEGIN"):
                    self._epoch = False
                if "INTO epochs" in sql:
                    self._epoch = True
                out = super().execute(sql, *args)
                if sql == "COMMIT" and self._epoch:
                    self._epoch = False
                    _count("after epoch row %d" % _K)
                return out

        _real_connect = sqlite3.connect

        def _connect(*a, **k):
            k.setdefault("factory", _Conn)
            return _real_connect(*a, **k)

        sqlite3.connect = _connect
"""
_PROGRESS = re.compile(r"^\[study\] \d+/\d+ done, ")
#: checkpoint renames and epoch rows of the tiny study (2 trials x 2 epochs)
_EVENTS = 4


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny study run to the end without a signal (in this process)."""
    return uninterrupted_results(tmp_path_factory.mktemp("fuzz-env-reference"))


moment = st.one_of(
    st.tuples(st.just("ckpt"), st.integers(1, _EVENTS).map(float)),
    st.tuples(st.just("epoch"), st.integers(1, _EVENTS).map(float)),
    # from netscale's start (before the study's imports) to about the end of the run
    st.tuples(st.just("delay"), st.floats(0.0, 9.0).map(lambda x: round(x, 2))),
)


@_settings(max(4, _N // 5), seed="signal")
@given(sig=st.sampled_from(["SIGTERM", "SIGHUP", "SIGINT"]), when=moment)
def test_fuzz_stop_signals_during_a_study(uninterrupted: dict[str, Any], sig: str,
                                          when: tuple[str, float]) -> None:
    at, k = when
    with tempfile.TemporaryDirectory(prefix="netscale-fuzz-sig-") as tmp:
        d = Path(tmp)
        cfg_path = tiny_study_config(d)
        hook = d / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(SIGNAL_HOOK)
        log = d / "signal.log"
        env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{SRC}", "SIG_NAME": sig,
               "SIG_AT": at, "SIG_K": str(k), "SIG_LOG": str(log), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "netscale", "study", str(cfg_path)],
                                env=env, cwd=d, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, raw = proc.communicate(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err = raw.decode()
        sent = log.read_text().splitlines() if log.exists() else []
        assert "Traceback" not in err, err[-3000:]
        if not sent:  # the moment came after the end
            assert proc.returncode == 0, err[-3000:]
        else:
            lines = [ln for ln in err.splitlines() if not _PROGRESS.match(ln)]
            assert proc.returncode == 130 and len(lines) == 1, (sent, proc.returncode, err)
        db = d / "out" / "results.sqlite"
        if db.exists():
            with Store(db, readonly=True) as store:
                assert store.open_attempts() == []
                assert all(t.status != "failed" and t.failures == 0 for t in store.trials())
        assert not [p for p in d.rglob("*") if is_temp_file(p.name)]
        cfg = load_study_config(cfg_path)
        assert run_study(cfg, stream=None) == {"pending": 0, "running": 0, "done": 2,
                                               "failed": 0}
        assert study_results(db) == uninterrupted
