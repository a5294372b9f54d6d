"""The shape of the source: the package graph, the longest functions and the functions with
many parameters.

Prints, from the source alone (ast; nothing is imported):

* every package of ``src/netscale`` in layer order (lowest first) with its modules and lines,
  and the packages it imports with the number of import statements (module-level and
  function-level alike); an import that goes up the layer order is marked ``UP``
  (tests/test_layers.py fails on it);
* the ten longest functions (file:function, lines from ``def`` to the last line);
* the functions with more than 8 parameters (``self``/``cls`` not counted).

    .venv/bin/python benchmarks/package_graph.py [--top 10] [--max-params 8]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from test_layers import LAYERS, ROOT_MODULES, SRC, import_edges  # the one import parser


def package_graph() -> tuple[dict[str, Counter[str]], dict[str, tuple[int, int]]]:
    """(package -> Counter of imported packages, package -> (modules, lines))."""
    deps: dict[str, Counter[str]] = {p: Counter() for p in LAYERS}
    for _f, _line, src, dst, _name in import_edges():
        if src != dst:
            deps[src][dst] += 1
    size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC)
        pkg = rel.parts[0] if len(rel.parts) > 1 else ROOT_MODULES[rel.stem]
        size[pkg][0] += 1
        size[pkg][1] += len(f.read_text(encoding="utf-8").splitlines())
    return deps, {p: (m, n) for p, (m, n) in size.items()}


def functions() -> list[tuple[str, int, int]]:
    """(file:qualified name, lines, parameters) of every function and method."""
    out = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC.parent)
        tree = ast.parse(f.read_text(encoding="utf-8"))

        def visit(node: ast.AST, prefix: str, rel: Path = rel) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = child.args
                    params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                    params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
                    n = len([p for p in params if p not in ("self", "cls")])
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    out.append((f"{rel}:{prefix}{child.name}", lines, n))
                    visit(child, f"{prefix}{child.name}.")

        visit(tree, "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=10, help="longest functions to list (10)")
    ap.add_argument("--max-params", type=int, default=8,
                    help="list functions with more parameters than this (8)")
    args = ap.parse_args()
    deps, size = package_graph()
    print(f"package graph of {SRC} (layer order, lowest first; a package may import only "
          "packages listed before it)\n")
    print(f"{'package':<11} {'modules':>7} {'lines':>6}  imports (package x import statements)")
    print(f"{'-' * 11} {'-' * 7} {'-' * 6}  {'-' * 40}")
    ups = 0
    for p in LAYERS:
        marks = []
        for d, n in sorted(deps[p].items(), key=lambda kv: LAYERS.index(kv[0])):
            up = LAYERS.index(d) > LAYERS.index(p)
            ups += up
            marks.append(f"{d} x{n}" + (" UP" if up else ""))
        m, n = size.get(p, (0, 0))
        print(f"{p:<11} {m:>7} {n:>6}  {', '.join(marks) or '-'}")
    print(f"\n{ups} upward edge(s); "
          f"{sum(n for _, n in size.values())} lines in {sum(m for m, _ in size.values())} "
          "modules")
    funcs = functions()
    print(f"\nthe {args.top} longest functions (lines, def to last line):")
    for name, lines, _ in sorted(funcs, key=lambda t: (-t[1], t[0]))[:args.top]:
        print(f"  {lines:>4}  {name}")
    many = sorted((t for t in funcs if t[2] > args.max_params), key=lambda t: (-t[2], t[0]))
    print(f"\n{len(many)} function(s) with more than {args.max_params} parameters "
          "(self/cls not counted):")
    for name, _, n in many:
        print(f"  {n:>4}  {name}")


if __name__ == "__main__":
    main()
