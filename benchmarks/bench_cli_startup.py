"""How long the `netscale` command takes to start, and which imports cost the most.

Times ``python -m netscale --help`` and ``python -m netscale models`` (fresh interpreter each
run, commands interleaved so a busy machine slows both alike) and a bare ``python -c pass``
for reference, then lists the slowest imports (``python -X importtime``, cumulative) of each
command. (``-X importtime`` does not log a module imported with ``importlib.import_module``,
as the sub-command modules are; the modules they import are listed as top-level imports.)
Uses the interpreter running this script; put src/ on PYTHONPATH to time a checkout::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_cli_startup.py [--runs 15] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "netscale --help": ["-m", "netscale", "--help"],
    "netscale models": ["-m", "netscale", "models"],
}


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t0


def import_offenders(args: list[str], top: int) -> list[tuple[float, float, str]]:
    """(cumulative s, self s, module) of the ``top`` slowest top-level imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True,
                          text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        if name.startswith("  "):  # imported by another module: counted in its cumulative
            continue
        rows.append((int(cum_us) / 1e6, int(self_us) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--quick", action="store_true", help="5 runs per command")
    ap.add_argument("--top", type=int, default=8, help="slowest imports to list per command")
    args = ap.parse_args()
    runs = 5 if args.quick else args.runs
    for a in COMMANDS.values():  # warm the file cache and .pyc files
        _run(a)
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(runs):
        for name, a in COMMANDS.items():
            times[name].append(_run(a))
    print(f"start-up time of fresh interpreters ({runs} runs each, interleaved; "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})\n")
    print(f"{'command':<18} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{'-' * 18} {'-' * 9} {'-' * 7} {'-' * 7}")
    for name, ts in times.items():
        print(f"{name:<18} {statistics.median(ts):>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}")
    for name, a in COMMANDS.items():
        if name.startswith("python"):
            continue
        print(f"\nslowest top-level imports of `{name}` (python -X importtime):")
        print(f"  {'cumulative s':>12} {'self s':>7}  module")
        for cum, own, mod in import_offenders(a, args.top):
            print(f"  {cum:>12.3f} {own:>7.3f}  {mod}")


if __name__ == "__main__":
    main()
