"""User-facing errors.

Every problem a user can fix (bad config, unknown model, missing data, corrupt file) is raised
as a :class:`NetscaleError`. The CLI prints its message as one line and exits with code 2;
library callers can catch it like any exception.
"""

from __future__ import annotations


class NetscaleError(Exception):
    """An error caused by user input, with a one-line message saying what to fix."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # Keep the message on one line: the CLI promises one-line errors.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class Interrupted(KeyboardInterrupt):
    """A stop (Ctrl-C, SIGTERM, SIGHUP) that the stopped code has already reported in one
    line (a study's ``[study] stopped ...``): the CLI exits with code 130 and prints no line
    of its own."""


class DataNotFound(NetscaleError):
    """A dataset that is named correctly but not on this machine (a missing folder, a known
    dataset not installed): it may exist on the machine that will run the work, so a plan
    (``study --dry-run``) goes on without it, unlike a misspelled dataset name."""
