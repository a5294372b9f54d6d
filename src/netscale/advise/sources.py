"""Where trials come from: a study directory (its results store) or a results file of models
trained elsewhere (:mod:`netscale.advise.results_io`). Both are a :class:`StudyResults` of
:class:`~netscale.study.store.TrialRow`; a :class:`ResultsFile` also says what the file holds,
writes its rows back in the file format and ranks its groups instead of scaling a base."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.study.store import STATUSES, STORE_NAME, Store, TrialRow
from netscale.util import serial
from netscale.util.text import csv_writer


@dataclass
class StudyResults:
    """A study's trials and config, read from ``STUDY_DIR/results.sqlite``."""

    path: Path
    name: str
    config: dict[str, Any]
    trials: list[TrialRow]
    data_info: dict[str, Any] = field(default_factory=dict)

    #: What the source is, in messages ("study" or "results file").
    kind = "study"
    #: What one fitted curve of it is called ("strategy", or "group" in a results file).
    group_word = "strategy"

    @property
    def bases(self) -> list[str]:
        return sorted({t.base for t in self.trials})

    @property
    def raw_path(self) -> Path:
        """The file the trials were read from."""
        return self.path / STORE_NAME

    def report_dir(self) -> Path:
        """Where ``netscale report`` writes unless told otherwise."""
        return self.path / "report"

    def counts(self) -> dict[str, int]:
        """Trials per status (an alias row counts with its canonical trial's status)."""
        return {s: sum(1 for t in self.trials if t.status == s) for s in STATUSES}

    def csv_text(self) -> str:
        """Every trial as one CSV row (``netscale study --export csv``)."""
        with Store(self.path / STORE_NAME, readonly=True) as store:
            return store.export("csv", self.trials)

    def source_info(self) -> dict[str, Any] | None:
        """What a results file holds (None for a study)."""
        return None


@dataclass(frozen=True)
class FileInfo:
    """What a results file holds: its rows, groups, error column and unit, the models whose
    flops were counted here and the columns it lacks."""

    path: str
    format: str
    rows: int
    groups: list[str]
    error_column: str
    error_unit: str  # "percent" | "fraction"
    counted_models: list[str]

    missing_columns: list[str]  # of params and acts: the ones no row gives
    n_val: int | None = None  # validation images per evaluation, when the file says
    val_shared: bool | None = None  # every row scored on the same validation images

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


@dataclass(kw_only=True)
class ResultsFile(StudyResults):
    """The rows of a CSV or JSON results file (docs/results-format.md) as trials: one group
    per strategy or family, no base network to scale."""

    file: FileInfo

    kind = "results file"
    group_word = "group"

    @property
    def raw_path(self) -> Path:
        return self.path

    def report_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}_report"

    def csv_text(self) -> str:
        """The rows in the results-file format (fractions, flops in multiply-adds)."""
        buf = io.StringIO()
        w = csv_writer(buf)
        w.writerow(["group", "model", "flops", "params", "acts", "top1_err", "time_ms", "seed",
                    "epochs", "status"])
        for t in self.trials:
            w.writerow([t.strategy, t.model_name, t.flops, t.params or "",
                        t.acts or "", "" if t.top1_err is None else t.top1_err,
                        "" if t.time_ms is None else t.time_ms, t.seed, t.epochs_done or "",
                        t.status])
        return buf.getvalue()

    def source_info(self) -> dict[str, Any]:
        return self.file.to_dict()

    def summary(self) -> str:
        """One line: rows, groups, error column and the models counted here."""
        f = self.file
        counted = (f"; flops of {len(f.counted_models)} model(s) counted analytically"
                   if f.counted_models else "")
        return (f"{f.rows} rows in {len(f.groups)} group(s), each fitted on its own; error "
                f"column {f.error_column} ({f.error_unit}){counted}")


def is_study_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / STORE_NAME).is_file()


def load_study(study_dir: str | Path) -> StudyResults:
    """Reads a study directory; a one-line :class:`NetscaleError` when it is not one (a
    results file is read by :func:`netscale.advise.results_io.load_source`)."""
    p = Path(study_dir)
    if not p.exists():
        raise NetscaleError(f"{str(p)!r} does not exist; give a study directory (the 'out' "
                            "directory of 'netscale study CONFIG')")
    if not is_study_dir(p):
        raise NetscaleError(f"{str(p)!r} is not a study directory (no {STORE_NAME}); run "
                            "'netscale study CONFIG' first or point at the study's 'out' "
                            "directory")
    with Store(p / STORE_NAME, readonly=True) as store:
        trials = store.trials()
        config = _json_object(store.get_meta("config"))
        info = _json_object(store.get_meta("data_info"))
        name = store.get_meta("name") or config.get("name") or p.name
    return StudyResults(path=p, name=str(name), config=config, trials=trials, data_info=info)


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        d = json.loads(text)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}
