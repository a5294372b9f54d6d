"""Text that leaves netscale for a terminal or a spreadsheet, made safe.

* :func:`visible`: control characters (ESC, CR, LF, BEL, ... and the C1 range) shown as
  ``\\x1b``-style escapes, so a name read from a file cannot move the cursor, recolour or
  retitle a terminal;
* :func:`csv_cell` and :func:`csv_writer` / :func:`csv_dict_writer`: every CSV netscale
  writes goes through these; a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return is prefixed with ``'`` so that a spreadsheet shows it as text instead of
  running it as a formula (``=HYPERLINK(...)``). Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str) -> str:
    """``text`` (a name: one line) with every control character escaped as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def csv_cell(value: Any) -> Any:
    """``value`` safe as a CSV cell: text that a spreadsheet would run as a formula gets a
    leading ``'``; every other value is unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _SafeWriter:
    """A ``csv.writer`` whose rows go through :func:`csv_cell`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._inner.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(f: Any, **kwargs: Any) -> Any:
    """``csv.writer(f, **kwargs)`` with formula-safe cells."""
    return _SafeWriter(csv.writer(f, **kwargs))


class SafeDictWriter(csv.DictWriter):  # type: ignore[type-arg]  # generic only in typeshed
    """``csv.DictWriter`` with formula-safe cells (header names included)."""

    def writeheader(self) -> Any:
        return self.writer.writerow([csv_cell(str(n)) for n in self.fieldnames])

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: csv_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for r in rowdicts:
            self.writerow(r)


def csv_dict_writer(f: Any, fieldnames: Any, **kwargs: Any) -> SafeDictWriter:
    """``csv.DictWriter(f, fieldnames, **kwargs)`` with formula-safe cells."""
    return SafeDictWriter(f, fieldnames, **kwargs)
