"""User-facing errors.

Every problem a user can fix (bad config, unknown model, missing data, corrupt file) is raised
as a :class:`NetscaleError`. The CLI prints its message as one line and exits with code 2;
library callers can catch it like any exception.
"""

from __future__ import annotations


#: The longest message a NetscaleError carries (characters); longer ones are cut.
MAX_MESSAGE = 1000
_MAX_SOURCE = 20 * MAX_MESSAGE


class NetscaleError(Exception):
    """An error caused by user input, with a one-line message saying what to fix."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # Keep the message on one line (the CLI promises one-line errors) and bounded: a
        # value quoted in it (a huge list, a 10 MB string) never floods the terminal.
        text = " ".join(str(message)[:_MAX_SOURCE].split())
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE - 3] + "..."
        super().__init__(text)

    @property
    def message(self) -> str:
        return str(self)
