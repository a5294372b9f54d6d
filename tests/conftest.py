"""Shared pytest set-up: headless plotting, Ray without auth, quiet threads."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="netscale-mpl-"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

#: tests/zoo needs timm and torchvision, which the main environment does not have: it runs in
#: .venv-zoo (./test.sh sets NETSCALE_ZOO_TESTS=1 there; without timm it then fails, loudly)
collect_ignore = [] if os.environ.get("NETSCALE_ZOO_TESTS") else ["zoo"]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Runs `netscale ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from netscale.cli.main import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run
