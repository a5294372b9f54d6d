"""Validation of a results store and of the files found in trial directories.

A SQLite file is trusted as a netscale store only when its tables *and their columns* are
those of the schema, its pages pass SQLite's ``quick_check`` and its ``schema_version`` is
one this netscale writes; a row whose JSON columns do not parse is one line naming the row.
Files a trial directory holds (``bench.json``, a checkpoint's history) are validated before
a recovery writes them into the store: bounded nesting, finite non-negative times, no more
epochs than the recipe trains.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError

#: Columns a store may lack because older netscale versions did not write them; a writable
#: open adds them (see ``Store.__init__``), a read-only one reads the row without them.
OPTIONAL_COLUMNS = {"trials": {"same_as"}}
#: Nesting that a trial directory's JSON file may have (a runtime row is 3 deep).
MAX_JSON_DEPTH = 32
#: Size beyond which a ``bench.json`` is not a runtime measurement.
MAX_BENCH_BYTES = 16 * 2**20


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def schema_columns(schema: str) -> dict[str, set[str]]:
    """{table: columns} of a schema script (built in a throw-away in-memory database)."""
    ref = sqlite3.connect(":memory:")
    try:
        ref.executescript(schema)
        tables = [r[0] for r in ref.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'") if r[0] != "sqlite_sequence"]
        return {t: _columns(ref, t) for t in tables}
    finally:
        ref.close()


def check_store(conn: sqlite3.Connection, path: Path, schema: str, *, tables: set[str],
                version: int, complete: bool) -> None:
    """Refuses (one line) a store whose pages are damaged, whose tables lack columns of
    ``schema`` or whose ``schema_version`` is not ``1..version``. ``tables``: those every
    store has; ``complete``: every table of ``schema`` must be there (a writable store,
    after its schema was created)."""
    where = repr(str(path))
    try:
        bad = [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        bad = [str(exc)]
    if bad != ["ok"]:
        raise NetscaleError(f"results store {where} is damaged ({'; '.join(bad)[:200]}); "
                            "restore it from a copy, or move it away and rerun the study "
                            "(its trial directories refill epochs and runtimes)")
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not present - {"sqlite_sequence"}:
        return  # a new store: its schema is created next
    for table, cols in schema_columns(schema).items():
        if table not in present:
            if complete or table in tables:
                raise NetscaleError(f"{where} is not a netscale results store: table "
                                    f"{table!r} is missing; point at a study directory")
            continue
        optional = set() if complete else OPTIONAL_COLUMNS.get(table, set())
        missing = cols - _columns(conn, table) - optional
        if missing:
            raise NetscaleError(f"{where} is not a netscale results store: table {table!r} "
                                f"lacks column(s) {', '.join(sorted(missing))}; point at a "
                                "study directory or move the file away")
    if "meta" not in present:
        return
    for key in ("config", "data_info"):
        found_json = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if found_json is not None:
            meta_json(found_json[0], key, path)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return
    try:
        found = int(str(row[0]))
    except ValueError:
        found = -1
    if not 1 <= found <= version:
        raise NetscaleError(f"results store {where} has schema_version {str(row[0])[:20]!r}; "
                            f"this netscale reads versions 1 to {version} (upgrade netscale, "
                            "or point at a store it wrote)")


def json_column(text: str | None, column: str, trial_id: str, path: Path,
                empty: Any) -> Any:
    """A JSON column of a trial row, parsed; one line naming the row when it does not parse
    or nests deeper than :data:`MAX_JSON_DEPTH`."""
    if not text:
        return empty
    try:
        value = json.loads(text)
        depth_ok = _depth_ok(value)
    except (ValueError, RecursionError):
        depth_ok, value = False, None
    if not depth_ok or not isinstance(value, type(empty)):
        raise NetscaleError(f"results store {str(path)!r} is damaged: trial {trial_id!r} has "
                            f"an invalid {column!r} value; restore the store from a copy, or "
                            "move it away and rerun the study")
    return value


def meta_json(text: str | None, key: str, path: Path) -> dict[str, Any]:
    """A JSON object kept in the store's ``meta`` table ({} when absent); one line when it
    does not parse."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict) or not _depth_ok(value):
        raise NetscaleError(f"results store {str(path)!r} is damaged: meta {key!r} is not a "
                            "JSON object; restore the store from a copy, or move it away and "
                            "rerun the study")
    return value


def _depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests at most ``limit`` deep (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


def _finite_nonneg(v: Any) -> bool:
    return (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                          and math.isfinite(v) and v >= 0))


def read_bench_file(path: Path) -> list[dict[str, Any]] | None:
    """The runtime rows of a trial's ``bench.json`` when it is a valid measurement (a
    regular file of bounded size, a non-empty list of rows, bounded nesting, each row's
    ``time_ms`` and ``std_ms`` finite and non-negative); None otherwise (the trial measures
    again and rewrites it)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_BENCH_BYTES:
            return None
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(rows, list) and rows and _depth_ok(rows)
            and all(isinstance(r, dict) for r in rows)):
        return None
    for r in rows:
        if r.get("mode") not in ("infer", "train") or not all(
                _finite_nonneg(r.get(k)) for k in ("time_ms", "std_ms")):
            return None
    return rows


def valid_history(history: Sequence[Mapping[str, Any]], epochs: int) -> list[dict[str, Any]]:
    """The entries of a checkpoint's history that a recovery may write as epoch rows: each a
    mapping with an integer ``epoch`` in ``1..epochs`` (the recipe's), one per epoch, first
    kept; with ``epochs`` 0 (unknown) nothing is trusted."""
    out: dict[int, dict[str, Any]] = {}
    for h in history[:max(epochs, 0)]:
        e = h.get("epoch") if isinstance(h, Mapping) else None
        if isinstance(e, int) and not isinstance(e, bool) and 1 <= e <= epochs \
                and _depth_ok(dict(h), 4):
            out.setdefault(e, dict(h))
    return [out[e] for e in sorted(out)]
