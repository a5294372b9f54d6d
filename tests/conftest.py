"""Shared pytest set-up: headless plotting, Ray without auth, quiet threads."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="netscale-mpl-"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


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
