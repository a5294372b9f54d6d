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
import errno
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from netscale import __version__
from netscale.errors import NetscaleError

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


_PATH_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                          errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ENOENT,
                          errno.EEXIST, errno.ELOOP, errno.EFBIG})


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    try:
        parser = build_parser([command] if command else [])
    except NetscaleError as exc:
        print(f"netscale {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NetscaleError as exc:
        print(f"netscale {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `netscale models | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file the user pointed at cannot be read or written (permissions, read-only file
        # system, disk full, a directory where a file is expected): one line, never a
        # traceback. Commands check their paths up front; this is the safety net.
        if exc.filename is None or exc.errno not in _PATH_ERRNOS:
            raise
        what = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        print(f"netscale {args.command}: error: {os.strerror(exc.errno)}: {str(what)!r}; "
              "check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"netscale {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
