"""How long does the quickstart take, and where does the time go?

    python benchmarks/quickstart_time.py [--keep DIR] [--json FILE] [-- QUICKSTART ARGS...]
    python benchmarks/quickstart_time.py --fresh-clone [--repo PATH]

Default: runs ``netscale quickstart --out TMP/quickstart`` (this checkout's source) in a
temporary directory and prints its wall time, the study's time breakdown read from its store
(benchmark, training steps, evaluation, set-up, idle: seconds and shares of the study's wall
time; see docs/study-time.md) and the time outside the study (interpreter start, data check,
report and verdict). ``--fresh-clone`` clones the repository (``--repo``, default this
checkout's) into the temporary directory and times ``./run.sh`` there instead: set-up
(virtual environment, install) included. Each run reports the load average before and after
(1, 5, 15 minutes) and the CPU; a run on a busy machine says so. Not a test: it trains the
quickstart's 33 models (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))  # this checkout's netscale




def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str]:
    print(f"$ {' '.join(cmd)}   (in {cwd})", flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    return r.returncode, time.time() - t0, r.stdout


def _breakdown(study: Path) -> dict[str, Any] | None:
    from netscale.report.breakdown import breakdown_json

    return breakdown_json(study)


def _settings(study: Path) -> list[str]:
    """The execution settings the trials trained in (label: count)."""
    counts: dict[str, int] = {}
    for f in sorted((study / "trials").glob("*/setting.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        label = f"{d.get('memory_format')}+{d.get('precision')}"
        counts[label] = counts.get(label, 0) + 1
    return [f"{k} x{v}" for k, v in counts.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh-clone", action="store_true",
                    help="clone the repository and time ./run.sh (set-up included)")
    ap.add_argument("--repo", default=str(ROOT), help="repository to clone (--fresh-clone)")
    ap.add_argument("--keep", help="run in this directory and keep it (default: a temporary "
                    "directory, removed)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("quickstart_args", nargs="*", help="extra quickstart arguments (after --)")
    args = ap.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qs_time_"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    load_before = _load()
    try:
        if args.fresh_clone:
            clone = work / "netscale"
            code, cloned, out = _run(["git", "clone", "-q", args.repo, str(clone)], work, env)
            if code:
                print(out)
                return 2
            env.pop("PYTHONPATH", None)
            env.pop("VIRTUAL_ENV", None)
            code, wall, out = _run(["./run.sh", *args.quickstart_args], clone, env)
            wall += cloned  # the clone is part of the set-up
            study = clone / "studies" / "quickstart"
        else:
            study = work / "quickstart"
            env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"]
                                            if env.get("PYTHONPATH") else "")
            code, wall, out = _run([sys.executable, "-m", "netscale", "quickstart", "--out",
                                    str(study), *args.quickstart_args], work, env)
        load_after = _load()
        if code:
            print(out[-3000:])
            print(f"the quickstart failed (exit code {code})")
            return 2
        parts = _breakdown(study) if (study / "results.sqlite").is_file() else None
        from netscale.bench.env import cpu_model

        report: dict[str, Any] = {
            "command": "fresh clone + ./run.sh" if args.fresh_clone else "netscale quickstart",
            "wall_s": round(wall, 1), "cpu": cpu_model(), "cpus": os.cpu_count(),
            "load_before": load_before, "load_after": load_after,
            "date": time.strftime("%Y-%m-%d %H:%M"), "study": parts,
            "settings": _settings(study)}
        print(f"\nquickstart wall time: {wall:.1f} s ({wall / 60:.2f} min), "
              f"{report['command']}")
        print(f"machine: {report['cpu']}, {report['cpus']} CPUs; load average (1/5/15 min) "
              f"before {load_before}, after {load_after}")
        if parts is not None:
            study_wall = parts["wall_s"]
            print(f"study: {study_wall:.1f} s; outside it (start, data check, report, verdict"
                  f"{', set-up' if args.fresh_clone else ''}): {wall - study_wall:.1f} s")
            for key in ("benchmark", "steps", "evaluation", "setup", "idle", "overhead"):
                p = parts[key]
                print(f"  {key:<11} {p['seconds']:8.1f} s {100 * p['share']:5.1f} %")
        print(f"trained in: {', '.join(report['settings']) or 'unknown'}")
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
