"""Predicting pycls's published RegNet ImageNet errors from the small models, through the CLI.

    .venv/bin/python benchmarks/pycls_errors.py            # about 30 s on 2 cores
    .venv/bin/python benchmarks/pycls_errors.py --markdown # tables for docs

Data: benchmarks/data/pycls_model_error.csv, the top-1 errors (percent) of RegNetX/RegNetY
200MF…32GF from pycls's dev/model_error.json (commit 4449e4af, named in the file). Nothing is
downloaded.

Everything goes through the results-file import and the command line only, as a user would:
for each family a CSV with the small models (200MF…1.6GF: ``group,model,top1_err_pct``) is
written, and ``netscale fit FILE --at F1,F2,... --json`` predicts the large ones (3.2GF…32GF).
Flops are netscale's analytic count of each named model (the loader counts the ``model``
column; the --at values come from ``netscale info MODEL --json``), multiply-adds at 224 px.

Three fits are compared: the default (``--law auto``: the saturating law err = a·x^(−b) + c
on the 5 small models), the plain power law on the same 5 (``--law power``), and what a user
with only 3 small models (200MF, 400MF, 800MF) gets (the power-law fallback), with and
without a known noise floor (``--noise 0.3pt``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).parent / "data" / "pycls_model_error.csv"
SMALL = ("200MF", "400MF", "600MF", "800MF", "1.6GF")
THREE = ("200MF", "400MF", "800MF")
LARGE = ("3.2GF", "4.0GF", "6.4GF", "8.0GF", "12GF", "16GF", "32GF")


def cli(*args: str) -> str:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "netscale", *args], capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"netscale {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def published() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with DATA.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for r in rows:
            out.setdefault(r["group"], {})[r["model"]] = float(r["top1_err_pct"])
    return out


def flops_of(model: str) -> int:
    return int(json.loads(cli("info", model, "--json"))["flops"])


def run_case(tmp: Path, family: str, errs: dict[str, float], small: tuple[str, ...],
             at: dict[str, int], extra: list[str]) -> list[dict[str, float | str | bool]]:
    path = tmp / f"{family}_{len(small)}_{'_'.join(extra) or 'auto'}.csv".replace(" ", "")
    with path.open("w") as f:
        f.write("group,model,top1_err_pct\n")
        for s in small:
            f.write(f"{family},{family}-{s},{errs[f'{family}-{s}']}\n")
    at_text = ",".join(str(v) for v in at.values())
    d = json.loads(cli("fit", str(path), "--at", at_text, "--json", *extra))
    g = d["predictions"]["groups"][family]
    rows = []
    for (model, x), p in zip(at.items(), g["predictions"]):
        assert p["x"] == x
        pub = errs[model] / 100
        rows.append({"model": model, "flops": x, "published": pub, "pred": p["value"],
                     "lo": p["lo"], "hi": p["hi"], "inside": p["lo"] <= pub <= p["hi"],
                     "ex": p["extrapolation"], "law": g["law"]})
    return rows


def summary(rows: list[dict]) -> str:
    d = [100 * (r["pred"] - r["published"]) for r in rows]
    width = [100 * (r["hi"] - r["lo"]) for r in rows]
    cov = sum(bool(r["inside"]) for r in rows)
    return (f"max |pred − published| {max(abs(v) for v in d):.2f} pts, mean {sum(d) / len(d):+.2f}"
            f" pts; {cov}/{len(rows)} inside the 95 % interval; interval width "
            f"{min(width):.2f}…{max(width):.2f} pts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = ap.parse_args()
    pub = published()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for family in ("RegNetX", "RegNetY"):
            errs = pub[family]
            at = {f"{family}-{s}": flops_of(f"{family}-{s}") for s in LARGE}
            cases = [
                ("auto, 5 small models (saturating)", SMALL, []),
                ("power law, 5 small models", SMALL, ["--law", "power"]),
                ("3 small models (power fallback)", THREE, []),
                ("3 small models, --noise 0.3pt", THREE, ["--noise", "0.3pt"]),
            ]
            print(f"\n## {family}: fitted on {', '.join(SMALL)} (published errors, pycls), "
                  "predicted at the larger models (flops = multiply-adds, counted by "
                  "netscale; errors in %)\n")
            for title, small, extra in cases:
                rows = run_case(tmp, family, errs, small, at, extra)
                cmd = ("netscale fit FILE --at " + ",".join(f"{v / 1e9:.3g}G" for v in
                                                            at.values())
                       + (" " + " ".join(extra) if extra else ""))
                print(f"### {title}: `{cmd}`\n")
                if args.markdown:
                    print("| model | flops | published | predicted [95 % PI] | past data | in |")
                    print("|---|---:|---:|---:|---:|:-:|")
                for r in rows:
                    pi = f"{100 * r['pred']:.2f} [{100 * r['lo']:.2f}, {100 * r['hi']:.2f}]"
                    if args.markdown:
                        print(f"| {r['model']} | {r['flops'] / 1e9:.2f}G | "
                              f"{100 * r['published']:.2f} | {pi} | ×{r['ex']:.2f} | "
                              f"{'yes' if r['inside'] else 'NO'} |")
                    else:
                        print(f"  {r['model']:<14} {r['flops'] / 1e9:6.2f}G  published "
                              f"{100 * r['published']:6.2f}  predicted {pi:<24} "
                              f"x{r['ex']:<5.3g} {'inside' if r['inside'] else 'OUTSIDE'}")
                print(f"\n{summary(rows)}\n")


if __name__ == "__main__":
    main()
