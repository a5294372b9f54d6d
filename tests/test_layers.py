"""The package graph obeys the declared layer order: a package imports only packages below it
(module-level and function-level imports alike), and ``laws`` is pure numerics (no torch)."""

from __future__ import annotations

import ast
from pathlib import Path

import netscale

SRC = Path(netscale.__file__).parent

#: Lowest first; a package may import only itself and packages before it.
LAYERS = ("errors", "util", "laws", "specs", "models", "complexity", "scaling", "zoo", "data",
          "bench", "train", "study", "advise", "report", "cli")
#: Top-level modules of ``netscale`` and the layer they sit in.
ROOT_MODULES = {"__init__": "errors", "errors": "errors", "__main__": "cli"}


def _layer(module_file: Path) -> str:
    rel = module_file.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else ROOT_MODULES[rel.stem]


def _imported(node: ast.AST, module_file: Path) -> list[str]:
    """Dotted names of the modules an import statement imports (relative ones resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        pkg = list(module_file.relative_to(SRC.parent).with_suffix("").parts)
        pkg = pkg[:len(pkg) - node.level]
        base = ".".join(pkg + ([base] if base else []))
    if base == "netscale":  # `from netscale import report` imports netscale.report
        return [f"{base}.{a.name}" for a in node.names]
    return [base]


def _package(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "netscale":
        return None
    if len(parts) == 1 or not ((SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists()):
        return "errors"  # the root package itself (e.g. `from netscale import __version__`)
    return ROOT_MODULES.get(parts[1], parts[1])


def import_edges() -> list[tuple[Path, int, str, str, str]]:
    """(file, line, from package, to package, module) of every netscale import."""
    out = []
    for f in sorted(SRC.rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"), str(f))
        for node in ast.walk(tree):
            for name in _imported(node, f):
                pkg = _package(name)
                if pkg is not None:
                    out.append((f, node.lineno, _layer(f), pkg, name))
    return out


def test_every_package_is_in_the_layer_order() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages missing from LAYERS: {packages - set(LAYERS)}"
    assert {to for *_, to, _ in import_edges()} <= set(LAYERS)


def test_no_import_goes_up_the_layer_order() -> None:
    up = [f"{f.relative_to(SRC.parent)}:{line}: {src} -> {dst} (imports {name})"
          for f, line, src, dst, name in import_edges()
          if LAYERS.index(dst) > LAYERS.index(src)]
    assert not up, ("imports going up the layer order "
                    f"({' < '.join(LAYERS)}):\n" + "\n".join(up))


def test_laws_is_pure_numerics() -> None:
    heavy = []
    for f in sorted((SRC / "laws").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            for name in _imported(node, f):
                if name.split(".")[0] in ("torch", "torchvision", "matplotlib"):
                    heavy.append(f"{f.relative_to(SRC.parent)}:{node.lineno}: {name}")
    assert not heavy, "netscale.laws must not import torch:\n" + "\n".join(heavy)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    code = ("def f():\n    from netscale.report import html\n"
            "from . import fit\nfrom netscale import cli\n")
    tree = ast.parse(code)
    fake = SRC / "laws" / "x.py"
    names = [n for node in ast.walk(tree) for n in _imported(node, fake)]
    assert sorted(names) == ["netscale.cli", "netscale.laws", "netscale.report"]
    assert [_package(n) for n in sorted(names)] == ["cli", "laws", "report"]


def _module(f: Path) -> str:
    parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(f): f for f in sorted(SRC.rglob("*.py"))}


def module_edges() -> dict[str, set[str]]:
    """Module -> the netscale modules it imports (module-level and function-level alike;
    ``from pkg import mod`` imports the module ``pkg.mod``)."""
    out: dict[str, set[str]] = {}
    for name, f in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            for target in _imported(node, f):
                subs = [f"{target}.{a.name}" for a in getattr(node, "names", [])
                        if isinstance(node, ast.ImportFrom)]
                deps.update(s for s in subs if s in MODULES)
                if not any(s in MODULES for s in subs) and target in MODULES:
                    deps.add(target)
        deps.discard(name)
        out[name] = deps
    return out


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules_of_a_package() -> None:
    edges = module_edges()
    inside = {m: {d for d in deps if d.split(".")[:2] == m.split(".")[:2]}
              for m, deps in edges.items()}
    cycles = import_cycles(inside)
    assert not cycles, "modules importing each other (directly or in a circle):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_cycle_finder_sees_a_circle_through_three_modules() -> None:
    edges = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert import_cycles(edges) == [["p.a", "p.b", "p.c"]]
    assert import_cycles({"p.a": {"p.b"}, "p.b": set()}) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    private = []
    for f in MODULES.values():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            if not isinstance(node, ast.ImportFrom):
                continue
            for target in _imported(node, f):
                if _package(target) is None:
                    continue
                private += [f"{f.relative_to(SRC.parent)}:{node.lineno}: {target}.{a.name}"
                            for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert not private, "private names imported across modules (make them public or move " \
        "them):\n" + "\n".join(private)


def test_html_is_written_only_in_report() -> None:
    """Presentation stays out of the engine: HTML markup appears in netscale.report only."""
    tags = ("<table", "<div", "<td", "<img", "<ul")
    found = [f"{f.relative_to(SRC.parent)}: {tag}" for f in sorted(SRC.rglob("*.py"))
             if f.relative_to(SRC).parts[0] != "report"
             for tag in tags if tag in f.read_text(encoding="utf-8")]
    assert not found, "HTML outside netscale.report:\n" + "\n".join(found)
