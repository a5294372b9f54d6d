#!/usr/bin/env bash
# Run netscale's checks: ruff, mypy --strict (packages in pyproject's [tool.mypy]), then the
# test suite. Bootstraps .venv/ if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy   # --strict on all of src/netscale (config: pyproject.toml)
exec .venv/bin/python -m pytest -q "$@"
