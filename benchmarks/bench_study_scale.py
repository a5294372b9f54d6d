"""How `netscale report`, `fit`, `recommend` and `study --export` grow with a study's size.

Generates synthetic study stores (netscale_fixtures.synthetic: real scaled and counted models,
simulated errors and runtimes; 8 strategies x factors 1, 2, 4, 8, as many seeds as needed)
of 100, 1,000 and 10,000 trials, then runs each command on each store as its own process
(`python -m netscale ...`, as a user would) and measures its wall time and peak memory (the
child's maximum resident set size, from wait4). Prints one table: command x trials ->
seconds, peak MB; plus the size of the HTML report.

    .venv/bin/python benchmarks/bench_study_scale.py            # 100, 1,000 and 10,000 trials
    .venv/bin/python benchmarks/bench_study_scale.py --quick    # 100 and 1,000 only

Goal: every command under 30 s and 1 GB at 10,000 trials. Absolute times depend
on the machine and its load (the table header prints the CPU, cores and load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr")
FACTORS = (1, 2, 4, 8)
PER_SEED = 1 + len(STRATEGIES) * (len(FACTORS) - 1)  # the base is shared: 25 trials a seed


def make_store(path: Path, trials: int) -> tuple[int, float]:
    """A synthetic study of about ``trials`` trials (a whole number of seeds); returns
    (trials written, seconds)."""
    from netscale.study.store import Store
    from netscale_fixtures.synthetic import synthetic_study

    seeds = max(1, round(trials / PER_SEED))
    t0 = time.perf_counter()
    synthetic_study(path, strategies=STRATEGIES, factors=FACTORS, seeds=range(seeds),
                    name=f"synthetic-{trials}")
    dt = time.perf_counter() - t0
    with Store(path / "results.sqlite", readonly=True) as s:
        n = sum(s.counts().values())
    return n, dt


def run(cmd: list[str]) -> tuple[float, float, int]:
    """Runs ``python -m netscale CMD``; returns (wall seconds, peak RSS in MB, exit code)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p])}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "netscale", *cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode not in (0, 1):
        print(f"  ! {' '.join(cmd)} exited {p.returncode}: {err.strip()[-300:]}",
              file=sys.stderr)
    return dt, usage.ru_maxrss / 1024.0, p.returncode  # ru_maxrss: KiB on Linux


def commands(d: Path) -> list[tuple[str, list[str]]]:
    return [("report DIR", ["report", str(d)]),
            ("fit DIR", ["fit", str(d)]),
            ("recommend DIR --target-flops 8x", ["recommend", str(d), "--target-flops", "8x"]),
            ("study DIR --export csv", ["study", str(d), "--export", "csv", "-o",
                                        str(d / "export.csv")]),
            ("study DIR --export json", ["study", str(d), "--export", "json", "-o",
                                         str(d / "export.json")])]


def machine() -> str:
    from netscale.bench.env import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 and 1,000 trials only")
    ap.add_argument("--sizes", help="comma-separated trial counts (default 100,1000,10000)")
    ap.add_argument("--dir", help="keep the stores here (default: a temporary directory)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [100, 1000] if args.quick else [100, 1000, 10000])
    tmp = None if args.dir else tempfile.TemporaryDirectory(prefix="netscale-scale-")
    root = Path(args.dir or tmp.name)  # type: ignore[union-attr]
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    results: list[dict] = []
    gen: dict[int, tuple[int, float]] = {}
    for size in sizes:
        d = root / f"study_{size}"
        n, dt = make_store(d, size)
        gen[size] = (n, dt)
        print(f"generated {n:,} trials in {dt:.1f} s ({d})", flush=True)
        for name, cmd in commands(d):
            sec, mb, rc = run(cmd)
            row = {"command": name, "trials": n, "seconds": round(sec, 2),
                   "peak_mb": round(mb, 1), "exit": rc}
            if name.startswith("report"):
                html = d / "report" / "index.html"
                row["html_mb"] = round(html.stat().st_size / 2**20, 2) if html.is_file() else None
            results.append(row)
            print(f"  {name:34s} {sec:7.1f} s {mb:8.0f} MB", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}\n")
    trials = [gen[s][0] for s in sizes]
    head = "| command | " + " | ".join(f"{n:,} trials: s, peak MB" for n in trials) + " |"
    print(head)
    print("|" + "---|" * (len(trials) + 1))
    for name, _ in commands(root):
        cells = []
        for n in trials:
            r = next(r for r in results if r["command"] == name and r["trials"] == n)
            cells.append(f"{r['seconds']:.1f} s, {r['peak_mb']:.0f} MB"
                         + ("" if r["exit"] in (0, 1) else f" (exit {r['exit']})"))
        print(f"| `netscale {name}` | " + " | ".join(cells) + " |")
    html = [next(r for r in results if r["command"] == "report DIR" and r["trials"] == n)
            for n in trials]
    print("| HTML report size | " + " | ".join(f"{r['html_mb']} MB" for r in html) + " |")
    print("| generating the store (one transaction) | "
          + " | ".join(f"{gen[s][1]:.1f} s" for s in sizes) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results,
                                               "generate_s": {str(gen[s][0]): gen[s][1]
                                                              for s in sizes}}, indent=2))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
