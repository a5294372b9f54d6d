"""Imports sit at module level unless there is a reason (docs/conventions.md, "Imports").

A function-level import of netscale itself, numpy or torch is allowed

* in ``cli/`` (each command's ``--help`` starts without the modules its work needs);
* in a module that some ``netscale COMMAND --help`` imports (measured), when the imported
  module pulls in torch, scipy or matplotlib at import time (tests/test_cli_startup.py holds
  that line);
* where :data:`ALLOWED` names the import and its reason.

What a module pulls in at import time is read statically (module-level statements).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import netscale
from netscale.cli.main import COMMANDS
from test_cli_startup import _imported_modules

SRC = Path(netscale.__file__).parent
HEAVY = ("torch", "scipy", "matplotlib")
CHECKED = ("netscale", "numpy", "torch")

#: (module, imported module) -> why it is imported inside a function.
ALLOWED: dict[tuple[str, str], str] = {}
#: Modules (and packages) this check skips.
UNCHECKED: tuple[str, ...] = ()


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(f): f for f in SRC.rglob("*.py")}


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The modules an import statement loads: each dotted prefix, and ``from P import m``
    of a submodule ``P.m``."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module.split(".") if MODULES[module].name == "__init__.py" else \
                module.split(".")[:-1]
            pkg = pkg[:len(pkg) - node.level + 1]
            base = ".".join(pkg + ([base] if base else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names
                          if f"{base}.{a.name}" in MODULES]
    out = []
    for name in names:
        parts = name.split(".")
        out += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return out


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try)) and not _is_type_checking(node):
            for block in (getattr(node, "body", []), getattr(node, "orelse", []),
                          *[h.body for h in getattr(node, "handlers", [])]):
                out += _top_level_imports(block)
    return out


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


@cache
def _loads(module: str) -> frozenset[str]:
    """Every module importing ``module`` loads (its module-level imports, transitively)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages first
        if m in MODULES:
            for node in _top_level_imports(_tree(m).body):
                todo += _targets(node, m)
    return frozenset(seen)


def _heavy(module: str) -> bool:
    return any(m.split(".")[0] in HEAVY for m in _loads(module))


@cache
def _on_help_path() -> frozenset[str]:
    """The netscale modules some `netscale COMMAND --help` imports (measured, as
    tests/test_cli_startup.py does)."""
    out: set[str] = set()
    for command in COMMANDS:
        out |= {m for m in _imported_modules(command, "--help") if m.startswith("netscale")}
    return frozenset(out)


def _function_imports(module: str) -> list[tuple[int, str]]:
    out = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    out.add((sub.lineno, max(_targets(sub, module), key=len)))
    return sorted(out)


def test_function_level_imports_have_a_reason() -> None:
    help_path = _on_help_path()
    bad = []
    for module in sorted(MODULES):
        if module.startswith(("netscale.cli", *UNCHECKED)):
            continue
        for line, target in _function_imports(module):
            if target.split(".")[0] not in CHECKED or (module, target) in ALLOWED:
                continue
            if module in help_path and _heavy(target):
                continue  # start-up: a --help would import torch/scipy/matplotlib
            bad.append(f"{MODULES[module].relative_to(SRC.parent)}:{line}: {target}")
    assert not bad, ("function-level imports with no start-up reason (move them to module "
                     "level, or add them to ALLOWED with the reason):\n" + "\n".join(bad))


def test_the_check_sees_what_it_checks() -> None:
    assert "netscale.cli.main" in MODULES and "netscale.train.trainer" in MODULES
    assert _heavy("netscale.train.trainer") and not _heavy("netscale.util.fmt")
    help_path = _on_help_path()
    assert "netscale.cli.bench" in help_path and "netscale.train.trainer" not in help_path
    for reason in ALLOWED.values():
        assert reason.strip()
