"""`netscale` command-line entry point.

Each sub-command lives in its own module under ``netscale.cli`` and exposes two functions:

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
from collections.abc import Sequence
from typing import NoReturn

from netscale import __version__
from netscale.errors import NetscaleError

# Modules that register sub-commands, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "netscale.cli.info",
    "netscale.cli.scale",
    "netscale.cli.bench",
    "netscale.cli.train",
    "netscale.cli.study",
    "netscale.cli.laws",
    "netscale.cli.export",
)


_PATH_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                          errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ENOENT,
                          errno.EEXIST, errno.ELOOP, errno.EFBIG})


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netscale",
        description=(
            "Scale neural networks fast and accurately. Flops are multiply-adds (MACs), "
            "as in 'Fast and Accurate Model Scaling' (Dollár et al., CVPR 2021)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"netscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command package not installed in this build
            if exc.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NetscaleError as exc:
        print(f"netscale {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
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
    except BrokenPipeError:  # e.g. `netscale models | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
