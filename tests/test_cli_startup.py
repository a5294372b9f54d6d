"""`netscale --help` starts fast: it imports no sub-command module, hence no torch, scipy or
numpy (the speed itself is measured by benchmarks/bench_cli_startup.py, not asserted here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netscale.cli.main import COMMANDS, build_parser, command_in

HEAVY = ("torch", "scipy", "numpy", "matplotlib", "yaml")


_RUN = """
import runpy, sys
sys.argv = ["netscale", *sys.argv[1:]]
try:
    runpy.run_module("netscale", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""


def _imported_modules(*args: str) -> set[str]:
    """The modules in sys.modules after a fresh `python -m netscale ARGS` (run as -m does)."""
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          timeout=120)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES ")), None)
    assert line is not None, proc.stderr
    return set(line.split()[1:])


def test_help_imports_no_heavy_module() -> None:
    mods = _imported_modules("--help")
    assert "netscale.cli.main" in mods
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert not heavy, f"`netscale --help` imports {heavy}"
    commands = sorted(m for m in mods if m.startswith("netscale.cli.") and m != "netscale.cli.main")
    assert not commands, f"`netscale --help` imports sub-command modules {commands}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_sub_command_help_imports_no_torch_or_scipy(command: str) -> None:
    mods = _imported_modules(command, "--help")
    assert f"netscale.cli.{COMMANDS[command][0]}" in mods
    heavy = sorted(m for m in mods if m.split(".")[0] in ("torch", "scipy", "matplotlib"))
    assert not heavy, f"`netscale {command} --help` imports {heavy}"


def test_a_usage_error_imports_no_heavy_module() -> None:
    mods = _imported_modules("no-such-command")
    assert not sorted(m for m in mods if m.split(".")[0] in HEAVY)


def test_lazy_listing_is_the_modules_own() -> None:
    """The one-line help that --help shows without importing the modules is exactly what the
    modules register (and every sub-command they register is listed, in the same order)."""
    assert build_parser([]).format_help() == build_parser().format_help()


def test_a_sub_command_gets_its_full_parser() -> None:
    assert command_in(["--version"]) is None and command_in(["fit", "x", "--n-boot", "9"]) == "fit"
    for name in COMMANDS:
        args = build_parser([name]).parse_args([name, *_minimal_args(name)])
        assert args.command == name and callable(args.func)


def _minimal_args(name: str) -> list[str]:
    return {"info": ["ResNet-20-CIFAR"], "scale": ["ResNet-20-CIFAR", "--factor", "2"],
            "train": ["ResNet-20-CIFAR"], "eval": ["run"], "study": ["s.yaml"],
            "report": ["dir"], "fit": ["dir"], "recommend": ["dir", "--target", "2"],
            "export": ["ResNet-20-CIFAR", "--format", "pt2", "--out", "m.pt2"],
            "bench": ["ResNet-20-CIFAR"]}.get(name, [])
