"""Results trained anywhere: load a CSV or JSON file of results as a study.

``netscale fit``, ``recommend``, ``report`` and ``bench --fit`` take, besides a study directory,
a file of results (format: docs/results-format.md). :func:`load_source` dispatches on the
source (a directory is a study; ``.csv``/``.json`` is a results file) and returns a
:class:`~netscale.advise.sources.StudyResults` (a :class:`~netscale.advise.sources.ResultsFile`
for a file) with the :class:`~netscale.study.store.TrialRow` rows a study gives, so every
consumer sees one row type.

Columns (case-insensitive, order free):

* ``group`` (alias ``strategy``): a strategy or family name; each group is fitted on its own.
  A group named ``base`` is the shared unscaled model and belongs to every group's curve
  (as in a study and its ``--export``).
* ``flops`` (multiply-adds; ``3.2G`` style suffixes allowed) or ``model``: anything netscale
  can count (a named model, a spec file, a pycls YAML), counted analytically. When both are
  given, ``flops`` wins and the model only fills missing ``params``/``acts``.
* the top-1 error: ``top1_err_pct`` (percent), ``top1_err_frac`` (fraction), or ``top1_err``
  (a fraction unless ``percent=True``); contradictory or ambiguous input is refused.
  An empty error keeps the row as "no result" (listed, not fitted).
* optional ``params``, ``acts``, ``time_ms`` (ms per batch), ``batch_size`` (of time_ms,
  default 1), ``device``, ``mode`` (infer or train, default infer), ``seed``, ``epochs``,
  ``status`` (``done`` unless given).
* optional ``n_val`` (validation images each error was measured on) and ``val_shared``
  (true when every row was scored on the same validation images, the default when ``n_val``
  is given; false when each seed had its own): the same in every row. They make the error
  intervals count the validation sampling (docs/statistics.md).

Pure Python: torch is never imported (counting a ``model`` is analytic).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netscale.advise.sources import FileInfo, ResultsFile, StudyResults, is_study_dir, load_study
from netscale.complexity import complexity_totals
from netscale.errors import NetscaleError
from netscale.scaling.strategy import BASE_STRATEGY
from netscale.specs import resolve_spec
from netscale.study.store import TrialRow
from netscale.util.io import MAX_RESULTS_BYTES, read_input_text
from netscale.util.safeload import MAX_INT, load_json, short_repr
from netscale.util.text import visible
from netscale.util.units import parse_count

RESULT_SUFFIXES = (".csv", ".json")
ERR_PCT = ("top1_err_pct", "top1_err_percent", "top1_err_%")
ERR_FRAC = ("top1_err_frac", "top1_err_fraction")
ERR_PLAIN = "top1_err"
OPTIONAL = ("params", "acts", "time_ms", "batch_size", "device", "mode", "seed", "epochs",
            "status", "id", "base", "factor", "top5_err", "n_val", "val_shared")
GROUP_ALIASES = ("group", "strategy")
IMPORTED = "imported"  # the base name of a results file's trials
_STATUSES = ("done", "pending", "running", "failed")


def is_results_file(source: str | Path) -> bool:
    p = Path(source)
    return p.suffix.lower() in RESULT_SUFFIXES and not p.is_dir()


def load_source(source: str | Path, *, percent: bool | None = None,
                 require_error: bool = True) -> StudyResults:
    """A study directory as :class:`StudyResults`, or a CSV/JSON results file as
    :class:`ResultsFile`.

    ``percent``: the plain ``top1_err`` column is in percent (True) or a fraction (False /
    None: fraction, refused when the values look like percent). ``require_error=False``
    accepts a file without an error column (timings only, for ``bench --fit --from``).
    One-line :class:`NetscaleError` for every problem with the file.
    """
    p = Path(source)
    if is_study_dir(p) or p.is_dir():
        if percent is not None:
            raise NetscaleError(f"--percent/--fraction apply to a results file (.csv or .json); "
                                f"{str(p)!r} is a study directory, whose errors are known: "
                                "drop the flag")
        return load_study(p)
    if p.suffix.lower() not in RESULT_SUFFIXES:
        if not p.exists():
            raise NetscaleError(f"{str(p)!r} does not exist; give a study directory or a "
                                "results file (.csv or .json, see docs/results-format.md)")
        raise NetscaleError(f"{str(p)!r} is neither a study directory nor a results file; "
                            "results files end in .csv or .json (see docs/results-format.md)")

    text = read_input_text(p, "results file", MAX_RESULTS_BYTES, encoding="utf-8-sig")
    fmt = p.suffix.lower().lstrip(".")
    raw = _read_csv(text, p) if fmt == "csv" else _read_json(text, p)
    return rows_to_study(raw, source=p, fmt=fmt, percent=percent, require_error=require_error)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _read_csv(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file (numbered from 1). Comment lines (``#`` first) and blank lines
    are skipped only between records: a quoted field spanning lines stays one field."""
    reader = csv.reader(io.StringIO(_strip_comments(text)))
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        for rec in reader:
            if not rec or all(not c.strip() for c in rec):
                continue
            if header is None:
                header = _csv_header(rec, path)
                continue
            if len(rec) > len(header):
                raise NetscaleError(f"{path}: data row {len(rows) + 1} has more fields than "
                                    f"the header ({len(header)} columns)")
            rows.append((len(rows) + 1, dict(zip(header, rec))))
    except csv.Error as exc:
        raise NetscaleError(f"{path}: not a valid CSV file ({exc})") from None
    if header is None:
        raise NetscaleError(f"results file {str(path)!r} is empty; it needs a header line "
                            "(group,flops,top1_err_pct,...) and one row per trained model")
    if not rows:
        raise NetscaleError(f"results file {str(path)!r} has a header but no rows")
    return rows


def _strip_comments(text: str) -> str:
    """``text`` without the lines that start with ``#`` outside a quoted field (quotes are
    balanced per field; an escaped quote is doubled, so the parity of a line's quotes says
    whether a field continues on the next line)."""
    out = []
    inside = False
    for line in text.splitlines(keepends=True):
        if not inside and line.lstrip().startswith("#"):
            continue
        out.append(line)
        if line.count('"') % 2:
            inside = not inside
    return "".join(out)


def _csv_header(rec: list[str], path: Path) -> list[str]:
    """The header's column names; a name given twice (case-insensitive) is refused."""
    names = [c.strip().lower() for c in rec]
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise NetscaleError(f"{path}: column {n!r} appears twice in the header; keep one")
        seen.add(n)
    return [c.strip() for c in rec]


def _read_json(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not text.strip():
        raise NetscaleError(f"results file {str(path)!r} is empty; it needs a list of objects "
                            '(e.g. [{"group": "dWr", "flops": 4e8, "top1_err": 0.25}])')

    data = load_json(text, str(path))
    if isinstance(data, Mapping):
        for key in ("results", "rows", "trials"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            raise NetscaleError(f"{path}: expected a list of result objects (or an object with "
                                "a 'results' list)")
    if not isinstance(data, list):
        raise NetscaleError(f"{path}: expected a list of result objects")
    if not data:
        raise NetscaleError(f"results file {str(path)!r} has no rows (an empty list)")
    out = []
    for i, r in enumerate(data, start=1):
        if not isinstance(r, Mapping):
            raise NetscaleError(f"{path}: row {i} is not an object (got {type(r).__name__})")
        out.append((i, dict(r)))
    return out


# --------------------------------------------------------------------------------------------
# rows -> trials
# --------------------------------------------------------------------------------------------


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _number(v: Any, col: str, where: str, *, count: bool = False) -> float:
    if isinstance(v, bool):
        raise NetscaleError(f"{where}: {col} = {v!r} is not a number")
    if isinstance(v, int) and abs(v) > MAX_INT:
        raise NetscaleError(f"{where}: {col} = {short_repr(v)} is beyond the float range "
                            "(about 1.8e308)")
    if isinstance(v, (int, float)):
        x = float(v)
    else:
        text = str(v).strip()
        try:
            x = float(text)
        except ValueError:
            if count:
                try:
                    x = parse_count(text, col)
                except NetscaleError:
                    raise NetscaleError(f"{where}: {col} = {text!r} is not a number (write "
                                        "e.g. 3.2e9 or 3.2G)") from None
            else:
                raise NetscaleError(f"{where}: {col} = {text!r} is not a number") from None
    if not math.isfinite(x):
        raise NetscaleError(f"{where}: {col} = {v!r} is not a finite number")
    return x


def _error_column(keys: Sequence[str], percent: bool | None, path: Path) -> tuple[str, bool]:
    """(column, in_percent)."""
    pct = [k for k in keys if k in ERR_PCT]
    frac = [k for k in keys if k in ERR_FRAC]
    plain = [k for k in keys if k == ERR_PLAIN]
    found = pct + frac + plain
    if not found:
        raise NetscaleError(f"{path}: no top-1 error column; add top1_err_pct (percent) or "
                            f"top1_err_frac / top1_err (fraction); columns: {', '.join(keys)}")
    if len(found) > 1:
        raise NetscaleError(f"{path}: several top-1 error columns ({', '.join(found)}); keep one")
    col = found[0]
    if col in ERR_PCT:
        if percent is False:
            raise NetscaleError(f"{path}: column {col} says percent but --fraction was given; "
                                "drop one of them")
        return col, True
    if col in ERR_FRAC:
        if percent is True:
            raise NetscaleError(f"{path}: column {col} says fraction but --percent was given; "
                                "drop one of them")
        return col, False
    return col, bool(percent)


def rows_to_study(raw: Sequence[tuple[int, Mapping[str, Any]]], *, source: str | Path,
                  fmt: str = "rows", percent: bool | None = None,
                  require_error: bool = True) -> ResultsFile:
    """Validated result rows -> :class:`ResultsFile` of ``TrialRow`` (status ``done`` for
    rows with an error, ``pending`` for rows without)."""
    path = Path(source)
    keys, norm_rows = _normalized_rows(raw)
    cols = _columns(keys, path, percent, require_error)
    counted: dict[str, tuple[int, int, int, int, dict[str, Any]]] = {}
    items = [_row_item(line, d, cols, counted) for line, d in norm_rows]
    groups = _check_items(items, cols)
    missing_cols = [c for c in ("params", "acts") if all(i[c] is None for i in items)]
    val = _validation_set(norm_rows, path)
    info = FileInfo(path=str(path), format=fmt, rows=len(items), groups=groups,
                    error_column=cols.error, error_unit="percent" if cols.in_pct else "fraction",
                    counted_models=sorted(counted), missing_columns=missing_cols,
                    n_val=val.get("n_val"), val_shared=val.get("val_shared"))
    data_info = {"val_size": val["n_val"], "val_shared": val["val_shared"]} if val else {}
    return ResultsFile(path=path, name=path.stem, config={"name": path.stem},
                       trials=_trial_rows(items, cols.in_pct), file=info, data_info=data_info)


_TRUE = ("true", "yes", "1", "shared")
_FALSE = ("false", "no", "0", "independent")


def _validation_set(rows: Sequence[tuple[int, Mapping[str, Any]]], path: Path
                    ) -> dict[str, Any]:
    """``{"n_val": N, "val_shared": bool}`` from the optional columns (one value per file),
    or {} when the file does not say."""
    ns = {str(d.get("n_val")).strip() for _, d in rows if not _blank(d.get("n_val"))}
    sh = {str(d.get("val_shared")).strip().lower() for _, d in rows
          if not _blank(d.get("val_shared"))}
    if not ns:
        if sh:
            raise NetscaleError(f"{path}: val_shared needs an n_val column (the number of "
                                "validation images)")
        return {}
    if len(ns) > 1:
        raise NetscaleError(f"{path}: n_val differs between rows ({', '.join(sorted(ns))}); "
                            "give one validation-set size per file")
    n = _number(next(iter(ns)), "n_val", path.name)
    if n < 1 or n != int(n):
        raise NetscaleError(f"{path.name}: n_val must be a whole number of images >= 1, "
                            f"got {n:g}")
    if len(sh) > 1 or (sh and not sh <= {*_TRUE, *_FALSE}):
        raise NetscaleError(f"{path}: val_shared must be true or false, the same in every "
                            f"row; got {', '.join(sorted(sh))}")
    return {"n_val": int(n), "val_shared": not (sh and next(iter(sh)) in _FALSE)}


#: the statuses of `netscale bench --out` rows, as trial statuses (a runtime file's rows)
_BENCH_STATUSES = {"ok": "done", "oom": "failed"}

@dataclass(frozen=True)
class _Columns:
    """Where a results file keeps its group and its error (and whether in percent)."""

    path: Path
    group: str
    error: str
    in_pct: bool
    timings_only: bool = False  # a runtime file (no error needed): a named model is its group


def _normalized_rows(raw: Sequence[tuple[int, Mapping[str, Any]]]
                     ) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """The column names in order of appearance and the rows with lower-cased keys."""
    keys: list[str] = []
    norm_rows = []
    for line, r in raw:
        d = {str(k).strip().lower(): v for k, v in r.items() if k is not None}
        for k in d:
            if k not in keys:
                keys.append(k)
        norm_rows.append((line, d))
    return keys, norm_rows


def _columns(keys: Sequence[str], path: Path, percent: bool | None,
             require_error: bool) -> _Columns:
    gcol = next((k for k in GROUP_ALIASES if k in keys), None)
    if gcol is None:
        raise NetscaleError(f"{path}: no 'group' column (a strategy or family name per row); "
                            f"columns: {', '.join(keys)}")
    if "flops" not in keys and "model" not in keys:
        raise NetscaleError(f"{path}: no 'flops' (multiply-adds) or 'model' (a model netscale "
                            f"can count) column; columns: {', '.join(keys)}")
    if not require_error and not any(k in keys for k in (*ERR_PCT, *ERR_FRAC, ERR_PLAIN)):
        ecol, in_pct = ERR_PLAIN, False  # timings only: every row without an error
    else:
        ecol, in_pct = _error_column(keys, percent, path)
    return _Columns(path, gcol, ecol, in_pct, timings_only=not require_error)


def _row_item(line: int, d: Mapping[str, Any], cols: _Columns,
              counted: dict[str, tuple[int, int, int, int, dict[str, Any]]]) -> dict[str, Any]:
    """One validated row: group, counts (from the model when not given), error, timing."""
    where = f"{cols.path.name} row {line}"
    group = d.get(cols.group)
    if _blank(group) and cols.timings_only and not _blank(d.get("model")):
        group = d["model"]  # `bench --out` rows of models named on the command line
    if _blank(group):
        raise NetscaleError(f"{where}: empty {cols.group}; every row needs a group name")
    item: dict[str, Any] = {"group": visible(str(group).strip()), "line": line, "spec": {},
                            "resolution": 0}
    item.update(_row_counts(d, where, cols.path, counted, item))
    item["err"] = _row_error(d, where, cols)
    item["top5"] = (None if _blank(d.get("top5_err"))
                    else _number(d["top5_err"], "top5_err", where))
    item.update(_row_timing(d, where))
    seed = 0.0 if _blank(d.get("seed")) else _number(d["seed"], "seed", where)
    if seed != int(seed):
        raise NetscaleError(f"{where}: seed must be an integer, got {seed:g}")
    item["seed"] = int(seed)
    ep = None if _blank(d.get("epochs")) else _number(d["epochs"], "epochs", where)
    if ep is not None and (ep < 0 or ep != int(ep)):
        raise NetscaleError(f"{where}: epochs must be a whole number >= 0, got {ep:g}")
    item["epochs"] = int(ep) if ep is not None else 0
    status = None if _blank(d.get("status")) else str(d["status"]).strip().lower()
    if cols.timings_only and status in _BENCH_STATUSES:  # a `netscale bench --out` row
        status = _BENCH_STATUSES[status]
    if status is not None and status not in _STATUSES:
        raise NetscaleError(f"{where}: status must be one of {', '.join(_STATUSES)}, got "
                            f"{status!r}")
    item["status"] = status or ("done" if item["err"] is not None else "pending")
    return item


def _row_counts(d: Mapping[str, Any], where: str, path: Path,
                counted: dict[str, tuple[int, int, int, int, dict[str, Any]]],
                item: dict[str, Any]) -> dict[str, Any]:
    """flops (multiply-adds), params, acts and model of a row; the columns a row leaves
    empty are counted from its model (once per model, into ``counted``; its spec and
    resolution go into ``item``)."""
    flops = None if _blank(d.get("flops")) else _number(d["flops"], "flops", where,
                                                          count=True)
    params = None if _blank(d.get("params")) else _number(d["params"], "params", where,
                                                            count=True)
    acts = None if _blank(d.get("acts")) else _number(d["acts"], "acts", where, count=True)
    model = None if _blank(d.get("model")) else str(d["model"]).strip()
    if model is not None and (flops is None or params is None or acts is None):
        if model not in counted:
            counted[model] = _count_model(model, path, where)
        f, pa, ac, res, spec = counted[model]
        flops = f if flops is None else flops
        params = pa if params is None else params
        acts = ac if acts is None else acts
        item["spec"], item["resolution"] = spec, res
    if flops is None:
        raise NetscaleError(f"{where}: no flops and no model; give flops (multiply-adds) "
                            "or a model netscale can count")
    for col, v in (("flops", flops), ("params", params), ("acts", acts)):
        if v is not None and v <= 0:
            raise NetscaleError(f"{where}: {col} must be positive, got {v:g}")
    return {"flops": flops, "params": params, "acts": acts, "model": model}


def _row_error(d: Mapping[str, Any], where: str, cols: _Columns) -> float | None:
    ecol = cols.error
    err = None if _blank(d.get(ecol)) else _number(d[ecol], ecol, where)
    if err is None:
        return None
    if cols.in_pct:
        if not 0 <= err <= 100:
            raise NetscaleError(f"{where}: {ecol} = {err:g} is not a percentage in "
                                "[0, 100]")
    elif not 0 <= err <= 1:
        hint = (" (looks like percent: name the column top1_err_pct or pass --percent)"
                if 1 < err <= 100 else "")
        raise NetscaleError(f"{where}: {ecol} = {err:g} is not a fraction in [0, 1]"
                            f"{hint}")
    return err


def _row_timing(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    """time_ms (per batch), batch_size, device and mode of a row."""
    tm = None if _blank(d.get("time_ms")) else _number(d["time_ms"], "time_ms", where)
    if tm is not None and tm <= 0:
        raise NetscaleError(f"{where}: time_ms must be positive, got {tm:g}")
    bs = None if _blank(d.get("batch_size")) else _number(d["batch_size"], "batch_size",
                                                          where)
    if bs is not None and (bs < 1 or bs != int(bs)):
        raise NetscaleError(f"{where}: batch_size must be a positive integer, got {bs:g}")
    device = "external" if _blank(d.get("device")) else str(d["device"]).strip()
    mode = "infer" if _blank(d.get("mode")) else str(d["mode"]).strip().lower()
    if mode not in ("infer", "train"):
        raise NetscaleError(f"{where}: mode must be infer or train, got {mode!r}")
    return {"time_ms": tm, "batch_size": int(bs) if bs is not None else 1, "device": device,
            "mode": mode}


def _check_items(items: Sequence[Mapping[str, Any]], cols: _Columns) -> list[str]:
    """The file's groups, after the checks that need every row."""
    errs = [i["err"] for i in items if i["err"] is not None]
    if cols.in_pct and errs and max(errs) <= 1.0:
        raise NetscaleError(f"{cols.path}: {cols.error} is declared percent but every value is "
                            f"<= 1 (max {max(errs):g}): they look like fractions; use a "
                            "top1_err_frac column (or drop --percent)")
    groups = sorted({i["group"] for i in items})
    if groups == [BASE_STRATEGY]:
        raise NetscaleError(f"{cols.path}: every row is in group 'base' (the shared unscaled "
                            "model); name the groups (strategies or families)")
    return groups


def _trial_rows(items: Sequence[Mapping[str, Any]], in_pct: bool) -> list[TrialRow]:
    """One ``TrialRow`` per item; its factor is relative to the smallest model of its group
    (or of the base group)."""
    smallest: dict[str, float] = {}  # per group: one pass, not one per row
    for i in items:
        g = i["group"]
        smallest[g] = min(smallest.get(g, math.inf), i["flops"])
    base_min = smallest.get(BASE_STRATEGY, math.inf)
    trials = []
    seen: dict[str, int] = {}
    for i in items:
        g = i["group"]
        factor = i["flops"] / min(smallest[g], base_min)
        tid = f"{g}:{i['model'] or _short(i['flops'])}:s{i['seed']}"
        seen[tid] = seen.get(tid, 0) + 1
        if seen[tid] > 1:
            tid = f"{tid}#{seen[tid]}"
        frac = None if i["err"] is None else (i["err"] / 100.0 if in_pct else i["err"])
        t5 = None if i["top5"] is None else (i["top5"] / 100.0 if in_pct else i["top5"])
        bench = []
        if i["time_ms"] is not None:
            bench.append({"mode": i["mode"], "status": "ok", "time_ms": i["time_ms"],
                          "batch_size": i["batch_size"], "device": i["device"],
                          "flops": i["flops"], "params": i["params"], "acts": i["acts"]})
        trials.append(TrialRow(
            id=tid, base=IMPORTED, strategy=g, factor=float(factor), seed=i["seed"],
            status=i["status"], attempts=1, failures=0,
            spec=i["spec"] or {"name": i["model"] or tid},
            flops=i["flops"], params=i["params"] if i["params"] is not None else 0,
            acts=i["acts"] if i["acts"] is not None else 0, resolution=i["resolution"],
            flops_factor=float(factor), bench=bench,
            time_ms=i["time_ms"] if i["mode"] == "infer" else None,
            top1_err=frac if i["status"] == "done" else None, top5_err=t5,
            epochs_done=i["epochs"]))
    return trials


def _short(flops: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.4g}{unit}"
    return f"{flops:.4g}"


def _count_model(model: str, path: Path, where: str
                 ) -> tuple[int, int, int, int, dict[str, Any]]:
    """(flops, params, acts, resolution, spec dict) of a model, counted analytically."""

    ref = model
    cand = path.parent / model
    if not Path(model).is_absolute() and cand.is_file():
        ref = str(cand)  # spec files are relative to the results file
    try:
        spec = resolve_spec(ref)
        c = complexity_totals(spec)
    except NetscaleError as exc:
        raise NetscaleError(f"{where}: cannot count model {model!r}: {exc}") from None
    return c.flops, c.params, c.acts, int(spec.resolution), spec.to_dict()


def timing_rows(study: StudyResults) -> list[dict[str, Any]]:
    """Rows with a time (ms per batch) for the runtime model: flops, params, acts, time_ms,
    mode, batch_size, device, setting (memory format + precision), model."""
    out = []
    for t in study.trials:
        for b in t.timings:
            if not b.ok or b.time_ms is None:
                continue
            out.append({"model": t.model_name, "group": t.strategy,
                        "flops": b.flops or float(t.flops), "params": b.params, "acts": b.acts,
                        "time_ms": b.time_ms, "mode": b.mode, "batch_size": b.batch_size,
                        "device": b.device, "setting": b.setting})
    return out
