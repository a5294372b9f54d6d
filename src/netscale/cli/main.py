"""`netscale` command-line entry point.

Each sub-command lives in its own module under ``netscale.cli`` (listed in :data:`COMMANDS`,
imported only when one of its sub-commands runs) and exposes two functions:

* ``add_parser(subparsers) -> None``: registers one or more sub-commands, each with
  ``set_defaults(func=run_function)``;
* the run functions, ``(args: argparse.Namespace) -> int``.

User errors are raised as :class:`netscale.errors.NetscaleError` and printed here as one line
on stderr with exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from netscale import __version__
from netscale.errors import Interrupted, NetscaleError
from netscale.util.signals import stop_on_signals

# Every sub-command, in the order --help lists it: the module (under netscale.cli) that
# registers it and its one-line help. The module is imported only when its sub-command runs,
# so `netscale --help` and argument errors import no torch/scipy (tests/test_cli_startup.py
# checks that this help is the module's own).
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("info", "list the named models with their complexity"),
    "info": ("info", "exact flops, params and activations of a model, spec or nn.Module"),
    "scale": ("scale", "scale a model by a flops factor with a strategy (d, w, r, dw, dr, wr, "
                       "dwr, dWr…)"),
    "bench": ("bench", "measure runtime (ms/batch, images/s, memory) and fit runtime vs "
                       "flops/params/acts"),
    "train": ("train", "train a model or spec on a dataset (resumable; DDP under torchrun)"),
    "eval": ("train", "evaluate a checkpoint: top-1/top-5 error and loss"),
    "study": ("study", "run a scaling study (base x strategy x factor): scale, count, bench, "
                       "train"),
    "report": ("study", "HTML report, PNG plots and CSV of a study"),
    "quickstart": ("study", "a ready study on offline data (Fashion-MNIST or digits), trained, "
                            "timed, reported"),
    "fit": ("laws", "fit scaling laws (error vs flops) per strategy of a study, with intervals"),
    "recommend": ("laws", "choose a scaling strategy (and fast-scaling α) for a flops target "
                          "under latency / params / activations limits"),
    "export": ("export", "export a (scaled) model as TorchScript, torch.export (.pt2) or ONNX"),
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``netscale`` parser. The modules of ``commands`` (default: every sub-command) are
    imported and register their sub-commands in full; every other sub-command is listed by
    name and one-line help only."""
    parser = _Parser(
        prog="netscale",
        description=(
            "Scale neural networks fast and accurately. Flops are multiply-adds (MACs), "
            "as in 'Fast and Accurate Model Scaling' (Dollár et al., CVPR 2021)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"netscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = set(COMMANDS) if commands is None else set(commands)
    modules = {COMMANDS[c][0] for c in wanted if c in COMMANDS}
    registered: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if module not in modules:
            sub.add_parser(name, help=help_text, add_help=False)
        elif module not in registered:
            registered.add(module)
            _import_command(module).add_parser(sub)
    return parser


def _import_command(module: str) -> Any:
    name = f"netscale.cli.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # a command package not installed in this build
        if exc.name == name:
            raise NetscaleError(f"this netscale build has no {module!r} commands; reinstall "
                                "netscale") from None
        raise


def command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (its first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


#: The longest error message printed (characters): a value quoted in a message (a huge
#: list, a 10 MB string) never floods the terminal.
MAX_MESSAGE = 1000


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line, at most about ``limit`` characters (its start and its end
    kept: the end often says how to fix it)."""
    text = " ".join(message[:50 * limit].split()) if len(message) > limit else message
    if len(text) <= limit:
        return text
    tail = limit // 4
    return f"{text[:limit - tail - 5]} ... {text[-tail:]}"


def _environment_error() -> str | None:
    """What in the process's environment makes every command fail (closed stdout, a deleted
    working directory), as a one-line message; None when all is well. Also makes output
    robust: characters the output encoding lacks (``×``, ``α`` under
    ``PYTHONIOENCODING=ascii``, names from non-UTF-8 paths) are escaped, and a write beyond
    ``ulimit -f`` fails with EFBIG (one line) instead of killing the process (SIGXFSZ)."""
    import signal

    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        if sys.stdout is None:
            raise OSError
        os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation) as exc:
        if not isinstance(exc, io.UnsupportedOperation):  # (a capture stream has no fd)
            return ("standard output is closed; redirect it instead (e.g. > out.txt or "
                    "> /dev/null)")
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a stream already in use
                reconfigure(errors="backslashreplace")
    if sys.stdout is sys.__stdout__ and not isinstance(sys.stdout, _Stdout):
        sys.stdout = _Stdout(sys.stdout)
    try:
        os.getcwd()
    except OSError:
        return ("the current directory no longer exists (deleted or unmounted); cd to an "
                "existing directory")
    return None


class _StdoutRaw(io.RawIOBase):
    """fd 1 as a raw stream that remembers its first write error."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, b: Any) -> int:
        try:
            return os.write(self.fd, b)
        except OSError as exc:
            self.error = self.error or exc
            raise


class _Stdout(io.TextIOWrapper):
    """The process's stdout, over :class:`_StdoutRaw`: a failed write (/dev/full, ulimit -f)
    is known to be stdout's, whatever raised it."""

    def __init__(self, old: Any) -> None:
        old.flush()
        self.raw_out = _StdoutRaw(old.fileno())
        super().__init__(io.BufferedWriter(self.raw_out), encoding=old.encoding,
                         errors="backslashreplace", line_buffering=old.line_buffering)


def _stdout_failed() -> OSError | None:
    """The error writing stdout raised (it is broken: /dev/full, a file-size limit), after
    pointing it at /dev/null so that the interpreter's own final flush stays silent."""
    out = sys.stdout
    error = out.raw_out.error if isinstance(out, _Stdout) else None
    if error is None:
        try:
            if out is not None:
                out.flush()
            return None
        except OSError as exc:
            error = exc
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, out.fileno())
    os.close(devnull)
    return error


def _stdout_message(command: str, exc: OSError) -> str:
    return (f"netscale {command}: error: cannot write to standard output "
            f"({os.strerror(exc.errno) if exc.errno else exc}); redirect it to a file or "
            "device that accepts it")


def _one_line_os_error(command: str, exc: OSError) -> str:
    what = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
    if what is None:
        return (f"netscale {command}: error: {reason} (while reading or writing a file); "
                "check free disk space, file-size limits (ulimit -f) and permissions")
    if isinstance(what, bytes):
        what = os.fsdecode(what)
    return f"netscale {command}: error: {reason}: {str(what)!r}; check the path and its " \
           "permissions"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    try:
        with stop_on_signals():
            problem = _environment_error()
            if problem is not None:
                print(f"netscale{' ' + command if command else ''}: error: {problem}",
                      file=sys.stderr)
                return 2
            return _run(argv, command)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: one line (or the command's)
        if not isinstance(exc, Interrupted):
            why = f" ({exc})" if str(exc) else ""
            print(f"netscale{' ' + command if command else ''}: interrupted{why}",
                  file=sys.stderr)
        return 130


def _run(argv: list[str], command: str | None) -> int:
    try:
        parser = build_parser([command] if command else [])
    except NetscaleError as exc:
        print(f"netscale {command}: error: {bounded(str(exc))}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        failed = _stdout_failed()
        if failed is None:
            return code
        print(_stdout_message(args.command, failed), file=sys.stderr)
        return 2
    except NetscaleError as exc:
        print(f"netscale {args.command}: error: {bounded(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `netscale models | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file the user pointed at cannot be read or written (permissions, read-only file
        # system, disk full, a directory where a file is expected), or stdout is broken:
        # one line, never a traceback. Commands check their paths up front; this is the
        # safety net.
        if exc.filename is None and _stdout_failed() is not None:
            print(_stdout_message(args.command, exc), file=sys.stderr)
            return 2
        print(_one_line_os_error(args.command, exc), file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if not str(exc).startswith("Symlink loop from "):  # pathlib's resolve() on a loop
            raise
        print(f"netscale {args.command}: error: {str(exc)[:300]} (a loop of symbolic links); "
              "remove the link or choose another path", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"netscale {args.command}: error: an input is nested too deeply (brackets or "
              "mappings inside each other hundreds of levels deep); flatten it",
              file=sys.stderr)
        return 2
    except OverflowError as exc:
        print(f"netscale {args.command}: error: a number is too large ({str(exc)[:80]}); "
              "numbers must be within the float range (about 1.8e308) and counts far "
              "below it", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"netscale {args.command}: error: out of memory; use smaller inputs (sizes, "
              "batch sizes, files)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
